"""The real main window, offscreen, on the real default model and real photographs.

Tests drive the window through its public session and controller (what a user sets,
what the program computes) and read what the views draw.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, QRectF, QThreadPool
from PySide6.QtGui import QAction

from alens_gui.core.images import GRID_CLASSES, GRID_PHOTOS
from alens_gui.core.render import area_average
from alens_gui.qt.session import ClassRequest, ImageRequest, ModelRequest

from .conftest import wait_idle

LONG = 180_000


def set_method(win, name, **options):
    win.session.method = name
    if options:
        win.session.options = {**win.session.options, **options}


def run(qtbot, win, method="gradcam", **options):
    wait_idle(qtbot, win)  # the first image is still being read
    set_method(win, method, **options)
    task = win.run()
    assert task is not None, win.notifications.messages
    wait_idle(qtbot, win)
    assert not win.notifications.errors(), win.notifications.errors()
    return win.session.explanation


class ForwardCounter:
    """Counts calls of a module's forward (wrapping the instance attribute, restored after)."""

    def __init__(self, model):
        self.model, self.calls = model, 0
        self.original = model.forward

    def __enter__(self):
        def counted(*a, **k):
            self.calls += 1
            return self.original(*a, **k)

        self.model.forward = counted
        return self

    def __exit__(self, *exc):
        del self.model.forward


@pytest.fixture
def chelsea_png(tmp_path, photos):
    path = tmp_path / "chelsea.png"
    Image.fromarray((photos["chelsea"] * 255).round().astype(np.uint8)).save(path)
    return path


def test_first_start_explains_a_sample_photograph(make_window, qtbot):
    win = make_window(autorun=True)  # no image given: a sample photograph, explained at once
    wait_idle(qtbot, win)
    expl = win.session.explanation
    assert expl is not None and expl.method == "gradcam"
    assert int(expl.classes[0]) == 285  # chelsea is an Egyptian cat
    assert expl.shape == (300, 451)  # in the photograph's own shape, not squeezed to the model's square
    assert "CPU" in win.session.model_status
    assert win.session.image_request == ImageRequest(sample="chelsea")
    # every map tile shows the colour image the controller prepared for it
    r = win.session.rendered
    for i, tile in enumerate(win.maps.map_tiles("refined")):
        assert tile.sources[1] is r.refined[i]  # the very array the exporters composite
        np.testing.assert_array_equal(tile.heat.image, area_average(r.refined[i], tile.reduction()))
        r_ = tile.vb.viewRect()  # the whole image is in view, and it fills the tile in one direction
        assert r_.contains(QRectF(0.5, 0.5, 450, 299))
        assert r_.width() == pytest.approx(451, rel=0.02) or r_.height() == pytest.approx(300, rel=0.02)


def test_open_image_and_see_k_refined_maps(make_window, qtbot, chelsea_png):
    win = make_window()
    wait_idle(qtbot, win)
    win.session.class_request = ClassRequest(kind="topk", k=4)
    win.controller.autorun = True
    assert win.open_image(str(chelsea_png))
    wait_idle(qtbot, win)
    expl = win.session.explanation
    assert expl.k == 4 and len(win.maps.map_tiles("refined")) == 4 and len(win.maps.map_tiles("base")) == 4
    for i, tile in enumerate(win.maps.map_tiles("base")):
        assert tile.sources[1] is win.session.rendered.base[i]
    assert not np.array_equal(expl.refined, expl.base)
    assert str(chelsea_png.resolve()) in win.recent_files()
    np.testing.assert_allclose(win.probabilities.plot.heights(), expl.probs)
    # all tiles have one size (small multiples)
    widths = [t.width() for t in win.maps.tiles.values()]
    heights = [t.height() for t in win.maps.tiles.values()]
    assert max(widths) - min(widths) <= 1 and max(heights) - min(heights) <= 1, (widths, heights)


