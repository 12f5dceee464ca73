"""Localisation, perturbation and similarity metrics on attribution maps (SPEC section 3).

Everything here is a pure function of NumPy arrays (torch is used only for the Gaussian
blur), so each metric can be tested on hand-made maps with known answers.

Localisation (grid pointing game, first paper appendix B.1): the map's positive part is
blurred with an 11 x 11 Gaussian, sigma = 2 (OpenCV's sigma for that kernel size), then

* RA  = attribution inside the region / total attribution (0 when the total is 0);
* the blurred map is binarised at > 0 and compared with the region: IoU, precision,
  recall and F1 (precision and F1 are 0 when the binarised map is empty).

Signed maps (Input x Gradient, Integrated Gradients, Guided Backprop, LRP, and every
lensed map) are scored in two ways, both reported:

* ``ra``: RA on the positive part ``max(A, 0)`` (the paper's rule; negative evidence is
  dropped);
* ``ra_abs``: RA on ``|A|`` (negative evidence counts as attribution mass too);
* ``neg_mass``: the share of the map's mass that is negative, ``sum(max(-A, 0)) / sum(|A|)``
  (before the blur), so a reader sees how much the positive-part rule leaves out.

The pointing game (Zhang et al. 2016, on the same blurred positive part): a hit (1.0)
when a maximum of the blurred map lies inside the region, a miss (0.0) otherwise or
when the map has no positive mass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import LensError
from ..ops import gaussian_blur, opencv_sigma

#: The blur of the localisation metrics: an 11 x 11 kernel with OpenCV's sigma for it (2.0).
BLUR_SIZE = 11
BLUR_SIGMA = opencv_sigma(BLUR_SIZE)
LOCALISATION_KEYS = ("ra", "iou", "precision", "recall", "f1")
#: Every per-map value of the grid game: RA under both sign rules, the pointing game, the masks.
GRID_KEYS = ("ra", "ra_abs", "pointing", "neg_mass", "iou", "precision", "recall", "f1")
SIMILARITY_KEYS = ("spearman", "pearson", "cosine")


def _as_maps(maps) -> np.ndarray:
    a = np.asarray(maps, dtype=np.float64)
    if a.ndim not in (2, 3):
        raise LensError(f"expected a map (H, W) or maps (K, H, W); got shape {a.shape}")
    if not np.isfinite(a).all():
        raise LensError("attribution maps contain NaN or infinite values")
    return a


def blur_positive(maps) -> np.ndarray:
    """Positive part of one map (H, W) or K maps (K, H, W), blurred 11 x 11 with sigma 2."""
    return _blur(np.clip(_as_maps(maps), 0.0, None))


def _blur(a: np.ndarray) -> np.ndarray:
    t = gaussian_blur(torch.from_numpy(a), BLUR_SIGMA, BLUR_SIZE)
    # The kernel is positive, so exact zeros stay zero; clip rounding noise only.
    return np.clip(t.numpy(), 0.0, None)


def localisation(attribution, region) -> dict[str, float]:
    """RA, IoU, precision, recall and F1 of one map against one boolean region.

    Parameters
    ----------
    attribution : array (H, W)
        A channel-reduced attribution map (any sign; the positive part is used).
    region : bool array (H, W)
        The ground-truth region (the tile of the class in the grid game).

    Returns
    -------
    dict with keys ``ra``, ``iou``, ``precision``, ``recall``, ``f1``.
    """
    a = _as_maps(attribution)
    r = np.asarray(region, dtype=bool)
    if a.ndim != 2 or a.shape != r.shape:
        raise LensError(f"map shape {a.shape} and region shape {r.shape} differ")
    return _localisation_blurred(blur_positive(a), r)


def _localisation_blurred(b: np.ndarray, r: np.ndarray) -> dict[str, float]:
    total = float(b.sum())
    ra = float(b[r].sum()) / total if total > 0 else 0.0
    m = b > 0
    inter = float(np.count_nonzero(m & r))
    union = float(np.count_nonzero(m | r))
    n_mask, n_region = float(np.count_nonzero(m)), float(np.count_nonzero(r))
    iou = inter / union if union > 0 else 0.0
    precision = inter / n_mask if n_mask > 0 else 0.0
    recall = inter / n_region if n_region > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"ra": ra, "iou": iou, "precision": precision, "recall": recall, "f1": f1}


def localisation_batch(maps, regions) -> list[dict[str, float]]:
    """:func:`localisation` for K maps (K, H, W) against K regions (K, H, W), one blur call."""
    a = _as_maps(maps)
    r = np.asarray(regions, dtype=bool)
    if a.ndim != 3 or a.shape != r.shape:
        raise LensError(f"maps shape {a.shape} and regions shape {r.shape} differ")
    b = blur_positive(a)
    return [_localisation_blurred(b[i], r[i]) for i in range(a.shape[0])]


def pointing(blurred: np.ndarray, region: np.ndarray) -> float:
    """The pointing game on one blurred non-negative map: 1.0 when a maximum lies in ``region``.

    Ties count as a hit when any maximal pixel is inside the region; a map without positive
    mass is a miss.
    """
    top = float(blurred.max()) if blurred.size else 0.0
    if top <= 0:
        return 0.0
    return 1.0 if bool(np.any(blurred[region] >= top)) else 0.0


def grid_scores(maps, regions) -> list[dict[str, float]]:
    """Every :data:`GRID_KEYS` value for K maps (K, H, W) against K regions (K, H, W).

    ``ra``, ``pointing`` and the mask metrics use the positive part, ``ra_abs`` uses ``|A|``,
    ``neg_mass`` is the negative share of the unblurred map's mass (see the module text).
    """
    a = _as_maps(maps)
    r = np.asarray(regions, dtype=bool)
    if a.ndim != 3 or a.shape != r.shape:
        raise LensError(f"maps shape {a.shape} and regions shape {r.shape} differ")
    pos = _blur(np.clip(a, 0.0, None))
    absb = _blur(np.abs(a))
    out = []
    for i in range(a.shape[0]):
        m = _localisation_blurred(pos[i], r[i])
        tot_abs = float(absb[i].sum())
        mass = float(np.abs(a[i]).sum())
        out.append({
            "ra": m["ra"],
            "ra_abs": float(absb[i][r[i]].sum()) / tot_abs if tot_abs > 0 else 0.0,
            "pointing": pointing(pos[i], r[i]),
            "neg_mass": float(np.clip(-a[i], 0.0, None).sum()) / mass if mass > 0 else 0.0,
            **{k: m[k] for k in ("iou", "precision", "recall", "f1")},
        })
    return out


def auc(values: Sequence[float], fractions: Sequence[float] | None = None) -> float:
    """Area under a curve sampled at ``fractions`` (default: evenly over [0, 1]), trapezoid rule."""
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 1 or y.size < 2:
        raise ValueError("a curve needs at least two points")
    x = np.linspace(0.0, 1.0, y.size) if fractions is None else np.asarray(fractions, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError("fractions and values differ in length")
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def _ranks(v: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(v, method="average")


def _constant(v: np.ndarray) -> bool:
    return v.size == 0 or bool(v.max() == v.min())


def pearson(a, b) -> float:
    """Pearson correlation of two maps (flattened); NaN (undefined) when either is constant."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if _constant(x) or _constant(y):
        return float("nan")
    x = x - x.mean()
    y = y - y.mean()
    den = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / den) if den > 0 else float("nan")


def spearman(a, b) -> float:
    """Spearman rank correlation (ties get average ranks); NaN when either map is constant."""
    return pearson(_ranks(np.asarray(a).ravel()), _ranks(np.asarray(b).ravel()))


def cosine(a, b) -> float:
    """Cosine similarity of two maps (flattened); NaN when either is all zero."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    den = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y / den) if den > 0 else float("nan")


def similarity(a, b) -> dict[str, float]:
    """Spearman, Pearson and cosine similarity between two maps.

    A constant map (for example a lensed map in which the class wins no pixel) has no
    ranking and no direction to compare: all three similarities are NaN (undefined),
    never 0, so a caller can leave the pair out and count it instead of scoring an
    empty map as "perfectly decorrelated".
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if _constant(x) or _constant(y):
        return {k: float("nan") for k in SIMILARITY_KEYS}
    return {"spearman": spearman(x, y), "pearson": pearson(x, y), "cosine": cosine(x, y)}


def relative_change(base: float, refined: float) -> float:
    """``(refined - base) / |base|`` in percent; 0 when both are 0, inf-safe (returns nan if base is 0)."""
    if base == 0:
        return 0.0 if refined == 0 else float("nan")
    return 100.0 * (refined - base) / abs(base)
