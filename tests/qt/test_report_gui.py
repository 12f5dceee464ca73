"""File → Export report from the window: the current image, the comparison, the gallery selection."""

from __future__ import annotations

import re

from ..test_report import needs_poppler, pdf_pages
from .conftest import wait_idle
from .test_gallery import labelled_folder  # noqa: F401  (a fixture)
from .test_window import run


@needs_poppler
def test_report_of_the_current_image_and_of_the_comparison(make_window, qtbot, tmp_path):
    win = make_window()
    s, c = win.session, win.controller
    first = run(qtbot, win, "gradcam")  # chelsea
    assert win.export_report(tmp_path / "one.pdf", "current") is not None
    wait_idle(qtbot, win)
    assert not win.notifications.errors(), win.notifications.errors()
    pages = pdf_pages(tmp_path / "one.pdf")
    assert len(pages) == 2 and "Settings and provenance" in pages[0] and "Grad-CAM" in pages[0]
    for name, p in zip(first.class_names, first.probs):
        assert f"{name} (p {p:.3f})" in pages[1]
    assert "class territory" in pages[1]
    # a comparison report needs a comparison first: a message, no file
    assert win.export_report(tmp_path / "none.pdf", "comparison") is None
    assert "pin" in win.notifications.messages[-1][1] and not (tmp_path / "none.pdf").exists()
    assert c.comparison.pin()
    c.autorun = True
    win.open_sample("coffee")
    wait_idle(qtbot, win)
    assert win.export_report(tmp_path / "cmp.pdf", "comparison") is not None
    wait_idle(qtbot, win)
    pages = pdf_pages(tmp_path / "cmp.pdf")
    assert len(pages) == 2 and "Comparison: chelsea (sample photograph) vs coffee (sample photograph)" in pages[1] and "difference B - A" in pages[1]
    for name, d in zip(first.class_names, s.explanation.probs - s.pinned.probs):
        assert re.search(re.escape(name) + r":\s+" + re.escape(f"{d:+.3f}"), pages[1])


@needs_poppler
def test_report_of_the_gallery_selection(make_window, qtbot, labelled_folder, tmp_path):  # noqa: F811
    win = make_window()
    wait_idle(qtbot, win)
    win.session.method = "gradcam"
    win.open_folder(labelled_folder, recursive=True)
    wait_idle(qtbot, win)
    # rows not explained yet: the user is told to explain them first, and nothing is written
    assert win.export_report(tmp_path / "early.pdf", "gallery", [0, 3]) is None
    assert "Explain all" in win.notifications.messages[-1][1] and not (tmp_path / "early.pdf").exists()
    win.controller.gallery.explain_all()
    wait_idle(qtbot, win)
    # select two rows in the table as a user would, then report the selection
    win.gallery.select_rows([0, 3])
    assert win.gallery.selected_rows() == [0, 3]
    assert win.export_report(tmp_path / "sel.pdf", "gallery", win.gallery.selected_rows()) is not None
    wait_idle(qtbot, win)
    assert not win.notifications.errors(), win.notifications.errors()
    pages = pdf_pages(tmp_path / "sel.pdf")
    assert len(pages) == 3
    assert re.search(r"Inputs\s+2 input\(s\): 2 explained", pages[0])
    assert "cat1.png" in pages[1] and "cup1.png" in pages[2]


@needs_poppler
def test_a_report_records_the_run_settings_of_the_session(make_window, qtbot, tmp_path):
    """The first page says the class set, the window and the input policy the maps were made with,
    in words, from the run's one RunSettings (not the window menu's raw 'default' or a tuple)."""
    from alens_gui.qt.session import ClassRequest

    win = make_window()
    s = win.session
    wait_idle(qtbot, win)
    s.class_request = ClassRequest(kind="picked", classes=(285, 281))
    s.window = (128.0, 200.0)
    s.input_policy = "pad"
    wait_idle(qtbot, win)
    run(qtbot, win, "gradcam")
    assert win.export_report(tmp_path / "run.pdf", "current") is not None
    wait_idle(qtbot, win)
    assert not win.notifications.errors(), win.notifications.errors()
    first = " ".join(pdf_pages(tmp_path / "run.pdf")[0].split())
    assert "classes Egyptian cat, tabby" in first
    assert "128,200; each page says which" in first and "(128.0, 200.0)" not in first
    assert "pad to 224 x 224" in first
    s.window = "default"
    assert win.export_report(tmp_path / "default.pdf", "current") is not None
    wait_idle(qtbot, win)
    first = " ".join(pdf_pages(tmp_path / "default.pdf")[0].split())
    assert "default: auto (0.5-99.5 percentile) above 8 bits" in first
