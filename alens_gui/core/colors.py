"""One colour scale for the screen and every export (what you see is what you export).

Everything that decides how a map becomes colour lives here, torch- and Qt-free:

* **which colour map**: a diverging map (:data:`DIVERGING`, blue < 0 < red, white at 0)
  for signed methods, a sequential one (:data:`SEQUENTIAL`) for non-negative ones; the
  choice follows the *base* maps of an explanation, so the refined maps of a signed
  method keep the diverging map even where only positive values survive;
* **which limits**: a high percentile of the non-zero |values| (zeros are ignored, so a
  refined map that is zero where its class loses is not washed out), shared by all maps
  (``scope="all"``), by each row of maps (base maps share one limit, refined maps
  another: ``"row"``, the default) or per map (``"class"``);
* **contrast**: ``gamma`` < 1 lifts faint values, > 1 keeps only the strongest;
* **the overlay rule**: a map is drawn over :func:`backdrop` (a light grey version of the
  image) with per-pixel opacity ``opacity * sqrt(m)``, where ``m = (|v| / limit) ** gamma``
  in [0, 1]. A zero (or NaN) pixel is fully transparent: the backdrop is never darkened.

Views draw with the lookup table of :func:`lut` (RGBA, the alpha channel carries the
overlay rule) and the level range of :meth:`ColorScale.levels`; exporters call
:func:`overlay` which applies the very same table in NumPy.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, replace

import numpy as np

DIVERGING = "RdBu_r"
SEQUENTIAL = "inferno"
SCOPES = ("row", "all", "class")
#: Entries of every lookup table: odd, so that value 0 has its own entry (fully transparent).
LUT_SIZE = 511
#: Distinct colours for the classes of a set (class-territory view, legends): Tableau 10 + 10 more.
CLASS_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)


def class_color(i: int) -> tuple[int, int, int]:
    """The RGB colour (0-255) of entry ``i`` of :data:`CLASS_COLORS`."""
    h = CLASS_COLORS[int(i) % len(CLASS_COLORS)].lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def palette_slots(classes) -> list[int]:
    """Which :data:`CLASS_COLORS` entry each class of a set gets: its own (class index mod 9,
    one of the nine strong colours other than grey) unless an earlier class of the set took it,
    then the next free one. A class keeps its colour from one class set to the next (the Egyptian cat is not
    blue in one set and green in the next), and the classes of one set never share a colour
    (up to 20 classes)."""
    # the strong colours but grey (it reads as "no class" beside the territory's grey), then the
    # light ones, grey last
    order = [0, 1, 2, 3, 4, 5, 6, 8, 9] + [10, 11, 12, 13, 14, 15, 16, 18, 19] + [7, 17]
    taken: set[int] = set()
    out = []
    for c in classes:
        start = int(c) % 9
        pos = start
        while order[pos] in taken and len(taken) < len(order):
            pos = (pos + 1) % len(order)
        taken.add(order[pos])
        out.append(order[pos])
    return out


def class_colors(classes) -> list[tuple[int, int, int]]:
    """The RGB colour (0-255) of each class of a set, by the class (see :func:`palette_slots`)."""
    return [class_color(slot) for slot in palette_slots(classes)]


@functools.lru_cache(maxsize=8)
def _base_colors(name: str, n: int) -> np.ndarray:
    from matplotlib import colormaps

    return np.asarray(colormaps[name](np.linspace(0.0, 1.0, n))[:, :3], dtype=np.float64)


@functools.lru_cache(maxsize=32)
def lut(signed: bool, gamma: float = 1.0, n: int = LUT_SIZE) -> np.ndarray:
    """An (n, 4) uint8 RGBA lookup table over the value range of :meth:`ColorScale.levels`.

    Entry ``i`` stands for the value at the centre of the ``i``-th of ``n`` equal bins of
    ``[-limit, limit]`` (signed) or ``[0, limit]`` (unsigned); with odd ``n`` the centre
    entry of a signed table is exactly 0, and it and the first entry of an unsigned table
    are fully transparent.
    """
    t = (np.arange(n) + 0.5) / n  # bin centres in (0, 1)
    v = 2.0 * t - 1.0 if signed else t  # value / limit
    v[np.abs(v) < 1e-12] = 0.0
    if not signed:
        v[0] = 0.0  # the bin that holds 0 is transparent, as the signed centre bin is
    m = np.abs(v) ** float(gamma)
    pos = 0.5 + 0.5 * np.sign(v) * m if signed else m
    base = _base_colors(DIVERGING if signed else SEQUENTIAL, 1024)
    rgb = base[np.clip(np.round(pos * 1023).astype(int), 0, 1023)]
    alpha = np.sqrt(m)
    out = np.empty((n, 4), dtype=np.uint8)
    out[:, :3] = np.round(rgb * 255)
    out[:, 3] = np.round(alpha * 255)
    return out


def robust_limit(maps, percentile: float = 99.5) -> float:
    """The ``percentile`` of the finite non-zero |values| of ``maps`` (1.0 when there are none)."""
    a = np.abs(np.asarray(maps, dtype=np.float64))
    a = a[np.isfinite(a) & (a > 0)]
    if a.size == 0:
        return 1.0
    m = float(np.percentile(a, percentile))
    return m if m > 0 else float(a.max())


def is_signed(maps) -> bool:
    """Whether a set of maps has negative values (then it gets the diverging map)."""
    a = np.asarray(maps)
    return bool(np.nanmin(a) < 0) if a.size and np.isfinite(a).any() else False


@dataclass(frozen=True)
class ColorScale:
    """How maps become colours (see the module docstring).

    Attributes
    ----------
    scope : {"row", "all", "class"}
        Which maps share a colour limit.
    percentile : float
        Percentile of the non-zero |values| that saturates the colour map (50-100).
    gamma : float
        Contrast: ``m = (|v| / limit) ** gamma`` (0.2-5).
    """

    scope: str = "row"
    percentile: float = 99.5
    gamma: float = 1.0

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"colour scope must be one of {', '.join(SCOPES)}; got {self.scope!r}")
        if not 50.0 <= float(self.percentile) <= 100.0:
            raise ValueError(f"the colour percentile must be in [50, 100]; got {self.percentile}")
        if not 0.05 <= float(self.gamma) <= 20.0:
            raise ValueError(f"gamma must be in [0.05, 20]; got {self.gamma}")
        object.__setattr__(self, "percentile", float(self.percentile))
        object.__setattr__(self, "gamma", float(self.gamma))

    def with_(self, **changes) -> ColorScale:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict:
        return asdict(self)

    def limits(self, base, refined) -> tuple[np.ndarray, np.ndarray]:
        """Colour limits ``(base (K,), refined (K,))`` for K base and K refined maps."""
        return self.joint_limits([(base, refined)])[0]

    def joint_limits(self, pairs) -> list[tuple[np.ndarray, np.ndarray]]:
        """Limits shared by several explanations of one class set (a comparison): one colour scale.

        ``pairs`` is a list of ``(base (K, ...), refined (K, ...))``; the maps may have different
        sizes. The scope decides what shares a limit, now across all the pairs.
        """
        k = np.asarray(pairs[0][0]).shape[0]

        def flat(maps):
            return np.concatenate([np.asarray(m).reshape(-1) for m in maps]) if maps else np.zeros(0)

        bases = [np.asarray(b).reshape(k, -1) for b, _ in pairs]
        refs = [np.asarray(r).reshape(k, -1) for _, r in pairs]
        if self.scope == "all":
            lim = robust_limit(flat(bases + refs), self.percentile)
            b, r = np.full(k, lim), np.full(k, lim)
        elif self.scope == "row":
            b, r = np.full(k, robust_limit(flat(bases), self.percentile)), np.full(k, robust_limit(flat(refs), self.percentile))
        else:
            b = np.array([robust_limit(flat([x[i] for x in bases]), self.percentile) for i in range(k)])
            r = np.array([robust_limit(flat([x[i] for x in refs]), self.percentile) for i in range(k)])
        return [(b.copy(), r.copy()) for _ in pairs]

    def levels(self, limit: float, signed: bool) -> tuple[float, float]:
        """The value range that :func:`lut` spans for a map with this ``limit``."""
        return (-float(limit), float(limit)) if signed else (0.0, float(limit))

    def lut(self, signed: bool) -> np.ndarray:
        return lut(bool(signed), self.gamma)

    def rgba(self, amap, limit: float, signed: bool) -> np.ndarray:
        """(H, W, 4) uint8: the map through the lookup table (NaN and 0 transparent)."""
        table = self.lut(signed)
        n = table.shape[0]
        lo, hi = self.levels(limit, signed)
        a = np.nan_to_num(np.asarray(amap, dtype=np.float64), nan=0.0, posinf=hi, neginf=lo)
        idx = np.clip(np.floor((a - lo) * (n / (hi - lo))), 0, n - 1).astype(np.intp)
        return table[idx]


def backdrop(image) -> np.ndarray:
    """The light grey version of an RGB image (H, W, 3 float in [0, 1]) under every heat map."""
    g = np.asarray(image, dtype=np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.repeat((0.35 + 0.6 * g)[..., None], 3, axis=-1)


def composite(under: np.ndarray, rgba: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """``rgba`` (uint8) over ``under`` (float RGB), scaled by ``opacity``: float RGB in [0, 1]."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0 * float(opacity)
    c = rgba[..., :3].astype(np.float32) / 255.0
    return np.clip(np.asarray(under, dtype=np.float32) * (1.0 - a) + c * a, 0.0, 1.0)


