"""Annotated heatmap figures (PNG, SVG, PDF) for reports, written atomically.

Uses matplotlib's object API with the Agg canvas directly (no pyplot, no GUI backend),
so it runs headless and never touches Qt. Colours, limits and the overlay rule come from
:mod:`alens_gui.core.colors`, the same module the views draw with.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .colors import ColorScale, class_color, class_colors
from .explanation import Explanation
from .outputs import atomic_write
from .render import Rendered, render, render_pair

FORMATS = ("png", "svg", "pdf")


def panels(expl: Explanation, scale: ColorScale | None = None, opacity: float = 0.75, *,
           limits: tuple | None = None, signed: bool | None = None) -> dict:
    """The images a view shows for an explanation, as float RGB arrays in [0, 1].

    Keys: ``"base"`` and ``"refined"`` (lists of K overlays), ``"limits"`` ((K,), (K,)),
    ``"signed"``, ``"territory"`` (the class-territory overlay), ``"rendered"`` (the
    :class:`~alens_gui.core.render.Rendered` they were composited from: the very RGBA
    arrays the views blit).

    ``limits`` and ``signed`` override the explanation's own (see :func:`shared_scale`:
    two explanations side by side share one colour scale).
    """
    return _panels_of(render(expl, scale or ColorScale(), limits, signed), opacity)


def _panels_of(r: Rendered, opacity: float) -> dict:
    k = r.explanation.k
    return {
        "signed": r.signed,
        "limits": r.limits,
        "base": [r.composited("base", i, opacity) for i in range(k)],
        "refined": [r.composited("refined", i, opacity) for i in range(k)],
        "territory": r.composited("territory"),
        "rendered": r,
    }


def shared_scale(expls: Sequence[Explanation], scale: ColorScale | None = None) -> tuple[tuple, bool]:
    """``(limits, signed)`` for explanations shown side by side with one colour scale.

    The limits follow ``scale``'s scope and percentile over the maps of *all* the
    explanations (class by class for ``scope="class"``), so the same colour means the
    same value in each; pass them to :func:`panels`. The class sets must have one size.
    """
    scale = scale or ColorScale()
    ks = {e.k for e in expls}
    if len(ks) != 1:
        raise ValueError(f"explanations shown together need class sets of one size; got {sorted(ks)}")
    return scale.joint_limits([(e.base, e.refined) for e in expls])[0], any(e.signed for e in expls)


def _colorbar(fig, ax, scale: ColorScale, limit: float, signed: bool, cax=None):
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    table = scale.lut(signed)[:, :3] / 255.0
    lo, hi = scale.levels(limit, signed)
    sm = ScalarMappable(norm=Normalize(lo, hi), cmap=ListedColormap(table))
    if cax is None:
        cb = fig.colorbar(sm, ax=ax, fraction=0.046, pad=0.02)
    else:
        cb = fig.colorbar(sm, cax=cax)
    cb.ax.tick_params(labelsize=7)
    # each colour is a quad; without edges of its own colour, a PDF viewer's anti-aliasing
    # draws the seams between them as thin light stripes
    cb.solids.set_edgecolor("face")
    cb.solids.set_linewidth(0.0)
    return cb


def territory_legend(fig, ax, expl: Explanation, **placement) -> None:
    """A legend of the class colours (with probabilities) beside a territory panel.

    ``placement`` overrides matplotlib legend keywords (``loc``, ``bbox_to_anchor``,
    ``ncol``, ...); by default the legend sits to the right of ``ax``.
    """
    from matplotlib.patches import Patch

    colors = class_colors(expl.classes)
    handles = [Patch(facecolor=np.array(colors[i]) / 255.0, label=f"{expl.class_names[i]} ({expl.probs[i]:.2f})")
               for i in range(expl.k)]
    handles.append(Patch(facecolor=(0.8, 0.8, 0.8), label="no class above chance"))
    kwargs = {"loc": "center left", "bbox_to_anchor": (1.02, 0.5), "fontsize": 7, "frameon": False}
    kwargs.update(placement)
    ax.legend(handles=handles, **kwargs)


def render_figure(
    expl: Explanation,
    path: str | os.PathLike | None = None,
    indices: Sequence[int] | None = None,
    *,
    show_base: bool = True,
    show_territory: bool = False,
    scale: ColorScale | None = None,
    opacity: float = 0.75,
    dpi: int = 150,
    fmt: str | None = None,
    title: str | None = None,
) -> Path | bytes:
    """Draw image, overlays, class names, probabilities, colour bars and a caption.

    The overlays are :func:`panels`, i.e. exactly what the views show for the same
    :class:`~alens_gui.core.colors.ColorScale` and opacity.

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
    show_territory : bool
        Add a last row with the class-territory view and its legend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if fmt is None:
        fmt = Path(path).suffix.lstrip(".").lower() if path is not None else "png"
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    idx = list(range(expl.k)) if indices is None else [int(i) for i in indices]
    if not idx or any(not 0 <= i < expl.k for i in idx):
        raise ValueError(f"class positions must be in 0..{expl.k - 1}; got {idx}")
    scale = scale or ColorScale()
    drawn = panels(expl, scale, opacity)
    blim, rlim = drawn["limits"]
    h, w = expl.shape
    kinds = (["base"] if show_base else []) + ["refined"]
    method = (expl.method_label or expl.method) + (" (partial estimate)" if expl.partial else "")
    # The photograph once, at the top (beside the class territory when asked for); then one row
    # per class: its name and probability, then its maps, each with its own colour bar (an
    # inset, so every map panel has one size and the rows stay close together).
    cell_w = 3.0
    map_h = max(1.0, min(3.6, cell_w * h / w))
    ncols = 1 + len(kinds)
    heights = [map_h + 0.45] * (len(idx) + 1)
    fig = Figure(figsize=(1.4 + 1.6 + cell_w * 1.3 * len(kinds), sum(heights) + 1.3), dpi=dpi)
    FigureCanvasAgg(fig)
    right = 1 - 1.6 / fig.get_figwidth()  # room for the last colour bar and the territory's legend
    gs = fig.add_gridspec(len(idx) + 1, ncols, width_ratios=[0.45] + [1.0] * len(kinds),
                          left=0.01, right=right, top=1 - 0.75 / fig.get_figheight(),
                          bottom=0.6 / fig.get_figheight(), wspace=0.35, hspace=0.4)
    ax = fig.add_subplot(gs[0, 1])
    ax.imshow(expl.image, interpolation="nearest")
    ax.set_title(_wrap(str(expl.source.get("file") or "image"), 40), fontsize=9)
    if show_territory and len(kinds) > 1:
        tax = fig.add_subplot(gs[0, 2])
        tax.imshow(drawn["territory"], interpolation="nearest")
        tax.set_title("class territory (winning class; faint = narrow win)", fontsize=8)
        territory_legend(fig, tax, expl)
    elif show_territory:
        ax.imshow(drawn["territory"], interpolation="nearest")
        ax.set_title("class territory (winning class; faint = narrow win)", fontsize=8)
        territory_legend(fig, ax, expl)
    for row, i in enumerate(idx, start=1):
        label = fig.add_subplot(gs[row, 0])
        label.axis("off")
        label.text(0.95, 0.5, f"{_wrap(expl.class_names[i], 18)}\np = {expl.probs[i]:.3f}", ha="right",
                   va="center", fontsize=9, transform=label.transAxes)
        for col, kind in enumerate(kinds, start=1):
            ax = fig.add_subplot(gs[row, col])
            ax.imshow(drawn[kind][i], interpolation="nearest")
            ax.set_title(f"{method}: base" if kind == "base" else "Attribution Lens", fontsize=8.5)
            lim = (blim if kind == "base" else rlim)[i]
            _colorbar(fig, ax, scale, lim, drawn["signed"], cax=ax.inset_axes((1.03, 0.0, 0.05, 1.0)))
    for ax in fig.axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or f"{method} + Attribution Lens, K = {expl.k} classes", fontsize=11)
    caption = expl.caption() + f"; colours {scale.scope} p{scale.percentile:g}, gamma {scale.gamma:g}"
    fig.text(0.5, 0.005, _wrap(caption, 110), ha="center", va="bottom", fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    data = buf.getvalue()
    if path is None:
        return data
    return atomic_write(path, lambda f: f.write(data))


def comparison_panels(a: Explanation, b: Explanation, scale: ColorScale | None = None, opacity: float = 0.75):
    """:func:`panels` of two explanations of one class set under one colour scale
    (:func:`~alens_gui.core.render.render_pair`, as the window's comparison draws them)."""
    ra, rb = render_pair(a, b, scale or ColorScale())
    return [_panels_of(ra, opacity), _panels_of(rb, opacity)]


def render_comparison(
    a: Explanation,
    b: Explanation,
    path: str | os.PathLike | None = None,
    *,
    names: tuple[str, str] = ("pinned", "current"),
    scale: ColorScale | None = None,
    opacity: float = 0.75,
    dpi: int = 150,
    fmt: str | None = None,
) -> Path | bytes:
    """Two images side by side under one class set, method, lens and colour scale, as one figure.

    Rows: the images and their class territories, then per class the refined map of each
    image with the probabilities and their difference; a last panel plots the class-set
    probabilities of both.
    """

    if list(a.classes) != list(b.classes):
        raise ValueError("a comparison needs the same class set in both explanations")
    if fmt is None:
        fmt = Path(path).suffix.lstrip(".").lower() if path is not None else "png"
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    fig = comparison_figure(a, b, names=names, scale=scale, opacity=opacity, dpi=dpi)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    data = buf.getvalue()
    if path is None:
        return data
    return atomic_write(path, lambda f: f.write(data))


def comparison_figure(a: Explanation, b: Explanation, *, names: tuple[str, str] = ("pinned", "current"),
                      scale: ColorScale | None = None, opacity: float = 0.75, dpi: int = 150):
    """The matplotlib figure :func:`render_comparison` writes (a test reads its panels and bars)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scale = scale or ColorScale()
    pa, pb = comparison_panels(a, b, scale, opacity)
    k = a.k
    fig = Figure(figsize=(14.0, 2.9 * (k + 1) + 2.2), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(k + 2, 4, squeeze=False, gridspec_kw={"height_ratios": [1.0] * (k + 1) + [0.8],
                                                                "wspace": 0.45})
    method = a.method_label or a.method
    # Laid out as the window lays out a comparison: per image its base map, then its refined
    # map; every map panel has its own colour bar (an inset, so all panels keep one size and
    # stay in line), with the limits both images share.
    for col, (e, pnl, nm) in enumerate(((a, pa, names[0]), (b, pb, names[1]))):
        axes[0][2 * col].imshow(e.image, interpolation="nearest")
        axes[0][2 * col].set_title(_wrap(f"{nm}: {e.source.get('file') or 'image'}", 40), fontsize=9)
        axes[0][2 * col + 1].imshow(pnl["territory"], interpolation="nearest")
        axes[0][2 * col + 1].set_title("class territory", fontsize=9)
        blim, rlim = pnl["limits"]
        for i in range(k):
            for j, (kind, lims, label) in enumerate((("base", blim, f"{method}: base"),
                                                     ("refined", rlim, "Attribution Lens"))):
                ax = axes[i + 1][2 * col + j]
                ax.imshow(pnl[kind][i], interpolation="nearest")
                ax.set_title(_wrap(f"{nm}: {e.class_names[i]}  p = {e.probs[i]:.3f}", 40) + f"\n{label}",
                             fontsize=8)
                _colorbar(fig, ax, scale, lims[i], pnl["signed"], cax=ax.inset_axes((1.03, 0.0, 0.05, 1.0)))
    territory_legend(fig, axes[0][3], b, bbox_to_anchor=(1.04, 0.5))
    bar = axes[k + 1]
    for ax in bar[1:]:
        ax.axis("off")
    gs = bar[0].get_gridspec()
    for ax in bar:
        ax.remove()
    ax = fig.add_subplot(gs[k + 1, :])
    x = np.arange(k)
    ax.bar(x - 0.2, a.probs, width=0.4, label=names[0], color=np.array(class_color(0)) / 255)
    ax.bar(x + 0.2, b.probs, width=0.4, label=names[1], color=np.array(class_color(1)) / 255)
    ax.set_xticks(x, [f"{n}\n{pb_ - pa_:+.3f}" for n, pa_, pb_ in zip(a.class_names, a.probs, b.probs)], fontsize=8)
    ax.set_ylabel("p")
    ax.legend(fontsize=8)
    ax.set_title("class-set probabilities (difference current - pinned under each class)", fontsize=9)
    for row in axes[: k + 1]:
        for axx in row:
            axx.set_xticks([])
            axx.set_yticks([])
    fig.suptitle(f"Comparison: {method} + Attribution Lens, one colour scale", fontsize=11)
    fig.text(0.5, 0.005, _wrap(b.caption() + f"; colours {scale.scope} p{scale.percentile:g}, gamma {scale.gamma:g}",
                               130), ha="center", va="bottom", fontsize=7)
    # inset colour bars are outside tight_layout's reach: fixed margins leave room for them and the legend
    fig.subplots_adjust(left=0.05, right=0.86, top=0.93, bottom=0.07, hspace=0.5)
    return fig


def render_territory(expl: Explanation, path: str | os.PathLike | None = None, *, dpi: int = 150,
                     fmt: str | None = None) -> Path | bytes:
    """The class-territory view alone, with its legend (PNG, SVG or PDF)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if fmt is None:
        fmt = Path(path).suffix.lstrip(".").lower() if path is not None else "png"
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    h, w = expl.shape
    fig = Figure(figsize=(6.5, max(2.0, 4.0 * h / w) + 0.8), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.12, 0.55, 0.8))
    ax.imshow(panels(expl)["territory"], interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"class territory: {expl.method_label or expl.method} + Attribution Lens", fontsize=9)
    territory_legend(fig, ax, expl)
    fig.text(0.5, 0.01, _wrap(expl.caption(), 100), ha="center", va="bottom", fontsize=7)
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
