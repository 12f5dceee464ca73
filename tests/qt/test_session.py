"""The session state, the panels' two-way bindings, and the task runner (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from alens_gui.core.colors import ColorScale
from alens_gui.core.errors import MethodError
from alens_gui.core.lensparams import AL, VAR
from alens_gui.qt.session import ClassRequest, Session, ViewOptions


@pytest.fixture
def session(qtbot):
    return Session()


def test_a_field_signals_once_per_real_change(session, qtbot):
    seen = []
    session.lens_changed.connect(seen.append)
    session.lens = AL  # the default: no change, no signal
    assert seen == []
    session.lens = VAR
    session.lens = VAR.with_()  # equal value: no signal
    assert seen == [VAR]
    arrays = []
    session.mask_changed.connect(arrays.append)
    m = np.zeros((4, 4), bool)
    session.mask = m
    session.mask = m  # the same array object
    session.mask = m.copy()  # a new array is a change
    assert len(arrays) == 2
    with pytest.raises(AttributeError, match="no field"):
        session.update(nonsense=1)


def test_update_emits_in_the_order_given(session, qtbot):
    with qtbot.waitSignals([session.method_changed, session.selected_changed], order="strict"):
        session.update(method="ixg", selected=2)


def test_mask_editing_with_undo(session):
    class Shaped:
        shape = (5, 6)
        k = 2

    session.explanation = Shaped()
    region = np.zeros((5, 6), bool)
    region[1:3, 1:3] = True
    assert session.add_to_mask(region)
    assert not session.add_to_mask(region)  # nothing new: no undo step
    more = np.zeros((5, 6), bool)
    more[4, 5] = True
    session.add_to_mask(more)
    assert session.mask.sum() == 5 and session.can_undo_mask
    session.undo_mask()
    assert session.mask.sum() == 4
    session.clear_mask()
    assert not session.mask.any()
    session.undo_mask()
    assert session.mask.sum() == 4
    with pytest.raises(ValueError, match="does not match"):
        session.add_to_mask(np.zeros((2, 2), bool))


def test_lens_panel_binds_both_ways(session, qtbot):
    from alens_gui.qt.controls import LensPanel

    panel = LensPanel(session)
    qtbot.addWidget(panel)
    session.lens = VAR  # session -> widgets
    assert panel.temps.text() == "0.1" and panel.tau.value() == pytest.approx(0.01)
    assert panel.preset.currentData() == "var"
    panel.tau.setValue(0.2)  # widget -> session
    assert session.lens == VAR.with_(tau=0.2) and panel.preset.currentData() == "custom"
    errors = []
    panel.notified.connect(lambda text, level: errors.append((level, text)))
    panel.temps.setText("-1")
    panel.push()
    assert errors and errors[-1][0] == "error" and "positive" in errors[-1][1]
    assert panel.temps.text() == "0.1"  # the widget shows the session again
    # no signal blocker: a lens set from elsewhere comes back unchanged (a τ the spin box can only
    # show rounded is not rewritten), with one change; one control changes one field
    changes = []
    session.lens_changed.connect(changes.append)
    odd = VAR.with_(tau=0.01234, normalize=panel.normalize.itemData(panel.normalize.count() - 1))
    session.lens = odd
    assert changes == [odd] and session.lens is odd and panel.preset.currentData() == "custom"
    panel.softmax.setCurrentIndex((panel.softmax.currentIndex() + 1) % panel.softmax.count())
    assert session.lens == odd.with_(softmax_input=panel.softmax.currentData())
    panel.preset.setCurrentIndex(panel.preset.findData("al"))
    assert session.lens == AL.with_(reduce=odd.reduce) and panel.temps.text() == "1, 0.2, 0.01"


def test_view_panel_binds_both_ways(session, qtbot):
    from alens_gui.qt.controls import ViewPanel

    panel = ViewPanel(session)
    qtbot.addWidget(panel)
    session.view = ViewOptions(mode="refined", opacity=0.3)
    session.color_scale = ColorScale(scope="class", gamma=0.5)
    assert panel.mode.currentData() == "refined" and panel.opacity.value() == 30
    assert panel.scope.currentData() == "class" and panel.gamma.value() == pytest.approx(0.5)
    panel.percentile.setValue(90.0)
    assert session.color_scale == ColorScale(scope="class", percentile=90.0, gamma=0.5)
    panel.overlay.setChecked(False)
    assert session.view.overlay is False and session.view.mode == "refined"
    # no signal blocker: setting the widgets from the session writes nothing back, even values a
    # widget can only show rounded (a 75.5 % opacity, a gamma of 0.733), and sends one change each
    changes, scales = [], []
    session.view_changed.connect(changes.append)
    session.color_scale_changed.connect(scales.append)
    odd = ViewOptions(mode="base", overlay=True, opacity=0.755, territory=False)
    odd_scale = ColorScale(scope="row", percentile=97.25, gamma=0.733)
    session.view = odd
    session.color_scale = odd_scale
    assert changes == [odd] and session.view is odd and scales == [odd_scale] and session.color_scale is odd_scale
    assert panel.opacity.value() == 76 and panel.gamma.value() == pytest.approx(0.73)
    panel.gamma.setValue(1.5)  # one widget changes one field: the colour scale, not the view
    assert session.color_scale == odd_scale.with_(gamma=1.5) and changes == [odd] and session.view is odd
    panel.territory.setChecked(True)  # and a view control changes the view, not the colour scale
    assert session.view == odd.with_(territory=True) and len(scales) == 2


def test_class_panel_binds_both_ways(session, qtbot, tmp_path):
    from alens_gui.qt.controls import ClassSetPanel
    from alens_gui.qt.controls.class_panel import PresetStore

    panel = ClassSetPanel(session, PresetStore(tmp_path / "p.json"))
    qtbot.addWidget(panel)
    panel.classes.set_names([f"grade {i}" for i in range(1, 5)])
    panel.k.setValue(2)
    assert session.class_request == ClassRequest(kind="topk", k=2)
    panel.classes.set_checked([3, 1])
    assert session.class_request == ClassRequest(kind="picked", classes=(3, 1))
    session.class_request = ClassRequest(kind="best_vs_worst")
    assert panel.mode.currentData() == "best_vs_worst" and not panel.k.isEnabled()
    session.class_request = ClassRequest(kind="picked", classes=(0, 2))
    assert panel.classes.checked() == [0, 2]


def test_task_runner_signals_in_order_and_cancels(qtbot):
    from alens_gui.qt.tasks import TaskRunner

    runner = TaskRunner()
    results = []

    def work(progress, n):
        progress.add_total(n)
        for i in range(n):
            yield ("step", i)
            progress.advance(1, f"step {i}")
        return n * 10

    with qtbot.waitSignals([runner.started, runner.progress, runner.finished], order="strict", timeout=10_000):
        runner.run("a", work, 1, on_return=results.append)
    qtbot.waitUntil(lambda: not runner.busy(), timeout=10_000)
    assert results == [10]

    def slow(progress):
        progress.add_total(1000)
        for _ in range(1000):
            progress.advance(1)
            yield ("tick", None)
            import time

            time.sleep(0.01)
        return "done"

    outcomes = []
    runner.finished.connect(lambda slot, outcome: outcomes.append((slot, outcome)))
    task = runner.run("b", slow, on_return=results.append)
    qtbot.waitUntil(lambda: task.progress.done > 3, timeout=10_000)
    runner.cancel("b")
    qtbot.waitUntil(lambda: not runner.busy(), timeout=10_000)
    assert ("b", "cancelled") in outcomes and results == [10] and task.cancelled


def test_task_runner_reports_errors_once(qtbot):
    from alens_gui.qt.tasks import TaskRunner

    runner = TaskRunner()

    def failing(progress):
        yield ("status", "about to fail")
        raise MethodError("option steps must be >= 1; got 0")

    errors, outcomes = [], []
    runner.error.connect(lambda slot, msg: errors.append(msg))
    runner.finished.connect(lambda slot, outcome: outcomes.append(outcome))
    with qtbot.waitSignals([runner.started, runner.error, runner.finished], order="strict", timeout=10_000):
        runner.run("c", failing, label="IG")
    assert errors == ["IG: option steps must be >= 1; got 0"] and outcomes == ["error"]