def test_tiles_are_laid_out_as_soon_as_the_view_changes(make_window, qtbot):
    # Read before the event loop turns again: a fit-to-view or a linked zoom runs right after
    # the grid changes, and a CI run once caught tiles still at their 40 x 40 build size.
    win = make_window()
    run(qtbot, win, "ixg")
    for mode in ("refined", "both", "base", "both"):
        win.session.view = win.session.view.with_(mode=mode)
        widths = [t.width() for t in win.maps.tiles.values()]
        heights = [t.height() for t in win.maps.tiles.values()]
        assert min(widths) > 100 and min(heights) > 100, (mode, widths, heights)
        assert max(widths) - min(widths) <= 1 and max(heights) - min(heights) <= 1, (mode, widths, heights)


def test_hover_reads_the_class_distribution(make_window, qtbot):
    win = make_window()
    expl = run(qtbot, win, "ixg")
    y, x = 120, 97
    tile = win.maps.map_tiles("refined")[1]
    tile.view.scene().sigMouseMoved.emit(tile.scene_pos_of(y, x))
    qtbot.waitUntil(lambda: win.session.hover == (y, x), timeout=5000)
    d = win.distribution.values
    assert d is not None and d.shape == (expl.k,)
    assert d.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(d, expl.distribution_at(y, x), rtol=1e-6)
    np.testing.assert_allclose(win.distribution.base_values, expl.base[:, y, x], rtol=1e-6)
    for t in win.maps.tiles.values():  # the crosshair is at that pixel in every view
        if t.kind == "blank":
            continue
        assert t.cross.isVisible()
        xs, ys = t.cross.getData()
        assert xs[2] == x + 0.5 and ys[0] == y + 0.5
    # a neighbourhood averages the distribution
    win.hover_radius.spin.setValue(5)
    np.testing.assert_allclose(win.distribution.values, expl.distribution_at(y, x, radius=5), rtol=1e-6)
    assert not np.allclose(win.distribution.values, d)
    # leaving the views hides the crosshair
    tile.view.scene().sigMouseMoved.emit(QPointF(-5000, -5000))
    qtbot.waitUntil(lambda: win.session.hover == (-1, -1), timeout=5000)
    assert not any(t.cross.isVisible() for t in win.maps.tiles.values())


def test_lens_controls_relens_without_a_model_call(make_window, qtbot, explainer):
    win = make_window()
    expl = run(qtbot, win, "ixg")
    before = [t.sources[1].copy() for t in win.maps.map_tiles("refined")]
    with ForwardCounter(explainer.model) as counter:
        win.lens_panel.tau.setValue(0.2)
        wait_idle(qtbot, win)
        after = win.session.explanation
        assert after.lens.tau == pytest.approx(0.2)
        changed = [not np.array_equal(b, t.sources[1]) for b, t in zip(before, win.maps.map_tiles("refined"))]
        assert any(changed)
        assert (after.refined != 0).sum() < (expl.refined != 0).sum()  # a larger margin keeps fewer pixels
        np.testing.assert_array_equal(after.base, expl.base)
        win.lens_panel.preset.setCurrentIndex(win.lens_panel.preset.findData("var"))
        wait_idle(qtbot, win)
        assert win.session.explanation.lens.temperatures == (0.1,)
        assert win.lens_panel.temps.text() == "0.1"
        win.lens_panel.normalize.setCurrentIndex(win.lens_panel.normalize.findData("joint-maxabs"))
        wait_idle(qtbot, win)
        assert win.session.explanation.lens.normalize == "joint-maxabs"
        assert win.lens_panel.preset.currentData() == "custom"
        assert counter.calls == 0
    # a bad temperature is a message, not a crash, and the maps stay
    win.lens_panel.temps.setText("0, x")
    win.lens_panel.push()
    assert "temperatures" in win.notifications.errors()[-1]
    assert win.session.explanation is not None and win.lens_panel.temps.text() == "0.1"


