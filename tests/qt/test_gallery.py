"""A folder of images: the gallery table, right and wrong, explain all, the cache, next/previous, compare."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest

from .conftest import wait_idle
from .test_window import ForwardCounter


def save(img, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.asarray(img) * 255).round().astype(np.uint8)).save(path)
    return path


@pytest.fixture
def labelled_folder(tmp_path, photos):
    """Class sub-folders named like the model's classes; one espresso filed under the cat by mistake."""
    root = tmp_path / "cases"
    save(photos["chelsea"], root / "Egyptian cat" / "cat1.png")
    save(photos["chelsea"][:, 60:400], root / "Egyptian cat" / "cat2.png")
    save(photos["coffee"], root / "Egyptian cat" / "mislabelled.png")
    save(photos["coffee"], root / "espresso" / "cup1.png")
    save(photos["coffee"][50:350, 100:500], root / "espresso" / "cup2.png")
    return root


def test_a_labelled_folder_shows_right_and_wrong(make_window, qtbot, labelled_folder):
    win = make_window()
    wait_idle(qtbot, win)
    assert win.open_folder(labelled_folder, recursive=True) is not None
    wait_idle(qtbot, win)
    g = win.session.gallery
    assert [r.rel for r in g.rows] == ["Egyptian cat/cat1.png", "Egyptian cat/cat2.png",
                                       "Egyptian cat/mislabelled.png", "espresso/cup1.png", "espresso/cup2.png"]
    assert all(r.pred is not None for r in g.rows)
    ok = {r.rel: r.correct() for r in g.rows}
    assert ok["Egyptian cat/mislabelled.png"] is False and ok["espresso/cup1.png"] is True
    assert ok["Egyptian cat/cat1.png"] is True
    view = win.gallery
    view.show_combo.setCurrentIndex(view.show_combo.findData("wrong"))
    assert view.proxy.rowCount() == 1
    view.show_combo.setCurrentIndex(view.show_combo.findData("all"))
    view.sort_wrong_first()
    first = view.proxy.mapToSource(view.proxy.index(0, 0)).row()
    assert g.rows[first].rel == "Egyptian cat/mislabelled.png"
    view.search.setText("cup")
    assert view.proxy.rowCount() == 2
    view.search.setText("")
    # thumbnails arrive lazily, for the rows on screen, and for the others once scrolled to
    qtbot.waitUntil(lambda: g.rows[0].thumb is not None, timeout=30_000)
    assert g.rows[0].thumb.width() <= 56 and g.rows[0].thumb.height() <= 56
    for i in range(view.proxy.rowCount()):
        view.table.scrollTo(view.proxy.index(i, 0))
        qtbot.wait(50)
    qtbot.waitUntil(lambda: all(r.thumb is not None for r in g.rows), timeout=30_000)


def test_a_folder_opened_before_the_model_is_in_is_classified_once_it_is(make_window, qtbot, labelled_folder,
                                                                            explainer):
    # alens-gui FOLDER: the folder is listed while the model still loads; its images were never
    # classified ("…" in the predicted column for good), and another model kept the last one's verdicts
    win = make_window()
    wait_idle(qtbot, win)
    s = win.session
    s.model = None  # as at start-up: the model is not in yet
    assert win.open_folder(labelled_folder, recursive=True) is not None
    wait_idle(qtbot, win)
    assert len(s.gallery.rows) == 5 and all(r.pred is None for r in s.gallery.rows)
    win.controller.set_loaded(explainer.loaded)  # the model arrives
    wait_idle(qtbot, win)
    # and the gallery shows several rows, not one (it shared the bottom with the notifications)
    assert win.gallery_dock.height() >= 200, win.gallery_dock.height()
    assert all(r.pred is not None for r in s.gallery.rows)
    assert {r.rel: r.correct() for r in s.gallery.rows}["Egyptian cat/mislabelled.png"] is False
    # the same model again: nothing is listed again
    before = s.gallery.rows
    win.controller.set_loaded(explainer.loaded)
    assert s.gallery.rows is before and not win.controller.runner.busy("folder")


