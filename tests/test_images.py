"""Reading images of every supported kind, and a clear error for everything else."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from alens_gui.core.errors import ImageReadError
from alens_gui.core.images import read_image, to_float_rgb


@pytest.fixture(scope="module")
def chelsea():
    from skimage import data

    return data.chelsea()


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp", ".tif"])
def test_formats_8bit(tmp_path, chelsea, suffix):
    p = tmp_path / f"c{suffix}"
    Image.fromarray(chelsea).save(p)
    img = read_image(p)
    assert img.shape == chelsea.shape and img.dtype == np.float32
    assert 0 <= img.min() and img.max() <= 1
    tol = 0.2 if suffix in (".jpg", ".webp") else 1e-6
    assert np.abs(img - chelsea / 255.0).mean() < tol


def test_16bit_tiff_grey_and_rgb(tmp_path, chelsea):
    import tifffile

    rgb16 = chelsea.astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16)
    img = read_image(tmp_path / "rgb16.tif", window="full")
    np.testing.assert_allclose(img, chelsea / 255.0, atol=1e-4)
    auto = read_image(tmp_path / "rgb16.tif")  # the default above 8 bits: 0.5-99.5 percentile
    assert auto.max() == 1.0 and auto.min() == 0.0
    assert np.corrcoef(auto.ravel(), img.ravel())[0, 1] > 0.99
    grey16 = (np.linspace(0, 65535, 64 * 32).reshape(64, 32)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "g16.tif", grey16)
    g = read_image(tmp_path / "g16.tif")
    assert g.shape == (64, 32, 3) and abs(g.max() - 1.0) < 1e-6 and g.min() == 0
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    np.testing.assert_allclose(read_image(tmp_path / "g16.png"), g, atol=1e-6)


def test_grey_and_rgba(tmp_path, chelsea):
    Image.fromarray(chelsea[..., 0]).save(tmp_path / "g.png")
    g = read_image(tmp_path / "g.png")
    assert g.shape == (*chelsea.shape[:2], 3) and np.allclose(g[..., 0], g[..., 2])
    rgba = np.dstack([chelsea, np.zeros(chelsea.shape[:2], np.uint8)])
    rgba[:10, :, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "a.png")
    a = read_image(tmp_path / "a.png")
    assert np.allclose(a[20:], 1.0)  # fully transparent -> white
    np.testing.assert_allclose(a[:10], chelsea[:10] / 255.0, atol=1e-6)


def test_exif_rotation(tmp_path, chelsea):
    im = Image.fromarray(chelsea)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    im.save(tmp_path / "r.jpg", exif=exif, quality=95)
    img = read_image(tmp_path / "r.jpg")
    assert img.shape == (chelsea.shape[1], chelsea.shape[0], 3)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, I am text"), "not an image"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30), "not an image|corrupt|truncated"),
    ],
    ids=["missing", "empty", "text", "garbage-png"],
)
def test_bad_files(tmp_path, make, message):
    p = tmp_path / "bad.png"
    make(p)
    with pytest.raises(ImageReadError, match=message):
        read_image(p)


def test_truncated_jpeg(tmp_path, chelsea):
    p = tmp_path / "t.jpg"
    Image.fromarray(chelsea).save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated|corrupt"):
        read_image(p)


def test_truncated_tiff(tmp_path, chelsea):
    p = tmp_path / "t.tif"
    Image.fromarray(chelsea).save(p)
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(ImageReadError, match="truncated|corrupt"):
        read_image(p)


def test_decompression_bomb(tmp_path):
    # A tiny file that claims 20000 x 20000 pixels.
    p = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(p)
    assert p.stat().st_size < 200_000
    with pytest.raises(ImageReadError, match="decompression bomb|too large|limit"):
        read_image(p)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_array_conversion():
    assert to_float_rgb(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert to_float_rgb(np.zeros((3, 4, 5), np.float32)).shape == (4, 5, 3)  # channels first
    with pytest.raises(ImageReadError, match="NaN"):
        to_float_rgb(np.full((4, 4, 3), np.nan))
    with pytest.raises(ImageReadError, match="shape"):
        to_float_rgb(np.zeros((5, 5, 7)))