def test_masking_the_top_of_one_class_on_the_grid(make_window, qtbot):
    win = make_window()
    win.controller.autorun = True
    win.compose_grid(list(GRID_PHOTOS))
    assert win.session.class_request.kind == "tiles"
    wait_idle(qtbot, win)
    expl = win.session.explanation
    assert [int(c) for c in expl.classes] == list(GRID_CLASSES)
    win.session.fill = "blur"
    assert win.controller.checks.select_top_fraction(0, 20.0)
    wait_idle(qtbot, win)
    r = win.session.mask_result
    assert r is not None and list(r.classes) == list(GRID_CLASSES)
    assert r.fraction == pytest.approx(0.2, abs=0.01)
    assert r.change[0] < 0, r.change  # the cat's probability drops ...
    assert (r.change[1:] > 0).all(), r.change  # ... while the other classes' rise
    n = int(win.session.mask.sum())
    for t in win.maps.tiles.values():  # the mask is drawn on every view
        if t.kind != "blank":
            assert int((t.mask.image[..., 3] > 0).sum()) == n
    np.testing.assert_allclose(win.masking_panel.plot.heights(1), r.after)
    # a rectangle adds to the mask; undo removes it again; clear empties it
    win.session.tool = "rectangle"
    vb = win.maps.map_tiles("base")[2].vb
    win.maps.tool_drag(vb, (150, 10), (200, 60), True, False)
    win.maps.tool_drag(vb, (150, 10), (200, 60), False, True)
    assert int(win.session.mask.sum()) > n
    wait_idle(qtbot, win)
    win.masking_panel.undo.click()
    assert int(win.session.mask.sum()) == n
    win.session.clear_mask()
    wait_idle(qtbot, win)
    assert not win.session.mask.any() and win.session.mask_result is None


def test_brush_strokes_paint_the_mask(make_window, qtbot):
    win = make_window()
    run(qtbot, win, "gradcam")
    win.masking_panel.tool.setCurrentIndex(win.masking_panel.tool.findData("brush"))
    assert win.session.tool == "brush"
    win.masking_panel.brush.setValue(5)
    vb = win.maps.map_tiles("refined")[0].vb
    # view coordinates: pixel (r, c) is the square [r, r+1) x [c, c+1)
    win.maps.tool_drag(vb, (50.5, 20.5), (50.5, 20.5), True, False)
    win.maps.tool_drag(vb, (50.5, 20.5), (50.5, 120.5), False, False)
    assert win.session.mask is None or not win.session.mask.any()  # previewed, committed when it ends
    assert (win.maps.tiles[("image", -1)].mask.image[50, 20:121, 3] > 0).all()
    win.maps.tool_drag(vb, (50.5, 20.5), (50.5, 120.5), False, True)
    m = win.session.mask
    assert m[50, 20:121].all() and m[46:55, 60].all() and not m[57, 60] and not m[50, 130]
    wait_idle(qtbot, win)
    assert win.session.mask_result is not None
    assert win.masking_panel.preview.isVisible()


def test_cancel_a_long_run_and_a_new_request_replaces_the_old(make_window, qtbot):
    win = make_window()
    first = run(qtbot, win, "gradcam")
    set_method(win, "ig", steps=1000, batch_size=10)
    task = win.run()
    with qtbot.waitSignal(win.controller.runner.progress, timeout=LONG):
        pass  # the run is under way
    assert win.controller.runner.busy("explain") and win.cancel_button.isEnabled()
    win.cancel_button.click()
    wait_idle(qtbot, win)
    assert task.cancelled and task.done
    # the worker thread returns to the pool right after its last signal
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=5000)
    assert win.session.explanation is first  # nothing half-done replaced the result
    assert not win.notifications.errors()
    assert not win.progress_bar.isVisible() and not win.session.activity.busy
    long_task = win.run()  # a new request cancels the running one
    with qtbot.waitSignal(win.controller.runner.progress, timeout=LONG):
        pass
    set_method(win, "gradcam")
    win.run()
    wait_idle(qtbot, win)
    assert long_task.cancelled
    assert win.session.explanation.method == "gradcam" and win.session.explanation is not first


