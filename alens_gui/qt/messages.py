"""What a background task tells the window, as small typed messages, and the one state a task is in.

A job running in a worker thread speaks through one channel (the task runner's queued
``channel`` signal) with these frozen messages, each naming its task by id:

* :class:`Progress` ``(task, done, total, text)``: work done of the total (``text`` "" keeps the last line);
* :class:`Status` ``(task, text)``: what the task does now, in words;
* :class:`Partial` ``(task, kind, payload)``: an intermediate result, e.g. ``"classes"`` (the class
  set, as soon as the forward pass chose it), ``"estimate"`` (a running IG / SmoothGrad estimate),
  ``"row"`` (one image of a folder done);
* and one last message: :class:`Done` ``(task, value)``, :class:`Failed` ``(task, message)`` or
  :class:`Cancelled` ``(task)``.

On the GUI thread the runner folds them into one :class:`TaskState` per task; the status bar,
its progress bar and Cancel, the gallery's progress and the Cohort dock's all read task states
(``Session.activity``, ``Session.gallery_activity`` and ``Session.cohort_activity`` are task states). Nothing here imports Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Message:
    """Something task ``task`` (its id) says."""

    task: int


@dataclass(frozen=True)
class Progress(Message):
    done: float
    total: float
    text: str = ""


@dataclass(frozen=True)
class Status(Message):
    text: str


@dataclass(frozen=True)
class Partial(Message):
    kind: str
    payload: object = field(default=None, compare=False)


@dataclass(frozen=True)
class Done(Message):
    value: object = field(default=None, compare=False)


@dataclass(frozen=True)
class Failed(Message):
    message: str
    #: The exception itself (for the task's ``on_error``); the one line a user reads is ``message``.
    error: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Cancelled(Message):
    pass


#: The messages that end a task.
FINAL = (Done, Failed, Cancelled)


def tagged(task: int, item) -> Message:
    """A job's ``(kind, payload)`` as a message: ``("status", text)`` is a :class:`Status`, any other
    tagged pair a :class:`Partial` of that kind, anything else a :class:`Partial` of kind ``"value"``."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        kind, payload = item
        return Status(task, str(payload)) if kind == "status" else Partial(task, kind, payload)
    return Partial(task, "value", item)


@dataclass(frozen=True)
class TaskState:
    """One task as the window sees it: which (``id``, ``slot``, ``label``), how far (``done`` of
    ``total``), its last line (``message``), whether a cancel was asked (``cancelled``) and whether
    it ended (``finished``, with ``outcome`` ``"done"``, ``"cancelled"`` or ``"error"``).

    ``TaskState()`` is the idle state: no task, nothing to show.
    """

    id: int = 0
    slot: str = ""
    label: str = ""
    done: float = 0.0
    total: float = 0.0
    message: str = ""
    cancelled: bool = False
    finished: bool = False
    outcome: str = ""

    @property
    def busy(self) -> bool:
        """A task is running (a cancelled one too, until it has stopped)."""
        return bool(self.label) and not self.finished

    @property
    def fraction(self) -> float | None:
        """``done / total`` in [0, 1], or None while the total is unknown."""
        return min(1.0, self.done / self.total) if self.total > 0 else None

    def after(self, msg: Message) -> TaskState:
        """This state once ``msg`` is taken in (a cancelled task keeps saying it is cancelling)."""
        if isinstance(msg, Progress):
            text = self.message if self.cancelled else msg.text or self.message
            return replace(self, done=msg.done, total=msg.total, message=text)
        if isinstance(msg, Status):
            return self if self.cancelled else replace(self, message=msg.text)
        if isinstance(msg, Done):
            return replace(self, finished=True, outcome="done")
        if isinstance(msg, Failed):
            return replace(self, finished=True, outcome="error", message=msg.message)
        if isinstance(msg, Cancelled):
            return replace(self, finished=True, outcome="cancelled", cancelled=True)
        return self
