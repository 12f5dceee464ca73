"""A small progress/cancel object that compute functions accept.

Compute functions in :mod:`alens_gui.core` know nothing of Qt or of terminals: they
call ``progress.advance()`` / ``progress.check()`` and the front end (a tqdm bar, a Qt
worker) decides what to do with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import Cancelled

ProgressCallback = Callable[[float, float, str], None]
PartialCallback = Callable[[object], None]


class Progress:
    """Progress reporting and cooperative cancellation.

    Parameters
    ----------
    callback : callable, optional
        Called as ``callback(done, total, message)`` whenever progress is made.
    total : float
        Total amount of work, in arbitrary units (set or grown by :meth:`add_total`).
    on_partial : callable, optional
        Receives intermediate results (:meth:`partial`), e.g. the running estimate of
        Integrated Gradients after each batch of steps, so a viewer can show it early.
    on_status : callable, optional
        Receives each line of :meth:`status` (what is being done now, in words).

    Notes
    -----
    ``cancel()`` may be called from any thread; the computing thread notices it at its
    next :meth:`check` (gradient methods check between backward passes and between
    batches, so a cancel takes effect well within a second).
    """

    def __init__(
        self, callback: ProgressCallback | None = None, total: float = 0.0, on_partial: PartialCallback | None = None,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        self._callback = callback
        self.on_partial = on_partial
        self.on_status = on_status
        self.total = float(total)
        self.done = 0.0
        self.message = ""
        self._cancel = threading.Event()
        self._lock = threading.Lock()

    # -- cancellation -------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the computation to stop at its next check."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`~alens_gui.core.errors.Cancelled` if a cancel was requested."""
        if self._cancel.is_set():
            raise Cancelled()

    # -- progress -----------------------------------------------------------------
    def add_total(self, amount: float) -> None:
        with self._lock:
            self.total += float(amount)

    def advance(self, amount: float = 1.0, message: str | None = None) -> None:
        """Record ``amount`` units of finished work, then check for cancellation."""
        with self._lock:
            self.done += float(amount)
            if message is not None:
                self.message = message
            done, total, msg = self.done, self.total, self.message
        if self._callback is not None:
            self._callback(done, total, msg)
        self.check()

    def status(self, text: str) -> None:
        """Say what is being done now (one line for a status bar) to ``on_status``, then check for cancel.
        The line stays the :attr:`message` of later progress until another replaces it."""
        with self._lock:
            self.message = text
        if self.on_status is not None:
            self.on_status(text)
        self.check()

    def partial(self, payload) -> None:
        """Hand an intermediate result to ``on_partial`` (if any), then check for cancel."""
        if self.on_partial is not None:
            self.on_partial(payload)
        self.check()


def ensure_progress(progress: Progress | None) -> Progress:
    """Return ``progress`` or a silent one, so compute code never tests for ``None``."""
    return progress if progress is not None else Progress()