def test_ig_shows_running_estimates_then_the_result(make_window, qtbot):
    win = make_window()
    first = run(qtbot, win, "gradcam")
    shown, estimates = [], []
    win.session.explanation_changed.connect(shown.append)
    win.session.estimate_changed.connect(estimates.append)
    final = run(qtbot, win, "ig", steps=12, batch_size=3)
    partial = [e.explanation for e in estimates if e is not None]
    assert len(partial) == 3 and all(e.partial for e in partial)  # after batches 1-3 of 4
    assert all(e.k == final.k and np.allclose(e.distribution.sum(0), 1, atol=1e-5) for e in partial)
    assert shown == [final] and not final.partial  # the shown explanation is never an estimate
    assert win.session.estimate is None and win.maps.explanation is final
    assert "partial estimate" not in win.maps.banner.text()
    # a run cancelled after showing an estimate clears it: the last complete result is drawn again
    set_method(win, "ig", steps=400, batch_size=4)
    win.run()
    qtbot.waitUntil(lambda: win.session.estimate is not None, timeout=LONG)
    assert win.session.explanation is final and win.maps.explanation is win.session.estimate.explanation
    assert "Partial estimate" in win.maps.banner.text() and "partial estimate" in win.maps.explanation.caption()
    win.cancel_button.click()
    wait_idle(qtbot, win)
    assert win.session.estimate is None and win.session.explanation is final and first is not final
    assert win.maps.explanation is final and "Partial estimate" not in win.maps.banner.text()
    assert all(t.sources[1] is win.session.rendered.base[i] for i, t in enumerate(win.maps.map_tiles("base")))


def test_export_png_svg_pdf_and_npz(make_window, qtbot, tmp_path):
    win = make_window()
    expl = run(qtbot, win, "gradcam")
    out = tmp_path / "out"
    for name, indices in (("all.png", None), ("cat.png", [0]), ("all.svg", None), ("all.pdf", None)):
        assert win.export_figure(str(out / name), indices) is not None
        wait_idle(qtbot, win)
    assert win.export_territory(str(out / "territory.png")) is not None
    wait_idle(qtbot, win)
    assert not win.notifications.errors(), win.notifications.errors()
    with Image.open(out / "all.png") as im:
        big = im.size
        assert im.format == "PNG" and min(im.size) > 100
    with Image.open(out / "cat.png") as im:
        assert im.size[1] < big[1]  # one class: one row instead of K + the territory row
    assert ET.parse(out / "all.svg").getroot().tag.endswith("svg")
    assert (out / "all.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "territory.png").stat().st_size > 1000
    assert win.export_npz(str(out / "maps.npz")) is not None
    wait_idle(qtbot, win)
    with np.load(out / "maps.npz") as z:
        np.testing.assert_array_equal(z["refined"], expl.refined)
        np.testing.assert_array_equal(z["classes"], expl.classes)
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
    target = out / "all.png"  # overwriting asks first; "no" keeps the file, "yes" replaces it
    target.write_bytes(b"keep me")
    asked = []
    win.confirm_overwrite = lambda p: asked.append(p) or False
    assert win.export_figure(str(target)) is None
    assert target.read_bytes() == b"keep me" and asked == [str(target)]
    win.confirm_overwrite = lambda p: True
    win.export_figure(str(target))
    wait_idle(qtbot, win)
    assert target.read_bytes().startswith(b"\x89PNG")
    assert win.export_figure(str(out / "fig.bmp")) is None  # an unknown suffix is refused with a message
    assert ".png" in win.notifications.errors()[-1]


def test_garbage_is_collected_on_the_gui_thread_only(make_window, qtbot, tmp_path):
    """Automatic collection in a worker deleted Qt objects there and froze the window (a deadlock
    between Qt's object lock and the GIL, seen as a hung export); workers must never collect."""
    import gc
    import threading

    main = threading.get_ident()
    where = []

    def seen(phase, info):
        if phase == "start":
            where.append(threading.get_ident())

    win = make_window()
    assert not gc.isenabled()  # the window's task runner took collection over
    # torch, the model and the GUI are frozen out of later collections (a full one stalls 0.2-0.4 s)
    assert gc.get_freeze_count() > 100_000
    gc.callbacks.append(seen)
    try:
        run(qtbot, win, "gradcam")
        for name in ("a.png", "b.pdf", "c.svg"):  # matplotlib makes plenty of cyclic garbage
            win.export_figure(str(tmp_path / name))
            wait_idle(qtbot, win)
        qtbot.wait(1200)  # at least two ticks of the collector's timer
    finally:
        gc.callbacks.remove(seen)
    assert where, "nothing was collected at all"
    assert set(where) == {main}, f"{sum(t != main for t in where)} collections ran in worker threads"


def test_unreadable_image_file_keeps_the_window_usable(make_window, qtbot, tmp_path):
    win = make_window()
    expl = run(qtbot, win, "gradcam")
    shown = win.session.image_request
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    assert win.open_image(str(bad))
    wait_idle(qtbot, win)
    assert "broken.png" in win.notifications.errors()[-1]
    assert win.session.explanation is expl and win.session.image_request == shown  # the label matches the maps
    assert not win.open_image(str(tmp_path / "missing.jpg"))
    assert "no such file" in win.notifications.errors()[-1]
    n = len(win.notifications.errors())
    win.run()
    wait_idle(qtbot, win)
    assert len(win.notifications.errors()) == n and win.session.explanation is not expl


def test_wrong_checkpoint_is_a_message(make_window, qtbot, tmp_path, explainer):
    import torch

    win = make_window()
    run(qtbot, win, "gradcam")
    ckpt = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(3, 8), "fc.bias": torch.zeros(3)}, ckpt)
    win.session.model_request = ModelRequest(spec=str(ckpt), arch="timm:resnet18", device="cpu")
    win.controller.load_model()
    wait_idle(qtbot, win)
    assert "does not fit" in win.notifications.errors()[-1]
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    win.model_panel.spec.setCurrentText(str(garbage))
    win.model_panel.load.click()
    wait_idle(qtbot, win)
    assert "garbage.pth" in win.notifications.errors()[-1]
    assert win.session.model is explainer.loaded  # the working model stays
    n = len(win.notifications.errors())
    win.run()
    wait_idle(qtbot, win)
    assert len(win.notifications.errors()) == n


