"""Scans in the window: DICOM files open with their own window, the window/level control, frames."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from .conftest import wait_idle

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


@pytest.fixture
def dcm(tmp_path):
    def copy(name: str) -> Path:
        out = tmp_path / name
        shutil.copy(TEST_FILES / name, out)
        return out

    return copy


def test_a_scan_opens_with_its_window_and_can_be_re_windowed(make_window, qtbot, dcm):
    win = make_window()
    s, c = win.session, win.controller
    wait_idle(qtbot, win)
    c.autorun = True
    assert win.open_image(dcm("MR_small.dcm"))
    wait_idle(qtbot, win)
    assert not win.notifications.errors(), win.notifications.errors()
    img, expl = s.image, s.explanation
    assert img.is_dicom and img.info["modality"] == "MR" and img.window.mode == "dicom"
    assert (img.window.center, img.window.width) == (600, 1600)  # the file's own window
    assert win.window_section.button.isChecked()  # a scan opens with its window shown
    assert "MR" in win.window_panel.info.text()
    assert expl.source["window"]["mode"] == "dicom" and "PatientName" not in str(expl.source)
    lo, hi = win.window_panel.region.getRegion()  # the band on the histogram is the window
    assert lo == pytest.approx(img.window.lo) and hi == pytest.approx(img.window.hi)
    # a narrower window typed in: the image changes at once, the maps are stale until the next run
    win.window_panel.mode.setCurrentIndex(win.window_panel.mode.findData("custom"))
    win.window_panel.center.setValue(400.0)
    win.window_panel.width_.setValue(800.0)
    wait_idle(qtbot, win)
    assert s.window == (400.0, 800.0) and s.image.window.center == pytest.approx(400.0)
    assert not np.array_equal(s.image.pixels, img.pixels) and s.stale
    win.run()
    wait_idle(qtbot, win)
    assert s.explanation.source["window"]["center"] == pytest.approx(400.0) and not s.stale
    # dragging the band on the histogram sets a custom window too
    win.window_panel.region.setRegion((-100.0, 300.0))
    win.window_panel.region.sigRegionChangeFinished.emit(win.window_panel.region)
    wait_idle(qtbot, win)
    assert s.window == (100.0, 400.0)


def test_a_multi_frame_file_gets_a_frame_slider(make_window, qtbot, dcm):
    win = make_window()
    s = win.session
    wait_idle(qtbot, win)
    assert win.open_image(dcm("SC_rgb_rle_2frame.dcm"))
    wait_idle(qtbot, win)
    assert s.image.n_frames == 2 and s.image.frame == 0
    assert not win.window_panel.frame_row.isHidden() and win.window_panel.frame.maximum() == 1
    first = s.image.pixels.copy()
    win.window_panel.frame.setValue(1)
    wait_idle(qtbot, win)
    assert s.image_request.frame == 1 and s.image.frame == 1
    assert not np.array_equal(first, s.image.pixels)
    assert "frame 1" in s.image_request.label  # numbered from 0, as in the info line and `alens --frame`
    assert win.window_panel.frame_label.text() == "1 of 0–1" and "frame 1 of 0-1" in win.window_panel.info.text()
    assert not win.window_panel.frame.hasTracking()  # one drag, one frame read and explained
    # an 8-bit photograph keeps no frame slider
    win.open_sample("coffee")
    wait_idle(qtbot, win)
    assert win.window_panel.frame_row.isHidden()


def test_a_corrupt_scan_is_one_line_and_loses_nothing(make_window, qtbot, dcm):
    win = make_window()
    wait_idle(qtbot, win)
    shown = win.session.image
    assert win.open_image(dcm("MR_truncated.dcm"))
    wait_idle(qtbot, win)
    msg = win.notifications.errors()[-1]
    assert "MR_truncated.dcm" in msg and "\n" not in msg
    assert win.session.image is shown


def test_a_ct_scan_offers_ct_presets_and_only_the_windows_it_has(make_window, qtbot, dcm):
    """CT presets (lung, mediastinum, bone, brain) for a CT scan; "DICOM tags" greyed where the file
    has no window; window values written as numbers, never as 3.277e+04 (issue 16, minor)."""
    from alens_gui.core.windowing import _num
    from alens_gui.qt.controls.window_panel import CT_PRESETS

    win = make_window()
    s = win.session
    wait_idle(qtbot, win)
    assert win.open_image(dcm("CT_small.dcm"))
    wait_idle(qtbot, win)
    panel = win.window_panel
    model = panel.mode.model()
    enabled = {panel.mode.itemData(i): model.item(i).isEnabled() for i in range(panel.mode.count())}
    assert all(enabled[k] for k in CT_PRESETS)
    assert enabled["dicom"] is False and "no window" in model.item(panel.mode.findData("dicom")).toolTip()
    panel.mode.setCurrentIndex(panel.mode.findData("ct-lung"))
    wait_idle(qtbot, win)
    assert s.window == (-600.0, 1500.0) and s.image.window.center == pytest.approx(-600.0)
    assert "C -600 W 1500" in panel.info.text()
    assert panel.mode.currentData() == "ct-lung"
    # an MR scan: no CT presets
    assert win.open_image(dcm("MR_small.dcm"))
    wait_idle(qtbot, win)
    assert not any(model.item(panel.mode.findData(k)).isEnabled() for k in CT_PRESETS)
    assert _num(32770.0) == "32770" and _num(-0.25) == "-0.25" and "e+" not in _num(123456.7)
