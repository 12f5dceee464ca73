"""Files out of and into the window: figure exports, saving a session and opening one.

Opening a session shows its saved maps and settings and recomputes nothing: while its fields
are set, ``session.restoring`` is on and nothing may run the model. The model a session names
is loaded only when loading it runs no code, or on the user's yes (:attr:`FileController.confirm_code`).
Session ↔ file conversion is :mod:`.sessionstate`.

The :class:`FileController` works for the window's controller (its ``host``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from . import jobs, sessionstate
from .session import ModelRequest


class FileController(QObject):
    """Exports, session saving and opening for ``host`` (the window's controller)."""

    def __init__(self, host) -> None:
        super().__init__(host)
        self.host = host
        self.session = host.session

    def export(self, kind: str, path: str, indices: Sequence[int] | None = None):
        """Write a figure (``figure``: PNG/SVG/PDF), the ``territory`` view, the ``npz`` maps, or the
        ``comparison`` of the pinned and the current explanation as one figure."""
        s, notify = self.session, self.host.notify
        if s.explanation is None:
            notify("nothing to export yet: explain an image first", "warning")
            return None
        what = s.explanation
        if kind == "comparison":
            if s.pinned is None or list(s.pinned.classes) != list(s.explanation.classes):
                notify("pin an explanation and explain another image with its class set to compare them", "warning")
                return None
            what = (s.pinned, s.explanation)
        return self.host.runner.run("export", jobs.export_job, kind, what, str(path), indices, s.color_scale,
                                    s.view.opacity, label=f"exporting {Path(path).name}",
                                    on_return=lambda p: notify(f"saved {p}"))

    def session_state(self) -> dict:
        """The session's settings as plain JSON (what a session file stores; see :mod:`.sessionstate`)."""
        return sessionstate.state_of(self.session)

    def save_session(self, path: str, on_saved: Callable[[str], None] | None = None):
        """Save the session to ``path``; ``on_saved(path)`` once the file is written (not when it failed)."""
        s = self.session

        def saved(p) -> None:
            self.host.notify(f"session saved: {p}")
            if on_saved is not None:
                on_saved(str(path))

        return self.host.runner.run("session", jobs.save_session_job, str(path), self.session_state(),
                                    s.explanation, s.mask, label=f"saving {Path(path).name}", on_return=saved)

    def open_session(self, path: str, on_opened: Callable[[str], None] | None = None):
        """Open a session file: its saved maps and settings are shown, nothing is recomputed.

        The file is read as data (``core.sessionfile.load_session``). The model it names is
        loaded only when loading it runs no code; otherwise :attr:`confirm_code` asks the user
        (default no), and on no the current model stays. ``on_opened(path)`` once it is on screen
        (a file that could not be read is one notification, and ``on_opened`` is not called).
        """
        def opened_(opened) -> None:
            self._on_session_opened(opened, Path(path).name)
            if on_opened is not None:
                on_opened(str(path))

        return self.host.runner.run("session", jobs.open_session_job, str(path), self.session.color_scale,
                                    label=f"opening {Path(path).name}", on_return=opened_)

    def confirm_code(self, what: str, where: str) -> bool:
        """May the model a session names be loaded although loading it runs ``what`` (e.g. "the
        architecture file evil.py (Python code, Net)")? ``where`` names the session file.

        No, unless replaced: the window sets this to a dialog that asks the user (default no).
        """
        return False

    def _on_session_opened(self, opened, name: str = "") -> None:
        data, rendered = opened.data, opened.rendered
        st = data.state  # every field checked by load_session: types and ranges hold
        s, host = self.session, self.host
        warnings = list(data.warnings)
        s.restoring = True  # restoring shows the saved maps; nothing runs the model
        try:
            host.runner.cancel("image")
            fields, notes = sessionstate.settings_from_state(st, has_maps=data.explanation is not None)
            warnings += notes
            s.shown_request = fields["image_request"]
            for field, value in fields.items():  # in the order the panels expect (class set before method)
                setattr(s, field, value)
            if data.explanation is not None:
                s.lens = data.explanation.lens
                if rendered is None or rendered.scale != s.color_scale:
                    rendered = jobs.render(data.explanation, s.color_scale)
                s.reset_mask()
                s.explanation = data.explanation
                s.rendered = rendered
                s.selected = min(st.get("selected", 0), data.explanation.k - 1)
                if data.mask is not None:
                    s.mask = data.mask
                    s.mask_result = sessionstate.mask_result_from_state(st.get("mask_result"), data.explanation,
                                                                        data.mask)
            s.stale = False
        finally:
            s.restoring = False
        self._read_session_image(warnings)
        for w in warnings:
            host.notify(w, "warning")
        inputs = len(st.get("inputs") or [])
        host.notify("session opened" + (f" ({inputs} input file(s))" if inputs else "") + "; nothing was recomputed")
        m = st.get("model")
        if m:
            req = ModelRequest(spec=m["spec"], arch=m["arch"], labels=m["labels"], device=m["device"],
                               torchscript=m["torchscript"], output=m["output"])
            if req != s.model_request or (s.model is None and not host.runner.busy("model")):
                # asked after the session is on screen, from the event loop: a dialog opened inside
                # this callback would run a nested event loop in the middle of the task's return
                QTimer.singleShot(0, lambda: self._session_model(req, opened.code, name))

    def _read_session_image(self, warnings: list[str]) -> None:
        """Read the session's image for the next run (nothing is recomputed now); only regular files."""
        from alens_gui.core.safeio import special_kind

        req = self.session.image_request
        if req.empty:
            return
        for p in ([req.path] if req.path else [t for t in req.tiles if Path(t).suffix]):
            kind = special_kind(p)
            if kind is not None:
                if not any(Path(p).name in w for w in warnings):
                    warnings.append(f"{Path(p).name}: the session's input is {kind}; it was not read")
                return
        self.host.read_image(explain=False)

    def _session_model(self, req: ModelRequest, code: str | None, name: str) -> None:
        """Load the model a session names: at once when that runs no code, else only on the user's yes."""
        s, host = self.session, self.host
        if code is None:
            s.model_request = req
            host.load_model(allow_code=False)  # (refused all the same if the file became a program since)
            return
        if self.confirm_code(code, name):
            s.model_request = req
            host.load_model(allow_code=True)
            return
        kept = getattr(s.model, "name", None) or s.model_request.spec
        host.notify(f"{name}: the session's model was not loaded (loading it would run {code}); "
                    f"the saved maps are shown and {kept} stays in use", "warning")
