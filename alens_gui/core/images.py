"""Reading images into float RGB arrays, with one clear error for every bad file.

Supported: PNG, JPEG, TIFF (8/16-bit, float, also 16-bit RGB via tifffile), BMP, WebP,
GIF (first frame), DICOM (:mod:`alens_gui.core.dicom`; with or without a suffix); grey,
grey+alpha, palette, RGB, RGBA, CMYK; EXIF orientation applied. Alpha is composited over
white so that transparent regions look as they do in a viewer. Data above 8 bits goes
through an intensity window (:mod:`alens_gui.core.windowing`). Everything else is an
:class:`~alens_gui.core.errors.ImageReadError`.

:func:`load_image` returns an :class:`ImageInput` (windowed pixels, native values, window,
provenance); :func:`read_image` and :func:`as_image` return just the pixels.

Image files may come from someone else, so reading one is bounded and runs no code: only a
regular file is opened (a FIFO or a device is refused without being opened), Pillow may only
recognise the formats above, and the size a header promises (pixels, decoded bytes) is checked
before anything is decoded; compressed data that would expand past that size is refused as a
decompression bomb before it is expanded. Whatever the file holds, the only error is one
:class:`~alens_gui.core.errors.ImageReadError` line naming the file.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

import numpy as np

from . import imagelimits, safeio
from .errors import ImageReadError, WindowError
from .imagelimits import MAX_DECODED_BYTES, MAX_PIXELS, check_decoded  # noqa: F401 - re-exported
from .imagelimits import check_pixels as _check_pixels
from .windowing import Window, dtype_range, is_low_depth, parse_window, resolve_window

SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")
#: The formats Pillow may recognise in a file: what :data:`SUFFIXES` names, nothing else. Pillow
#: opens any format it knows by content, and some (EPS) run an external program to do it.
#: (Multi-picture JPEGs open as JPEG.)
PIL_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WEBP", "GIF")


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


def read_image(path: str | os.PathLike, window=None, frame: int | None = None) -> np.ndarray:
    """Read an image file as float32 RGB (H x W x 3) in [0, 1].

    Data above 8 bits (16-bit PNG/TIFF, float TIFF, DICOM) goes through an intensity
    window (``window``, see :func:`load_image`); use :func:`load_image` to keep the native
    values as well.

    Raises
    ------
    ImageReadError
        Missing, empty, truncated or non-image files, unsupported formats and
        decompression bombs, each with a message naming the file and the problem.
    """
    return load_image(path, window=window, frame=frame).pixels


def _pil_native(im) -> np.ndarray:
    """A PIL image as an array in its own bit depth (16-bit stays 16-bit)."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(im)
        return arr.astype(arr.dtype.newbyteorder("="), copy=False).astype(np.uint16, copy=False)
    if mode == "I":
        arr = np.asarray(im, dtype=np.int64)
        if arr.size and arr.min() >= 0 and arr.max() <= 65535:
            return arr.astype(np.uint16)
        return arr.astype(np.int32)
    if mode == "F":
        return np.asarray(im, dtype=np.float32)
    if mode in ("RGBA", "LA", "RGB", "L"):
        return np.asarray(im)
    if mode == "1":
        return np.asarray(im.convert("L"))
    has_alpha = "transparency" in im.info or mode in ("PA", "RGBa", "La")
    return np.asarray(im.convert("RGBA" if has_alpha else "RGB"))


def _pil_band_bytes(mode: str) -> int:
    return 2 if mode.startswith("I;16") else 4 if mode in ("I", "F") else 1