def test_explain_all_caches_and_reopening_is_instant(make_window, qtbot, labelled_folder, explainer, tmp_path):
    cfg = tmp_path / "cfg"
    win = make_window(config_dir=cfg)
    wait_idle(qtbot, win)
    win.session.method = "gradcam"
    win.open_folder(labelled_folder, recursive=True)
    wait_idle(qtbot, win)
    assert win.controller.gallery.explain_all() is not None
    wait_idle(qtbot, win)
    g = win.session.gallery
    assert all(r.explained for r in g.rows)
    # a new window on the same folder: predictions and explanations come from the cache, no model run
    again = make_window(config_dir=cfg)
    wait_idle(qtbot, again)
    again.session.method = "gradcam"
    with ForwardCounter(explainer.model) as counter:
        again.open_folder(labelled_folder, recursive=True)
        wait_idle(qtbot, again)
        rows = again.session.gallery.rows
        assert all(r.pred is not None and r.explained for r in rows)
        again.gallery.table.setFocus()
        again.controller.gallery.open_row(3)  # espresso/cup1.png
        wait_idle(qtbot, again)
        assert counter.calls == 0
    e = again.session.explanation
    assert e is not None and e.source["file"] == "cup1.png" and int(e.classes[0]) == 967
    assert again.session.image_request.path.endswith("cup1.png")
    assert not again.session.stale
    # the cache is the user's cache folder (here ALENS_CACHE_DIR), not the config folder, and its
    # entries keep no pixels: the image on screen was read again from the file
    root = again.controller.cache.root
    assert root == Path(os.environ["ALENS_CACHE_DIR"]) and not (cfg / "cache").exists()
    entries = sorted((root / "explanations").glob("*.npz"))
    assert len(entries) == 5
    for entry in entries:
        with zipfile.ZipFile(entry) as z:
            assert "image.npy" not in z.namelist()
    assert e.image.shape[:2] == e.shape
    # while the class set is being edited (one picked class: no run yet) nothing is looked up or
    # marked under a key of some other run; once it is a run again, its entries are found
    from alens_gui.qt.session import ClassRequest

    wanted = again.session.class_request
    again.session.class_request = ClassRequest(kind="picked", classes=(967,))
    assert all(again.controller.gallery.explain_key_fn()(r.path) is None for r in rows)
    again.open_folder(labelled_folder, recursive=True)
    wait_idle(qtbot, again)
    assert len(again.session.gallery.rows) == 5 and not any(r.explained for r in again.session.gallery.rows)
    again.session.class_request = wanted
    key = again.controller.gallery.explain_key_fn()
    assert sorted(f"{key(r.path)}.npz" for r in rows) == [p.name for p in entries]


def _menu_action(win, text: str) -> QAction:
    return next(a for a in win.findChildren(QAction) if a.text().replace("&", "").startswith(text))


def test_clear_the_cache_asks_with_its_size_and_clears(make_window, qtbot, labelled_folder):
    win = make_window()
    wait_idle(qtbot, win)
    win.session.method = "gradcam"
    win.open_folder(labelled_folder, recursive=True)
    wait_idle(qtbot, win)
    win.controller.gallery.explain_all()
    wait_idle(qtbot, win)
    root = win.controller.cache.root
    assert len(list((root / "explanations").glob("*.npz"))) == 5
    asked = []
    win.confirm_clear_cache = lambda question: asked.append(question) or False
    _menu_action(win, "Clear the cache").trigger()
    assert "5 explanation(s) and 5 prediction(s)" in asked[0] and " MB." in asked[0] and str(root) in asked[0]
    assert len(list((root / "explanations").glob("*.npz"))) == 5  # the default answer keeps it
    win.confirm_clear_cache = lambda question: True
    _menu_action(win, "Clear the cache").trigger()
    assert not list((root / "explanations").glob("*.npz")) and not (root / "predictions.json").exists()
    assert not any(r.explained for r in win.session.gallery.rows)
    assert "cache cleared" in win.notifications.messages[-1][1]
    # the pixel setting: off by default, and the menu turns it on for new entries
    pixels = _menu_action(win, "Keep image pixels in the cache")
    assert pixels.isCheckable() and not pixels.isChecked()
    pixels.trigger()
    assert win.controller.cache.keep_pixels