def test_a_first_model_that_cannot_load_falls_back_to_the_default(qtbot, tmp_path):
    from alens_gui.qt.window import MainWindow

    # what `alens-gui --model timm:NAME` does offline when the weights are not cached
    win = MainWindow(None, model_spec=str(tmp_path / "missing.pt"), config_dir=tmp_path / "cfg", autorun=False)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.session.model is not None and not win.controller.runner.busy(), timeout=LONG)
    assert win.session.model.name.startswith("EfficientNet-Lite0") and win.session.model.num_classes == 1000
    text = " ".join(t for _, t in win.notifications.messages)
    assert "missing.pt" in text and "default model" in text
    assert win.session.model_request.spec == "default"
    win.close()


def test_labels_that_do_not_match_the_model(make_window, qtbot, tmp_path, explainer):
    win = make_window()
    run(qtbot, win, "gradcam")
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"grade {i}" for i in range(1, 5)), encoding="utf-8")
    win.model_panel.labels.setText(str(labels))
    win.model_panel.device.setCurrentIndex(win.model_panel.device.findData("cpu"))
    win.model_panel.load.click()
    wait_idle(qtbot, win)
    msg = win.notifications.errors()[-1]
    assert "4 class names" in msg and "1000" in msg
    assert win.session.model is explainer.loaded


