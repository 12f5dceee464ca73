"""DICOM reading with the real files pydicom ships: units, windows, colour, frames, errors, identifiers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from alens_gui.core.dicom import looks_like_dicom, read_dicom
from alens_gui.core.errors import ImageReadError
from alens_gui.core.images import load_image, read_image

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def dcm(name: str) -> Path:
    """A test file shipped inside the pydicom package (never downloaded)."""
    p = TEST_FILES / name
    assert p.is_file(), f"pydicom {pydicom.__version__} no longer ships {name}"
    return p


def stored(name: str, index: int | None = None) -> np.ndarray:
    """pydicom's own decoding of the stored values, to compare against."""
    from pydicom.pixels import pixel_array

    return pixel_array(pydicom.dcmread(dcm(name)), index=index)


def test_ct_rescale_to_hounsfield_units():
    img = load_image(dcm("CT_small.dcm"))
    np.testing.assert_array_equal(img.raw, stored("CT_small.dcm").astype(np.float32) - 1024)
    assert img.info["modality"] == "CT" and img.info["units"] == "HU"
    assert img.info["rescale_intercept"] == -1024 and img.is_dicom
    # no window in this file: auto, and the label says why
    assert img.window.mode == "auto" and "no window" in img.window.label
    assert img.full_range == (-32768 - 1024, 32767 - 1024)  # 16 bits stored, signed


def test_mr_window_from_the_tags():
    img = load_image(dcm("MR_small.dcm"))
    assert (img.window.center, img.window.width, img.window.function) == (600, 1600, "linear")
    x = stored("MR_small.dcm").astype(np.float64)
    expected = np.clip((x - 599.5) / 1599 + 0.5, 0, 1)  # PS3.3 C.11.2.1.2.1
    np.testing.assert_allclose(img.pixels[..., 0], expected, atol=1e-6)
    assert np.array_equal(img.pixels[..., 0], img.pixels[..., 2])


def test_first_of_several_windows():
    img = load_image(dcm("examples_overlay.dcm"))
    assert len(img.dicom_windows) == 2
    assert (img.window.center, img.window.width) == (450, 790)
    second = img.with_window(img.dicom_windows[1])
    assert (second.window.center, second.window.width) == (200, 443)
    assert not np.array_equal(second.pixels, img.pixels)


@pytest.mark.parametrize("name", [
    "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm", "MR_small_implicit.dcm",
    "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_padded.dcm",
])
def test_every_encoding_of_one_image_reads_the_same(name):
    ref = load_image(dcm("MR_small.dcm"))
    img = load_image(dcm(name))
    assert img.raw.dtype.isnative
    np.testing.assert_array_equal(img.raw, ref.raw)
    np.testing.assert_array_equal(img.pixels, ref.pixels)


@pytest.mark.parametrize("name, lossy", [
    ("SC_rgb_jpeg_gdcm.dcm", False),  # JPEG lossless
    ("SC_rgb_gdcm_KY.dcm", False),  # JPEG 2000
    ("SC_rgb_dcmtk_+eb+cr.dcm", True),  # JPEG baseline, RGB
    ("SC_rgb_dcmtk_+eb+cy+s4.dcm", True),  # JPEG baseline, YBR_FULL 4:4:4
    ("SC_rgb_dcmtk_+eb+cy+s2.dcm", True),  # JPEG baseline, YBR_FULL_422
    ("SC_ybr_full_422_uncompressed.dcm", True),  # native YBR_FULL_422
    ("SC_rgb_jls_lossy_line.dcm", True),  # JPEG-LS near-lossless
])
def test_colour_is_converted_to_rgb(name, lossy):
    ref = load_image(dcm("SC_rgb_rle.dcm"))  # RLE, RGB: the lossless reference
    img = load_image(dcm(name))
    assert img.raw.shape == (100, 100, 3) and img.window.mode == "full"
    diff = np.abs(img.pixels - ref.pixels)
    if lossy:
        assert diff.mean() < 0.015
    else:
        assert diff.max() == 0
    # the test pattern's bands are red, green, blue from the top: YBR read as RGB would break this
    for row, rgb in ((0, (1, 0, 0)), (20, (0, 1, 0)), (40, (0, 0, 1)), (90, (1, 1, 1))):
        np.testing.assert_allclose(img.pixels[row, 50], rgb, atol=0.03)


def test_16_and_32_bit_colour():
    ref = load_image(dcm("SC_rgb_rle.dcm")).pixels
    for name in ("SC_rgb_rle_16bit.dcm", "SC_rgb_rle_32bit.dcm"):
        img = load_image(dcm(name), window="full")
        assert img.raw.dtype in (np.uint16, np.uint32)
        np.testing.assert_allclose(img.pixels, ref, atol=1e-6)


