"""The Cohort view beside the gallery: strategies per class from the gallery's folder, computed in the
background with progress and cancel, kept per settings; the embedding opens an image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from .conftest import wait_idle
from .test_window import ForwardCounter


def save(img, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.asarray(img) * 255).round().astype(np.uint8)).save(path)
    return path


@pytest.fixture
def folder(tmp_path, photos):
    root = tmp_path / "cases"
    save(photos["chelsea"], root / "Egyptian cat" / "cat1.png")
    save(photos["chelsea"][:, 60:400], root / "Egyptian cat" / "cat2.png")
    save(photos["chelsea"][40:, :360], root / "Egyptian cat" / "cat3.png")
    save(photos["coffee"], root / "espresso" / "cup1.png")
    save(photos["coffee"][50:350, 100:500], root / "espresso" / "cup2.png")
    save(photos["coffee"][:, 80:], root / "espresso" / "cup3.png")
    return root


def test_cohort_view_finds_strategies_keeps_them_and_opens_an_image(make_window, qtbot, folder, explainer):
    from alens_gui.qt.cohortcontrol import COHORT_SLOT
    from alens_gui.qt.messages import TaskState

    win = make_window()
    wait_idle(qtbot, win)
    view, s, runner = win.cohort, win.session, win.controller.runner
    view.compute_button.click()  # no folder yet: said, nothing runs
    assert "open a folder" in view.status.text() and not runner.busy(COHORT_SLOT)
    win.open_folder(folder, recursive=True)
    wait_idle(qtbot, win)
    s.method = "gradcam"
    win.cohort_dock.show()
    # the dock's Find strategies and Cancel follow the cohort task's state, and so does its progress line
    states = []
    s.cohort_activity_changed.connect(states.append)
    view.compute_button.click()
    assert s.cohort_activity == runner.active((COHORT_SLOT,)) and s.cohort_activity.busy
    assert s.cohort_activity.slot == COHORT_SLOT and s.cohort_activity.label == "cohort of 6 images"
    assert view.cancel_button.isEnabled() and not view.compute_button.isEnabled()
    view.cancel_button.click()
    assert s.cohort_activity.cancelled and s.cohort_activity.busy  # cancelling: no second Cancel, no new run
    assert not view.cancel_button.isEnabled() and not view.compute_button.isEnabled()
    wait_idle(qtbot, win)
    assert s.cohort_activity == TaskState() and states[-1] == TaskState()
    assert view.cohort is None and s.cohort is None and view.compute_button.isEnabled()
    assert "cancelled" in view.status.text() and not view.cancel_button.isEnabled()
    # the real run: its progress reaches the dock as task states (done of total)
    states.clear()
    view.compute_button.click()
    assert runner.busy(COHORT_SLOT)
    wait_idle(qtbot, win)
    counted = [st for st in states if st.total > 0]
    assert counted and all(st.slot == COHORT_SLOT for st in counted)
    assert max(st.done for st in counted) >= 1 and s.cohort_activity == TaskState()
    cohort = view.cohort
    assert cohort is not None and cohort is s.cohort and len(cohort.items) == 6 and not cohort.failures
    assert view.status.text() == s.cohort_status and s.cohort_status.startswith("6 images")
    assert view.class_combo.count() == len(cohort.classes) >= 2
    cc, cl = view.current()
    assert view.table.rowCount() == len(cl.strategies) >= 1
    assert sum(len(st.members) for st in cl.strategies) == len(cc.members)
    assert len(view.scatter.points()) == len(cc.members)
    assert view.territory.pixmap() is not None and not view.territory.pixmap().isNull()
    # base maps beside: the same members, their own strategies
    view.base_box.setChecked(True)
    cc_b, cl_b = view.current()
    assert cl_b is cc.base and view.table.rowCount() == len(cl_b.strategies)
    view.base_box.setChecked(False)
    # the user's choice of a class shows it; refilling the list (the cohort again) shows the class once
    shown, real = [], view.show_class
    view.show_class = lambda: (shown.append(view.class_combo.currentData()), real())
    view.class_combo.setCurrentIndex(1)
    view.class_combo.activated.emit(1)
    assert shown == [view.class_combo.itemData(1)] and view.current()[0] is cohort.classes[shown[0]]
    view._set_cohort(cohort)
    assert shown == [view.class_combo.itemData(1)] * 2 and view.class_combo.currentIndex() == 1
    del view.show_class
    # kept: the same request again shows it at once, with no model run and no task
    with ForwardCounter(explainer.model) as counter:
        view.compute_button.click()
        assert not runner.busy(COHORT_SLOT)
        assert counter.calls == 0
    assert view.cohort is cohort
    # hover shows the image and its map; a click opens it in the analysis view
    point = view.scatter.points()[0]
    view._hovered(None, [point])
    assert view.hover.pixmap() is not None and not view.hover.pixmap().isNull()
    path = cohort.items[cc.members[int(point.data())]].path
    view._clicked(None, [point])
    wait_idle(qtbot, win)
    assert s.image_request.path == path
    # another grouping (predicted) is a new cohort, read from the result cache: no model run
    view.by_combo.setCurrentIndex(view.by_combo.findData("predicted"))
    with ForwardCounter(explainer.model) as counter:
        view.compute_button.click()
        assert runner.busy(COHORT_SLOT)
        wait_idle(qtbot, win)
        assert counter.calls == 0
    assert view.cohort is not cohort and view.cohort.by == "predicted"
    # and the first grouping again is the kept cohort, drawn again
    view.by_combo.setCurrentIndex(view.by_combo.findData("classset"))
    view.compute_button.click()
    assert not runner.busy(COHORT_SLOT) and view.cohort is cohort and view.class_combo.count() == len(cohort.classes)


def test_the_cohort_docks_progress_and_cancel_read_its_task_state(make_window, qtbot):
    """The dock draws whatever task state the session holds: a progress line, Cancel only while a
    task runs and is not being cancelled, Find strategies only while none runs."""
    from alens_gui.qt.messages import TaskState

    win = make_window()
    wait_idle(qtbot, win)
    view, s = win.cohort, win.session
    s.cohort_status = "3 images, 2 classes"
    s.cohort_activity = TaskState(id=7, slot="cohort", label="cohort of 9 images", done=2, total=9,
                                  message="explaining")
    assert view.status.text() == "explaining (2 of 9)"
    assert view.cancel_button.isEnabled() and not view.compute_button.isEnabled()
    s.cohort_activity = TaskState(id=7, slot="cohort", label="cohort of 9 images", done=2, total=9,
                                  message="cancelling…", cancelled=True)
    assert view.status.text().startswith("cancelling…") and not view.cancel_button.isEnabled()
    assert not view.compute_button.isEnabled()
    s.cohort_activity = TaskState()
    assert view.status.text() == "3 images, 2 classes"
    assert view.compute_button.isEnabled() and not view.cancel_button.isEnabled()


def test_a_cancelled_cohort_run_ends_through_its_task_state(make_window, qtbot, folder):
    """The controller's Cancel stops the task in the cohort slot; the task's state says cancelled,
    the session's cohort activity goes idle and the cohort shown stays."""
    from alens_gui.qt.cohortcontrol import COHORT_SLOT
    from alens_gui.qt.messages import TaskState

    win = make_window()
    wait_idle(qtbot, win)
    win.open_folder(folder, recursive=True)
    wait_idle(qtbot, win)
    c, s = win.controller, win.session
    ended = []
    c.runner.state_changed.connect(lambda st: ended.append(st) if st.slot == COHORT_SLOT and st.finished else None)
    task = c.cohort.compute("classset", 0, "")
    assert task is not None and s.cohort_activity.id == task.id
    c.cohort.cancel()
    wait_idle(qtbot, win)
    assert [st.id for st in ended] == [task.id] and ended[0].outcome == "cancelled" and ended[0].cancelled
    assert s.cohort_activity == TaskState() and s.cohort is None and s.cohort_status.startswith("cancelled")
    # a second request replaces a running one: only the last one's end speaks
    first = c.cohort.compute("classset", 0, "")
    second = c.cohort.compute("label", 0, "")
    assert first.cancelled and s.cohort_activity.id == second.id
    wait_idle(qtbot, win)
    assert s.cohort is not None and s.cohort_status.startswith("6 images")
    assert {st.id: st.outcome for st in ended if st.id != task.id} == {first.id: "cancelled", second.id: "done"}