def test_fewer_than_two_classes_is_a_message(make_window, qtbot):
    win = make_window()
    expl = run(qtbot, win, "gradcam")
    win.session.class_request = ClassRequest(kind="picked", classes=(285,))
    assert win.class_panel.classes.checked() == [285]
    win.run()
    wait_idle(qtbot, win)
    assert "K >= 2" in win.notifications.errors()[-1]
    win.class_panel.mode.setCurrentIndex(win.class_panel.mode.findData("topk"))
    win.class_panel.k.setValue(1)
    win.run()
    wait_idle(qtbot, win)
    assert "k >= 2" in win.notifications.errors()[-1]
    assert win.session.explanation is expl
    win.class_panel.lowest.setChecked(True)  # 1 + lowest = 2 classes is fine
    assert win.session.class_request == ClassRequest(kind="topk", k=1, with_lowest=True)
    win.run()
    wait_idle(qtbot, win)
    assert win.session.explanation.k == 2


def test_class_set_presets_are_saved_and_offered_again(make_window, qtbot, tmp_path):
    cfg = tmp_path / "shared-config"
    win = make_window(config_dir=cfg)
    assert win.class_panel.save_preset("grid game", list(GRID_CLASSES))
    assert not win.class_panel.save_preset("too small", [285])
    data = json.loads((cfg / "class_presets.json").read_text(encoding="utf-8"))
    assert data == {"grid game": list(GRID_CLASSES)}
    again = make_window(config_dir=cfg)
    combo = again.class_panel.preset_combo
    names = [combo.itemData(i) for i in range(combo.count())]
    assert "grid game" in names
    combo.activated.emit(names.index("grid game"))
    assert again.session.class_request == ClassRequest(kind="picked", classes=tuple(GRID_CLASSES))
    assert again.class_panel.classes.checked() == list(GRID_CLASSES)
    lst = again.class_panel.classes
    lst.search.setText("espresso")  # the searchable list filters by name
    visible = [lst.list.item(i).text() for i in range(lst.list.count()) if not lst.list.item(i).isHidden()]
    assert visible == ["550 espresso maker", "967 espresso"]


def test_method_options_are_built_from_the_registry(make_window):
    from alens_gui.core.methods import list_methods

    win = make_window()
    for info in list_methods():
        win.session.method = info.name
        values = win.method_panel.form.values()
        assert set(values) == set(info.options) and win.session.options == values
        assert info.resolve_options(values) == info.resolve_options({})  # editors start at the defaults
    win.session.method = "ig"
    win.session.options = {**win.session.options, "steps": 7, "baseline": "blurred"}
    assert win.method_panel.form.values()["steps"] == 7 and win.method_panel.form.values()["baseline"] == "blurred"
    win.session.method = "gradcam"
    win.session.method = "ig"  # each method remembers its own options
    assert win.session.options["steps"] == 7


def test_changing_the_method_marks_the_maps_stale(make_window, qtbot):
    win = make_window()
    run(qtbot, win, "gradcam")
    assert not win.maps.banner.isVisible()
    win.session.method = "ixg"
    assert win.session.stale and "Run (Ctrl+R)" in win.maps.banner.text()
    run(qtbot, win, "ixg")
    assert not win.session.stale


def test_zoom_is_linked_across_views(make_window, qtbot):
    win = make_window()
    run(qtbot, win, "gradcam")
    tile = win.maps.map_tiles("base")[0]
    tile.vb.setRange(QRectF(50, 60, 40, 40), padding=0.0)
    win.maps.sync_range(tile.vb)
    for t in win.maps.tiles.values():
        # every tile is asked for the same region (what a tile then shows around it depends on its own
        # shape: its view rect keeps the image's pixels square, so it may show more on one side)
        asked = t.vb.targetRect()
        assert asked.contains(QRectF(50.5, 60.5, 39, 39)) and t.vb.viewRect().contains(QRectF(50.5, 60.5, 39, 39))
        assert asked.width() * asked.height() < 0.25 * 300 * 451  # zoomed in: no longer the whole image
    win.maps.reset_zoom()
    assert win.maps.map_tiles("refined")[1].vb.viewRect().contains(QRectF(0.5, 0.5, 450, 299))


