"""Background work: one superqt generator worker per slot, cancellable, errors to one place.

A *slot* names a kind of work ("model", "explain", "mask", "export"). Starting a task in
a slot cancels the task already running there (a new request replaces the old one), so
a view never shows a stale result. Compute functions in the core take a
:class:`~alens_gui.core.progress.Progress`; cancelling a task calls ``Progress.cancel()``
(the computation stops at its next check, between backward passes for gradient
methods) and asks the generator worker to quit between yields.
"""

from __future__ import annotations

import gc
import inspect
import itertools
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from alens_gui.core.errors import AlensError, Cancelled
from alens_gui.core.progress import Progress

if TYPE_CHECKING:  # superqt is imported at the first task: importing it costs ~80 ms before the window shows
    from superqt.utils import GeneratorWorker


class JobFailed(Exception):
    """Carries a job's exception from the worker thread to :class:`TaskRunner` (``.error``).

    superqt's worker treats a ``RuntimeError`` raised by a generator as "the worker was
    deleted": it only warns, and never emits ``errored`` or ``finished``, so the task would
    stay running for ever and its error would be lost. Every job therefore runs inside
    :func:`_guarded`, which re-raises whatever the job raised as this (not a RuntimeError).
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _guarded(fn: Callable[..., Generator], *args, **kwargs):
    """Run the generator job ``fn``, passing its yields and sends through; any exception it
    raises (SystemExit included: a model's code may call ``sys.exit``) comes out as :class:`JobFailed`."""
    try:
        return (yield from fn(*args, **kwargs))
    except GeneratorExit:
        raise
    except (Exception, SystemExit) as exc:
        raise JobFailed(exc) from exc


def readable_error(exc: BaseException) -> str:
    """One line a user can act on: the message of our errors, type + first line of others."""
    if isinstance(exc, JobFailed):
        exc = exc.error
    if isinstance(exc, AlensError):
        return str(exc)
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


class MainThreadCollector:
    """Python's cyclic garbage collection, run on the GUI thread only.

    Automatic collection runs in whichever thread happens to allocate. When that is a
    worker (a matplotlib export, a report) and the garbage holds wrappers of Qt objects
    from the GUI, Qt destroys those objects in the worker while the GUI thread is inside
    Qt too: the two wait on each other's locks and the program freezes (seen as a hang in
    the window tests). So while the GUI runs, automatic collection is off and a timer on
    the GUI thread collects by the same generation thresholds.
    """

    _instance: MainThreadCollector | None = None

    def __init__(self, interval_ms: int = 500) -> None:
        self.thresholds = gc.get_threshold()
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.collect)

    @classmethod
    def install(cls) -> MainThreadCollector:
        """Turn automatic collection off and start collecting on this (the GUI) thread."""
        if cls._instance is None:
            cls._instance = cls()
        gc.disable()
        cls._instance.timer.start()
        return cls._instance

    @classmethod
    def freeze(cls) -> None:
        """Leave everything alive now out of later collections (call once the model is loaded).

        With torch, a model and the GUI loaded, the heap holds about half a million objects
        and a full collection takes 0.2-0.4 s on the GUI thread, a stall the user feels.
        Frozen, the start-up objects are never scanned again (refcounting still frees them).
        """
        if cls._instance is not None:
            gc.collect(1)
            gc.freeze()

    @classmethod
    def release(cls) -> None:
        """Collect once here and give collection back to Python (tests, or after the GUI quits)."""
        if cls._instance is not None:
            cls._instance.timer.stop()
            gc.unfreeze()
            gc.collect()
        gc.enable()

    def collect(self) -> None:
        counts = gc.get_count()
        generation = -1
        for g in range(3):
            if counts[g] > self.thresholds[g]:
                generation = g
            else:
                break
        if generation >= 0:
            gc.collect(generation)


@dataclass
class Task:
    """A running piece of work: its worker, its progress/cancel object and its callbacks."""

    id: int
    slot: str
    label: str
    progress: Progress
    worker: GeneratorWorker | None = None
    on_yield: Callable | None = None
    on_return: Callable | None = None
    on_error: Callable | None = None
    done: bool = False
    cancelled: bool = False
    extra: dict = field(default_factory=dict)

    def cancel(self) -> None:
        self.cancelled = True
        self.progress.cancel()
        if self.worker is not None:
            self.worker.quit()


