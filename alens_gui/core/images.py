"""Reading images into float RGB arrays, with one clear error for every bad file.

Supported: PNG, JPEG, TIFF (8/16-bit, also 16-bit RGB via tifffile), BMP, WebP, GIF
(first frame); grey, grey+alpha, palette, RGB, RGBA, CMYK; EXIF orientation applied.
Alpha is composited over white so that transparent regions look as they do in a
viewer. Everything else is an :class:`~alens_gui.core.errors.ImageReadError`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .errors import ImageReadError

#: Above this many pixels an image is refused (decompression-bomb guard).
MAX_PIXELS = 120_000_000
SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")


def to_float_rgb(arr: np.ndarray) -> np.ndarray:
    """Convert an H x W (x C) array of any numeric dtype to float32 RGB in [0, 1]."""
    a = np.asarray(arr)
    if a.dtype == bool:
        a = a.astype(np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # channels-first input
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 2, 3, 4):
        raise ImageReadError(f"expected an H x W or H x W x {{1,2,3,4}} image array; got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageReadError(f"the image is empty (shape {a.shape})")
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        top = 255 if a.max(initial=0) <= 255 and info.max <= 255 else info.max
        f = a.astype(np.float32) / float(top)
        f = np.clip(f, 0.0, 1.0)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageReadError("the image contains NaN or infinite values")
        f = a.astype(np.float32)
        if f.max(initial=0) > 1.0 or f.min(initial=0) < 0.0:
            lo, hi = float(f.min()), float(f.max())
            f = (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)
    else:
        raise ImageReadError(f"unsupported image data type {a.dtype}")
    c = f.shape[-1]
    if c in (2, 4):  # composite alpha over white
        alpha = f[..., -1:]
        f = f[..., :-1] * alpha + (1.0 - alpha)
        c -= 1
    if c == 1:
        f = np.repeat(f, 3, axis=-1)
    return np.ascontiguousarray(f, dtype=np.float32)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as float32 RGB (H x W x 3) in [0, 1].

    Raises
    ------
    ImageReadError
        Missing, empty, truncated or non-image files, unsupported formats and
        decompression bombs, each with a message naming the file and the problem.
    """
    p = Path(path)
    name = p.name or str(p)
    if not p.exists():
        raise ImageReadError(f"{name}: no such file")
    if p.is_dir():
        raise ImageReadError(f"{name}: is a folder, not an image file")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ImageReadError(f"{name}: cannot be read ({exc.strerror})") from exc
    if size == 0:
        raise ImageReadError(f"{name}: the file is empty")
    if p.suffix.lower() in (".tif", ".tiff"):
        return _read_tiff(p, name)
    return _read_pil(p, name)


def _check_pixels(name: str, w: int, h: int) -> None:
    if w * h > MAX_PIXELS:
        raise ImageReadError(
            f"{name}: the image is {w} x {h} pixels, more than the {MAX_PIXELS // 1_000_000} "
            "megapixel limit (possible decompression bomb)"
        )


def _read_pil(p: Path, name: str) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                _check_pixels(name, *im.size)
                im.load()
                im = ImageOps.exif_transpose(im)
                mode = im.mode
                if mode in ("I;16", "I;16B", "I;16L", "I"):
                    arr = np.asarray(im, dtype=np.int64)
                    top = 65535 if arr.max(initial=0) > 255 else 255
                    arr = np.clip(arr, 0, top).astype(np.uint16 if top > 255 else np.uint8)
                elif mode == "F":
                    arr = np.asarray(im, dtype=np.float32)
                elif mode in ("RGBA", "LA", "RGB", "L"):
                    arr = np.asarray(im)
                elif mode == "1":
                    arr = np.asarray(im.convert("L"))
                else:
                    has_alpha = "transparency" in im.info or mode in ("PA", "RGBa", "La")
                    arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"{name}: the image is too large to open safely (possible decompression bomb)") from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{name}: not an image file, or a format that cannot be read") from exc
    except OSError as exc:
        msg = str(exc)
        if "truncated" in msg.lower() or "broken" in msg.lower():
            raise ImageReadError(f"{name}: the image file is truncated or corrupt") from exc
        raise ImageReadError(f"{name}: cannot be read ({msg})") from exc
    except (ValueError, SyntaxError, MemoryError) as exc:
        raise ImageReadError(f"{name}: the image file is corrupt ({exc})") from exc
    return to_float_rgb(arr)


