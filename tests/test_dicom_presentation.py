"""DICOM's presentation rules against pydicom, the reference: VOI windows and LUTs, Presentation LUT Shape.

pydicom's ``apply_windowing`` maps into the stored range [y_min, y_max] of the file; ours maps
into [0, 1]. Scaled to one another they must agree on every pixel of the files pydicom ships,
for each VOI LUT function.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut, apply_windowing, pixel_array
from pydicom.sequence import Sequence

from alens_gui.core.dicom import read_dicom, shown_inverted
from alens_gui.core.images import load_image

FILES = ("MR_small.dcm", "examples_overlay.dcm")  # 16-bit signed; 12-bit unsigned, both with WC/WW


def _y_range(ds) -> tuple[float, float]:
    bits = int(ds.BitsStored)
    if int(ds.PixelRepresentation) == 0:
        lo, hi = 0.0, 2.0 ** bits - 1
    else:
        lo, hi = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    if ds.get("RescaleSlope") is not None and ds.get("RescaleIntercept") is not None:
        lo, hi = lo * float(ds.RescaleSlope) + float(ds.RescaleIntercept), hi * float(ds.RescaleSlope) + float(
            ds.RescaleIntercept)
    return lo, hi


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_our_windows_equal_pydicoms(tmp_path, name, function):
    ds = dcmread(get_testdata_file(name))
    ds.VOILUTFunction = function
    path = tmp_path / f"{function}_{name}"
    ds.save_as(path)
    ds = dcmread(path)
    arr = pixel_array(ds)
    arr = arr[0] if arr.ndim == 3 else arr
    ref = apply_windowing(apply_modality_lut(arr, ds).astype(np.float64), ds)
    lo, hi = _y_range(ds)
    ref = (ref - lo) / (hi - lo)
    img = read_dicom(path)
    assert img.windows and img.windows[0].function == function.lower()
    ours = img.windows[0].apply(img.raw)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    # and what the program shows is that window (grey, the same value in each channel)
    np.testing.assert_allclose(load_image(path).pixels[..., 0], ours, atol=1e-6)


def _with_lut(tmp_path, bits: int, vr: str):
    ds = dcmread(get_testdata_file("MR_small.dcm"))
    raw = pixel_array(ds)
    first, n = int(raw.min()) + 40, 600
    rng = np.random.default_rng(0)
    table = np.sort(rng.integers(0, 2 ** bits, n)).astype(np.uint16)  # an irregular, rising curve
    item = Dataset()
    item.LUTDescriptor = [n, first, bits]
    if vr == "OW":
        item.add_new(0x00283006, "OW", table.astype("<u2").tobytes())
    else:
        item.add_new(0x00283006, "US", [int(v) for v in table])
    item.LUTExplanation = "CURVE"
    ds.VOILUTSequence = Sequence([item])
    del ds.WindowCenter
    del ds.WindowWidth
    path = tmp_path / f"lut_{bits}_{vr}.dcm"
    ds.save_as(path)
    return path


@pytest.mark.parametrize(("bits", "vr"), [(16, "US"), (16, "OW"), (12, "US")])
def test_voi_lut_sequence_equals_pydicoms_apply_voi_lut(tmp_path, bits, vr):
    path = _with_lut(tmp_path, bits, vr)
    ds = dcmread(path)
    arr = apply_modality_lut(pixel_array(ds), ds)
    ref = apply_voi_lut(arr, ds, prefer_lut=True).astype(np.float64)
    img = read_dicom(path)
    win = img.windows[0]
    assert win.function == "lut" and win.label == "CURVE"
    ours = win.apply(img.raw).astype(np.float64) * win.lut.top
    np.testing.assert_allclose(ours, ref, atol=1e-6 * win.lut.top)


def test_a_lut_that_cannot_be_used_is_left_out_not_the_image(tmp_path):
    ds = dcmread(get_testdata_file("MR_small.dcm"))
    item = Dataset()
    item.LUTDescriptor = [16, 0, 16]
    item.add_new(0x00283006, "US", list(range(8)))  # 8 of the 16 entries its descriptor says
    ds.VOILUTSequence = Sequence([item])
    ds.save_as(tmp_path / "short.dcm")
    img = read_dicom(tmp_path / "short.dcm")
    assert all(w.function != "lut" for w in img.windows) and img.windows  # the tag window remains
    assert img.info["ignored"] == ["VOI LUT 1: the LUT Data holds 8 of the 16 entries its descriptor says"]


def test_a_lut_with_a_depth_pydicom_does_not_read_is_still_used(tmp_path):
    ds = dcmread(get_testdata_file("MR_small.dcm"))
    item = Dataset()
    item.LUTDescriptor = [16, 0, 9]  # 9 bits per entry: not a depth the standard allows
    item.add_new(0x00283006, "US", list(range(16)))
    ds.VOILUTSequence = Sequence([item])
    ds.save_as(tmp_path / "odd.dcm")
    img = read_dicom(tmp_path / "odd.dcm")
    luts = [w for w in img.windows if w.function == "lut"]
    assert len(luts) == 1 and luts[0].lut.bits == 9 and "ignored" not in img.info
    np.testing.assert_array_equal(luts[0].lut.values, np.arange(16))


@pytest.mark.parametrize(("photometric", "shape", "inverted"), [
    ("MONOCHROME2", None, False),
    ("MONOCHROME2", "IDENTITY", False),
    ("MONOCHROME2", "INVERSE", True),  # e.g. CR stored as MONOCHROME2 to be shown inverted
    ("MONOCHROME1", None, True),
    ("MONOCHROME1", "INVERSE", True),  # mammography/DX: one inversion, named twice
])
def test_presentation_lut_shape(tmp_path, photometric, shape, inverted):
    ds = dcmread(get_testdata_file("MR_small.dcm"))
    ds.PhotometricInterpretation = photometric
    if shape:
        ds.PresentationLUTShape = shape
    path = tmp_path / "p.dcm"
    ds.save_as(path)
    assert shown_inverted(dcmread(path), photometric) is inverted
    plain = tmp_path / "plain.dcm"
    base = dcmread(get_testdata_file("MR_small.dcm"))
    base.save_as(plain)
    a = load_image(path).pixels
    b = load_image(plain).pixels
    np.testing.assert_allclose(a, 1.0 - b if inverted else b, atol=1e-6)


def test_pydicom_warnings_reach_the_log(caplog):
    """pydicom's warnings while it parses a file are logged (naming the file), no longer dropped."""
    from alens_gui.core.errors import ImageReadError

    with caplog.at_level("INFO", logger="alens_gui"), pytest.raises(ImageReadError, match="Number of Frames"):
        read_dicom(get_testdata_file("badVR.dcm"))  # Number of Frames "1A"
    assert "badVR.dcm: pydicom: Invalid value for VR IS: '1A'" in caplog.text