def test_cohort_view_compares_two_label_groups(make_window, qtbot, folder):
    win = make_window()
    wait_idle(qtbot, win)
    win.open_folder(folder, recursive=True)
    wait_idle(qtbot, win)
    from alens_gui.qt.session import ClassRequest

    # one class set for every image (Egyptian cat, espresso): each class has both groups
    win.session.class_request = ClassRequest(kind="picked", classes=(285, 967))
    view = win.cohort
    view.groups_edit.setText("Egyptian cat,teapot")
    view.compute_button.click()
    assert not win.controller.runner.busy("cohort") and "no sub-folder 'teapot'" in view.status.text()
    view.groups_edit.setText("Egyptian cat,espresso")
    view.compute_button.click()
    assert win.controller.runner.busy("cohort")
    wait_idle(qtbot, win)
    cc, _ = view.current()
    g = cc.groups
    assert g is not None and g.groups == ("Egyptian cat", "espresso") and g.counts == (3, 3)
    assert g.mean_a.shape == g.difference.shape == tuple(win.session.model.input_size)
    assert not view.groups_label.pixmap().isNull()
    # three images a group: the view says the test has little power
    assert "little power" in view.groups_note.text() and "significant" in view.groups_note.text()


def test_another_folder_takes_the_last_folders_cohort_off_the_dock(make_window, qtbot, folder, tmp_path, photos):
    win = make_window()
    wait_idle(qtbot, win)
    s, view = win.session, win.cohort
    s.method = "gradcam"
    win.open_folder(folder, recursive=True)
    wait_idle(qtbot, win)
    view.compute_button.click()
    wait_idle(qtbot, win)
    first = s.cohort
    assert first is not None and view.cohort is first
    # its pictures scroll inside the dock: they do not push the dock up over the maps (at 1280 x 800
    # the dock took 450 px once a cohort was shown)
    assert view.minimumSizeHint().height() <= 260, view.minimumSizeHint()
    other = tmp_path / "other"
    save(photos["astronaut"], other / "a.png")
    save(photos["rocket"], other / "b.png")
    win.open_folder(other)
    wait_idle(qtbot, win)
    assert s.cohort is None and view.cohort is None  # the dock no longer shows another folder's strategies
    assert "new folder" in view.status.text()
    win.open_folder(folder, recursive=True)  # back: kept, shown again with no model run
    wait_idle(qtbot, win)
    assert view.compute_button.click() is None and not win.controller.runner.busy("cohort")
    assert s.cohort is first