def test_a_tampered_cache_never_keeps_a_folder_from_opening(make_window, qtbot, labelled_folder):
    win = make_window()
    wait_idle(qtbot, win)
    c, s = win.controller, win.session
    files = sorted(labelled_folder.rglob("*.png"))
    # an index whose records under the folder's own keys have other shapes, and a damaged
    # explanation under the key of the current settings
    model_id = c.gallery.model_id()
    keys = [c.cache.prediction_key(p, model_id, s.input_policy, s.window) for p in files]
    bad = {k: {"top1": "x", "name": 5} for k in keys}
    bad[keys[0]] = [1, 2]
    (c.cache.root / "explanations").mkdir(parents=True, exist_ok=True)
    (c.cache.root / "predictions.json").write_text(json.dumps(bad))
    damaged = c.cache.root / "explanations" / f"{c.gallery.explain_key_fn()(files[0])}.npz"
    damaged.write_bytes(b"PK\x03\x04 damaged")
    c.autorun = True
    win.open_folder(labelled_folder, recursive=True)
    wait_idle(qtbot, win)
    rows = s.gallery.rows
    assert len(rows) == 5 and all(isinstance(r.pred, int) for r in rows)  # classified again
    assert not win.notifications.errors(), win.notifications.errors()
    row = next(i for i, r in enumerate(rows) if Path(r.path).name == files[0].name and r.explained)
    c.gallery.open_row(row)  # the damaged entry is a miss: the image is explained again
    wait_idle(qtbot, win)
    assert s.explanation is not None and s.explanation.source["file"] == files[0].name
    assert not damaged.exists() or damaged.read_bytes() != b"PK\x03\x04 damaged"


def test_next_and_previous_move_through_the_gallery(make_window, qtbot, labelled_folder):
    win = make_window()
    wait_idle(qtbot, win)
    win.controller.autorun = True
    win.open_folder(labelled_folder, recursive=True)
    wait_idle(qtbot, win)
    win.activateWindow()
    QTest.keyClick(win, Qt.Key.Key_PageDown)
    wait_idle(qtbot, win)
    assert win.session.image_request.path.endswith("cat1.png")
    QTest.keyClick(win, Qt.Key.Key_PageDown)
    wait_idle(qtbot, win)
    assert win.session.image_request.path.endswith("cat2.png") and win.session.explanation.source["file"] == "cat2.png"
    QTest.keyClick(win, Qt.Key.Key_PageUp)
    wait_idle(qtbot, win)
    assert win.session.image_request.path.endswith("cat1.png")


def test_compare_two_images_picked_in_the_gallery(make_window, qtbot, labelled_folder):
    win = make_window()
    wait_idle(qtbot, win)
    win.controller.autorun = True
    win.session.method = "gradcam"
    win.open_folder(labelled_folder, recursive=True)
    wait_idle(qtbot, win)
    win.controller.gallery.compare_rows(0, 3)  # a cat and a cup
    qtbot.waitUntil(lambda: win.session.pinned is not None and win.session.explanation is not None
                    and win.session.explanation.source.get("file") == "cup1.png", timeout=120_000)
    wait_idle(qtbot, win)
    s = win.session
    assert s.pinned.source["file"] == "cat1.png"
    assert list(s.pinned.classes) == list(s.explanation.classes)
    assert win.pinned_maps.isVisible()


def test_a_thousand_images_stay_responsive(make_window, qtbot, tmp_path, photos):
    root = tmp_path / "many"
    root.mkdir()
    data = (photos["coffee"][::12, ::12] * 255).astype(np.uint8)
    Image.fromarray(data).save(root / "img0000.png")
    raw = (root / "img0000.png").read_bytes()
    for i in range(1, 1000):
        (root / f"img{i:04d}.png").write_bytes(raw)
    win = make_window(size=(1280, 800))
    wait_idle(qtbot, win)
    win.open_folder(root)
    qtbot.waitUntil(lambda: len(win.session.gallery.rows) == 1000, timeout=60_000)
    qtbot.wait(500)
    # only the rows on screen asked for a thumbnail; the rest are never decoded until scrolled to
    asked = sum(r.asked for r in win.session.gallery.rows)
    assert 0 < asked < 60, asked
    assert win.session.gallery.rows[999].thumb is None
    win.controller.cancel()  # the background classification of 1,000 images stops when asked
    wait_idle(qtbot, win)
    classified = sum(r.pred is not None for r in win.session.gallery.rows)
    assert classified < 1000


