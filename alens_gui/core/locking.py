"""One lock per model: two computations must not run the same module at once.

Methods hook a model's layers (Grad-CAM keeps the activation a hook saw, Guided Backprop
rewrites every ReLU's gradient), so a second thread's pass through the same module
would see, or spoil, the first one's hooks. :func:`~.methods.base.compute_base` holds
the lock for the whole method; front ends hold it around anything else they run on the
model (a masking run, a tile classification). The lock is re-entrant (a thread that holds
it may take it again), and waiting for it can be cancelled through a
:class:`~.progress.Progress`. Torch-free, so the GUI can import it at start-up.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator

from .progress import Progress

_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def model_lock(model) -> threading.RLock:
    """The lock of ``model`` (created on first use, dropped with the model)."""
    with _GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@contextlib.contextmanager
def using_model(model, progress: Progress | None = None, poll: float = 0.05) -> Iterator[None]:
    """Hold ``model``'s lock for the body; while waiting for it, ``progress`` can cancel.

    Raises
    ------
    Cancelled
        When ``progress`` is cancelled before the lock is free.
    """
    lock = model_lock(model)
    while not lock.acquire(timeout=poll):
        if progress is not None:
            progress.check()
    try:
        yield
    finally:
        lock.release()
