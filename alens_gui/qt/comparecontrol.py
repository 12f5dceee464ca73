"""Comparison: pin an explanation, explain another image with its class set, and draw the two
with one lens and one colour scale (``session.pinned`` and ``session.pinned_rendered`` beside
``session.explanation`` and ``session.rendered``).

The :class:`CompareController` works for the window's controller (its ``host``): its task
runner, notifications, and its ``shown`` signal, after which a pair being opened
(:meth:`CompareController.open_pair`) pins the first image and opens the second.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject

from . import jobs
from .session import ClassRequest


class CompareController(QObject):
    """Pins, unpins and draws the comparison for ``host`` (the window's controller)."""

    def __init__(self, host) -> None:
        super().__init__(host)
        self.host = host
        self.session = host.session
        self._then: list[Callable[[], object]] = []  # what to do once the first image of a pair is shown
        host.shown.connect(self._on_shown)

    def pin(self) -> bool:
        """Keep the current explanation for comparison; the next runs use its class set."""
        s = self.session
        expl = s.explanation
        if expl is None or expl.partial:
            self.host.notify("explain an image first, then pin it to compare another one with it", "warning")
            return False
        s.pinned = expl
        s.class_request = ClassRequest(kind="picked", classes=tuple(int(c) for c in expl.classes))
        self.host.notify(f"pinned {s.image_request.label}: open another image to compare it with the same class "
                         "set, method, lens and colour scale")
        self.compare()
        return True

    def unpin(self) -> None:
        s = self.session
        s.pinned = None
        s.pinned_rendered = None
        if s.explanation is not None:
            self.host.redraw()

    def open_pair(self, open_first: Callable[[], object] | None, open_second: Callable[[], object]) -> None:
        """Open an image (``open_first``; None: the one on its way), and once it is shown pin it and
        open the second beside it (``open_second``)."""
        self.session.pinned = None
        self._then.append(lambda: self.pin() and open_second())
        if open_first is not None:
            open_first()

    def _on_shown(self, _expl, _computed: bool) -> None:
        then, self._then = self._then, []
        for step in then:
            step()

    def compare(self, current=None, pinned=None):
        """Draw the current and the pinned explanation with one lens and one colour scale."""
        s = self.session
        current = current or s.explanation
        pinned = pinned or s.pinned
        if current is None or pinned is None:
            return None
        return self.host.runner.run("compare", jobs.compare_job, current, pinned, s.lens, s.color_scale,
                                    label="comparison", on_return=lambda r, cur=current: self._on_compared(cur, r))

    def _on_compared(self, current, result) -> None:
        pinned, a, b = result
        s = self.session
        if current is not s.explanation or s.pinned is None:
            return
        s.pinned = pinned
        s.pinned_rendered = b
        s.rendered = a
