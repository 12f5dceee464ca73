"""Background work: one superqt worker per task, cancellable, one typed channel back to the window.

A *slot* names a kind of work ("model", "explain", "mask", "export"). Starting a task in
a slot cancels the task already running there (a new request replaces the old one), so
a view never shows a stale result. Compute functions in the core take a
:class:`~alens_gui.core.progress.Progress`; cancelling a task calls ``Progress.cancel()``
(the computation stops at its next check, between backward passes for gradient
methods; a generator job also stops between two yields).

Everything a task says (progress, status lines, partial results, its value, its error, that
it stopped) travels as one of the typed messages of :mod:`.messages` on one queued signal,
in the order it was said, and becomes the task's :class:`~.messages.TaskState`.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QThreadPool, QTimer, Signal

from alens_gui.core.errors import AlensError
from alens_gui.core.errors import Cancelled as CancelledError
from alens_gui.core.progress import Progress

from . import messages as msg
from .messages import TaskState

if TYPE_CHECKING:  # superqt is imported at the first task: importing it costs ~80 ms before the window shows
    from superqt.utils import FunctionWorker


def readable_error(exc: BaseException) -> str:
    """One line a user can act on: the message of our errors, type + first line of others."""
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
    """A running piece of work: its worker, its progress/cancel object, its callbacks and its
    :class:`~.messages.TaskState` (what the window shows of it)."""

    id: int
    slot: str
    label: str
    progress: Progress
    worker: FunctionWorker | None = None
    on_yield: Callable | None = None
    on_return: Callable | None = None
    on_error: Callable | None = None
    done: bool = False
    cancelled: bool = False
    state: TaskState = field(default_factory=TaskState)

    def cancel(self) -> None:
        self.cancelled = True
        self.progress.cancel()


def _drive(post: Callable[[msg.Message], None], tid: int, progress: Progress, fn: Callable, args, kwargs) -> None:
    """Run job ``fn(progress, *args, **kwargs)`` in the worker thread, saying everything on ``post``.

    A generator job's yields become messages (:func:`~.messages.tagged`: ``("status", text)`` a
    :class:`~.messages.Status`, ``(kind, payload)`` a :class:`~.messages.Partial`), and between two
    yields a cancel stops it. The last message is :class:`~.messages.Done` with the job's value,
    :class:`~.messages.Cancelled`, or :class:`~.messages.Failed` with one readable line: whatever the
    job raised (SystemExit included: a model's code may call ``sys.exit``) ends here, so the task
    always ends and its error is never lost in the worker.
    """
    try:
        value = fn(progress, *args, **kwargs)
        if inspect.isgenerator(value):
            with contextlib.closing(value) as gen:
                try:
                    while True:
                        post(msg.tagged(tid, next(gen)))
                        progress.check()
                except StopIteration as stop:
                    value = stop.value
        post(msg.Cancelled(tid) if progress.cancelled else msg.Done(tid, value))
    except (Exception, SystemExit) as exc:
        if isinstance(exc, CancelledError) or progress.cancelled:
            post(msg.Cancelled(tid))
        else:
            post(msg.Failed(tid, readable_error(exc), exc))


class TaskRunner(QObject):
    """Starts tasks in the global ``QThreadPool`` (superqt workers) and reports on them.

    A task's worker says everything through one queued signal, :attr:`channel`, carrying the
    typed messages of :mod:`.messages`; on the GUI thread :meth:`_dispatch` folds each into the
    task's :class:`~.messages.TaskState`, calls the task's callbacks (``on_yield`` with each
    partial result as ``(kind, payload)``, then ``on_return`` or ``on_error``) and emits:

    Signals
    -------
    received(message)
        Every message, in the order the task sent it, on the GUI thread.
    state_changed(TaskState)
        A task's state after a message, its start or a cancel.
    started(slot, label)
    progress(slot, done, total, message)
    finished(slot, outcome)
        ``outcome`` is ``"done"``, ``"cancelled"`` or ``"error"``.
    error(slot, message)
        Every failure, as one readable line (the window shows it in its notification area).
    """

    #: The one channel from the workers (emitted in worker threads, queued to this object's thread).
    channel = Signal(object)
    received = Signal(object)
    state_changed = Signal(object)
    started = Signal(str, str)
    progress = Signal(str, float, float, str)
    finished = Signal(str, str)
    error = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        MainThreadCollector.install()
        self._ids = itertools.count(1)
        self._tasks: dict[str, Task] = {}
        self._live: dict[int, Task] = {}
        self.channel.connect(self._dispatch, Qt.ConnectionType.QueuedConnection)

    # -- public -------------------------------------------------------------------
    def run(
        self,
        slot: str,
        fn: Callable,
        *args,
        label: str = "",
        on_yield: Callable | None = None,
        on_return: Callable | None = None,
        on_error: Callable | None = None,
        **kwargs,
    ) -> Task:
        """Cancel the task in ``slot`` and start ``fn(progress, *args, **kwargs)`` (a function or a generator)."""
        self.cancel(slot)
        tid = next(self._ids)
        post = self.channel.emit
        progress = Progress(
            callback=lambda d, t, m, tid=tid: post(msg.Progress(tid, d, t, m)),
            on_partial=lambda payload, tid=tid: post(msg.tagged(tid, payload)),
            on_status=lambda text, tid=tid: post(msg.Status(tid, text)),
        )
        task = Task(tid, slot, label or slot, progress, on_yield=on_yield, on_return=on_return, on_error=on_error)
        task.state = TaskState(id=tid, slot=slot, label=task.label)
        from superqt.utils import create_worker

        task.worker = create_worker(_drive, post, tid, progress, fn, args, kwargs, _start_thread=False,
                                    _ignore_errors=True)
        task.worker.warned.connect(lambda _w: None)  # library warnings are not the user's business
        self._tasks[slot] = task
        self._live[tid] = task
        self.started.emit(slot, task.label)
        self.state_changed.emit(task.state)
        task.worker.start()
        return task

    def cancel(self, slot: str | None = None) -> None:
        """Cancel the task in ``slot`` (all tasks when ``None``); each ends with a ``Cancelled`` message."""
        tasks = list(self._live.values()) if slot is None else [t for t in self._live.values() if t.slot == slot]
        for t in tasks:
            if not t.done and not t.cancelled:
                t.cancel()
                t.state = replace(t.state, cancelled=True, message="cancelling…")
                self.state_changed.emit(t.state)

    def label(self, slot: str) -> str:
        """The label of the task last started in ``slot`` ("" when none)."""
        task = self._tasks.get(slot)
        return task.label if task is not None else ""

    def busy(self, slot: str | None = None) -> bool:
        """Whether any task (in ``slot``) is still running."""
        return any(slot is None or t.slot == slot for t in self._live.values())

    def active(self, slots: Sequence[str]) -> TaskState:
        """The state of the task started last among the running ones of ``slots`` (a task replaced
        by a newer one in its slot is left out); ``TaskState()`` (idle) when none runs."""
        live = [t for t in self._live.values() if t.slot in slots and self._tasks.get(t.slot) is t]
        return max(live, key=lambda t: t.id).state if live else TaskState()

    def shutdown(self, msecs: int = 30_000) -> bool:
        """Cancel everything and wait for the thread pool; True when it is empty."""
        self.cancel()
        return QThreadPool.globalInstance().waitForDone(msecs)

    # -- the channel (GUI thread) ----------------------------------------------------
    def _is_current(self, task: Task) -> bool:
        return self._tasks.get(task.slot) is task and not task.cancelled

    def _dispatch(self, m: msg.Message) -> None:
        task = self._live.get(m.task)
        if task is None:  # (a message after the task's end, e.g. from a thread the job started)
            return
        self.received.emit(m)
        if isinstance(m, msg.FINAL):
            self._end(task, m)
            return
        task.state = task.state.after(m)
        if isinstance(m, msg.Progress) and self._is_current(task):
            self.progress.emit(task.slot, m.done, m.total, task.state.message)
        elif isinstance(m, msg.Partial):
            self._call(task, task.on_yield, (m.kind, m.payload))
        self.state_changed.emit(task.state)

    def _call(self, task: Task, callback: Callable | None, value) -> bool:
        """``callback(value)`` if the task is current; a failing view update is one error line, not a dead task."""
        if not self._is_current(task) or callback is None:
            return True
        try:
            callback(value)
        except Exception as exc:
            self.error.emit(task.slot, f"{task.label}: {readable_error(exc)}")
            return False
        return True

    def _end(self, task: Task, m: msg.Message) -> None:
        """The task's last message: its callbacks, then ``state_changed`` and ``finished``."""
        was_current = self._is_current(task)
        outcome = "cancelled" if isinstance(m, msg.Cancelled) or task.cancelled else             "done" if isinstance(m, msg.Done) else "error"
        task.done = True
        self._live.pop(task.id, None)
        current = self._tasks.get(task.slot) is task
        if current:
            del self._tasks[task.slot]  # (slots may be one-off names: nothing is kept per slot)
        if outcome == "done" and was_current and task.on_return is not None:
            try:
                task.on_return(m.value)
            except Exception as exc:
                outcome = "error"
                self.error.emit(task.slot, f"{task.label}: {readable_error(exc)}")
        elif outcome == "error":
            if task.on_error is not None:
                try:
                    task.on_error(m.error)  # (it may start the next task in the slot, which then speaks instead)
                except Exception as again:  # a failing error handler must not hide the error
                    self.error.emit(task.slot, f"{task.label}: {readable_error(again)}")
            if current and task.slot not in self._tasks:
                self.error.emit(task.slot, f"{task.label}: {m.message}")
        task.state = replace(task.state.after(m), outcome=outcome, cancelled=outcome == "cancelled" or task.cancelled)
        self.state_changed.emit(task.state)
        if current or outcome == "cancelled":
            self.finished.emit(task.slot, outcome)