def test_palette_colour():
    img = load_image(dcm("examples_palette.dcm"))
    assert img.raw.shape == (350, 800, 3) and img.info["photometric"] == "PALETTE COLOR"
    assert np.abs(img.pixels[..., 0] - img.pixels[..., 2]).max() > 0.2  # really coloured


def test_multi_frame():
    first = load_image(dcm("SC_rgb_rle_2frame.dcm"))
    second = load_image(dcm("SC_rgb_rle_2frame.dcm"), frame=1)
    assert (first.n_frames, first.frame, second.frame) == (2, 0, 1)
    np.testing.assert_allclose(second.pixels, 1.0 - first.pixels, atol=1e-6)  # frame 2 is the negative
    np.testing.assert_array_equal(first.with_frame(1).pixels, second.pixels)
    us = load_image(dcm("examples_ybr_color.dcm"), frame=29)  # JPEG, YBR_FULL_422, 30 frames
    assert us.n_frames == 30 and us.raw.shape == (240, 320, 3)
    np.testing.assert_array_equal(us.raw, stored("examples_ybr_color.dcm", index=29))
    with pytest.raises(ImageReadError, match=r"SC_rgb_rle_2frame.dcm: no frame 2; the file has 2 frames \(0 to 1\)"):
        load_image(dcm("SC_rgb_rle_2frame.dcm"), frame=2)
    dose = load_image(dcm("rtdose.dcm"), frame=14)
    assert dose.n_frames == 15 and dose.raw.shape == (10, 10)


def test_odd_size_and_big_endian(explainer):
    little = load_image(dcm("SC_rgb_small_odd.dcm"))
    big = load_image(dcm("SC_rgb_small_odd_big_endian.dcm"))
    assert little.raw.shape == (3, 3, 3)
    np.testing.assert_array_equal(little.pixels, big.pixels)
    expl = explainer.explain(dcm("SC_rgb_small_odd_big_endian.dcm"), "ixg", top_k=2)
    assert expl.refined.shape[-2:] == expl.image.shape[:2] and np.isfinite(expl.refined).all()
    assert expl.source["file"] == "SC_rgb_small_odd_big_endian.dcm"