def _read_pil(f: IO[bytes], name: str) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            f.seek(0)
            with Image.open(f, formats=PIL_FORMATS) as im:
                w, h = im.size
                _check_pixels(name, w, h)
                check_decoded(name, w * h * len(im.getbands()) * _pil_band_bytes(im.mode))
                im.load()
                im = ImageOps.exif_transpose(im)
                arr = _pil_native(im)
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
        raise ImageReadError(f"{name}: cannot be read ({safeio.one_line(exc)})") from exc
    except (ValueError, SyntaxError, MemoryError) as exc:
        raise ImageReadError(f"{name}: the image file is corrupt ({safeio.one_line(exc)})") from exc
    return arr


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_header(head: bytes) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) from a PNG's IHDR, or None if it is not a PNG."""
    if len(head) < 29 or head[:8] != _PNG_MAGIC or head[12:16] != b"IHDR":
        return None
    w, h = (int.from_bytes(head[i:i + 4], "big") for i in (16, 20))
    return w, h, head[24], head[25], head[28]


#: Deflate (PNG, zlib TIFF) never expands data more than 1032 times, so compressed data shorter
#: than its header's size over this cannot hold the image: refused before anything is allocated.
DEFLATE_MAX_RATIO = 1100


def _check_deflate_room(name: str, compressed: int, decoded: int, what: str) -> None:
    if compressed * DEFLATE_MAX_RATIO + 65536 < decoded:
        raise ImageReadError(f"{name}: the {what} is truncated ({compressed} bytes of compressed data cannot hold "
                             f"the {safeio.fmt_bytes(decoded)} its header says)")