def test_the_cli_reads_what_the_gallery_explained(make_window, qtbot, folder, tmp_path):
    """``alens cohort`` on a folder the window explained: every explanation comes from the cache."""
    import json

    from alens_gui.cli import main

    win = make_window()
    wait_idle(qtbot, win)
    win.session.method = "gradcam"
    win.open_folder(folder, recursive=True)
    wait_idle(qtbot, win)
    assert win.controller.gallery.explain_all() is not None
    wait_idle(qtbot, win)
    entries = win.controller.cache.root / "explanations"
    before = sorted(p.name for p in entries.glob("*.npz"))
    assert len(before) == 6
    out = tmp_path / "cohort"
    assert main(["cohort", str(folder), "--recursive", "--method", "gradcam", "--by", "predicted",
                 "--out", str(out), "--no-pdf"]) == 0
    # nothing new was explained (a miss would have added entries under other keys)
    assert sorted(p.name for p in entries.glob("*.npz")) == before
    doc = json.loads((out / "cohort.json").read_text())
    assert len(doc["inputs"]) == 6 and doc["by"] == "predicted"
    assert {"Egyptian cat", "espresso"} <= set(doc["classes"])


def test_a_cohort_of_a_thousand_images_is_shown(make_window, qtbot):
    """1,000 images' strategies (clustered off the GUI thread in the window; here directly): the
    view shows a row per strategy, at most a strip of thumbnails each, and every image in the scatter."""
    from alens_gui.core.cohort import CohortBuilder, CohortItem

    win = make_window()
    wait_idle(qtbot, win)
    rng = np.random.default_rng(0)
    builder = CohortBuilder()
    builder.model_hw = (32, 32)
    builder.class_names = {3: "three", 5: "five"}
    places = [(2, 2), (18, 18), (2, 20)]
    for n in range(1000):
        maps = rng.normal(0, 0.2, (2, 32, 32)).astype(np.float32)
        y, x = places[n % 3]
        maps[0, y:y + 10, x:x + 10] += 1
        maps /= np.abs(maps).max(axis=(1, 2), keepdims=True)
        builder.items.append(CohortItem(
            path=f"/nowhere/img{n:04d}.png", classes=(3, 5), class_names=("three", "five"), predicted=3,
            refined=maps.astype(np.float16), base=maps.astype(np.float16), won=np.array([0.3, 0.2]),
            margin=np.array([0.1, 0.1]), thumb=np.full((48, 48, 3), n % 255, np.uint8),
            gray=np.zeros((16, 16), np.float32), territory=np.zeros((32, 32), np.int8)))
    cohort = builder.finish(classes=[3])
    view = win.cohort
    win.session.cohort = cohort  # (what the controller does when a cohort is in)
    cc, cl = view.current()
    assert cc.class_name == "three" and len(cc.members) == 1000 and cl.n_clusters == 3
    assert view.table.rowCount() == 3
    assert len(view.scatter.points()) == 1000
    strip = view.table.cellWidget(0, 2).pixmap()
    assert strip.width() <= 12 * 50  # at most twelve thumbnails a row, whatever the strategy's size
