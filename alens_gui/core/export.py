"""Annotated heatmap figures (PNG, SVG, PDF) for reports, written atomically.

Uses matplotlib's object API with the Agg canvas directly (no pyplot, no GUI backend),
so it runs headless and never touches Qt.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .explanation import Explanation, atomic_write

FORMATS = ("png", "svg", "pdf")


def map_limits(maps: np.ndarray, percentile: float = 99.5) -> tuple[float, float, bool]:
    """Colour limits shared by a set of maps: symmetric when any value is negative.

    The limit is a high percentile of the non-zero |values| rather than the maximum:
    pixel-space gradient maps have a few extreme pixels that would otherwise wash
    everything else out (values beyond the limit saturate).
    """
    finite = np.asarray(maps)[np.isfinite(maps)]
    nonzero = np.abs(finite[finite != 0])
    if nonzero.size == 0:
        return 0.0, 1.0, False
    m = float(np.percentile(nonzero, percentile)) or float(nonzero.max())
    if finite.min() < 0:
        return -m, m, True
    return 0.0, m, False


def colormap_name(signed: bool) -> str:
    return "RdBu_r" if signed else "inferno"


def overlay_rgba(image: np.ndarray, amap: np.ndarray, vmin: float, vmax: float, signed: bool, opacity: float = 0.7):
    """Blend a map over a greyed image; transparency follows |value| so faint evidence fades."""
    from matplotlib import colormaps

    cmap = colormaps[colormap_name(signed)]
    span = (vmax - vmin) or 1.0
    rgba = cmap(np.clip((amap - vmin) / span, 0, 1))
    strength = np.abs(amap) / (max(abs(vmin), abs(vmax)) or 1.0)
    alpha = np.sqrt(np.clip(strength, 0, 1))[..., None] * opacity
    grey = image.mean(axis=-1, keepdims=True) * 0.6 + image * 0.4
    return np.clip(grey * (1 - alpha) + rgba[..., :3] * alpha, 0, 1)


def render_figure(
    expl: Explanation,
    path: str | os.PathLike | None = None,
    indices: Sequence[int] | None = None,
    *,
    show_base: bool = True,
    opacity: float = 0.7,
    dpi: int = 150,
    fmt: str | None = None,
    title: str | None = None,
) -> Path | bytes:
    """Draw image, overlays, class names, probabilities, colour bars and a caption.

    Parameters
    ----------
    expl : Explanation
    path : path, optional
        Output file; the format comes from its suffix (png, svg, pdf) unless ``fmt``
        is given. The file is written to a temporary name and renamed, so it is never
        left half-written. Without a path the encoded bytes are returned.
    indices : sequence of int, optional
        Which classes (positions in the class set) to draw; default all, one row each.
    show_base : bool
        Draw the base map next to the refined map.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    if fmt is None:
        fmt = Path(path).suffix.lstrip(".").lower() if path is not None else "png"
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    idx = list(range(expl.k)) if indices is None else [int(i) for i in indices]
    if not idx or any(not 0 <= i < expl.k for i in idx):
        raise ValueError(f"class positions must be in 0..{expl.k - 1}; got {idx}")
    ncols = 3 if show_base else 2
    fig = Figure(figsize=(3.2 * ncols + 0.6, 3.0 * len(idx) + 0.9), dpi=dpi)
    FigureCanvasAgg(fig)
    blim = map_limits(expl.base[idx])
    rlim = map_limits(expl.refined[idx])
    axes = fig.subplots(len(idx), ncols, squeeze=False)
    method = expl.method_label or expl.method
    for row, i in enumerate(idx):
        ax = axes[row][0]
        ax.imshow(expl.image)
        ax.set_title(f"{expl.class_names[i]}\np = {expl.probs[i]:.3f}", fontsize=9)
        panels = [("base", expl.base[i], blim)] if show_base else []
        panels.append(("Attribution Lens", expl.refined[i], rlim))
        for col, (name, amap, (vmin, vmax, signed)) in enumerate(panels, start=1):
            ax = axes[row][col]
            ax.imshow(overlay_rgba(expl.image, amap, vmin, vmax, signed, opacity))
            ax.set_title(f"{method}: {name}", fontsize=9)
            sm = ScalarMappable(norm=Normalize(vmin, vmax), cmap=colormap_name(signed))
            cb = fig.colorbar(sm, ax=ax, fraction=0.046, pad=0.02)
            cb.ax.tick_params(labelsize=7)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title or f"{method} + Attribution Lens, K = {expl.k} classes", fontsize=11)
    caption = expl.caption()
    fig.text(0.5, 0.005, _wrap(caption, 110), ha="center", va="bottom", fontsize=7)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    data = buf.getvalue()
    if path is None:
        return data
    return atomic_write(path, lambda f: f.write(data))


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def safe_name(text: str) -> str:
    """A file-name-safe version of a class name."""
    keep = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text.strip())
    return "_".join(filter(None, keep.split("_")))[:60] or "class"
