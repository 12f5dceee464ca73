"""A task's progress, partial results and end reach the window as typed messages through one
channel, in order; the status bar, its progress bar and Cancel and the gallery's progress read one
task state (issue 16, the seams: "one task-state object and one queued channel")."""

from __future__ import annotations

import threading

from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication

from alens_gui.qt.controller import VISIBLE_SLOTS
from alens_gui.qt.messages import FINAL, Cancelled, Done, Failed, Partial, Progress, Status, TaskState

from .conftest import wait_idle
from .test_gallery import labelled_folder  # noqa: F401 - a fixture
from .test_window import LONG, chelsea_png, set_method  # noqa: F401 - chelsea_png: a fixture


def record(runner):
    """Every message the runner dispatches, and whether each was dispatched on the GUI thread."""
    seen, on_gui = [], []
    gui = QApplication.instance().thread()

    def take(m):
        seen.append(m)
        on_gui.append(QThread.currentThread() is gui)

    runner.received.connect(take)
    return seen, on_gui


def test_an_ig_run_reaches_the_window_as_typed_messages_in_order(make_window, qtbot):
    win = make_window()
    wait_idle(qtbot, win)
    runner = win.controller.runner
    seen, on_gui = record(runner)
    set_method(win, "ig", steps=32, batch_size=8)  # 4 batches: 3 running estimates, then the result
    task = win.run()
    wait_idle(qtbot, win)
    assert not win.notifications.errors(), win.notifications.errors()
    mine = [m for m in seen if m.task == task.id]
    assert all(on_gui) and len(mine) == len(seen)  # nothing else ran; all of it on the GUI thread
    assert isinstance(mine[0], Status) and mine[0].text == "running the model…"
    assert sum(isinstance(m, FINAL) for m in mine) == 1 and isinstance(mine[-1], Done)
    kinds = [m.kind for m in mine if isinstance(m, Partial)]
    assert kinds == ["classes", "estimate", "estimate", "estimate"], kinds
    expl = win.session.explanation
    assert mine[-1].value[0] is expl and not expl.partial
    classes = next(m for m in mine if isinstance(m, Partial) and m.kind == "classes").payload[0]
    assert classes == [int(c) for c in expl.classes]
    estimates = [m.payload[0] for m in mine if isinstance(m, Partial) and m.kind == "estimate"]
    assert all(e.partial and e.classes.tolist() == expl.classes.tolist() for e in estimates)
    steps = [m for m in mine if isinstance(m, Progress)]
    assert [m.done for m in steps] == sorted(m.done for m in steps) and steps[-1].done == steps[-1].total > 0
    # progress arrives between the estimates (after each batch), not all before or after them
    first_estimate = next(i for i, m in enumerate(mine) if isinstance(m, Partial) and m.kind == "estimate")
    assert any(isinstance(m, Progress) for m in mine[:first_estimate])
    assert any(isinstance(m, Progress) for m in mine[first_estimate:-1])
    assert task.state.finished and task.state.outcome == "done" and task.state.done == steps[-1].done
    assert "explaining " + str(classes[0]) in next(m.text for m in steps if m.text.startswith("explaining"))
    assert win.session.activity == TaskState() and not win.session.activity.busy


def test_the_status_bar_reads_the_running_task_state(make_window, qtbot):
    """At every change of a task's state the status bar, its progress bar and Cancel show that state."""
    win = make_window()
    wait_idle(qtbot, win)
    runner, s = win.controller.runner, win.session
    checked = []

    def check(state):  # (connected after the controller: it has taken the state in already)
        if state.slot not in VISIBLE_SLOTS:
            return
        shown = runner.active(VISIBLE_SLOTS)
        assert s.activity == shown
        assert win.cancel_button.isEnabled() == shown.busy
        if shown.busy:
            assert win.status_text.text() == shown.label + "…"
            if shown.fraction is not None:
                assert win.progress_bar.value() == int(1000 * shown.fraction)
        checked.append(shown)

    runner.state_changed.connect(check)
    set_method(win, "ig", steps=48, batch_size=8)
    task = win.run()
    wait_idle(qtbot, win)
    runner.state_changed.disconnect(check)
    during = [st for st in checked if st.id == task.id]
    assert len(during) >= 6 and during[0].done == 0 and during[-1].done == during[-1].total > 0
    assert any(0 < (st.fraction or 0) < 1 for st in during)  # the bar moved while the run was under way
    assert checked[-1] == TaskState() and not win.progress_bar.isVisible() and not win.cancel_button.isEnabled()


