"""Checks of an explanation: masking (run the model on the image with a region filled: does the
class lose its score?) and the grid pointing game of the current method.

The :class:`CheckController` works for the window's controller (its ``host``): its task runner
and notifications. Nothing runs the model while a session file is being restored
(``session.restoring``).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject

from alens_gui.core.errors import AlensError

from . import jobs, sessionstate
from .tasks import readable_error


class CheckController(QObject):
    """Masking and the grid pointing game for ``host`` (the window's controller)."""

    def __init__(self, host) -> None:
        super().__init__(host)
        self.host = host
        self.session = s = host.session
        #: The last grid pointing game's scores per method (None until one ran).
        self.grid_game_result: dict | None = None
        s.mask_changed.connect(lambda _m: self.run_mask())
        s.fill_changed.connect(lambda _f: self.run_mask())

    # -- masking -------------------------------------------------------------------------
    def run_mask(self):
        s = self.session
        expl, mask = s.explanation, s.mask
        if expl is None or s.model is None or s.restoring:
            return None
        if mask is None or not mask.any():
            self.host.runner.cancel("mask")
            s.mask_result = None
            return None
        return self.host.runner.run("mask", jobs.mask_job, s.model, expl, mask.copy(), s.fill, label="masking",
                                    on_return=self._on_masked)

    def _on_masked(self, result) -> None:
        self.session.mask_result = result

    def select_top_fraction(self, index: int, percent: float) -> bool:
        """Mask the top ``percent`` % of pixels of class ``index``'s refined map."""
        from alens_gui.core.masking import top_fraction_mask

        s, notify = self.session, self.host.notify
        expl = s.explanation
        if expl is None:
            notify("explain an image first", "warning")
            return False
        if not 0 <= index < expl.k:
            notify(f"class position {index} is not in the class set", "error")
            return False
        try:
            region = top_fraction_mask(np.nan_to_num(expl.refined[index]), percent / 100.0)
        except AlensError as exc:
            notify(readable_error(exc), "error")
            return False
        if not region.any():
            notify(f"{expl.class_names[index]} wins no pixel at this lens setting; nothing to mask", "warning")
            return False
        before = s.mask
        s.add_to_mask(region)
        if before is not None and before.any():  # said, not done silently: the result is of the union
            notify(f"the top {percent:g} % of {expl.class_names[index]} was added to the mask already drawn "
                   f"({100 * s.mask.mean():.1f} % of the image masked now); Clear first to mask only these pixels",
                   "warning")
        return True

    # -- the grid pointing game -------------------------------------------------------------
    def run_grid_game(self, n: int = 8):
        s, notify = self.session, self.host.notify
        if s.model is None:
            notify("load a model first", "warning")
            return None
        try:
            method, options = self.host.check_settings()
        except AlensError as exc:
            notify(readable_error(exc), "error")
            return None
        settings = sessionstate.input_settings(s).with_(method=method, options=options, lens=s.lens)
        return self.host.runner.run("evaluate", jobs.grid_game_job, s.model, settings, int(n),
                                    label="grid pointing game", on_return=self._on_grid_game)

    def _on_grid_game(self, result: dict) -> None:
        self.grid_game_result = result
        self.host.notify(jobs.grid_game_summary(result))