def overlay(image, amap, limit: float, signed: bool, scale: ColorScale | None = None,
            opacity: float = 0.75) -> np.ndarray:
    """A map drawn over the grey backdrop of ``image``, exactly as the views draw it."""
    scale = scale or ColorScale()
    return composite(backdrop(image), scale.rgba(amap, limit, signed), opacity)


def territory_rgba(labels: np.ndarray, strength: np.ndarray, classes=None) -> np.ndarray:
    """The class-territory image: each pixel in its winning class's colour.

    ``classes`` (the set's class indices) colours each class by :func:`class_colors`.
    ``labels`` (H, W) int is the winning class's position in the set, -1 where no class is
    above chance; ``strength`` (H, W) in [0, 1] is the winner's margin above chance relative
    to the largest possible margin. Opacity is ``0.25 + 0.75 * sqrt(strength)`` where a
    class wins (a narrow win stays visible) and 0 where none does.
    """
    labels = np.asarray(labels)
    s = np.clip(np.nan_to_num(np.asarray(strength, dtype=np.float64)), 0.0, 1.0)
    if classes is None:  # colours by position in the set
        palette = np.array([class_color(i) for i in range(len(CLASS_COLORS))], dtype=np.uint8)
    else:  # colours by class (the legends and titles use the same: class_colors)
        palette = np.array(class_colors(classes) or [(0, 0, 0)], dtype=np.uint8)
    out = np.zeros(labels.shape + (4,), dtype=np.uint8)
    won = labels >= 0
    out[won, :3] = palette[labels[won] % len(palette)]
    out[won, 3] = np.round((0.25 + 0.75 * np.sqrt(s[won])) * 255).astype(np.uint8)
    return out