def test_the_gallery_progress_reads_the_folder_task_state(make_window, qtbot, labelled_folder):  # noqa: F811
    win = make_window()
    wait_idle(qtbot, win)
    runner, s, view = win.controller.runner, win.session, win.gallery
    seen = []

    def check(state):
        if state.slot != "folder":
            return
        shown = runner.active(("folder",))
        assert s.gallery_activity == shown
        assert view.cancel_button.isVisibleTo(view) == shown.busy
        if shown.busy:
            assert view.task_label.text() == shown.label + "…" + (f"  {shown.message}" if shown.message else "")
        seen.append(shown)

    runner.state_changed.connect(check)
    win.open_folder(labelled_folder, recursive=True)  # listing, then classifying the five images
    qtbot.waitUntil(lambda: not runner.busy("folder") and all(r.pred is not None for r in s.gallery.rows),
                    timeout=LONG)
    runner.state_changed.disconnect(check)
    labels = [st.label for st in seen if st.busy]
    assert any(lb.startswith("listing") for lb in labels) and "classifying 5 images" in labels
    assert any(st.message == "classified 3 of 5" for st in seen)
    assert s.gallery_activity == TaskState() and not view.progress.isVisibleTo(view)


def test_cancel_mid_run_ends_in_cancelled_and_the_activity_goes_idle(make_window, qtbot):
    win = make_window()
    wait_idle(qtbot, win)
    first = win.session.explanation
    runner = win.controller.runner
    seen, _ = record(runner)
    set_method(win, "ig", steps=1000, batch_size=8)  # (minutes: stopped long before the end)
    task = win.run()
    qtbot.waitUntil(lambda: any(isinstance(m, Partial) and m.kind == "estimate" for m in seen), timeout=LONG)
    assert win.session.activity.busy and win.session.activity.id == task.id and win.cancel_button.isEnabled()
    win.cancel_button.click()
    assert task.state.cancelled and task.state.message == "cancelling…"
    wait_idle(qtbot, win)
    mine = [m for m in seen if m.task == task.id]
    assert isinstance(mine[-1], Cancelled) and not any(isinstance(m, (Done, Failed)) for m in mine)
    assert task.state.finished and task.state.outcome == "cancelled"
    assert win.session.activity == TaskState() and not win.progress_bar.isVisible()
    assert win.session.estimate is None and win.session.explanation is first
    assert not win.notifications.errors()


