"""Masking experiments: remove part of an image and see how the class probabilities move.

This is the interactive form of the lens paper's deletion experiment: select a region
(a rectangle, brush strokes, or the top ``p`` of one class's refined map), replace it
with a fill (blur, mean colour, black, noise), run the model again and compare every
class's probability before and after. Qt-free; the GUI and tests call these directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import AlensError, ClassSetError
from .progress import Progress, ensure_progress

FILLS = ("blur", "mean", "black", "noise")


class MaskError(AlensError):
    """A mask or fill request that cannot be carried out (wrong shape, bad fraction, unknown fill)."""


def _check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise MaskError(f"expected an H x W x 3 image; got shape {img.shape}")
    return img


def _check_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise MaskError(f"the mask has shape {m.shape} but the image is {shape[0]} x {shape[1]}")
    return m.astype(bool)


def empty_mask(shape: tuple[int, int]) -> np.ndarray:
    """An all-False mask of ``shape`` (H, W)."""
    return np.zeros(tuple(shape), dtype=bool)


def rectangle_mask(shape: tuple[int, int], y0: float, x0: float, y1: float, x1: float) -> np.ndarray:
    """A mask selecting the rectangle between two corners (any order), clipped to the image.

    Coordinates are continuous image coordinates in which pixel ``(r, c)`` spans
    ``[r, r + 1) x [c, c + 1)`` (as in the GUI's views); every pixel the rectangle overlaps
    is selected, and at least the pixel under the first corner.
    """
    h, w = shape
    top, bottom = sorted((float(y0), float(y1)))
    left, right = sorted((float(x0), float(x1)))
    r0, r1 = int(np.clip(np.floor(top), 0, h)), int(np.clip(np.ceil(bottom), 0, h))
    c0, c1 = int(np.clip(np.floor(left), 0, w)), int(np.clip(np.ceil(right), 0, w))
    r1, c1 = min(h, max(r1, r0 + 1)), min(w, max(c1, c0 + 1))
    m = empty_mask(shape)
    m[r0:r1, c0:c1] = True
    return m


def brush_mask(shape: tuple[int, int], points: Iterable[tuple[float, float]], radius: float) -> np.ndarray:
    """A mask of discs of ``radius`` pixels around each ``(y, x)`` point, joined along the stroke.

    Consecutive points further apart than the radius are joined by intermediate discs so a
    fast mouse stroke still paints a continuous line.
    """
    if radius <= 0:
        raise MaskError(f"the brush radius must be positive; got {radius}")
    h, w = shape
    pts = [(float(y), float(x)) for y, x in points]
    dense: list[tuple[float, float]] = []
    for i, p in enumerate(pts):
        if i:
            q = pts[i - 1]
            dist = float(np.hypot(p[0] - q[0], p[1] - q[1]))
            n = int(dist // max(radius / 2.0, 0.5))
            dense.extend((q[0] + (p[0] - q[0]) * t, q[1] + (p[1] - q[1]) * t) for t in np.arange(1, n + 1) / (n + 1))
        dense.append(p)
    m = empty_mask(shape)
    if not dense:
        return m
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = float(radius) ** 2
    for y, x in dense:
        y0, y1 = max(0, int(y - radius) - 1), min(h, int(y + radius) + 2)
        x0, x1 = max(0, int(x - radius) - 1), min(w, int(x + radius) + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        sub = (yy[y0:y1, x0:x1] - y) ** 2 + (xx[y0:y1, x0:x1] - x) ** 2 <= r2
        m[y0:y1, x0:x1] |= sub
    return m


def top_fraction_mask(attribution: np.ndarray, p: float) -> np.ndarray:
    """The ``p`` fraction (0 < p <= 1) of pixels with the highest values of a 2-D map.

    Only pixels with a positive value are eligible: a refined map is zero where the class
    lost the competition, and those pixels are not evidence for the class. Ties at the
    threshold are broken by position (stable sort), so exactly ``round(p * H * W)``
    pixels are selected when that many are positive.
    """
    a = np.asarray(attribution, dtype=np.float64)
    if a.ndim != 2:
        raise MaskError(f"expected a 2-D map; got shape {a.shape}")
    if not 0.0 < float(p) <= 1.0:
        raise MaskError(f"the fraction must be in (0, 1]; got {p}")
    if not np.isfinite(a).all():
        raise MaskError("the map contains NaN or infinite values")
    n = int(round(float(p) * a.size))
    n = min(n, int((a > 0).sum()))
    m = empty_mask(a.shape)
    if n <= 0:
        return m
    order = np.argsort(-a.reshape(-1), kind="stable")[:n]
    m.reshape(-1)[order] = True
    return m


def fill_image(image: np.ndarray, kind: str = "blur", *, seed: int = 0, sigma: float | None = None) -> np.ndarray:
    """The replacement content for masked pixels: a full image of the same shape.

    Parameters
    ----------
    kind : {"blur", "mean", "black", "noise"}
        ``blur``: a strong Gaussian blur of the image (sigma = size / 20 unless given);
        ``mean``: the image's mean colour; ``black``: zeros; ``noise``: uniform noise in
        [0, 1] from ``seed`` (reproducible).
    """
    img = _check_image(image)
    if kind == "black":
        return np.zeros_like(img)
    if kind == "mean":
        return np.broadcast_to(img.reshape(-1, 3).mean(axis=0), img.shape).astype(np.float32).copy()
    if kind == "noise":
        return np.random.default_rng(seed).random(img.shape, dtype=np.float32)
    if kind == "blur":
        import torch

        from .ops import gaussian_blur

        s = float(sigma) if sigma is not None else max(img.shape[:2]) / 20.0
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
        return np.ascontiguousarray(gaussian_blur(t, s).permute(1, 2, 0).clamp(0, 1).numpy())
    raise MaskError(f"unknown fill {kind!r}; choose one of {', '.join(FILLS)}")


def apply_mask(image: np.ndarray, mask: np.ndarray, fill: str = "blur", *, seed: int = 0) -> np.ndarray:
    """``image`` with the pixels where ``mask`` is True replaced by :func:`fill_image`."""
    img = _check_image(image)
    m = _check_mask(mask, img.shape[:2])
    if not m.any():
        return img.copy()
    return np.where(m[..., None], fill_image(img, fill, seed=seed), img).astype(np.float32)


@dataclass(frozen=True)
class MaskResult:
    """Probabilities of a class set before and after masking.

    Attributes
    ----------
    classes : (K,) int
    before, after : (K,) float
        Softmax probabilities (over all classes) on the original and the masked image.
    masked_image : (H, W, 3) float32
    fraction : float
        Share of the image that was masked.
    fill : str
    """

    classes: np.ndarray
    before: np.ndarray
    after: np.ndarray
    masked_image: np.ndarray
    fraction: float
    fill: str

    @property
    def change(self) -> np.ndarray:
        """``after - before`` per class."""
        return self.after - self.before


def probability_shift(
    loaded,
    image: np.ndarray,
    mask: np.ndarray,
    classes: Sequence[int],
    fill: str = "blur",
    *,
    seed: int = 0,
    progress: Progress | None = None,
    geometry=None,
) -> MaskResult:
    """Run the model on ``image`` and on the masked image; compare the class set's probabilities.

    Parameters
    ----------
    loaded : LoadedModel
        Anything with ``to_input(display) -> tensor`` and ``probabilities(x) -> (N,)``.
    image : (H, W, 3) float32
        The image as the model sees it (``Explanation.image``).
    mask : (H, W) bool
    classes : sequence of int
        The classes to report (indices into the model's outputs).
    geometry : Geometry, optional
        How ``image`` (a display image) meets the model's input: the explanation's own
        geometry, so the masked pixels are the ones the maps were computed on.
    """
    progress = ensure_progress(progress)
    img = _check_image(image)
    m = _check_mask(mask, img.shape[:2])
    if fill not in FILLS:
        raise MaskError(f"unknown fill {fill!r}; choose one of {', '.join(FILLS)}")
    cls = np.asarray([int(c) for c in classes], dtype=np.int64)
    if cls.size == 0:
        raise ClassSetError("no classes to compare")
    progress.add_total(2)
    def to_input(a):
        return loaded.to_input(a if geometry is None else geometry.model_image(a, fill=loaded.mean))

    before_all = loaded.probabilities(to_input(img))
    if cls.max() >= before_all.size or cls.min() < 0:
        raise ClassSetError(f"class {int(cls.max())} is out of range for a model with {before_all.size} classes")
    progress.advance(1, "original image")
    masked = apply_mask(img, m, fill, seed=seed)
    after_all = loaded.probabilities(to_input(masked))
    progress.advance(1, "masked image")
    return MaskResult(
        classes=cls,
        before=np.asarray(before_all[cls], dtype=np.float64),
        after=np.asarray(after_all[cls], dtype=np.float64),
        masked_image=masked,
        fraction=float(m.mean()),
        fill=fill,
    )
