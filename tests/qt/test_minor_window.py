"""Small things a new user trips over (issue 16, minor findings), each checked on real widgets."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QTabBar

from alens_gui.core.colors import ColorScale
from alens_gui.core.explanation import Explanation
from alens_gui.qt import jobs, wheel
from alens_gui.qt.session import Session, ViewOptions
from alens_gui.qt.views import DistributionView, MapsView

from .conftest import wait_idle


def explanation(names, classes, seed=0, partial=False) -> Explanation:
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 1, (40, 60, 3)).astype(np.float32)
    raw = rng.normal(0, 1, (len(names), 1, 40, 60)).astype(np.float32)
    e = Explanation.from_raw(img, classes, names, [0.5] + [0.5 / (len(names) - 1)] * (len(names) - 1), raw,
                             method="gradcam", method_label="Grad-CAM")
    return e.with_meta(partial=True) if partial else e


def test_the_hover_read_out_never_shows_the_previous_images_classes(qtbot):
    s = Session()
    view = DistributionView(s)
    qtbot.addWidget(view)
    s.explanation = explanation(["cat", "dog"], [1, 2])
    s.hover = (10, 10)
    assert view.plot.names == ["cat", "dog"] and view.values is not None
    s.hover = (-1, -1)  # a new image arrives before the mouse moves again
    s.explanation = explanation(["cup", "plate", "spoon"], [7, 8, 9], seed=1)
    assert view.plot.names == ["cup", "plate", "spoon"] and view.values is None
    assert "cat" not in view.text.text() and "spoon" in view.text.text()


def test_map_titles_name_the_class_and_the_method_with_the_index_on_hover(qtbot):
    s = Session()
    view = MapsView(s)
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    s.view = ViewOptions(mode="both")
    s.color_scale = ColorScale()
    e = explanation(["grade 3", "grade 4"], [2, 3])
    s.explanation, s.rendered = e, jobs.render(e, s.color_scale)
    qtbot.waitUntil(lambda: len(view.map_tiles("refined")) == 2)
    base, refined = view.map_tiles("base")[0], view.map_tiles("refined")[0]
    assert "2 grade 3" not in base.title.text() and "grade 3" in base.title.text()
    assert "Grad-CAM" in base.title.toolTip() and "class 2" in base.title.toolTip()
    assert "Grad-CAM" in base._title[0] and "Attribution Lens" in refined._title[0]


def test_a_running_estimate_is_not_also_called_out_of_date(qtbot):
    s = Session()
    view = MapsView(s)
    qtbot.addWidget(view)
    view.show()
    e = explanation(["a", "b"], [1, 2], partial=True)
    s.estimate = jobs.render(e, s.color_scale)
    s.stale = True
    assert "Partial estimate" in view.banner.text() and "Run (Ctrl+R)" not in view.banner.text()
    done = explanation(["a", "b"], [1, 2])
    s.explanation, s.rendered = done, jobs.render(done, s.color_scale)
    assert view.explanation is e  # the estimate stays drawn until it is cleared
    s.estimate = None
    assert view.explanation is done
    s.stale = True
    assert "Run (Ctrl+R)" in view.banner.text()


def test_the_wheel_over_a_tab_bar_does_not_switch_the_tab(qtbot):
    wheel.install()
    bar = QTabBar()
    qtbot.addWidget(bar)
    for name in ("Notifications", "Gallery"):
        bar.addTab(name)
    bar.show()
    bar.setCurrentIndex(0)
    pos = QPointF(bar.tabRect(0).center())
    for delta in (-120, 120, -120):
        ev = QWheelEvent(pos, QPointF(bar.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, delta),
                         Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(bar, ev)
    assert bar.currentIndex() == 0


def test_comparison_exports_wait_for_a_comparison(make_window, qtbot):
    win = make_window()
    wait_idle(qtbot, win)
    acts = {a.text().replace("&", ""): a for a in win.findChildren(type(win.menuBar().actions()[0]))}
    cmp_export, cmp_report = acts["Export the comparison…"], acts["Export report of the comparison…"]
    assert not cmp_export.isEnabled() and not cmp_report.isEnabled()
    assert acts["Export report (PDF) of this image…"].isEnabled()
    win.session.method = "gradcam"
    win.run()
    wait_idle(qtbot, win)
    assert win.controller.comparison.pin()
    assert cmp_export.isEnabled() and cmp_report.isEnabled()
    win.controller.comparison.unpin()
    assert not cmp_export.isEnabled()


def test_methods_the_model_cannot_run_are_greyed_with_the_reason(make_window, qtbot):
    win = make_window()
    wait_idle(qtbot, win)
    assert win.session.model.architecture == "cnn"
    panel = win.method_panel
    model = panel.combo.model()
    state = {panel.combo.itemData(i): model.item(i).isEnabled() for i in range(panel.combo.count())}
    assert state["gradcam"] and state["ig"]
    assert not state["rollout"]  # attention rollout is for Vision Transformers
    tip = panel.combo.itemData(panel.combo.findData("rollout"), Qt.ItemDataRole.ToolTipRole)
    assert "not for this model" in tip and "Vision Transformers" in tip


def test_one_key_shortcuts_do_not_fire_while_typing_in_a_field(make_window, qtbot):
    from PySide6.QtTest import QTest

    win = make_window()
    wait_idle(qtbot, win)
    win.activateWindow()
    field = win.class_panel.classes.search
    win.class_panel.classes.show()
    field.setFocus()
    qtbot.waitUntil(lambda: field.hasFocus(), timeout=5000)
    before = win.session.view
    for key in "top":
        QTest.keyClick(field, key)
    assert field.text() == "top" and win.session.view == before and win.session.pinned is None
    # a combo box or a list with the keyboard looks like a field too: its keys search it
    for widget in (win.method_panel.combo, win.class_panel.classes.list):
        widget.setFocus()
        qtbot.waitUntil(lambda widget=widget: widget.hasFocus(), timeout=5000)
        for key in "top":
            QTest.keyClick(widget, key)
        assert win.session.view == before and win.session.pinned is None, type(widget).__name__
    # outside a field the shortcut works
    win.maps.setFocus()
    qtbot.waitUntil(lambda: win.maps.hasFocus() or not field.hasFocus(), timeout=5000)
    QTest.keyClick(win.maps, "t")
    assert win.session.view.territory != before.territory


def test_the_status_says_what_still_runs_not_what_finished(qtbot):
    """While the model loads, a finished image read must not stay in the status bar ("reading
    sample" for the 40 s of a model load)."""
    import threading

    from alens_gui.qt.controller import Controller

    s = Session()
    c = Controller(s, autorun=False)
    gate = threading.Event()

    def slow(progress):
        yield ("status", "loading")
        gate.wait(30)
        return 1

    def quick(progress):
        yield ("status", "reading")
        return 2

    c.runner.run("model", slow, label="loading the model")
    c.runner.run("image", quick, label="reading chelsea")
    qtbot.waitUntil(lambda: not c.runner.busy("image"), timeout=10_000)
    qtbot.waitUntil(lambda: s.activity.label == "loading the model", timeout=5_000)
    gate.set()
    qtbot.waitUntil(lambda: not c.runner.busy(), timeout=10_000)
    assert not s.activity.busy
    c.shutdown()


def test_the_inspect_column_keeps_its_buttons_in_place(make_window, qtbot):
    """A masking result arriving or cleared, or the mouse leaving the maps, must not move the
    buttons of the Inspect column under the mouse."""
    from PySide6.QtWidgets import QPushButton, QScrollArea

    win = make_window(size=(1280, 800))
    wait_idle(qtbot, win)
    win.session.method = "gradcam"
    win.run()
    wait_idle(qtbot, win)
    panel = win.masking_panel
    mask_top = next(b for b in panel.findChildren(QPushButton) if b.text() == "Mask top")
    clear = next(b for b in panel.findChildren(QPushButton) if b.text() == "Clear")
    scroll = win.inspect_dock.widget()
    scroll = scroll if isinstance(scroll, QScrollArea) else scroll.findChild(QScrollArea)

    def where():
        last = None
        for _ in range(30):  # until the layout has settled (a loaded machine takes a few turns)
            qtbot.wait(100)
            now = (mask_top.mapTo(win, QPoint(0, 0)).y(), clear.mapTo(win, QPoint(0, 0)).y(),
                   scroll.widget().sizeHint().height())
            if now == last:
                return now
            last = now
        return last

    scroll.verticalScrollBar().setValue(scroll.verticalScrollBar().maximum())
    before = where()
    win.session.hover = (50, 50)
    win.session.hover = (-1, -1)
    assert where() == before
    win.controller.checks.select_top_fraction(0, 20.0)
    wait_idle(qtbot, win)
    assert win.session.mask_result is not None
    scroll.verticalScrollBar().setValue(scroll.verticalScrollBar().maximum())
    with_result = where()
    win.session.clear_mask()
    wait_idle(qtbot, win)
    assert where()[:2] == with_result[:2]


def test_the_territory_tile_has_a_legend_in_the_class_colours(qtbot):
    from alens_gui.core.colors import class_colors

    s = Session()
    view = MapsView(s)
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    e = explanation(["Egyptian cat", "tabby", "lynx"], [285, 281, 287])
    s.explanation, s.rendered = e, jobs.render(e, s.color_scale)
    qtbot.waitUntil(lambda: ("territory", -1) in view.tiles)
    tile = view.tiles[("territory", -1)]
    text = tile.title.text()
    for color, name in zip(class_colors(e.classes), e.class_names):
        assert f"rgb{tuple(color)}" in text and name[:3] in text
    assert "lynx" in tile.title.toolTip()
    # the maps' title swatches are the class's colour too, not the position's
    refined = view.map_tiles("refined")
    assert f"rgb{tuple(class_colors(e.classes)[0])}" in refined[0].title.text()


def test_mask_top_over_a_drawn_rectangle_says_it_adds_to_it(make_window, qtbot):
    from alens_gui.core.masking import rectangle_mask

    win = make_window()
    wait_idle(qtbot, win)
    win.session.method = "gradcam"
    win.run()
    wait_idle(qtbot, win)
    s = win.session
    s.add_to_mask(rectangle_mask(s.image_shape, 0, 0, 40, 40))
    wait_idle(qtbot, win)
    assert win.controller.checks.select_top_fraction(0, 10.0)
    wait_idle(qtbot, win)
    said = [m for _lvl, m in win.notifications.messages if "added to the mask already drawn" in m]
    assert said and "Clear first" in said[-1]
    assert s.mask[:40, :40].all()  # the rectangle is still part of the mask


def test_the_hover_radius_is_its_own_field_and_leaves_the_maps_alone(qtbot):
    s = Session()
    maps, dist = MapsView(s), DistributionView(s)
    for w in (maps, dist):
        qtbot.addWidget(w)
    maps.show()
    e = explanation(["a", "b"], [1, 2])
    s.explanation, s.rendered = e, jobs.render(e, s.color_scale)
    views, relayouts = [], []
    s.view_changed.connect(views.append)
    maps.tilesChanged.connect(lambda: relayouts.append(1))
    s.hover = (20, 30)
    pixel = dist.values.copy()
    s.hover_radius = 6
    assert views == [] and relayouts == []
    assert "disc of radius 6" in dist.text.text() and not np.allclose(dist.values, pixel)


def test_after_a_cancel_the_maps_say_which_method_made_them(make_window, qtbot):
    win = make_window()
    wait_idle(qtbot, win)
    s = win.session
    s.method = "gradcam"
    win.run()
    wait_idle(qtbot, win)
    s.method = "ig"
    s.options = {**s.options, "steps": 200}
    assert win.run() is not None
    qtbot.waitUntil(lambda: win.controller.runner.busy("explain"), timeout=5_000)
    win.controller.cancel()
    wait_idle(qtbot, win)
    assert s.explanation.method == "gradcam" and not s.explanation.partial  # the last finished maps
    titles = [t._title[0] for t in win.maps.map_tiles("base")]
    assert titles and all("Grad-CAM" in t for t in titles), titles  # the tiles name their method
    assert win.maps.banner.isVisible() and "Run (Ctrl+R)" in win.maps.banner.text()  # and say they are out of date