def _check_png_room(f: IO[bytes], name: str, header: tuple[int, int, int, int, int]) -> None:
    """A PNG's IDAT chunks can hold the image its header says (Pillow allocates the whole image
    before it finds the data short)."""
    w, h, depth, colour, _ = header
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 4)
    decoded = h * ((w * channels * depth + 7) // 8 + 1)
    total = 0
    f.seek(8)
    while True:
        head = f.read(8)
        if len(head) < 8:
            break
        length, kind = int.from_bytes(head[:4], "big"), head[4:8]
        if kind == b"IEND":
            break
        if kind == b"IDAT":
            total += length
        f.seek(length + 4, os.SEEK_CUR)
    _check_deflate_room(name, min(total, os.fstat(f.fileno()).st_size), decoded, "PNG file")


def _png_idat(f: IO[bytes], name: str) -> Iterator[bytes]:
    """The IDAT payload of a PNG, a piece at a time: the file is never read whole, and chunk
    lengths are believed only as far as the file goes."""
    f.seek(8)
    while True:
        head = f.read(8)
        if len(head) < 8:
            return  # no IEND: the data so far is all there is (a short stream is refused later)
        length, kind = int.from_bytes(head[:4], "big"), head[4:8]
        if length > 0x7FFFFFFF:
            raise ImageReadError(f"{name}: the PNG file is corrupt (a chunk of {length} bytes)")
        if kind == b"IEND":
            return
        if kind != b"IDAT":
            f.seek(length + 4, os.SEEK_CUR)
            continue
        left = length
        while left:
            piece = f.read(min(left, 1 << 20))
            if not piece:
                raise ImageReadError(f"{name}: the PNG file is truncated or corrupt (the IDAT chunk is cut short)")
            left -= len(piece)
            yield piece
        f.seek(4, os.SEEK_CUR)  # the CRC


def _read_png16_colour(f: IO[bytes], name: str, header: tuple[int, int, int, int, int]) -> np.ndarray:
    """16-bit RGB, RGBA and grey+alpha PNGs at full depth (Pillow keeps only their high bytes).

    The image data is inflated to at most the size the header implies (one filter byte per
    row plus the pixels): more is refused as a decompression bomb before it is expanded.
    """
    w, h, _depth, colour, interlace = header
    if w < 1 or h < 1:
        raise ImageReadError(f"{name}: the PNG file is corrupt (the header says {w} x {h} pixels)")
    if interlace != 0:
        raise ImageReadError(f"{name}: interlaced 16-bit colour PNGs are not supported; save it without interlacing")
    channels = {2: 3, 4: 2, 6: 4}[colour]
    check_decoded(name, w * h * 2 * channels)
    expected = h * (w * 2 * channels + 1)
    raw = safeio.decompress(_png_idat(f, name), expected, name, ImageReadError, "PNG image data")
    if not raw:
        raise ImageReadError(f"{name}: the PNG file is truncated or corrupt (no image data)")
    try:
        pixels = _png_unfilter(raw, h, w, 2 * channels)
    except ValueError as exc:
        raise ImageReadError(f"{name}: the PNG file is truncated or corrupt ({safeio.one_line(exc)})") from exc
    arr = pixels.view(">u2").reshape(h, w, channels).astype(np.uint16)
    from PIL import Image

    try:
        f.seek(0)
        with Image.open(f, formats=("PNG",)) as im:
            orientation = im.getexif().get(0x0112)
    except Exception:  # orientation is a nicety; the pixels are already read
        orientation = None
    return _apply_orientation(arr, int(orientation)) if isinstance(orientation, int) else arr


def _png_unfilter(raw: bytes, h: int, w: int, bpp: int) -> np.ndarray:
    """Undo PNG scanline filters (PNG spec section 9) for ``h`` rows of ``w`` pixels of ``bpp`` bytes.

    Each byte depends on its left, upper and upper-left neighbours, so the rows are swept
    along anti-diagonals: ``h + w`` vectorised steps instead of ``h * w`` Python ones.
    """
    stride = w * bpp
    if len(raw) < h * (stride + 1):
        raise ValueError(f"{len(raw)} bytes of pixel data where {h * (stride + 1)} are needed")
    rows = np.frombuffer(raw, np.uint8, count=h * (stride + 1)).reshape(h, stride + 1)
    kinds = rows[:, 0]
    if kinds.max(initial=0) > 4:
        raise ValueError(f"unknown scanline filter {int(kinds.max())}")
    filtered = rows[:, 1:].reshape(h, w, bpp).astype(np.int16)
    out = np.zeros((h + 1, w + 1, bpp), np.int16)  # a zero row above and a zero column to the left
    if (kinds <= 2).all():  # None, Sub and Up only: whole rows at once
        for y in range(h):
            r, k = filtered[y], kinds[y]
            if k == 1:
                r = np.add.accumulate(r.astype(np.uint8), axis=0, dtype=np.uint8).astype(np.int16)
            elif k == 2:
                r = (r + out[y, 1:]) & 0xFF
            out[y + 1, 1:] = r
        return out[1:, 1:].astype(np.uint8).reshape(h, stride)
    from numpy.lib.stride_tricks import as_strided

    def diagonal(arr: np.ndarray, y0: int, x0: int, n: int) -> np.ndarray:
        # arr[y0 + i, x0 - i] for i < n as a strided (n, bpp) view: no fancy-index copies
        step = (arr.shape[1] - 1) * arr.strides[1]
        return as_strided(arr[y0, x0], shape=(n, bpp), strides=(step, arr.strides[2]), writeable=True)

    masks = [(kinds == k).astype(np.int16)[:, None] for k in (1, 2, 3, 4)]
    for t in range(h + w - 1):
        y0, y1 = max(0, t - w + 1), min(h, t + 1)
        n, x0 = y1 - y0, t - y0
        a, b, c = diagonal(out, y0 + 1, x0, n), diagonal(out, y0, x0 + 1, n), diagonal(out, y0, x0, n)
        pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        m1, m2, m3, m4 = (m[y0:y1] for m in masks)
        pred = a * m1 + b * m2 + ((a + b) >> 1) * m3 + paeth * m4
        diagonal(out, y0 + 1, x0 + 1, n)[:] = (diagonal(filtered, y0, x0, n) + pred) & 0xFF
    return out[1:, 1:].astype(np.uint8).reshape(h, stride)


class _SegmentBomb(ImageReadError):
    """A compressed TIFF strip or tile expands past the size its page says (named by the reader)."""


def _tiff_inflate(data, out=None):
    # tifffile passes the segment's decoded size as ``out``; without imagecodecs its own zlib
    # fallback ignores it and inflates everything, so a 64 x 64 page could expand to gigabytes
    limit = out if isinstance(out, int) and out > 0 else imagelimits.MAX_DECODED_BYTES
    return safeio.decompress(bytes(data), limit, "a TIFF strip or tile", _SegmentBomb, "compressed data")


def _tiff_unlzma(data, out=None):
    limit = out if isinstance(out, int) and out > 0 else imagelimits.MAX_DECODED_BYTES
    return safeio.decompress_lzma(bytes(data), limit, "a TIFF strip or tile", _SegmentBomb, "compressed data")


def _bound_tiff_codecs(tifffile) -> None:
    """Put bounded decoders in place of tifffile's unbounded pure-Python fallbacks (zlib, lzma).

    Only those fallbacks are replaced (imagecodecs' decoders honour the size already), with
    decoders that do what imagecodecs does: expand a segment to at most the size asked for;
    a segment that would expand further is refused as a decompression bomb.
    """
    table = tifffile.TIFF.DECOMPRESSORS
    codecs = getattr(table, "_codecs", None)
    if not isinstance(codecs, dict):
        return
    for key, bounded in ((8, _tiff_inflate), (32946, _tiff_inflate), (50013, _tiff_inflate), (34925, _tiff_unlzma)):
        try:
            current = table[key]
        except Exception:  # not decodable here at all
            continue
        if current is not bounded and getattr(current, "__module__", "").endswith("_imagecodecs"):
            codecs[key] = bounded


_reading = threading.local()


class _QuietWhileReading(logging.Filter):
    """Drops tifffile's log records from the thread that is reading a file here: a damaged file
    is already one error line, not that line plus the library's own complaints on stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_reading, "tiff", False)


_TIFF_LOG_FILTER = _QuietWhileReading()


def _read_tiff(f: IO[bytes], name: str) -> np.ndarray:
    try:
        import tifffile
    except ImportError:  # pragma: no cover - scikit-image brings tifffile
        return _read_pil(f, name)
    _bound_tiff_codecs(tifffile)
    log = logging.getLogger("tifffile")
    if _TIFF_LOG_FILTER not in log.filters:
        log.addFilter(_TIFF_LOG_FILTER)
    _reading.tiff = True
    try:
        return _read_tiff_quietly(tifffile, f, name)
    finally:
        _reading.tiff = False


def _read_tiff_quietly(tifffile, f: IO[bytes], name: str) -> np.ndarray:
    try:
        f.seek(0)
        with tifffile.TiffFile(f, name=name, offset=0) as tif:
            try:  # the first page only: len(tif.pages) would walk every IFD of the file
                page = tif.pages.first
            except IndexError:
                raise ImageReadError(f"{name}: the TIFF file holds no image") from None
            shape = tuple(int(n) for n in page.shape)
            if len(shape) >= 2:
                hw = shape[:2] if len(shape) == 2 or shape[-1] <= 4 else shape[-2:]
                _check_pixels(name, int(hw[1]), int(hw[0]))
            itemsize = np.dtype(page.dtype).itemsize if page.dtype is not None else 8
            check_decoded(name, int(np.prod(shape, dtype=object)) * itemsize)
            chunks = getattr(page, "chunks", None)
            if chunks:  # tifffile allocates a buffer of a whole strip or tile, whatever the image size
                check_decoded(name, int(np.prod(chunks, dtype=object)) * itemsize, "one strip or tile")
            size = os.fstat(f.fileno()).st_size
            if any(int(o) + int(n) > size for o, n in zip(page.dataoffsets, page.databytecounts)):
                # tifffile reads a strip's declared length at once: 256 MB for a 1 KB file
                raise ImageReadError(f"{name}: the TIFF file is truncated (a strip or tile ends past the end "
                                     "of the file)")
            stored = sum(int(n) for n in page.databytecounts)
            if page.compression == 1 and stored < page.nbytes:
                raise ImageReadError(f"{name}: the TIFF file is truncated (its strips hold {stored} of "
                                     f"{page.nbytes} bytes)")
            if page.compression in (8, 32946, 50013):
                _check_deflate_room(name, stored, page.nbytes, "TIFF file")
            arr = page.asarray()
            orientation = page.tags.get("Orientation")
            orientation = orientation.value if orientation is not None else None
    except _SegmentBomb as exc:
        raise ImageReadError(f"{name}: {exc}") from exc
    except ImageReadError:
        raise
    except Exception as exc:  # tifffile raises many types for damaged files
        raise ImageReadError(f"{name}: the TIFF file is truncated, corrupt or unsupported ({safeio.one_line(exc)})") from exc
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if isinstance(orientation, int):
        arr = _apply_orientation(arr, int(orientation))
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


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


@dataclass(frozen=True, eq=False)
class ImageInput:
    """An image as read: what the model sees, the native values behind it, and where it came from.

    Made by :func:`load_image`. Re-windowing (:meth:`with_window`) starts from ``raw`` and
    does not read the file again.

    Attributes
    ----------
    pixels : (H, W, 3) float32 in [0, 1]
        The windowed RGB image (what the model and the screen get).
    raw : ndarray
        Native values: ``(H, W)`` for grey images, ``(H, W, 3)`` for colour ones, in the
        file's own type (uint16 counts, float intensities, DICOM physical units after the
        modality LUT such as CT Hounsfield units). Alpha is kept apart in ``alpha``.
    window : Window
        The window that made ``pixels`` from ``raw``.
    window_request : str, Window or None
        What was asked for (``None`` = the default); a new frame is windowed the same way.
    default_window : str
        The mode ``window=None`` means for this image: ``dicom`` for DICOM, ``full`` for
        8-bit data and floats in [0, 1], otherwise ``auto``.
    full_range : (lo, hi)
        The ``full`` window's range.
    dicom_windows : tuple of Window
        The windows stored in a DICOM file, first (the default) first.
    invert : bool
        MONOCHROME1 DICOM: brightness is ``1 - window(raw)``.
    alpha : (H, W) float32 or None
        Opacity in [0, 1]; transparent regions are shown over white.
    frame, n_frames : int
        The frame shown (from 0) and how many the file has (DICOM multi-frame).
    path : Path or None
        The file, for reading another frame; never written out (only its name is).
    info : dict
        Non-identifying facts: file name, sha256, format, size, dtype, bits and, for DICOM,
        modality, photometric interpretation, transfer syntax, SOP class, rescale and units.
    identifiers : dict
        DICOM patient and study identifiers; written out only by
        ``provenance(include_identifiers=True)``.
    """

    pixels: np.ndarray
    raw: np.ndarray
    window: Window
    window_request: object = None
    default_window: str = "auto"
    full_range: tuple[float, float] = (0.0, 1.0)
    dicom_windows: tuple[Window, ...] = ()
    invert: bool = False
    alpha: np.ndarray | None = None
    frame: int = 0
    n_frames: int = 1
    path: Path | None = None
    info: dict = field(default_factory=dict)
    identifiers: dict = field(default_factory=dict)

    @property
    def is_dicom(self) -> bool:
        return self.info.get("format") == "DICOM"

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.raw.shape[0]), int(self.raw.shape[1])

    def resolve(self, window=None) -> Window:
        """The concrete window a request means for this image (``None``: the default)."""
        fallback = "full" if self.default_window == "full" or self._low_depth() else "auto"
        return resolve_window(window, self.raw, full_range=self.full_range, dicom_windows=self.dicom_windows,
                              default=self.default_window, fallback=fallback)

    def with_window(self, window) -> ImageInput:
        """The same image under another window (``auto``, ``full``, ``dicom``, ``"C,W"``,
        ``(center, width)``, a :class:`Window`, or ``None`` for the default); no file I/O."""
        win = self.resolve(window)
        return replace(self, window=win, window_request=parse_window(window),
                       pixels=_render(self.raw, win, self.invert, self.alpha))

    def with_frame(self, frame: int) -> ImageInput:
        """Another frame of the same file, under the same window request (reads the file)."""
        if frame == self.frame:
            return self
        if self.path is None:
            raise ImageReadError(f"{self.info.get('file') or 'the image'}: has no frame {frame}; it has one frame (0)")
        return load_image(self.path, window=self.window_request, frame=frame)

    def histogram(self, bins: int = 256, range: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Counts of the native values (all channels), for a window/level control.

        Parameters
        ----------
        bins : int
        range : (lo, hi), optional
            Default: the finite data's min..max.

        Returns
        -------
        counts : (bins,) int64
        edges : (bins + 1,) float64
        """
        v = np.asarray(self.raw).reshape(-1)
        if v.dtype.kind == "f":
            v = v[np.isfinite(v)]
        if v.size == 0:
            return np.zeros(bins, np.int64), np.linspace(0.0, 1.0, bins + 1)
        if range is None:
            range = (float(v.min()), float(v.max()))
            if range[1] <= range[0]:
                range = (range[0] - 0.5, range[0] + 0.5)
        counts, edges = np.histogram(v, bins=bins, range=range)
        return counts.astype(np.int64), edges.astype(np.float64)

    def _low_depth(self) -> bool:
        if self.is_dicom:
            return int(self.info.get("bits_stored", 16)) <= 8 and "rescale_slope" not in self.info
        return is_low_depth(self.raw)

    def provenance(self, include_identifiers: bool = False) -> dict:
        """A JSON-safe record of where the pixels came from (npz, figures, report, session).

        Patient identifiers are left out unless ``include_identifiers`` is true.
        """
        out = {k: v for k, v in self.info.items()}
        out.update(frame=int(self.frame), n_frames=int(self.n_frames), window=self.window.to_dict(),
                   # whether the window is worth a caption: not for 8-bit photographs shown as they are
                   windowed=bool(self.is_dicom or not (self.window.mode == "full" and self._low_depth())))
        if include_identifiers and self.identifiers:
            out["identifiers"] = dict(self.identifiers)
        return out

    def describe(self) -> str:
        """One line, e.g. ``CT_small.dcm: DICOM CT MONOCHROME2, 16-bit, 128 x 128``."""
        parts = [self.info.get("format", "")]
        for key in ("modality", "photometric"):
            if self.info.get(key):
                parts.append(str(self.info[key]))
        bits = self.info.get("bits_stored") or self.info.get("bits")
        text = " ".join(p for p in parts if p) + (f", {bits}-bit" if bits else "")
        text += f", {self.shape[1]} x {self.shape[0]}"
        if self.n_frames > 1:
            text += f", frame {self.frame} of 0-{self.n_frames - 1}"
        name = self.info.get("file")
        return f"{name}: {text}" if name else text