def test_grid_pointing_game_from_the_evaluate_menu(make_window, qtbot):
    win = make_window()
    win.session.method = "gradcam"
    assert win.controller.checks.run_grid_game(2) is not None
    wait_idle(qtbot, win)
    assert not win.notifications.errors()
    r = win.controller.checks.grid_game_result["gradcam"]
    assert r["base"]["n"] == r["al"]["n"] == 8  # 2 grids x 4 tiles
    assert r["al"]["ra"] > r["base"]["ra"]  # the lens puts more of Grad-CAM's mass in the right tile
    assert "grid game, Grad-CAM" in win.notifications.messages[-1][1]


def test_drag_and_drop_opens_the_file_and_it_becomes_recent(make_window, qtbot, chelsea_png):
    from PySide6.QtCore import QMimeData, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    win = make_window()
    win.open_sample("coffee")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(chelsea_png))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    win.dropEvent(event)
    assert win.session.image_request.path == str(chelsea_png.resolve())
    wait_idle(qtbot, win)
    assert win.session.image.pixels.shape == (300, 451, 3)
    assert [a.text() for a in win.recent_menu.actions()] == [str(chelsea_png.resolve())]


def test_a_file_that_could_not_be_read_is_not_listed_as_recent(make_window, qtbot, tmp_path, chelsea_png):
    # Recent lists what opened: a broken image or session is one notification, not a menu entry that fails again
    win = make_window()
    wait_idle(qtbot, win)
    broken = tmp_path / "broken.png"
    broken.write_text("this is not a picture")
    assert win.open_image(str(broken))
    wait_idle(qtbot, win)
    assert win.notifications.errors() and str(broken.resolve()) not in win.recent_files()
    bad_session = tmp_path / "bad.alens"
    bad_session.write_bytes(b"PK\x03\x04 not a session")
    win.open_session(bad_session)
    wait_idle(qtbot, win)
    assert str(bad_session.resolve()) not in win.recent_sessions()
    assert win.open_image(str(chelsea_png))
    wait_idle(qtbot, win)
    assert win.recent_files()[0] == str(chelsea_png.resolve())
    assert win.save_session(tmp_path / "good") is not None
    wait_idle(qtbot, win)
    assert win.recent_sessions() == [str((tmp_path / "good.alens").resolve())]


def test_command_line_arguments():
    from alens_gui.qt.app import build_parser

    args = build_parser().parse_args(["cat.png", "--model", "ck.pt", "--arch", "timm:resnet18",
                                      "--labels", "l.txt", "--device", "cpu"])
    assert (args.path, args.model, args.arch, args.labels, args.device, args.torchscript) == (
        ["cat.png"], "ck.pt", "timm:resnet18", "l.txt", "cpu", False)
    assert build_parser().parse_args(["a.png", "b.png"]).path == ["a.png", "b.png"]  # a comparison
    assert build_parser().parse_args([]).model == "default"
    assert build_parser().parse_args(["--model", "net.pt", "--torchscript"]).torchscript


def test_save_dialogs_suggest_a_file_name(make_window, qtbot, tmp_path, monkeypatch):
    """File → Export offers '<image>-<method>.png' instead of an empty name, and writes where the user says."""
    from PySide6.QtWidgets import QFileDialog

    win = make_window()
    run(qtbot, win, "gradcam")  # chelsea
    asked, starts = [], []

    def fake_dialog(parent, title, suggested, filt, options=None):
        asked.append(Path(suggested).name)
        starts.append(Path(suggested).parent)
        return str(tmp_path / Path(suggested).name), filt.split(";;")[0]

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_dialog))
    action = next(a for a in win.findChildren(QAction) if a.text().replace("&", "").startswith("Export figure (all classes)"))
    action.trigger()
    wait_idle(qtbot, win)
    assert asked == ["chelsea_sample_photograph-gradcam.png"]
    qtbot.waitUntil(lambda: (tmp_path / asked[0]).exists(), timeout=60_000)
    action = next(a for a in win.findChildren(QAction) if a.text().replace("&", "").startswith("Export class territory"))
    action.trigger()
    wait_idle(qtbot, win)
    assert asked[-1] == "chelsea_sample_photograph-gradcam-territory.png"
    assert starts[-1] == tmp_path  # the second dialog starts in the folder the first one was left in