def test_plain_and_generator_jobs_end_in_one_final_message(qtbot):
    """A job may be a plain function (it reports through its progress) or a generator; either
    ends in exactly one Done or Failed, after everything it said."""
    from alens_gui.core.errors import MethodError
    from alens_gui.qt.tasks import TaskRunner

    runner = TaskRunner()
    seen, on_gui = record(runner)
    worker_threads = set()

    def plain(progress, n):
        worker_threads.add(threading.get_ident())
        progress.add_total(n)
        for i in range(n):
            progress.advance(1, f"step {i + 1}")
        progress.partial(("half", n // 2))
        return n * 10

    def failing(progress):
        yield ("status", "about to fail")
        raise MethodError("option steps must be >= 1; got 0")

    results, errors = [], []
    runner.error.connect(lambda _slot, text: errors.append(text))
    a = runner.run("a", plain, 3, on_return=results.append)
    b = runner.run("b", failing, label="IG")
    qtbot.waitUntil(lambda: not runner.busy(), timeout=10_000)
    assert all(on_gui) and threading.get_ident() not in worker_threads
    said_a = [m for m in seen if m.task == a.id]
    assert said_a == [Progress(a.id, 1, 3, "step 1"), Progress(a.id, 2, 3, "step 2"), Progress(a.id, 3, 3, "step 3"),
                      Partial(a.id, "half"), Done(a.id)]
    assert said_a[-2].payload == 1 and said_a[-1].value == 30 and results == [30]
    said_b = [m for m in seen if m.task == b.id]
    assert said_b == [Status(b.id, "about to fail"), Failed(b.id, "option steps must be >= 1; got 0")]
    assert errors == ["IG: option steps must be >= 1; got 0"]
    assert a.state.outcome == "done" and a.state.message == "step 3" and b.state.outcome == "error"


def spy_on_explain_job(monkeypatch):
    """The settings each explain run is given (the real job runs with them)."""
    from alens_gui.qt import jobs

    got, real = [], jobs.explain_job

    def recorded(progress, loaded, image, settings, scale):
        got.append(settings)
        return real(progress, loaded, image, settings, scale)

    monkeypatch.setattr(jobs, "explain_job", recorded)
    return got


def test_explain_gets_the_run_settings_of_the_session(make_window, qtbot, monkeypatch, chelsea_png):  # noqa: F811
    from alens_gui.core.lensparams import preset
    from alens_gui.core.settings import ClassSet, RunSettings
    from alens_gui.qt.session import ClassRequest, ImageRequest
    from alens_gui.qt.sessionstate import run_settings

    got = spy_on_explain_job(monkeypatch)
    win = make_window()
    s, c = win.session, win.controller
    s.image_request = ImageRequest(path=str(chelsea_png))
    wait_idle(qtbot, win)
    s.class_request = ClassRequest(kind="picked", classes=(285, 281, 967))
    s.lens = preset("var")
    s.window = "full"
    wait_idle(qtbot, win)
    s.input_policy = "pad"
    set_method(win, "ig", steps=8, batch_size=8)
    assert win.run() is not None
    wait_idle(qtbot, win)
    assert not win.notifications.errors(), win.notifications.errors()
    method, options = c.check_settings()
    assert got == [run_settings(s, method, options, current_image=True)]
    given = got[0]
    assert given == RunSettings("ig", options, ClassSet.picked([285, 281, 967]), preset("var"), "full", None, "pad")
    assert given.option_dict["steps"] == 8
    expl = s.explanation  # and the run followed them
    assert expl.method == "ig" and expl.classes.tolist() == [285, 281, 967] and expl.lens == preset("var")
    assert expl.method_options["steps"] == 8 and expl.geometry.policy == "pad"


def test_a_grid_finds_its_tile_classes_before_its_run(make_window, qtbot, monkeypatch):
    """A grid's class set is found by a small job first and kept in the class request; the run
    gets it as a plain 'tiles' class set and a stretched input (a grid is made at the input size)."""
    from alens_gui.core.images import GRID_CLASSES, GRID_PHOTOS
    from alens_gui.qt.session import ImageRequest
    from alens_gui.qt.sessionstate import run_settings

    got = spy_on_explain_job(monkeypatch)
    win = make_window()
    s, c = win.session, win.controller
    wait_idle(qtbot, win)
    labels = []
    c.runner.started.connect(lambda _slot, label: labels.append(label))
    c.autorun = True
    s.image_request = ImageRequest(tiles=GRID_PHOTOS)
    wait_idle(qtbot, win)
    assert not win.notifications.errors(), win.notifications.errors()
    assert labels[0].startswith("reading") and labels[1:] == ["classifying the grid's tiles", f"gradcam on {s.image_request.label}"], labels
    assert s.class_request.kind == "tiles" and s.class_request.classes == GRID_CLASSES
    method, options = c.check_settings()
    assert got == [run_settings(s, method, options, current_image=True)]
    assert got[0].classes.kind == "tiles" and got[0].classes.classes == GRID_CLASSES and got[0].resize == "stretch"
    assert s.explanation.classes.tolist() == list(GRID_CLASSES)
    # a folder's images take the top-k the request stands for, under the session's own policy
    folder = run_settings(s, method, options)
    assert folder.classes.kind == "topk" and folder.resize == s.input_policy == "model"
    s.input_policy = "pad"  # another input policy classifies the tiles again at the next run
    assert s.class_request.kind == "tiles" and s.class_request.classes == ()


def test_a_task_state_follows_its_messages():
    st = TaskState(id=7, slot="explain", label="ig on chelsea")
    assert st.busy and st.fraction is None and not TaskState().busy
    st = st.after(Status(7, "running the model…")).after(Progress(7, 1, 4, ""))
    assert (st.done, st.total, st.message, st.fraction) == (1, 4, "running the model…", 0.25)
    st = st.after(Progress(7, 2, 4, "explaining 285 Egyptian cat"))
    assert st.message == "explaining 285 Egyptian cat" and st.busy
    stopping = TaskState(**{**st.__dict__, "cancelled": True, "message": "cancelling…"})
    assert stopping.after(Progress(7, 3, 4, "batch 3")).message == "cancelling…"
    assert stopping.after(Status(7, "drawing…")).message == "cancelling…"
    ended = stopping.after(Cancelled(7))
    assert ended.finished and ended.outcome == "cancelled" and not ended.busy
    failed = st.after(Failed(7, "out of memory"))
    assert failed.outcome == "error" and failed.message == "out of memory" and not failed.busy
    assert st.after(Done(7, object())).outcome == "done"