def _render(raw: np.ndarray, window: Window, invert: bool, alpha: np.ndarray | None) -> np.ndarray:
    b = window.apply(raw)
    if invert:
        b = 1.0 - b
    if b.ndim == 2:
        b = np.repeat(b[..., None], 3, axis=-1)
    if alpha is not None:
        a = alpha[..., None]
        b = b * a + (1.0 - a)
    return np.ascontiguousarray(b, dtype=np.float32)


def _split_channels(a: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, C) native data -> (grey (H, W) or RGB (H, W, 3), alpha (H, W) in [0, 1] or None)."""
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # channels-first input
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (2, 3, 4)):
        raise ImageReadError(f"expected an H x W or H x W x {{1,2,3,4}} image array; got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageReadError(f"the image is empty (shape {a.shape})")
    if a.dtype.kind not in "uif":
        raise ImageReadError(f"unsupported image data type {a.dtype}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ImageReadError("the image contains NaN or infinite values")
    if a.ndim == 2 or a.shape[-1] == 3:
        return np.ascontiguousarray(a), None
    colour, alpha = a[..., :-1], a[..., -1]
    if alpha.dtype.kind in "ui":
        top = 255 if alpha.dtype.itemsize == 1 or alpha.max(initial=0) <= 255 else np.iinfo(alpha.dtype).max
        alpha = alpha.astype(np.float32) / float(top)
    alpha = np.clip(alpha.astype(np.float32), 0.0, 1.0)
    if colour.shape[-1] == 1:
        colour = colour[..., 0]
    return np.ascontiguousarray(colour), alpha


def _bits(a: np.ndarray) -> int:
    return 1 if a.dtype == bool else 8 * a.dtype.itemsize


def load_image(source, window=None, frame: int | None = None) -> ImageInput:
    """Read an image and window it, keeping the native values for re-windowing.

    Parameters
    ----------
    source : path, ImageInput, ndarray, PIL image or tensor
        A file (PNG, JPEG, TIFF, BMP, WebP, GIF, DICOM with or without a ``.dcm`` suffix) or
        image data. An :class:`ImageInput` is re-windowed / re-framed only if asked.
    window : str, (center, width), Window or None
        ``"auto"`` (0.5-99.5 percentile), ``"full"`` (the data type's range), ``"dicom"``
        (the file's first VOI window), ``"C,W"`` or a pair in native units, a
        :class:`~alens_gui.core.windowing.Window`, or ``None``: ``dicom`` for DICOM files,
        ``full`` for 8-bit data and floats in [0, 1], ``auto`` for everything else
        (16-bit and float data). ``dicom`` on an image without windows falls back to that
        default and says so in the window's label.
    frame : int, optional
        The frame of a multi-frame DICOM file, from 0 (default 0).

    Raises
    ------
    ImageReadError
        Unreadable files (one line naming the file), a frame that does not exist. Nothing else
        escapes for any file content: not a regular file, truncated or corrupt data, headers
        above the limits (:data:`MAX_PIXELS`, :data:`MAX_DECODED_BYTES`), decompression bombs,
        and every decoder's own exceptions become this one line.
    WindowError
        A malformed window request.
    """
    parse_window(window)  # a bad request fails before any reading
    if isinstance(source, ImageInput):
        if frame is not None and frame != source.frame:
            return load_image(source.path, window if window is not None else source.window_request, frame) \
                if source.path is not None else source.with_frame(frame)
        return source if window is None else source.with_window(window)
    if isinstance(source, (str, os.PathLike)):
        return _load_path(Path(source), window, frame)
    if frame not in (None, 0):
        raise ImageReadError(f"an image array has one frame (0); got frame {frame}")
    arr = _to_array(source)
    raw, alpha = _split_channels(arr)
    default = "full" if is_low_depth(raw) else "auto"
    info = {"file": None, "format": "array", "dtype": str(raw.dtype), "bits": _bits(raw),
            "shape": [int(raw.shape[0]), int(raw.shape[1])]}
    return _finish(raw, alpha, window, default, dtype_range(raw), info=info)


def _to_array(obj) -> np.ndarray:
    try:
        from PIL import Image

        if isinstance(obj, Image.Image):
            return _pil_native(obj)
    except ImportError:  # pragma: no cover
        pass
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):
        obj = obj.detach().cpu().numpy()
    return np.asarray(obj)


def _finish(raw, alpha, window, default, full_range, *, dicom_windows=(), invert=False, frame=0, n_frames=1,
            path=None, info=None, identifiers=None) -> ImageInput:
    img = ImageInput(pixels=np.zeros((0, 0, 3), np.float32), raw=raw, window=Window(0.5, 1.0),
                     default_window=default, full_range=full_range, dicom_windows=tuple(dicom_windows),
                     invert=invert, alpha=alpha, frame=frame, n_frames=n_frames, path=path, info=info or {},
                     identifiers=identifiers or {})
    return img.with_window(window)


def _load_path(p: Path, window, frame: int | None) -> ImageInput:
    name = safeio.printable(p.name or str(p))
    kind = safeio.special_kind(p)
    if kind == "missing":
        raise ImageReadError(f"{name}: no such file")
    if kind is not None:  # a FIFO, a device, a socket, a link loop: never opened (it could block)
        raise ImageReadError(f"{name}: is {kind}, not an image file")
    try:
        # one descriptor, checked to be a regular file, for every read below (no swap in between)
        with safeio.open_regular(p, name, ImageReadError) as f:
            return _load_file(f, p, name, window, frame)
    except ImageReadError:
        raise
    except WindowError as exc:  # a window made from the file's values (a request was checked before)
        raise ImageReadError(f"{name}: the image's values give no usable window ({exc})") from exc
    except MemoryError as exc:
        raise ImageReadError(f"{name}: the image is too large to decode in the memory available") from exc
    except RecursionError as exc:
        raise ImageReadError(f"{name}: the file nests its structures too deeply to be read") from exc
    except BaseException as exc:  # a decoder's own error for a crafted file: still one line about the file
        from .dicom import is_decoder_failure

        if not is_decoder_failure(exc):
            raise
        raise ImageReadError(f"{name}: cannot be read; the file may be corrupt ({safeio.one_line(exc)})") from exc


def _load_file(f: IO[bytes], p: Path, name: str, window, frame: int | None) -> ImageInput:
    from .dicom import DICOM_SUFFIXES, is_dicom_head

    if os.fstat(f.fileno()).st_size == 0:
        raise ImageReadError(f"{name}: the file is empty")
    head = f.read(132)
    suffix = p.suffix.lower()
    if suffix in DICOM_SUFFIXES or (suffix not in SUFFIXES and is_dicom_head(head)):
        return _load_dicom(f, p, name, window, frame)
    if frame not in (None, 0):
        raise ImageReadError(f"{name}: has one frame (0); got frame {frame}")
    png = _png_header(head) if suffix in (".png", "") else None
    if png is not None:
        _check_pixels(name, png[0], png[1])
        _check_png_room(f, name, png)
    if suffix in (".tif", ".tiff"):
        arr = _read_tiff(f, name)
    elif png is not None and png[2] == 16 and png[3] in (2, 4, 6):
        _check_pixels(name, png[0], png[1])
        arr = _read_png16_colour(f, name, png)
    else:
        arr = _read_pil(f, name)
    try:
        raw, alpha = _split_channels(arr)
    except ImageReadError as exc:
        raise ImageReadError(f"{name}: {exc}") from exc
    fmt = "TIFF" if suffix in (".tif", ".tiff") else (suffix.lstrip(".").upper() or "image")
    info = {"file": name, "sha256": safeio.sha256_open(f), "format": fmt, "dtype": str(raw.dtype),
            "bits": _bits(raw), "shape": [int(raw.shape[0]), int(raw.shape[1])]}
    default = "full" if is_low_depth(raw) else "auto"
    return _finish(raw, alpha, window, default, dtype_range(raw), path=p, info=info)


def _load_dicom(f: IO[bytes], p: Path, name: str, window, frame: int | None) -> ImageInput:
    from .dicom import read_dicom

    d = read_dicom(f, frame, name=name)
    info = {"file": name, "sha256": safeio.sha256_open(f), **d.info, "dtype": str(d.raw.dtype)}
    return _finish(d.raw, None, window, "dicom", d.full_range, dicom_windows=d.windows, invert=d.invert,
                   frame=d.frame, n_frames=d.n_frames, path=p, info=info, identifiers=d.identifiers)


def as_image(obj) -> np.ndarray:
    """Accept a path, a PIL image, a NumPy array, a (C,H,W)/(H,W,C) tensor or an
    :class:`ImageInput`; return float32 RGB in [0, 1] with the default window."""
    if isinstance(obj, ImageInput):
        return obj.pixels
    return load_image(obj).pixels


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