def test_monochrome1_is_inverted(tmp_path):
    ds = pydicom.dcmread(dcm("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "m1.dcm")
    normal, inverted = load_image(dcm("MR_small.dcm")), load_image(tmp_path / "m1.dcm")
    assert inverted.invert and not normal.invert
    np.testing.assert_array_equal(inverted.raw, normal.raw)  # the values are the same ...
    np.testing.assert_allclose(inverted.pixels, 1.0 - normal.pixels, atol=1e-6)  # ... their display is not
    np.testing.assert_allclose(inverted.with_window("full").pixels, 1.0 - normal.with_window("full").pixels,
                               atol=1e-6)


def test_voi_lut_sequence(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(dcm("CT_small.dcm"))  # no window tags, rescale -1024
    item = Dataset()
    item.LUTDescriptor = [256, 100, 8]  # 256 entries starting at raw value 100
    item.add_new(0x00283006, "US", [0] * 128 + [255] * 128)  # LUT Data: a threshold at 100 + 128
    item.LUTExplanation = "STEP"
    ds.VOILUTSequence = Sequence([item])
    ds.save_as(tmp_path / "lut.dcm")
    img = load_image(tmp_path / "lut.dcm")
    assert img.window.function == "lut" and img.window.label == "STEP"
    expected = (img.raw >= 100 + 128).astype(np.float32)
    np.testing.assert_array_equal(img.pixels[..., 0], expected)
    assert 0.05 < expected.mean() < 0.95
    assert json.dumps(img.provenance())  # the LUT window records as JSON


def test_enhanced_multi_frame_functional_groups(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(dcm("MR_small.dcm"))
    del ds.WindowCenter, ds.WindowWidth
    voi, pvt, shared = Dataset(), Dataset(), Dataset()
    voi.WindowCenter, voi.WindowWidth = 1000, 500
    pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = 2, -100, "US"
    shared.FrameVOILUTSequence = Sequence([voi])
    shared.PixelValueTransformationSequence = Sequence([pvt])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.save_as(tmp_path / "enh.dcm")
    img = load_image(tmp_path / "enh.dcm")
    np.testing.assert_array_equal(img.raw, stored("MR_small.dcm").astype(np.float32) * 2 - 100)
    assert (img.window.center, img.window.width) == (1000, 500)


def test_dicom_without_suffix_or_preamble(tmp_path):
    ref = load_image(dcm("MR_small.dcm"))
    shutil.copy(dcm("MR_small.dcm"), tmp_path / "IM000001")
    ds = pydicom.dcmread(dcm("MR_small.dcm"))
    ds.preamble = None
    del ds.file_meta
    ds.save_as(tmp_path / "1.2.826.0.1.3680043.99", implicit_vr=True, little_endian=True, enforce_file_format=False)
    for name in ("IM000001", "1.2.826.0.1.3680043.99"):
        assert looks_like_dicom(tmp_path / name)
        img = load_image(tmp_path / name)
        np.testing.assert_array_equal(img.raw, ref.raw)
        assert img.window.mode == "dicom"
    assert not looks_like_dicom(dcm("../../../pydicom/__init__.py"))


@pytest.mark.parametrize("make, message", [
    (lambda p: shutil.copy(dcm("MR_truncated.dcm"), p), "pixel data is truncated"),
    (lambda p: p.write_bytes(dcm("CT_small.dcm").read_bytes()[:20_000]), "truncated"),
    (lambda p: p.write_bytes(dcm("CT_small.dcm").read_bytes()[:600]), "truncated or corrupt|no image"),
    (lambda p: shutil.copy(dcm("JPEG-lossy.dcm"), p), "cannot be decoded; the file may be corrupt"),
    (lambda p: p.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 300), "truncated or corrupt|no image"),
    (lambda p: p.write_text("not a scan at all, just text " * 20), "not a DICOM file"),
    (lambda p: shutil.copy(dcm("rtplan.dcm"), p), "RT Plan Storage with no image"),
], ids=["MR_truncated", "cut-pixels", "cut-header", "bad-jpeg", "garbage", "text", "rtplan"])
def test_bad_dicom_is_one_line_naming_the_file(tmp_path, make, message):
    p = tmp_path / "scan.dcm"
    make(p)
    with pytest.raises(ImageReadError, match=message) as info:
        read_image(p)
    text = str(info.value)
    assert text.startswith("scan.dcm: ") and "\n" not in text and len(text) < 400


def test_transfer_syntax_without_any_decoder(tmp_path):
    ds = pydicom.dcmread(dcm("JPEG2000.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.92"  # JPEG 2000 Part 2 multi-component
    ds.save_as(tmp_path / "j2k_part2.dcm")
    with pytest.raises(ImageReadError, match=r"j2k_part2.dcm: pixel data in JPEG 2000 Part 2 .*"
                                             r"1\.2\.840\.10008\.1\.2\.4\.92.*pydicom has no decoder"):
        read_image(tmp_path / "j2k_part2.dcm")


def test_missing_decoder_names_the_package():
    # A real interpreter without pylibjpeg: JPEG-LS then has no decoder (pyjpegls and gdcm are absent too).
    code = (
        "import sys; sys.modules['pylibjpeg'] = None\n"
        "from alens_gui.core.images import read_image\n"
        "from alens_gui.core.errors import ImageReadError\n"
        f"try:\n    read_image({str(dcm('MR_small_jpeg_ls_lossless.dcm'))!r})\n"
        "except ImageReadError as e:\n    print(e)\n"
        f"print(read_image({str(dcm('MR_small_RLE.dcm'))!r}).shape)\n"  # RLE needs no plugin
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parents[1])
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0, out.stderr
    assert lines[0].startswith("MR_small_jpeg_ls_lossless.dcm: no decoder is installed for JPEG-LS Lossless")
    assert "pyjpegls" in lines[0] and "pylibjpeg-libjpeg" in lines[0] and "python-gdcm" in lines[0]
    assert lines[1] == "(64, 64, 3)"


PHI = {"PatientName": "Doe^Jane", "PatientID": "PID-0042-XYZ", "PatientBirthDate": "19700101",
       "AccessionNumber": "ACC-998877", "InstitutionName": "St Example Hospital",
       "ReferringPhysicianName": "House^Gregory"}


def write_phi_dicom(path: Path, source: str = "MR_small.dcm") -> Path:
    ds = pydicom.dcmread(dcm(source))
    for key, value in PHI.items():
        setattr(ds, key, value)
    ds.save_as(path)
    return path


def test_identifiers_stay_out_of_provenance(tmp_path):
    img = load_image(write_phi_dicom(tmp_path / "phi.dcm"))
    assert img.identifiers["PatientName"] == "Doe^Jane" and img.identifiers["PatientID"] == "PID-0042-XYZ"
    safe = json.dumps(img.provenance())
    assert all(v not in safe for v in PHI.values())
    assert "Doe" not in img.describe()
    opted = img.provenance(include_identifiers=True)
    assert opted["identifiers"]["PatientName"] == "Doe^Jane"
    assert opted["identifiers"]["InstitutionName"] == "St Example Hospital"


def test_read_dicom_direct():
    d = read_dicom(dcm("CT_small.dcm"))
    assert d.raw.dtype == np.float32 and d.bits_stored == 16 and d.frame == 0 and d.n_frames == 1
    assert "PatientName" in d.identifiers and "PatientName" not in d.info
