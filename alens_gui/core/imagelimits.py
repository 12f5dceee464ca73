"""Decompression-bomb guards shared by every image reader (PIL formats, DICOM).

Its own module so that the DICOM reader and the general reader both use it without importing
each other.
"""

from __future__ import annotations

from . import safeio
from .errors import ImageReadError

#: Above this many pixels an image is refused (decompression-bomb guard).
MAX_PIXELS = 120_000_000
#: Above this many bytes of decoded data (one image or frame, every channel, in its own type) an
#: image is refused, and so is anything above half the memory available when it is read.
MAX_DECODED_BYTES = 2 * 1024**3


def check_pixels(name: str, w: int, h: int) -> None:
    if w * h > MAX_PIXELS:
        raise ImageReadError(
            f"{name}: the image is {w} x {h} pixels, more than the {MAX_PIXELS // 1_000_000} "
            "megapixel limit (possible decompression bomb)"
        )


def check_decoded(name: str, nbytes: int, what: str = "the image") -> None:
    """Refuse, before decoding, an image whose header says it decodes to more than
    :data:`MAX_DECODED_BYTES` or than half the memory available now."""
    limit = min(MAX_DECODED_BYTES, safeio.memory_budget(0.5))
    if nbytes > limit:
        raise ImageReadError(f"{name}: {what} would take {safeio.fmt_bytes(nbytes)} decoded, more than the "
                             f"{safeio.fmt_bytes(limit)} limit (possible decompression bomb)")