def _read_tiff(p: Path, name: str) -> np.ndarray:
    try:
        import tifffile
    except ImportError:  # pragma: no cover - scikit-image brings tifffile
        return _read_pil(p, name)
    try:
        with tifffile.TiffFile(p) as tif:
            page = tif.pages[0]
            shape = page.shape
            if len(shape) >= 2:
                hw = shape[:2] if len(shape) == 2 or shape[-1] <= 4 else shape[-2:]
                _check_pixels(name, int(hw[1]), int(hw[0]))
            arr = page.asarray()
            orientation = page.tags.get("Orientation")
    except ImageReadError:
        raise
    except Exception as exc:  # tifffile raises many types for damaged files
        raise ImageReadError(f"{name}: the TIFF file is truncated, corrupt or unsupported ({exc})") from exc
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if orientation is not None:
        arr = _apply_orientation(arr, int(orientation.value))
    return to_float_rgb(arr)


def _apply_orientation(a: np.ndarray, o: int) -> np.ndarray:
    # EXIF/TIFF orientation codes 1..8
    if o == 2:
        return a[:, ::-1]
    if o == 3:
        return a[::-1, ::-1]
    if o == 4:
        return a[::-1]
    if o == 5:
        return np.swapaxes(a, 0, 1)
    if o == 6:
        return np.rot90(a, -1)
    if o == 7:
        return np.rot90(a, 1)[::-1]
    if o == 8:
        return np.rot90(a, 1)
    return a


def as_image(obj) -> np.ndarray:
    """Accept a path, a PIL image, a NumPy array or a (C,H,W)/(H,W,C) tensor."""
    if isinstance(obj, (str, os.PathLike)):
        return read_image(obj)
    try:
        from PIL import Image

        if isinstance(obj, Image.Image):
            obj = np.asarray(obj.convert("RGBA" if "A" in obj.getbands() else "RGB"))
    except ImportError:  # pragma: no cover
        pass
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):
        obj = obj.detach().cpu().numpy()
    return to_float_rgb(np.asarray(obj))


def sample_images() -> dict[str, np.ndarray]:
    """The photographs scikit-image ships, as float RGB (the offline sample set)."""
    from skimage import data

    names = ("chelsea", "coffee", "rocket", "astronaut", "stereo_motorcycle", "cat")
    return {name: sample_image(name) for name in names if hasattr(data, name)}


def sample_image(name: str = "chelsea") -> np.ndarray:
    """One sample photograph by name (``chelsea``, ``coffee``, ``rocket``, ...)."""
    from skimage import data

    fn = getattr(data, name, None)
    if fn is None:
        raise ImageReadError(f"no sample photograph named {name!r}")
    img = fn()
    if isinstance(img, tuple):
        img = img[0]
    return to_float_rgb(img)


#: The canonical 2 x 2 grid of sample photographs, in :func:`compose_grid` tile order. The tests,
#: the GUI's "Compose a grid" dialog and the examples all use it.
GRID_PHOTOS = ("chelsea", "coffee", "rocket", "stereo_motorcycle")
#: The default model's top-1 class on each of :data:`GRID_PHOTOS` alone (Egyptian cat, espresso,
#: drilling platform, moped): the class set of the grid pointing game on that grid.
GRID_CLASSES = (285, 967, 540, 665)


def sample_grid(size: int = 224) -> np.ndarray:
    """The canonical grid: :data:`GRID_PHOTOS` tiled by :func:`compose_grid`."""
    return compose_grid([sample_image(n) for n in GRID_PHOTOS], size)


def compose_grid(images, size: int = 224) -> np.ndarray:
    """Tile four images (each resized to size/2) into a 2 x 2 grid of ``size`` x ``size``.

    Tile order: top-left, top-right, bottom-left, bottom-right.
    """
    import torch
    import torch.nn.functional as F

    imgs = [as_image(i) for i in images]
    if len(imgs) != 4:
        raise ImageReadError(f"a 2 x 2 grid needs exactly four images; got {len(imgs)}")
    half = size // 2
    tiles = []
    for im in imgs:
        t = torch.from_numpy(im).permute(2, 0, 1)[None]
        t = F.interpolate(t, size=(half, half), mode="bilinear", antialias=True, align_corners=False)
        tiles.append(t[0].permute(1, 2, 0).clamp(0, 1).numpy())
    top = np.concatenate(tiles[:2], axis=1)
    bottom = np.concatenate(tiles[2:], axis=1)
    return np.ascontiguousarray(np.concatenate([top, bottom], axis=0), dtype=np.float32)


def tile_masks(size: int = 224) -> np.ndarray:
    """Boolean masks (4, size, size) of the four grid tiles, in :func:`compose_grid` order."""
    half = size // 2
    m = np.zeros((4, size, size), dtype=bool)
    m[0, :half, :half] = True
    m[1, :half, half:] = True
    m[2, half:, :half] = True
    m[3, half:, half:] = True
    return m