class TaskRunner(QObject):
    """Starts generator tasks in the global ``QThreadPool`` and reports on them.

    Signals
    -------
    started(slot, label)
    progress(slot, done, total, message)
    finished(slot, outcome)
        ``outcome`` is ``"done"``, ``"cancelled"`` or ``"error"``.
    error(slot, message)
        Every failure, as one readable line (the window shows it in its notification area).
    """

    started = Signal(str, str)
    progress = Signal(str, float, float, str)
    finished = Signal(str, str)
    error = Signal(str, str)
    # Emitted from worker threads by Progress callbacks; Qt queues it to this object's thread.
    _relay = Signal(int, float, float, str)
    # Intermediate results (Progress.partial) reach the task's on_yield as ("partial", payload).
    _partial_relay = Signal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        MainThreadCollector.install()
        self._ids = itertools.count(1)
        self._tasks: dict[str, Task] = {}
        self._live: dict[int, Task] = {}
        self._relay.connect(self._on_progress)
        self._partial_relay.connect(self._on_partial)

    # -- public -------------------------------------------------------------------
    def run(
        self,
        slot: str,
        fn: Callable[..., Generator],
        *args,
        label: str = "",
        on_yield: Callable | None = None,
        on_return: Callable | None = None,
        on_error: Callable | None = None,
        **kwargs,
    ) -> Task:
        """Cancel the task in ``slot`` and start ``fn(progress, *args, **kwargs)`` (a generator)."""
        self.cancel(slot)
        tid = next(self._ids)
        progress = Progress(
            callback=lambda d, t, m, tid=tid: self._relay.emit(tid, d, t, m),
            on_partial=lambda payload, tid=tid: self._partial_relay.emit(tid, payload),
        )
        if not inspect.isgeneratorfunction(fn):
            raise TypeError("TaskRunner.run needs a generator function")
        task = Task(tid, slot, label or slot, progress, on_yield=on_yield, on_return=on_return, on_error=on_error)
        from superqt.utils import create_worker

        worker = create_worker(_guarded, fn, progress, *args, _start_thread=False, _ignore_errors=True, **kwargs)
        task.worker = worker
        worker.yielded.connect(lambda value, task=task: self._on_yield(task, value))
        worker.returned.connect(lambda value, task=task: self._on_return(task, value))
        worker.errored.connect(lambda exc, task=task: self._on_error(task, exc))
        worker.aborted.connect(lambda task=task: self._on_aborted(task))
        worker.warned.connect(lambda _w: None)  # library warnings are not the user's business
        worker.finished.connect(lambda task=task: self._on_finished(task))
        self._tasks[slot] = task
        self._live[tid] = task
        self.started.emit(slot, task.label)
        worker.start()
        return task

    def cancel(self, slot: str | None = None) -> None:
        """Cancel the task in ``slot`` (all tasks when ``None``)."""
        tasks = list(self._live.values()) if slot is None else [t for t in self._live.values() if t.slot == slot]
        for t in tasks:
            if not t.done:
                t.cancel()

    def label(self, slot: str) -> str:
        """The label of the task last started in ``slot`` ("" when none)."""
        task = self._tasks.get(slot)
        return task.label if task is not None else ""

    def busy(self, slot: str | None = None) -> bool:
        """Whether any task (in ``slot``) is still running."""
        return any(slot is None or t.slot == slot for t in self._live.values())

    def shutdown(self, msecs: int = 30_000) -> bool:
        """Cancel everything and wait for the thread pool; True when it is empty."""
        self.cancel()
        return QThreadPool.globalInstance().waitForDone(msecs)

    # -- worker callbacks (GUI thread) ---------------------------------------------
    def _is_current(self, task: Task) -> bool:
        return self._tasks.get(task.slot) is task and not task.cancelled

    def _on_progress(self, tid: int, done: float, total: float, message: str) -> None:
        task = self._live.get(tid)
        if task is not None and self._is_current(task):
            self.progress.emit(task.slot, done, total, message)

    def _on_partial(self, tid: int, payload) -> None:
        task = self._live.get(tid)
        if task is not None:
            self._on_yield(task, ("partial", payload))

    def _on_yield(self, task: Task, value) -> None:
        if self._is_current(task) and task.on_yield is not None:
            try:
                task.on_yield(value)
            except Exception as exc:  # a failing view update must not kill the task silently
                self.error.emit(task.slot, f"{task.label}: {readable_error(exc)}")

    def _on_return(self, task: Task, value) -> None:
        if not self._is_current(task):
            return
        task.extra["outcome"] = "done"
        if task.on_return is not None:
            try:
                task.on_return(value)
            except Exception as exc:
                task.extra["outcome"] = "error"
                self.error.emit(task.slot, f"{task.label}: {readable_error(exc)}")

    def _on_error(self, task: Task, exc: BaseException) -> None:
        if isinstance(exc, JobFailed):
            exc = exc.error
        if isinstance(exc, Cancelled) or task.cancelled:
            task.extra["outcome"] = "cancelled"
            return
        task.extra["outcome"] = "error"
        if task.on_error is not None:
            try:
                task.on_error(exc)  # (it may start the next task in the slot, which then speaks instead)
            except Exception as again:  # a failing error handler must not hide the error
                self.error.emit(task.slot, f"{task.label}: {readable_error(again)}")
        if self._tasks.get(task.slot) is task:
            self.error.emit(task.slot, f"{task.label}: {readable_error(exc)}")

    def _on_aborted(self, task: Task) -> None:
        task.extra["outcome"] = "cancelled"

    def _on_finished(self, task: Task) -> None:
        task.done = True
        self._live.pop(task.id, None)
        outcome = task.extra.get("outcome", "cancelled" if task.cancelled else "done")
        current = self._tasks.get(task.slot) is task
        if current:
            del self._tasks[task.slot]  # (slots may be one-off names: nothing is kept per slot)
        if current or outcome == "cancelled":
            self.finished.emit(task.slot, outcome)
