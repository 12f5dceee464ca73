"""Panels bind to the session without signal blockers: a session change sets the widgets, sends
one change signal, and nothing is written back (not even a value a widget can only show rounded).

No model is needed: bare sessions and panels, real scans from pydicom's test files."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from PySide6.QtCore import Qt

from alens_gui.qt.session import ClassRequest, ImageRequest, Session

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


@pytest.fixture
def session(qtbot):
    return Session()


def _count(signal) -> list:
    seen: list = []
    signal.connect(seen.append)
    return seen


def test_method_panel_renders_the_sessions_options_and_writes_back_nothing(session, qtbot):
    from alens_gui.qt.controls import MethodPanel

    panel = MethodPanel(session)
    qtbot.addWidget(panel)
    methods, options = _count(session.method_changed), _count(session.options_changed)
    session.method = "smoothgrad"  # session -> combo and form: one method change, one options change
    assert methods == ["smoothgrad"] and panel.combo.currentData() == "smoothgrad"
    assert len(options) == 1 and session.options == panel.form.values()
    # a noise the 4-decimal editor shows rounded, and a sample count: one change, nothing written back
    odd = {**session.options, "noise": 0.123456, "samples": 7}
    session.options = odd
    assert options[1:] == [odd] and session.options is odd
    assert panel.form.editors["noise"].value() == pytest.approx(0.1235)
    assert panel.form.editors["samples"].value() == 7
    # one editor writes its own option only (the rounded noise is kept)
    panel.form.editors["samples"].setValue(9)
    assert session.options == {**odd, "samples": 9} and session.options["noise"] == 0.123456
    panel.form.editors["abs"].setChecked(False)
    assert session.options == {**odd, "samples": 9, "abs": False}
    # the method remembers its options across a switch; switching builds the form without echoes
    session.method = "gradcam"
    assert set(session.options) == set(panel.form.editors) and "noise" not in session.options
    session.method = "smoothgrad"
    assert session.options == {**odd, "samples": 9, "abs": False}
    assert methods == ["smoothgrad", "gradcam", "smoothgrad"]
    # a value outside an editor's range (a session file's) is shown as it is, not clamped and written back
    big = {**session.options, "samples": 5000}
    session.options = big
    assert session.options is big and panel.form.editors["samples"].value() == 5000
    # the combo: a user's choice writes the method; the session's echo writes nothing
    panel.combo.setCurrentIndex(panel.combo.findData("ig"))
    assert session.method == "ig" and methods[-1] == "ig" and len(methods) == 4


def test_window_panel_shows_the_image_window_and_writes_back_nothing(session, qtbot):
    from alens_gui.core.images import load_image
    from alens_gui.qt.controls import WindowPanel

    panel = WindowPanel(session)
    qtbot.addWidget(panel)
    windows, requests = _count(session.window_changed), _count(session.image_request_changed)
    scan = load_image(TEST_FILES / "MR_small.dcm")
    session.image = scan  # the controls show the file's window: the session's window is not touched
    assert (panel.center.value(), panel.width_.value()) == (600.0, 1600.0)
    assert panel.region.getRegion() == pytest.approx((scan.window.lo, scan.window.hi))
    assert windows == [] and session.window == "default" and panel.mode.currentData() == "default"
    # a window set from elsewhere, with a centre the 2-decimal box can only show rounded
    odd = (612.3456, 1600.0)
    session.window = odd
    assert windows == [odd] and panel.mode.currentData() == "custom"
    session.image = load_image(scan, window=odd)  # (the controller re-windows the image)
    assert panel.center.value() == pytest.approx(612.35) and windows == [odd] and session.window is odd
    session.window = "auto"  # a named window: the combo follows, one change
    assert windows == [odd, "auto"] and panel.mode.currentData() == "auto"
    # the user's edits write the window
    panel.width_.setValue(800.0)
    assert session.window == (pytest.approx(612.3456, abs=0.01), 800.0) and len(windows) == 3
    panel.mode.setCurrentIndex(panel.mode.findData("full"))
    assert session.window == "full" and len(windows) == 4
    assert requests == []


def test_window_panel_frame_slider_follows_the_image_without_asking_for_a_frame(session, qtbot):
    from alens_gui.core.images import load_image
    from alens_gui.qt.controls import WindowPanel

    panel = WindowPanel(session)
    qtbot.addWidget(panel)
    path = str(TEST_FILES / "SC_rgb_rle_2frame.dcm")
    session.image_request = ImageRequest(path=path, frame=1)
    requests, windows = _count(session.image_request_changed), _count(session.window_changed)
    session.image = load_image(path, frame=1)
    assert panel.frame.value() == 1 and panel.frame.maximum() == 1
    # a one-frame scan after a two-frame one: the narrower range sets no frame
    session.image_request = ImageRequest(path=str(TEST_FILES / "MR_small.dcm"))
    session.image = load_image(TEST_FILES / "MR_small.dcm")
    assert requests == [ImageRequest(path=str(TEST_FILES / "MR_small.dcm"))] and windows == []
    assert panel.frame_row.isHidden()


def test_class_panel_pulls_without_echo(session, qtbot, tmp_path):
    from alens_gui.qt.controls import ClassSetPanel
    from alens_gui.qt.controls.class_panel import PresetStore

    store = PresetStore(tmp_path / "p.json")
    store.save("grades", [2, 0, 3])
    panel = ClassSetPanel(session, store)
    qtbot.addWidget(panel)
    panel.classes.set_names([f"grade {i}" for i in range(5)])
    changes = _count(session.class_request_changed)
    req = ClassRequest(kind="topk", k=70, with_lowest=True)  # (a k above the box's 50 is shown, not clamped)
    session.class_request = req
    assert changes == [req] and session.class_request is req
    assert panel.k.value() == 70 and panel.lowest.isChecked() and panel.mode.currentData() == "topk"
    picked = ClassRequest(kind="picked", classes=(3, 1))
    session.class_request = picked  # the marks follow, in the request's order, with no write
    assert changes == [req, picked] and panel.classes.checked() == [3, 1]
    checked = [i for i in range(5) if panel.classes.list.item(i).checkState() == Qt.CheckState.Checked]
    assert checked == [1, 3] and panel.mode.currentData() == "picked"
    # new class names (another model) keep the picks and write nothing
    panel.classes.set_names([f"class {i}" for i in range(4)])
    assert changes == [req, picked] and panel.classes.checked() == [3, 1]
    # refilling the presets applies none; choosing one applies it (one change)
    panel.refresh_presets()
    assert changes == [req, picked]
    panel.preset_combo.activated.emit(panel.preset_combo.findData("grades"))
    assert session.class_request == ClassRequest(kind="picked", classes=(2, 0, 3)) and len(changes) == 3
    assert panel.classes.checked() == [2, 0, 3]
    # a user's mark writes the picked classes; a user's k writes k alone
    panel.classes.list.item(1).setCheckState(Qt.CheckState.Checked)
    assert session.class_request == ClassRequest(kind="picked", classes=(2, 0, 3, 1)) and len(changes) == 4
    session.class_request = req
    panel.k.setValue(4)
    assert session.class_request == ClassRequest(kind="topk", k=4, with_lowest=True) and len(changes) == 6


def test_no_signal_blockers_in_the_qt_package():
    """Widgets are set from the session and the fields' equality ends the echo (issue 16)."""
    root = Path(__file__).resolve().parents[2] / "alens_gui" / "qt"
    found = [f"{p.relative_to(root)}: {word}" for p in sorted(root.rglob("*.py"))
             for word in ("blockSignals", "QSignalBlocker", "blocked(") if word in p.read_text(encoding="utf-8")]
    assert found == []
