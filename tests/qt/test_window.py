"""The real main window, offscreen, on the real default model and real photographs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, QRectF, QThreadPool

GRID_NAMES = ("chelsea", "coffee", "rocket", "stereo_motorcycle")
GRID_CLASSES = [285, 967, 540, 665]
LONG = 180_000


def wait_idle(qtbot, win, timeout=LONG):
    qtbot.waitUntil(lambda: not win.runner.busy(), timeout=timeout)


def run(qtbot, win, method="gradcam", **options):
    win.set_method(method, **options)
    task = win.run_explanation()
    assert task is not None, win.notifications.messages
    wait_idle(qtbot, win)
    assert not win.notifications.errors(), win.notifications.errors()
    return win.model.explanation


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
    expl = win.model.explanation
    assert expl is not None and expl.method == "ixg"
    assert int(expl.classes[0]) == 285  # chelsea is an Egyptian cat
    assert win.device_label.text() == "CPU"
    assert "chelsea" in win.source_label


def test_open_image_and_see_k_refined_maps(make_window, qtbot, chelsea_png):
    win = make_window()
    win.set_class_mode("topk", k=4)
    win.autorun = True
    assert win.open_image(str(chelsea_png))
    wait_idle(qtbot, win)
    expl = win.model.explanation
    assert expl.k == 4 and len(win.maps.refined_cells) == 4 and len(win.maps.base_cells) == 4
    for i, cell in enumerate(win.maps.refined_cells):
        np.testing.assert_array_equal(cell.heat.image, expl.refined[i])
        np.testing.assert_array_equal(win.maps.base_cells[i].heat.image, expl.base[i])
    assert not np.array_equal(expl.refined, expl.base)
    assert str(chelsea_png.resolve()) in win.recent_files()
    # the probabilities panel shows the class set's probabilities
    np.testing.assert_allclose(win.probabilities.bars.opts["height"], expl.probs)


def test_hover_reads_the_class_distribution(make_window, qtbot):
    win = make_window()
    expl = run(qtbot, win, "ixg")
    y, x = 120, 97
    pos = win.maps.scene_pos_of(y, x, win.maps.refined_cells[1])
    win.maps.scene().sigMouseMoved.emit(pos)
    qtbot.waitUntil(lambda: win.model.hover == (y, x), timeout=5000)
    d = win.distribution.values
    assert d is not None and d.shape == (expl.k,)
    assert d.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(d, expl.distribution_at(y, x), rtol=1e-6)
    np.testing.assert_allclose(win.distribution.base_values, expl.base[:, y, x], rtol=1e-6)
    # the crosshair is at that pixel in every view
    for cell in win.maps.cells():
        assert cell.cross.isVisible()
        xs, ys = cell.cross.getData()
        assert xs[2] == x + 0.5 and ys[0] == y + 0.5
    # leaving the views hides it
    win.maps.scene().sigMouseMoved.emit(QPointF(-5000, -5000))
    qtbot.waitUntil(lambda: win.model.hover == (-1, -1), timeout=5000)
    assert not any(cell.cross.isVisible() for cell in win.maps.cells())


def test_lens_controls_relens_without_a_model_call(make_window, qtbot, explainer):
    win = make_window()
    expl = run(qtbot, win, "ixg")
    before = [c.heat.image.copy() for c in win.maps.refined_cells]
    with ForwardCounter(explainer.model) as counter:
        win.tau_spin.setValue(0.2)
        after = win.model.explanation
        assert after.lens.tau == pytest.approx(0.2)
        assert counter.calls == 0
        assert not win.runner.busy()
        changed = [not np.array_equal(b, c.heat.image) for b, c in zip(before, win.maps.refined_cells)]
        assert any(changed)
        # a larger margin keeps fewer pixels
        assert (after.refined != 0).sum() < (expl.refined != 0).sum()
        np.testing.assert_array_equal(after.base, expl.base)
        win.lens_preset.setCurrentText("VAR")
        assert win.model.explanation.lens.temperatures == (0.1,)
        assert win.temps_edit.text() == "0.1"
        win.normalize_combo.setCurrentText("joint-maxabs")
        assert win.model.explanation.lens.normalize == "joint-maxabs"
        assert win.lens_preset.currentText() == "custom"
        assert counter.calls == 0
    # a bad temperature is a message, not a crash, and the maps stay
    win.temps_edit.setText("0, x")
    win.apply_lens()
    assert "temperatures" in win.notifications.errors()[-1]
    assert win.model.explanation is not None


def test_masking_the_top_of_one_class_on_the_grid(make_window, qtbot):
    win = make_window()
    win.autorun = True
    assert win.compose_grid(list(GRID_NAMES))
    win.set_method("gradcam")
    wait_idle(qtbot, win)  # the first run (ixg) found the tiles' classes
    expl = run(qtbot, win, "gradcam")
    assert [int(c) for c in expl.classes] == GRID_CLASSES
    assert win.class_list.checked() == GRID_CLASSES
    win.fill_combo.setCurrentText("blur")
    assert win.select_top_fraction(0, 20.0)
    wait_idle(qtbot, win)
    r = win.model.mask_result
    assert r is not None and list(r.classes) == GRID_CLASSES
    assert r.fraction == pytest.approx(0.2, abs=0.01)
    assert r.change[0] < 0, r.change  # the cat's probability drops ...
    assert (r.change[1:] > 0).all(), r.change  # ... while the other classes' rise
    # the mask is drawn on every view
    n = int(win.model.mask.sum())
    for cell in win.maps.cells():
        assert int((cell.mask.image[..., 3] > 0).sum()) == n
    # the before/after bars show the result
    np.testing.assert_allclose(win.mask_panel.after.opts["height"], r.after)
    # a rectangle adds to the mask; undo removes it again; clear empties it
    win.tool_combo.setCurrentText("rectangle")
    vb = win.maps.base_cells[2].vb
    win.maps.tool_drag(vb, (150, 10), (200, 60), True, False)
    win.maps.tool_drag(vb, (150, 10), (200, 60), False, True)
    assert int(win.model.mask.sum()) > n
    wait_idle(qtbot, win)
    win.model.undo_mask()
    assert int(win.model.mask.sum()) == n
    win.model.clear_mask()
    wait_idle(qtbot, win)
    assert not win.model.mask.any() and win.model.mask_result is None


def test_brush_strokes_paint_the_mask(make_window, qtbot):
    win = make_window()
    run(qtbot, win, "gradcam")
    win.tool_combo.setCurrentText("brush")
    win.brush_spin.setValue(5)
    vb = win.maps.refined_cells[0].vb
    # view coordinates: pixel (r, c) is the square [r, r+1) x [c, c+1)
    win.maps.tool_drag(vb, (50.5, 20.5), (50.5, 20.5), True, False)
    win.maps.tool_drag(vb, (50.5, 20.5), (50.5, 120.5), False, False)
    assert not win.model.mask.any()  # the stroke is previewed, committed when it ends
    assert (win.maps.image_cell.mask.image[50, 20:121, 3] > 0).all()
    win.maps.tool_drag(vb, (50.5, 20.5), (50.5, 120.5), False, True)
    m = win.model.mask
    assert m[50, 20:121].all() and m[46:55, 60].all() and not m[57, 60] and not m[50, 130]
    wait_idle(qtbot, win)
    assert win.model.mask_result is not None


def test_cancel_a_long_run_and_a_new_request_replaces_the_old(make_window, qtbot):
    win = make_window()
    first = run(qtbot, win, "gradcam")
    win.set_method("ig", steps=1000, batch_size=10)
    task = win.run_explanation()
    with qtbot.waitSignal(win.runner.progress, timeout=LONG):
        pass  # the run is under way
    assert win.runner.busy("explain") and win.cancel_button.isEnabled()
    win.cancel_button.click()
    wait_idle(qtbot, win)
    assert task.cancelled and task.done
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    assert win.model.explanation is first  # nothing half-done replaced the result
    assert not win.notifications.errors()
    assert not win.progress_bar.isVisible()
    # a new request cancels the running one
    long_task = win.run_explanation()
    with qtbot.waitSignal(win.runner.progress, timeout=LONG):
        pass
    win.set_method("gradcam")
    win.run_explanation()
    wait_idle(qtbot, win)
    assert long_task.cancelled
    assert win.model.explanation.method == "gradcam" and win.model.explanation is not first


def test_ig_shows_running_estimates_then_the_result(make_window, qtbot):
    win = make_window()
    first = run(qtbot, win, "gradcam")
    shown = []
    win.model.changed.connect(lambda e: shown.append(e))
    final = run(qtbot, win, "ig", steps=12, batch_size=3)
    partial = [e for e in shown if e is not None and "(partial estimate)" in e.method_label]
    assert len(partial) == 3  # after batches 1-3 of 4
    assert all(e.k == final.k and np.allclose(e.distribution.sum(0), 1, atol=1e-5) for e in partial)
    assert win.model.explanation is final and "partial" not in final.method_label
    # a run cancelled after showing an estimate goes back to the last complete result
    win.set_method("ig", steps=400, batch_size=4)
    win.run_explanation()
    qtbot.waitUntil(lambda: "(partial estimate)" in win.model.explanation.method_label, timeout=LONG)
    win.cancel_button.click()
    wait_idle(qtbot, win)
    assert win.model.explanation is final and first is not final


def test_export_png_svg_pdf_and_npz(make_window, qtbot, tmp_path):
    win = make_window()
    expl = run(qtbot, win, "gradcam")
    out = tmp_path / "out"
    for name, indices in (("all.png", None), ("cat.png", [0]), ("all.svg", None), ("all.pdf", None)):
        assert win.export_figure(str(out / name), indices) is not None
        wait_idle(qtbot, win)
    assert not win.notifications.errors(), win.notifications.errors()
    with Image.open(out / "all.png") as im:
        big = im.size
        assert im.format == "PNG" and min(im.size) > 100
    with Image.open(out / "cat.png") as im:
        assert im.size[1] < big[1]  # one class: one row instead of K
    root = ET.parse(out / "all.svg").getroot()
    assert root.tag.endswith("svg")
    assert "<svg" in (out / "all.svg").read_text(encoding="utf-8")
    assert (out / "all.pdf").read_bytes().startswith(b"%PDF")
    assert win.export_npz(str(out / "maps.npz")) is not None
    wait_idle(qtbot, win)
    with np.load(out / "maps.npz") as z:
        np.testing.assert_array_equal(z["refined"], expl.refined)
        np.testing.assert_array_equal(z["classes"], expl.classes)
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
    # overwriting asks first; "no" keeps the file, "yes" replaces it
    target = out / "all.png"
    target.write_bytes(b"keep me")
    asked = []
    win.confirm_overwrite = lambda p: asked.append(p) or False
    assert win.export_figure(str(target)) is None
    assert target.read_bytes() == b"keep me" and asked == [str(target)]
    win.confirm_overwrite = lambda p: True
    win.export_figure(str(target))
    wait_idle(qtbot, win)
    assert target.read_bytes().startswith(b"\x89PNG")
    # an unknown suffix is refused with a message
    assert win.export_figure(str(out / "fig.bmp")) is None
    assert ".png" in win.notifications.errors()[-1]


def test_unreadable_image_file_keeps_the_window_usable(make_window, qtbot, tmp_path):
    win = make_window()
    expl = run(qtbot, win, "gradcam")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    assert not win.open_image(str(bad))
    assert "broken.png" in win.notifications.errors()[-1]
    assert win.model.explanation is expl and "chelsea" in win.source_label
    assert not win.open_image(str(tmp_path / "missing.jpg"))
    assert "no such file" in win.notifications.errors()[-1]
    assert run_ok(qtbot, win)


def run_ok(qtbot, win) -> bool:
    n = len(win.notifications.errors())
    win.run_explanation()
    wait_idle(qtbot, win)
    return len(win.notifications.errors()) == n and win.model.explanation is not None


def test_wrong_checkpoint_is_a_message(make_window, qtbot, tmp_path, explainer):
    import torch

    win = make_window()
    run(qtbot, win, "gradcam")
    ckpt = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(3, 8), "fc.bias": torch.zeros(3)}, ckpt)
    win.load_model(str(ckpt), "timm:resnet18", None, "cpu")
    wait_idle(qtbot, win)
    assert "does not fit" in win.notifications.errors()[-1]
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    win.load_model(str(garbage), "timm:resnet18", None, "cpu")
    wait_idle(qtbot, win)
    assert "garbage.pth" in win.notifications.errors()[-1]
    assert win.loaded is explainer.loaded
    assert run_ok(qtbot, win)


def test_a_first_model_that_cannot_load_falls_back_to_the_default(qtbot, tmp_path):
    from alens_gui.qt.window import MainWindow

    # what `alens-gui --model timm:NAME` does offline when the weights are not cached
    win = MainWindow(None, model_spec=str(tmp_path / "missing.pt"), config_dir=tmp_path / "cfg", autorun=False)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.loaded is not None and not win.runner.busy(), timeout=LONG)
    assert win.loaded.name.startswith("EfficientNet-Lite0") and win.loaded.num_classes == 1000
    text = " ".join(t for _, t in win.notifications.messages)
    assert "missing.pt" in text and "using the default model" in text
    win.close()


def test_labels_that_do_not_match_the_model(make_window, qtbot, tmp_path, explainer):
    win = make_window()
    run(qtbot, win, "gradcam")
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"grade {i}" for i in range(1, 5)), encoding="utf-8")
    win.model_spec.setCurrentText("default")
    win.labels_edit.setText(str(labels))
    win.device_combo.setCurrentText("cpu")
    win._load_from_controls()
    wait_idle(qtbot, win)
    msg = win.notifications.errors()[-1]
    assert "4 class names" in msg and "1000" in msg
    assert win.loaded is explainer.loaded and win.model_name.text() == explainer.loaded.name
    assert run_ok(qtbot, win)


def test_fewer_than_two_classes_is_a_message(make_window, qtbot):
    win = make_window()
    expl = run(qtbot, win, "gradcam")
    win.set_class_mode("picked", classes=[285])
    assert win.run_explanation() is None
    assert "K >= 2" in win.notifications.errors()[-1]
    win.set_class_mode("topk", k=1, with_lowest=False)
    assert win.run_explanation() is None
    assert "K >= 2" in win.notifications.errors()[-1]
    assert win.model.explanation is expl
    win.set_class_mode("topk", k=1, with_lowest=True)  # 1 + lowest = 2 classes is fine
    assert run_ok(qtbot, win) and win.model.explanation.k == 2


def test_class_set_presets_are_saved_and_offered_again(make_window, qtbot, tmp_path):
    cfg = tmp_path / "shared-config"
    win = make_window(config_dir=cfg)
    assert win.save_preset("grid game", GRID_CLASSES)
    assert not win.save_preset("too small", [285])
    data = json.loads((cfg / "class_presets.json").read_text(encoding="utf-8"))
    assert data == {"grid game": GRID_CLASSES}
    again = make_window(config_dir=cfg)
    names = [again.preset_combo.itemData(i) for i in range(again.preset_combo.count())]
    assert "grid game" in names
    again.preset_combo.setCurrentIndex(names.index("grid game"))
    again._on_preset_chosen(names.index("grid game"))
    assert again.class_list.checked() == GRID_CLASSES
    assert again.class_mode.currentData() == "picked"
    # the searchable list filters by name
    again.class_list.search.setText("espresso")
    visible = [again.class_list.list.item(i).text() for i in range(again.class_list.list.count())
               if not again.class_list.list.item(i).isHidden()]
    assert visible == ["550 espresso maker", "967 espresso"]


def test_method_options_are_built_from_the_registry(make_window):
    from alens_gui.core.methods import list_methods

    win = make_window()
    for info in list_methods():
        win.set_method(info.name)
        values = win.options_form.values()
        assert set(values) == set(info.options)
        assert info.resolve_options(values) == info.resolve_options({})  # editors start at the defaults
    win.set_method("ig", steps=7, baseline="blurred")
    assert win.options_form.values()["steps"] == 7 and win.options_form.values()["baseline"] == "blurred"


def test_zoom_is_linked_across_views(make_window, qtbot):
    win = make_window()
    run(qtbot, win, "gradcam")
    win.maps.set_view_rect(QRectF(50, 60, 40, 40))
    for cell in win.maps.cells():
        r = cell.vb.viewRect()
        assert r.contains(QRectF(50.5, 60.5, 39, 39))
        assert r.width() * r.height() < 0.25 * 224 * 224  # zoomed in: no longer the whole image


def test_grid_pointing_game_from_the_evaluate_menu(make_window, qtbot):
    win = make_window()
    win.set_method("gradcam")
    assert win.run_grid_game(2) is not None
    wait_idle(qtbot, win)
    assert not win.notifications.errors()
    r = win.grid_game_result["gradcam"]
    assert r["base"]["n"] == r["al"]["n"] == 8  # 2 grids x 4 tiles
    assert r["al"]["iou"] > r["base"]["iou"]  # the lens localises Grad-CAM's tiles better
    assert "grid game, Grad-CAM" in win.notifications.messages[-1][1]


def test_drag_and_drop_opens_the_file_and_it_becomes_recent(make_window, qtbot, chelsea_png):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    win = make_window()
    win.open_sample("coffee")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(chelsea_png))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    win.dropEvent(event)
    assert win.source_label == str(chelsea_png)
    assert win.source.shape == (300, 451, 3)
    assert [a.text() for a in win.recent_menu.actions()] == [str(chelsea_png.resolve())]


def test_command_line_arguments():
    from alens_gui.qt.app import build_parser

    args = build_parser().parse_args(["cat.png", "--model", "ck.pt", "--arch", "timm:resnet18",
                                      "--labels", "l.txt", "--device", "cpu"])
    assert (args.image, args.model, args.arch, args.labels, args.device) == (
        "cat.png", "ck.pt", "timm:resnet18", "l.txt", "cpu")
    assert build_parser().parse_args([]).model == "default"
