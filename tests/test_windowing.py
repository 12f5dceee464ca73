"""Intensity windows for images above 8 bits: auto, full, dicom, explicit, and re-windowing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from alens_gui.core.errors import ImageReadError, WindowError
from alens_gui.core.images import ImageInput, as_image, load_image, read_image
from alens_gui.core.windowing import AUTO_PERCENTILES, Window, auto_window, parse_window


@pytest.fixture(scope="module")
def chelsea():
    from skimage import data

    return data.chelsea()


@pytest.fixture(scope="module")
def files12(tmp_path_factory, chelsea):
    """The photograph as 12-bit data stored in 16 bits (X-ray/microscopy style): grey PNG, RGB TIFF."""
    import tifffile

    d = tmp_path_factory.mktemp("w12")
    rgb12 = np.round(chelsea.astype(np.float64) * 4095 / 255).astype(np.uint16)
    grey12 = np.round(chelsea.mean(-1) * 4095 / 255).astype(np.uint16)
    tifffile.imwrite(d / "rgb12.tif", rgb12)
    Image.fromarray(grey12).save(d / "grey12.png")
    return d, rgb12, grey12


def _corr(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_12bit_in_16bit_reads_at_full_brightness(files12, chelsea):
    d, _, _ = files12
    ref_rgb = chelsea / 255.0
    ref_grey = chelsea.mean(-1) / 255.0
    for name, ref in (("rgb12.tif", ref_rgb), ("grey12.png", ref_grey)):
        img = read_image(d / name)
        shown = img if ref.ndim == 3 else img[..., 0]
        assert img.max() == 1.0 and img.min() == 0.0, name
        # the 0.5-99.5 percentile stretch brightens a little; dividing by 65535 gave 1/16
        assert 0.8 < shown.mean() / ref.mean() < 1.35, (name, shown.mean(), ref.mean())
        assert _corr(shown, ref) > 0.99
        # 'full' is the old reading: 4095 / 65535 at most
        assert read_image(d / name, window="full").max() < 0.07


def test_12bit_image_is_classified_like_the_8bit_one(files12, chelsea, explainer):
    d, _, _ = files12
    p8 = explainer.predict(chelsea)
    top = int(np.argmax(p8))
    p_auto = explainer.predict(d / "rgb12.tif")
    p_full = explainer.predict(read_image(d / "rgb12.tif", window="full"))
    assert int(np.argmax(p_auto)) == top
    assert abs(p_auto[top] - p8[top]) < 0.15
    assert p_full[top] < p_auto[top] - 0.2  # the dark reading loses most of the evidence


def test_explicit_and_full_windows_are_exact(files12, chelsea):
    d, rgb12, _ = files12
    img = load_image(d / "rgb12.tif", window="2047.5,4095")
    np.testing.assert_allclose(img.pixels, rgb12 / 4095.0, atol=1e-6)
    assert img.window.mode == "manual" and img.window.lo == 0 and img.window.hi == 4095
    full = load_image(d / "rgb12.tif", window="full")
    np.testing.assert_allclose(full.pixels, rgb12 / 65535.0, atol=1e-6)
    assert (full.window.lo, full.window.hi) == (0, 65535)
    pair = load_image(d / "rgb12.tif", window=(2047.5, 4095))
    np.testing.assert_array_equal(pair.pixels, img.pixels)


def test_auto_window_is_the_percentiles(files12):
    d, rgb12, _ = files12
    img = load_image(d / "rgb12.tif")
    lo, hi = np.percentile(rgb12, AUTO_PERCENTILES)
    assert img.window.mode == "auto" and img.default_window == "auto"
    assert img.window.lo == pytest.approx(lo) and img.window.hi == pytest.approx(hi)
    inside = (rgb12 > lo) & (rgb12 < hi)
    np.testing.assert_allclose(img.pixels[inside], ((rgb12 - lo) / (hi - lo))[inside], atol=1e-5)
    assert (img.pixels == 1.0).mean() < 0.01 and (img.pixels == 0.0).mean() < 0.01


def test_rewindow_keeps_native_values_without_reading(files12, tmp_path):
    import shutil

    d, rgb12, _ = files12
    p = tmp_path / "copy.tif"
    shutil.copy(d / "rgb12.tif", p)
    img = load_image(p)
    p.unlink()  # re-windowing must not need the file
    np.testing.assert_array_equal(img.raw, rgb12)
    narrow = img.with_window("1000,200")
    assert narrow.raw is img.raw
    np.testing.assert_allclose(narrow.pixels, np.clip((rgb12.astype(np.float64) - 900) / 200.0, 0, 1), atol=1e-6)
    assert img.with_window(None).window == img.window
    counts, edges = img.histogram(bins=64)
    assert counts.sum() == rgb12.size and edges[0] == rgb12.min() and edges[-1] == rgb12.max()
    assert load_image(narrow).pixels is narrow.pixels  # an ImageInput passes through unchanged


def test_float_tiff(tmp_path, chelsea):
    import tifffile

    grey = chelsea.mean(-1).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", grey * 7.5 - 300.0)  # arbitrary physical units
    img = load_image(tmp_path / "f.tif")
    assert img.default_window == "auto" and img.raw.dtype == np.float32
    assert _corr(img.pixels[..., 0], grey) > 0.99 and img.pixels.max() == 1.0
    unit = grey / 255.0
    tifffile.imwrite(tmp_path / "u.tif", unit)  # floats already in [0, 1] are shown as they are
    np.testing.assert_allclose(read_image(tmp_path / "u.tif")[..., 0], unit, atol=1e-6)


def test_8bit_images_keep_their_values(tmp_path, chelsea):
    Image.fromarray(chelsea).save(tmp_path / "c.png")
    img = load_image(tmp_path / "c.png")
    assert img.default_window == "full" and img.window.mode == "full"
    np.testing.assert_allclose(img.pixels, chelsea / 255.0, atol=1e-6)
    assert not img.provenance()["windowed"]  # nothing to say in a caption
    asked = load_image(tmp_path / "c.png", window="auto")  # asked for explicitly: stretched
    assert asked.window.mode == "auto" and asked.provenance()["windowed"]
    dicom = load_image(tmp_path / "c.png", window="dicom")  # no tags: falls back, and says so
    assert dicom.window.mode == "full" and "no window" in dicom.window.label


def test_arrays_get_the_same_windows(chelsea):
    rgb12 = np.round(chelsea.astype(np.float64) * 4095 / 255).astype(np.uint16)
    assert as_image(rgb12).max() == 1.0
    np.testing.assert_allclose(as_image(chelsea), chelsea / 255.0, atol=1e-6)
    unit = chelsea / 255.0
    np.testing.assert_allclose(as_image(unit.astype(np.float32)), unit, atol=1e-6)
    rgba = np.dstack([rgb12, np.full(rgb12.shape[:2], 65535, np.uint16)])
    rgba[:10, :, 3] = 0
    img = load_image(rgba)
    assert img.alpha is not None and np.allclose(img.pixels[:10], 1.0)  # transparent -> white
    np.testing.assert_allclose(img.pixels[10:], load_image(rgb12).pixels[10:], atol=1e-6)


def test_window_functions():
    x = np.array([-1000.0, 0.0, 39.5, 40.0, 100.0, 1000.0])
    lin = Window(40, 400, "dicom", "linear")
    exact = Window(40, 400, "dicom", "linear_exact")
    sig = Window(40, 400, "dicom", "sigmoid")
    np.testing.assert_allclose(exact.apply(x), np.clip((x - 40) / 400 + 0.5, 0, 1), atol=1e-7)
    np.testing.assert_allclose(lin.apply(x), np.clip((x - 39.5) / 399 + 0.5, 0, 1), atol=1e-7)
    assert sig.apply(np.array([40.0]))[0] == pytest.approx(0.5)
    assert 0 < sig.apply(np.array([-1000.0]))[0] < 0.01 and sig.apply(np.array([1000.0]))[0] > 0.99
    assert Window.from_dict(exact.to_dict()) == exact
    assert "C 40 W 400" in exact.describe()


def test_parse_window():
    assert parse_window("AUTO") == "auto" and parse_window(" dicom ") == "dicom"
    w = parse_window("-600,1500")
    assert (w.center, w.width, w.mode) == (-600, 1500, "manual")
    assert parse_window("40/400") == Window(40, 400)
    for bad in ("bright", "40", "40,0", "40,-5", "a,b", "1,2,3", (1, 2, 3), 5):
        with pytest.raises(WindowError):
            parse_window(bad)
    with pytest.raises(WindowError):
        load_image(np.zeros((4, 4), np.uint16), window="40,0")


def test_auto_window_of_a_flat_image():
    flat = np.full((8, 8), 1234, np.uint16)
    w = auto_window(flat)
    assert w.width > 0 and np.isfinite(load_image(flat).pixels).all()


def test_frames_of_a_plain_image_are_refused(tmp_path, chelsea):
    Image.fromarray(chelsea).save(tmp_path / "c.png")
    with pytest.raises(ImageReadError, match="c.png: has one frame"):
        load_image(tmp_path / "c.png", frame=1)
    assert isinstance(load_image(tmp_path / "c.png", frame=0), ImageInput)


def _png16(path, arr: np.ndarray, filters=(0, 1, 2, 3, 4)) -> None:
    """A 16-bit RGB(A) PNG written by hand (Pillow cannot write them), cycling through the five
    scanline filters of the PNG specification so that the reader must undo each one."""
    import struct
    import zlib

    h, w, c = arr.shape
    b = arr.astype(">u2").view(np.uint8).reshape(h, w, 2 * c).astype(np.int16)
    left, up, upleft = np.zeros_like(b), np.zeros_like(b), np.zeros_like(b)
    left[:, 1:], up[1:], upleft[1:, 1:] = b[:, :-1], b[:-1], b[:-1, :-1]
    pa, pb, pc = np.abs(up - upleft), np.abs(left - upleft), np.abs(left + up - 2 * upleft)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    predictions = {0: np.zeros_like(b), 1: left, 2: up, 3: (left + up) >> 1, 4: paeth}
    rows = b"".join(bytes([k]) + ((b[y] - predictions[k][y]) & 0xFF).astype(np.uint8).tobytes()
                    for y in range(h) for k in [filters[y % len(filters)]])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, {2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def test_16bit_rgb_png_keeps_its_low_bits(tmp_path, chelsea):
    # Pillow reads 16-bit colour PNGs as 8-bit (high bytes only): 12-bit data came out almost black
    rgb12 = np.round(chelsea.astype(np.float64) * 4095 / 255).astype(np.uint16)
    _png16(tmp_path / "rgb12.png", rgb12)
    img = load_image(tmp_path / "rgb12.png")
    np.testing.assert_array_equal(img.raw, rgb12)
    _png16(tmp_path / "sub_up.png", rgb12, filters=(1, 2, 0))  # the whole-row path
    np.testing.assert_array_equal(load_image(tmp_path / "sub_up.png").raw, rgb12)
    grey_alpha = np.dstack([rgb12[..., 1], np.full(rgb12.shape[:2], 65535, np.uint16)])
    _png16(tmp_path / "la.png", grey_alpha)
    np.testing.assert_array_equal(load_image(tmp_path / "la.png").raw, rgb12[..., 1])
    assert img.pixels.max() == 1.0 and _corr(img.pixels, chelsea / 255.0) > 0.99
    rgba = np.dstack([rgb12, np.full(rgb12.shape[:2], 65535, np.uint16)])
    rgba[:5, :, 3] = 0
    _png16(tmp_path / "rgba.png", rgba)
    a = load_image(tmp_path / "rgba.png")
    assert np.allclose(a.pixels[:5], 1.0) and np.array_equal(a.raw, rgb12)
    (tmp_path / "cut.png").write_bytes((tmp_path / "rgb12.png").read_bytes()[:3000])
    with pytest.raises(ImageReadError, match="cut.png: .*truncated or corrupt"):
        read_image(tmp_path / "cut.png")
