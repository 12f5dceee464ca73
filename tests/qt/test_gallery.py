"""A folder of images: the gallery table, right and wrong, explain all, the cache, next/previous, compare."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
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


def test_explain_all_caches_and_reopening_is_instant(make_window, qtbot, labelled_folder, explainer, tmp_path):
    cfg = tmp_path / "cfg"
    win = make_window(config_dir=cfg)
    wait_idle(qtbot, win)
    win.session.method = "gradcam"
    win.open_folder(labelled_folder, recursive=True)
    wait_idle(qtbot, win)
    assert win.controller.explain_all() is not None
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
        again.controller.open_gallery_row(3)  # espresso/cup1.png
        wait_idle(qtbot, again)
        assert counter.calls == 0
    e = again.session.explanation
    assert e is not None and e.source["file"] == "cup1.png" and int(e.classes[0]) == 967
    assert again.session.image_request.path.endswith("cup1.png")
    assert not again.session.stale


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
    win.controller.compare_rows(0, 3)  # a cat and a cup
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
