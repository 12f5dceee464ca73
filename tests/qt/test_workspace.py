"""The window as a workspace: wheel safety, shortcuts, nothing clipped, layout remembered, sessions."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractSlider, QAbstractSpinBox, QApplication, QComboBox, QScrollArea, QWidget

from alens_gui.core.colors import ColorScale

from .conftest import wait_idle
from .test_window import ForwardCounter, run


def wheel(widget: QWidget, steps: int = -3) -> None:
    """A real wheel event at the widget's centre, delivered the way Qt delivers the mouse's."""
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    glob = QPointF(widget.mapToGlobal(pos.toPoint()))
    ev = QWheelEvent(pos, glob, QPoint(0, 0), QPoint(0, 120 * steps), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def value_of(w):
    if isinstance(w, QComboBox):
        return w.currentIndex()
    if isinstance(w, (QAbstractSpinBox,)):
        return w.text()
    return w.value()


def test_the_wheel_never_changes_a_control_that_has_no_focus(make_window, qtbot):
    win = make_window(size=(1280, 800))
    run(qtbot, win, "gradcam")
    lens, view, expl = win.session.lens, win.session.view, win.session.explanation
    controls = [w for w in win.findChildren(QWidget)
                if isinstance(w, (QComboBox, QAbstractSpinBox, QAbstractSlider)) and w.isVisible()
                and not isinstance(w.parent(), QAbstractSpinBox) and not isinstance(w, QScrollArea)]
    controls = [w for w in controls if not (isinstance(w, QAbstractSlider) and w.orientation() == Qt.Orientation.Vertical
                                            and w.maximum() > 0 and isinstance(w.parent().parent(), QScrollArea))]
    assert len(controls) > 15
    before = [value_of(w) for w in controls]
    for w in controls:
        wheel(w)
        wheel(w, 3)
    assert [value_of(w) for w in controls] == before
    assert win.session.lens == lens and win.session.view == view and win.session.explanation is expl
    # (that the column scrolls instead is checked with a real mouse: test_real_window.py)
    # a focused control does take the wheel (the user clicked into it)
    win.lens_panel.tau.setFocus()
    qtbot.waitUntil(win.lens_panel.tau.hasFocus, timeout=2000)
    wheel(win.lens_panel.tau, 1)
    assert win.lens_panel.tau.value() != pytest.approx(lens.tau)


def test_keyboard_shortcuts(make_window, qtbot):
    win = make_window()
    win.activateWindow()
    run(qtbot, win, "gradcam")
    assert win.session.selected == 0
    QTest.keyClick(win, Qt.Key.Key_BracketRight)
    assert win.session.selected == 1
    QTest.keyClick(win, Qt.Key.Key_BracketLeft)
    QTest.keyClick(win, Qt.Key.Key_BracketLeft)
    assert win.session.selected == win.session.explanation.k - 1  # wraps around
    QTest.keyClick(win, Qt.Key.Key_O)
    assert not win.session.view.overlay
    assert all(t.heat.opacity() == 0 for t in win.maps.map_tiles("refined"))
    QTest.keyClick(win, Qt.Key.Key_O)
    assert win.session.view.overlay
    QTest.keyClick(win, Qt.Key.Key_T)
    assert ("territory", -1) not in win.maps.tiles
    win.session.method = "ixg"
    QTest.keyClick(win, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    wait_idle(qtbot, win)
    assert win.session.explanation.method == "ixg"
    names = [a.shortcut().toString() for a in win.actions()]
    assert "Ctrl+O" in names and "Esc" in names


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_nothing_is_clipped(make_window, qtbot, size):
    win = make_window(size=size)
    run(qtbot, win, "gradcam")
    qtbot.wait(300)
    assert (win.width(), win.height()) == size
    win_rect = win.rect()
    clipped = []
    for dock in (win.setup_dock, win.inspect_dock):
        scroll = dock.widget() if isinstance(dock.widget(), QScrollArea) else dock.widget().findChild(QScrollArea)
        vp = scroll.viewport()
        for w in scroll.widget().findChildren(QWidget):
            if not w.isVisible() or w.width() == 0 or isinstance(w.parent(), QAbstractSpinBox):
                continue
            left = w.mapTo(vp, QPoint(0, 0)).x()
            if left < 0 or left + w.width() > vp.width() + 1:
                clipped.append((dock.windowTitle(), type(w).__name__, left, w.width(), vp.width()))
    assert not clipped, clipped
    for w in (win.lens_panel, win.view_panel, win.maps):  # the rows above the maps wrap instead of clipping
        tl = w.mapTo(win, QPoint(0, 0))
        assert win_rect.contains(tl) and tl.x() + w.width() <= win_rect.width() + 1
        for child in w.findChildren(QWidget):
            if child.isVisible() and child.parent() is w:
                x = child.mapTo(w, QPoint(0, 0)).x()
                assert x + child.width() <= w.width() + 1, (type(child).__name__, x, child.width(), w.width())
    tiles = list(win.maps.tiles.values())
    assert min(t.width() for t in tiles) > 120 and min(t.height() for t in tiles) > 80


def test_window_layout_is_remembered(make_window, qtbot, tmp_path):
    cfg = tmp_path / "cfg"
    win = make_window(config_dir=cfg, size=(1300, 820))
    win.inspect_dock.hide()
    win.close()
    again = make_window(config_dir=cfg, size=(1300, 820))
    assert not again.inspect_dock.isVisible() and again.setup_dock.isVisible()


def test_a_session_restores_the_screen_without_running_the_model(make_window, qtbot, tmp_path, photos, explainer):
    from PIL import Image

    img = tmp_path / "coffee.png"
    Image.fromarray((photos["coffee"] * 255).astype(np.uint8)).save(img)
    win = make_window()
    wait_idle(qtbot, win)
    win.open_image(str(img))
    run(qtbot, win, "ixg")
    win.lens_panel.tau.setValue(0.05)
    wait_idle(qtbot, win)
    win.session.view = win.session.view.with_(mode="refined")
    win.session.color_scale = ColorScale(scope="all", percentile=97.5, gamma=0.6)
    win.session.hover_radius = 3
    mask = np.zeros(win.session.explanation.shape, bool)
    mask[20:60, 30:90] = True
    win.session.add_to_mask(mask)
    wait_idle(qtbot, win)
    saved = win.session.explanation
    assert win.save_session(tmp_path / "work") is not None
    wait_idle(qtbot, win)
    assert (tmp_path / "work.alens").exists() and str((tmp_path / "work.alens").resolve()) in win.recent_sessions()
    again = make_window()
    wait_idle(qtbot, again)
    with ForwardCounter(explainer.model) as counter:
        again.open_session(tmp_path / "work.alens")
        qtbot.waitUntil(lambda: again.session.explanation is not None and again.session.explanation.method == "ixg",
                        timeout=60_000)
        wait_idle(qtbot, again)
        assert counter.calls == 0
    e = again.session.explanation
    assert e.lens == saved.lens and e.lens.tau == pytest.approx(0.05)
    np.testing.assert_allclose(e.refined, saved.refined, atol=1e-6)
    assert again.session.method == "ixg" and again.session.view.mode == "refined"
    assert again.session.color_scale == win.session.color_scale and again.session.rendered.scale == ColorScale(
        scope="all", percentile=97.5, gamma=0.6) and again.view_panel.gamma.value() == pytest.approx(0.6)
    assert again.session.hover_radius == 3 and again.hover_radius.spin.value() == 3
    assert again.session.image_request.path == str(img.resolve())
    np.testing.assert_array_equal(again.session.mask, win.session.mask)
    r0, r1 = win.session.mask_result, again.session.mask_result  # the masking result is there too
    np.testing.assert_allclose(r1.after, r0.after)
    np.testing.assert_allclose(r1.masked_image, r0.masked_image)
    assert not again.session.stale and not again.notifications.errors()
    # a file from before the colour scale had its own record (it was the view's "scale") opens with its scale
    old = tmp_path / "old.alens"
    with zipfile.ZipFile(tmp_path / "work.alens") as src, zipfile.ZipFile(old, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "session.json":
                doc = json.loads(data)
                doc["state"]["view"]["scale"] = {"scope": "class", "percentile": 99.0, "gamma": 1.7}
                del doc["state"]["color_scale"]
                data = json.dumps(doc).encode()
            dst.writestr(name, data)
    again.open_session(old)
    wait_idle(qtbot, again)
    assert again.session.color_scale == ColorScale(scope="class", percentile=99.0, gamma=1.7)
    assert again.session.rendered.scale == again.session.color_scale and again.session.view.mode == "refined"
    assert again.view_panel.scope.currentData() == "class" and not again.notifications.errors()
    # the input changed on disk since: the session still opens, with a warning
    Image.fromarray((photos["chelsea"] * 255).astype(np.uint8)).save(img)
    again.open_session(tmp_path / "work.alens")
    wait_idle(qtbot, again)
    assert any("coffee.png" in t and "changed" in t for lvl, t in again.notifications.messages if lvl == "warning")


def test_bar_chart_paints_its_bars_and_reference_line(qtbot):
    """The painted bar chart of the read-outs: bar heights in proportion, the dashed chance line."""
    from PySide6.QtGui import QColor

    from alens_gui.qt.widgets import BAR_BRUSH, BarPlot

    chart = BarPlot("class distribution S", "S")
    qtbot.addWidget(chart)
    chart.resize(320, 160)
    chart.set_bars(["Egyptian cat", "tiger cat", "tabby"], [0.6, 0.3, 0.1], ymax=1.0)
    chart.set_reference(1 / 3)
    np.testing.assert_allclose(chart.heights(0), [0.6, 0.3, 0.1])
    assert chart.heights(1).size == 0
    img = chart.grab().toImage()
    area, _ = chart.plot_area()

    def bar_height(i: int) -> int:
        x = int(area.left() + area.width() / 3 * (i + 0.5)) - 5  # inside the bar, left of the centre
        blue = [y for y in range(img.height()) if QColor(img.pixel(x, y)) == QColor(BAR_BRUSH)]
        return len(blue)

    heights = [bar_height(i) for i in range(3)]
    assert heights[0] > heights[1] > heights[2] > 0
    assert heights[0] == pytest.approx(2 * heights[1], rel=0.1)
    # the chance line: red pixels on the row of 1/3
    y = int(round(area.bottom() - area.height() / 3))
    def reddish(x: int) -> bool:
        cs = [QColor(img.pixel(x, y + dy)) for dy in (-1, 0, 1)]
        return any(c.red() > 150 and c.red() - max(c.green(), c.blue()) > 50 for c in cs)

    reds = [x for x in range(area.left(), area.right()) if reddish(x)]
    assert len(reds) > area.width() * 0.25  # a dashed line across the plot


def test_tiles_are_built_while_idle_and_used_by_the_first_result(make_window, qtbot):
    """The maps of the next run are built ahead (one per event-loop turn), not when its result arrives."""
    from alens_gui.qt.session import ClassRequest

    win = make_window()
    want = {("image", -1), ("territory", -1)} | {(kind, i) for i in range(3) for kind in ("base", "refined")}
    qtbot.waitUntil(lambda: want <= win.maps.prepared().keys(), timeout=10_000)
    built = win.maps.prepared()
    assert ("base", 3) not in built
    win.session.class_request = ClassRequest(kind="topk", k=5)
    qtbot.waitUntil(lambda: {("base", 4), ("refined", 4)} <= win.maps.prepared().keys(), timeout=10_000)
    expl = run(qtbot, win, "gradcam")
    assert expl.k == 5
    # the tiles on screen are the ones built ahead
    assert win.maps.map_tiles("base")[0] is built[("base", 0)]
    assert win.maps.map_tiles("refined")[2] is built[("refined", 2)]


def test_bar_chart_axis_without_bars_and_with_tiny_values(qtbot):
    """A cleared chart keeps a plain 0-1 axis; tiny values get tick labels that fit left of the plot."""
    from alens_gui.qt.widgets import BarPlot

    chart = BarPlot("p before (blue) / after (orange)", "p")
    qtbot.addWidget(chart)
    chart.resize(300, 160)
    chart.set_bars([], [], [])  # the masking result after Clear
    assert chart.ymax == 1.0
    chart.set_bars(["a", "b"], [0.0004, 0.0005])
    area, _ = chart.plot_area()
    fm = chart.fontMetrics()
    widest = max(fm.horizontalAdvance(label) for _v, label in chart.ticks())
    assert widest > fm.horizontalAdvance("0.00")  # "0.00055" is wider than the usual labels
    assert area.left() >= widest + 4  # and still fits left of the axis