def test_thumbnails_of_a_cancelled_batch_are_asked_for_again(make_window, qtbot, labelled_folder):
    win = make_window()
    wait_idle(qtbot, win)
    g = win.session.gallery
    with qtbot.waitSignal(g.thumbnailsWanted, timeout=30_000):
        win.open_folder(labelled_folder, recursive=True)
    win.controller.cancel()  # Esc while the first thumbnails are decoded
    wait_idle(qtbot, win)
    # no row is left "asked for" without its thumbnail: the next paint asks again
    assert all(r.thumb is not None or not r.asked for r in g.rows)
    view = win.gallery
    for i in range(view.proxy.rowCount()):  # scroll every row into view: each is drawn again
        view.table.scrollTo(view.proxy.index(i, 0))
        qtbot.wait(50)
    qtbot.waitUntil(lambda: all(r.thumb is not None for r in g.rows), timeout=30_000)


def test_explain_all_shows_its_progress_and_can_be_cancelled(make_window, qtbot, labelled_folder):
    """Explain all runs with a progress bar, an n-of-N message and a Cancel in the gallery, and
    the status bar says so; Cancel stops it and keeps what was done (issue 16, finding 4)."""
    win = make_window()
    wait_idle(qtbot, win)
    win.session.method = "ig"  # seconds per image: there is time to see it run and stop it
    win.session.options = {**win.session.options, "steps": 64}
    win.open_folder(labelled_folder, recursive=True)
    wait_idle(qtbot, win)
    view, g = win.gallery, win.session.gallery
    assert not view.progress.isVisible() and not view.cancel_button.isVisible()
    assert win.controller.gallery.explain_all() is not None
    qtbot.waitUntil(lambda: view.progress.isVisible() and view.cancel_button.isVisible(), timeout=10_000)
    assert "explaining 5 images" in view.task_label.text()
    assert win.status_text.text() != "ready" and "explaining 5 images" in win.status_text.text()
    qtbot.waitUntil(lambda: any(r.explained for r in g.rows), timeout=180_000)
    qtbot.waitUntil(lambda: "of 5" in view.task_label.text() and view.progress.value() > 0, timeout=10_000)
    QTest.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.controller.runner.busy("folder"), timeout=120_000)
    assert not view.progress.isVisible() and not view.cancel_button.isVisible()
    done = sum(r.explained for r in g.rows)
    assert 1 <= done < 5, done
    assert any("stopped" in m for _level, m in win.notifications.messages)
    assert win.status_text.text() == "ready"


def test_open_folder_on_class_sub_folders_finds_their_images(make_window, qtbot, labelled_folder, photos):
    """File → Open folder (not "with sub-folders") on a dataset of class sub-folders shows their
    images with their labels and says so; a folder that mixes top-level images with class
    sub-folders says why nothing is labelled (issue 16, finding 5)."""
    win = make_window()
    wait_idle(qtbot, win)
    assert win.open_folder(labelled_folder, recursive=False) is not None
    wait_idle(qtbot, win)
    g = win.session.gallery
    assert len(g.rows) == 5 and sum(r.true_label is not None for r in g.rows) == 5
    assert any("sub-folder" in m and "Egyptian cat" in m for _lvl, m in win.notifications.messages)
    assert "5 with a true label" in win.gallery.title.text()
    # one image at the top beside the class sub-folders: no labels, and the reason is given
    save(photos["rocket"], labelled_folder / "loose.png")
    assert win.open_folder(labelled_folder, recursive=True) is not None
    wait_idle(qtbot, win)
    assert len(g.rows) == 6 and all(r.true_label is None for r in g.rows)
    why = [m for _lvl, m in win.notifications.messages if "no true labels" in m]
    assert why and "1 image(s) lie at the top" in why[-1] and "labels.csv" in why[-1]
    assert "no true labels" in win.gallery.title.text() and "lie at the top" in win.gallery.title.toolTip()
