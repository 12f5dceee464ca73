"""Multi-page PDF reports: the settings first, then one page per image or comparison.

:func:`write_report` takes *items*: :class:`~alens_gui.core.explanation.Explanation`
objects (one page each: the image, the class-territory view with its legend, the
probabilities, and every class's base and refined maps), :class:`Comparison` objects
(two explanations of one class set, method and lens on one page, with one colour
scale and the probability differences) and :class:`Failure` records (inputs that could
not be explained: listed in the report, they do not end it). Items may come from a
generator, so a report over hundreds of images computes and draws one at a time.

The overlays are :func:`~alens_gui.core.export.panels`, i.e. exactly what the views
show. Pages are drawn with matplotlib's object API (Agg canvas, no pyplot) into
``PdfPages``; the file is written to a temporary name and renamed, so a cancelled or
failed report leaves nothing behind.

Patient identifiers: a page names its input by the fields of
``Explanation.source`` listed in :data:`SOURCE_FIELDS` only, and prints
``source["identifiers"]`` only when :attr:`ReportSettings.include_identifiers` is set.
"""

from __future__ import annotations

import datetime as _dt
import io
import math
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .colors import ColorScale, class_color, class_colors
from .errors import AlensError, Cancelled, ReportError
from .explanation import Explanation
from .export import _colorbar, comparison_panels, panels, territory_legend
from .outputs import atomic_write
from .progress import Progress, ensure_progress

if TYPE_CHECKING:  # pragma: no cover
    from .api import Explainer
    from .lensparams import LensParams
    from .models import LoadedModel
    from .settings import RunSettings

#: A4 portrait, inches.
PAGE_SIZE = (8.27, 11.69)
#: Resolution of the map images inside the PDF (text and bars stay vector).
IMAGE_DPI = 150
#: The fields of ``Explanation.source`` a page may print (never identifiers, see module docstring).
SOURCE_FIELDS = ("file", "sha256", "format", "modality", "photometric", "bits_stored", "bits", "frame",
                 "n_frames", "window")


@dataclass(frozen=True)
class Failure:
    """An input that could not be explained: its name and the one-line reason."""

    name: str
    message: str


@dataclass(frozen=True)
class Comparison:
    """Two explanations side by side on one page, with one colour scale.

    Both must have the same class set (in the same order), method, method options and
    lens, so that the maps and probabilities can be compared class by class.
    """

    first: Explanation
    second: Explanation

    def __post_init__(self) -> None:
        check_comparable(self.first, self.second)

    @property
    def names(self) -> tuple[str, str]:
        return input_name(self.first, "first image"), input_name(self.second, "second image")

    def probability_differences(self) -> np.ndarray:
        """``second.probs - first.probs`` per class of the set."""
        return np.asarray(self.second.probs, dtype=np.float64) - np.asarray(self.first.probs, dtype=np.float64)


ReportItem = Explanation | Comparison | Failure


def check_comparable(a: Explanation, b: Explanation) -> None:
    """Raise :class:`ReportError` unless two explanations can share a comparison page."""
    if list(map(int, a.classes)) != list(map(int, b.classes)):
        raise ReportError(
            f"a comparison needs one class set: {', '.join(a.class_names)} vs {', '.join(b.class_names)}"
        )
    if a.method != b.method or dict(a.method_options) != dict(b.method_options):
        raise ReportError(f"a comparison needs one method: {a.method} {a.method_options} vs "
                          f"{b.method} {b.method_options}")
    if a.lens != b.lens:
        raise ReportError(f"a comparison needs one lens: {a.lens.describe()} vs {b.lens.describe()}")
    if a.model_name != b.model_name:
        raise ReportError(f"a comparison needs one model: {a.model_name} vs {b.model_name}")


def input_name(expl: Explanation, default: str = "image") -> str:
    """The file name an explanation came from (``default`` for arrays)."""
    return str((expl.source or {}).get("file") or default)


@dataclass(frozen=True)
class ReportSettings:
    """What the first page of a report records (everything optional).

    Attributes
    ----------
    title : str
    model : dict
        The model's provenance (:attr:`~alens_gui.core.models.LoadedModel.provenance`):
        name, checkpoint file and SHA-256, architecture, labels file, ...
    model_input : str
        Input size and normalisation, e.g. ``"64 x 64, mean 0.5, std 0.5"``.
    device : str
    class_request : str
        How the class set was chosen, e.g. ``"top-3"`` or ``"preset 'grades 1-4'"``.
    window : str
        The intensity window asked for (each page shows the one used).
    inputs : int, optional
        Number of inputs asked for; default the number of items.
    scale, opacity
        The colour scale of every map (as on screen).
    include_identifiers : bool
        Print the patient identifiers an explanation carries (``source["identifiers"]``,
        present only when the image was read with ``include_identifiers``). Off by default.
    full_resolution : bool
        Embed every image and map at its own resolution (the very arrays the views show;
        a larger file) instead of resampled to :data:`IMAGE_DPI`.
    method, method_label, method_options, lens, input_policy
        Taken from the first explanation when not given.
    output : str
        How probabilities are computed, when not a softmax (e.g. "sigmoid per class
        (multi-label)"); taken from the first explanation when not given.
    extra : dict
        Further ``{label: value}`` lines for the first page.
    """

    title: str = "Attribution Lens report"
    model: dict = field(default_factory=dict)
    model_input: str = ""
    device: str = ""
    class_request: str = ""
    window: str = ""
    inputs: int | None = None
    scale: ColorScale = field(default_factory=ColorScale)
    opacity: float = 0.75
    include_identifiers: bool = False
    full_resolution: bool = False
    method: str = ""
    method_label: str = ""
    method_options: dict | None = None
    lens: LensParams | None = None
    input_policy: str = ""
    output: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def for_explainer(cls, explainer: Explainer | LoadedModel, **fields) -> ReportSettings:
        """Settings with the model's provenance, input and device filled in.

        ``explainer`` is an :class:`~alens_gui.core.api.Explainer` or the
        :class:`~alens_gui.core.models.LoadedModel` it wraps; ``fields`` set the rest
        (e.g. the GUI's ``scale`` and ``opacity``, ``class_request``, ``window``).
        """
        lm = getattr(explainer, "loaded", explainer)
        h, w = lm.input_size
        fields.setdefault("model", dict(getattr(lm, "provenance", None) or {"name": lm.name}))
        fields.setdefault("model_input", f"{h} x {w}, mean {_nums(lm.mean)}, std {_nums(lm.std)}")
        fields.setdefault("device", lm.device_label())
        describe = getattr(lm, "describe_input", None)
        fields.setdefault("input_policy", describe() if callable(describe) else lm.resize)
        if getattr(lm, "output", "softmax") != "softmax":
            fields.setdefault("output", lm.describe_output())
        return cls(**fields)


    @classmethod
    def for_run(cls, explainer: Explainer | LoadedModel, run: RunSettings, **fields) -> ReportSettings:
        """:meth:`for_explainer` for explanations made with ``run`` (one
        :class:`~alens_gui.core.settings.RunSettings`): its class set, window and input policy in words."""
        from dataclasses import replace

        lm = getattr(explainer, "loaded", explainer)
        fields.setdefault("class_request", run.classes.describe(getattr(lm, "class_names", None)))
        fields.setdefault("window", (run.window or DEFAULT_WINDOW_TEXT) + "; each page says which")
        if run.resize and hasattr(lm, "describe_input"):
            fields.setdefault("input_policy", replace(lm, resize=run.resize).describe_input())
        return cls.for_explainer(explainer, **fields)


#: What a run with no window asked for gets (``RunSettings.window`` None), in words.
DEFAULT_WINDOW_TEXT = "default: auto (0.5-99.5 percentile) above 8 bits, the file's own for DICOM"


# -- items from inputs ---------------------------------------------------------------
def explain_inputs(
    explainer: Explainer,
    inputs: Iterable,
    method: str = "ixg",
    *,
    progress: Progress | None = None,
    image_options: dict | None = None,
    **explain_kwargs,
) -> Iterator[Explanation | Failure]:
    """Explain inputs one by one, yielding a :class:`Failure` for each that cannot be.

    Parameters
    ----------
    explainer : Explainer
    inputs : iterable of paths (or arrays)
    method : str
    progress : Progress, optional
        Its cancel stops the generator with :class:`~alens_gui.core.errors.Cancelled`,
        between inputs and inside a running explanation; its progress counts are left
        to the caller (e.g. :func:`write_report`, one per item).
    image_options : dict, optional
        ``window``, ``frame``, ``include_identifiers`` for :meth:`Explainer.explain`.
    **explain_kwargs
        Class set, lens and method options, as :meth:`Explainer.explain` takes them.
    """
    progress = ensure_progress(progress)
    items = inputs if isinstance(inputs, (list, tuple)) else None
    if items is not None and len(items) > 1 and "on_partial" not in explain_kwargs:
        # many inputs: the batch engine (read ahead, batched passes, lensed behind), same maps
        from .batch import BatchEngine, FollowProgress, settings_from_keywords

        settings, identifiers = settings_from_keywords(explainer.class_names, method, explain_kwargs, image_options)
        engine = BatchEngine(explainer.loaded, settings, include_identifiers=identifiers)
        for result in engine.run(list(items), FollowProgress(progress)):
            name = result.name if isinstance(result.input, (str, Path)) else f"input {result.index + 1}"
            yield result.explanation if result.explanation is not None else Failure(name, result.error)
        return
    # each explanation reports its steps to its own object, which passes a cancel on
    inner = Progress(lambda *_: progress.check())
    for n, item in enumerate(inputs):
        progress.check()
        name = Path(item).name if isinstance(item, (str, Path)) else f"input {n + 1}"
        try:
            yield explainer.explain(item, method, progress=inner, **(image_options or {}), **explain_kwargs)
        except Cancelled:
            raise
        except AlensError as exc:
            yield Failure(name, str(exc))


# -- the PDF -------------------------------------------------------------------------
def write_report(
    path,
    items: Iterable[ReportItem],
    settings: ReportSettings | None = None,
    progress: Progress | None = None,
    *,
    total: int | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a multi-page PDF report (see the module docstring).

    Parameters
    ----------
    path : path
        The PDF to write; it appears only when the whole report is done.
    items : iterable of Explanation, Comparison, Failure or (Explanation, Explanation)
        A pair becomes a :class:`Comparison`. A generator is consumed one item at a time.
    settings : ReportSettings, optional
        The first page's record; method, lens and input policy default to the first
        explanation's.
    progress : Progress, optional
        Advanced by one per item and checked for cancel between items (and inside
        ``items`` if it is a generator that uses the same object).
    total : int, optional
        Number of items, for progress (default ``len(items)`` when it has one).
    overwrite : bool
        Replace an existing ``path`` (default). False: refuse before any work if it exists, and
        never replace a file another process creates meanwhile (:class:`FileExistsError`).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    Cancelled
        The user cancelled; no file is written.
    ReportError
        Nothing to report, or a comparison of unlike explanations.
    OSError
        The file cannot be written (exists with ``overwrite=False``, read-only folder, disk
        full); nothing partial is left.
    """
    progress = ensure_progress(progress)
    settings = settings or ReportSettings()
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if total:
        progress.add_total(total)
    return atomic_write(path, lambda f: _Report(settings, progress, total).write(f, items), overwrite=overwrite)


class _Report:
    """One report being written: pages go out as items come in; the summary goes first at the end."""

    def __init__(self, settings: ReportSettings, progress: Progress, total: int | None) -> None:
        self.s = settings
        self.progress = progress
        self.total = total
        self.rows: list[tuple] = []  # (kind, name, detail, first page index among item pages)
        self.failures: list[Failure] = []
        self.first: Explanation | None = None
        self.pages = 0
        self.date = _dt.datetime.now().astimezone()

    def write(self, f, items: Iterable[ReportItem]) -> None:
        import matplotlib

        # "none": PDF keeps each array as it is; "antialiased": resampled to IMAGE_DPI when saved
        interp = "none" if self.s.full_resolution else "antialiased"
        # TrueType (42) rather than Type 3 fonts: matplotlib >= 3.11 draws ligatures, and a Type 3
        # "ff" glyph makes "coffee.jpg" read back (copy, search, screen readers) as "co ee.jpg"
        with matplotlib.rc_context({"image.interpolation": interp, "pdf.fonttype": 42}):
            self._write(f, items)

    def _write(self, f, items: Iterable[ReportItem]) -> None:
        import tempfile

        from matplotlib.backends.backend_pdf import PdfPages

        # The summary names every item's page, so it is drawn last; the item pages stream into a
        # temporary file as the items come (an explanation's arrays never wait in memory), and the
        # final file is the summary followed by those pages (pypdf's public merge).
        with tempfile.TemporaryFile() as body:
            pdf = PdfPages(body)
            try:
                self._items(pdf, items)
            finally:
                pdf.close()
            if not self.rows:
                raise ReportError("nothing to report: no inputs")
            front = io.BytesIO()
            with PdfPages(front) as summary:
                for fig in _summary_pages(self):
                    summary.savefig(fig)
            body.seek(0)
            front.seek(0)
            _concatenate(f, [front, body], self._metadata())

    def _metadata(self) -> dict:
        from .. import __version__

        return {"/Title": self.s.title, "/Creator": f"alens {__version__}", "/Subject": "Attribution Lens report",
                "/CreationDate": self.date.strftime("D:%Y%m%d%H%M%S")}

    def _items(self, pdf, items: Iterable[ReportItem]) -> None:
        for n, item in enumerate(items):
            self.progress.check()
            if isinstance(item, tuple) and len(item) == 2:
                item = Comparison(*item)
            if isinstance(item, Failure):
                self.failures.append(item)
                self.rows.append(("failed", item.name, item.message, None))
                label = item.name
            elif isinstance(item, Comparison):
                self._remember(item.first)
                self.rows.append(("compare", " vs ".join(item.names), _compare_detail(item), self.pages))
                self._save(pdf, _comparison_pages(item, self.s, n + 1, self.total, self._footer()))
                label = " vs ".join(item.names)
            elif isinstance(item, Explanation):
                self._remember(item)
                self.rows.append(("image", input_name(item), _top1(item), self.pages))
                self._save(pdf, _explanation_pages(item, self.s, n + 1, self.total, self._footer()))
                label = input_name(item)
            else:
                raise ReportError(f"a report item must be an Explanation, a Comparison or a Failure; "
                                  f"got {type(item).__name__}")
            self.progress.advance(1, label)

    def _remember(self, expl: Explanation) -> None:
        if self.first is None:
            self.first = expl

    def _save(self, pdf, figures) -> None:
        import gc

        for fig in figures:
            pdf.savefig(fig, dpi=IMAGE_DPI)
            fig.clear()
            self.pages += 1
        # a figure, its canvas and its artists form reference cycles holding tens of MB of
        # render buffers; collect them now rather than at the next full collection. Not when
        # automatic collection is off: the GUI turns it off and collects on its own thread,
        # because a collection in a worker thread may delete Qt objects there (a deadlock).
        figures.clear()
        if gc.isenabled():
            gc.collect()

    def _footer(self) -> str:
        from .. import __version__

        return f"Attribution Lens Studio {__version__} · {self.date:%Y-%m-%d %H:%M %Z}"


def _concatenate(out, parts, metadata: dict) -> None:
    """Write the pages of the PDF files ``parts`` (file objects), in order, to ``out``."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for part in parts:
        writer.append(PdfReader(part))
    writer.add_metadata(metadata)
    writer.write(out)


# -- page pieces ---------------------------------------------------------------------
def _nums(vals) -> str:
    vals = [float(v) for v in vals]
    if len(set(vals)) == 1:
        return f"{vals[0]:g}"
    return "(" + ", ".join(f"{v:g}" for v in vals) + ")"


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(str(text), width, break_long_words=True, break_on_hyphens=False)) or ""


def _top1(expl: Explanation) -> str:
    if expl.top5:
        _, name, p = expl.top5[0]
        return f"{name} ({float(p):.3f})"
    i = int(np.argmax(expl.probs))
    return f"{expl.class_names[i]} ({float(expl.probs[i]):.3f})"


def _compare_detail(c: Comparison) -> str:
    d = c.probability_differences()
    i = int(np.argmax(np.abs(d)))
    return f"largest change: {c.first.class_names[i]} {d[i]:+.3f}"


def _method_line(expl: Explanation) -> str:
    opts = ", ".join(f"{k}={v}" for k, v in expl.method_options.items() if k != "layer" or v)
    method = (expl.method_label or expl.method) + (" (partial estimate)" if expl.partial else "")
    return f"{method}{' (' + opts + ')' if opts else ''}; lens {expl.lens.describe()}; model {expl.model_name}"


def _window_text(win) -> str:
    if isinstance(win, dict):
        if win.get("text"):
            return str(win["text"])
        if "center" in win and "width" in win:
            mode = f" ({win['mode']})" if win.get("mode") else ""
            return f"window C {float(win['center']):g} W {float(win['width']):g}{mode}"
        return ""
    return f"window {win}" if win else ""


def source_lines(expl: Explanation, include_identifiers: bool = False) -> list[str]:
    """What a page says about an image's origin: only :data:`SOURCE_FIELDS`, identifiers if asked."""
    src = {k: v for k, v in (expl.source or {}).items() if k in SOURCE_FIELDS}
    parts = []
    kind = " ".join(str(src[k]) for k in ("format", "modality", "photometric") if src.get(k))
    bits = src.get("bits_stored") or src.get("bits")
    if kind or bits:
        parts.append(kind + (f", {bits}-bit" if bits else ""))
    if int(src.get("n_frames", 1) or 1) > 1:
        parts.append(f"frame {src.get('frame', 0)} of 0-{int(src['n_frames']) - 1}")
    win = _window_text(src.get("window"))
    if win:
        parts.append(win)
    g = expl.geometry
    if g is not None:
        sh, sw = g.source_hw
        mh, mw = g.model_hw
        parts.append(f"{sw} x {sh} px, {g.policy} to {mw} x {mh}")
    lines = []
    if src.get("sha256"):
        lines.append(f"SHA-256 {src['sha256']}")
    if parts:
        lines.append("; ".join(parts))
    ids = (expl.source or {}).get("identifiers")
    if include_identifiers and isinstance(ids, dict) and ids:
        lines.append("identifiers (included on request): " + "; ".join(f"{k} {v}" for k, v in ids.items()))
    return lines


def _new_page():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=PAGE_SIZE)
    FigureCanvasAgg(fig)
    return fig


def _header(fig, title: str, lines: Sequence[str], footer: str, counter: str) -> float:
    """Title, small lines and footer; returns the top of the free area (figure fraction)."""
    fig.text(0.06, 0.965, title, fontsize=12, weight="bold", va="top")
    if counter:
        fig.text(0.94, 0.965, counter, fontsize=8, ha="right", va="top", color="0.35")
    y = 0.94
    for line in lines:
        wrapped = _wrap(line, 120)
        fig.text(0.06, y, wrapped, fontsize=7, va="top", color="0.2")
        y -= 0.013 * (wrapped.count("\n") + 1)
    fig.text(0.5, 0.012, footer, fontsize=6.5, ha="center", color="0.4")
    return y - 0.01


def _show(ax, img, title: str = "", fontsize: float = 7.5) -> None:
    ax.imshow(img)  # interpolation from the rc context of _Report.write (full resolution or resampled)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)


def _prob_bars(ax, names: Sequence[str], series: Sequence[tuple[str, np.ndarray]], title: str,
               classes: Sequence[int] | None = None) -> None:
    """Horizontal bars per class (one bar per series), in the class colours, value labels."""
    k = len(names)
    n = len(series)
    height = 0.8 / n
    y = np.arange(k)
    for j, (label, probs) in enumerate(series):
        off = (j - (n - 1) / 2) * height
        colors = [np.array(c) / 255.0 for c in (class_colors(classes) if classes is not None
                                                 else [class_color(i) for i in range(k)])]
        bars = ax.barh(y + off, probs, height=height * 0.9, color=colors, alpha=1.0 if j == 0 else 0.55,
                       edgecolor="0.2", linewidth=0.4, hatch=None if j == 0 else "///")
        for b, p in zip(bars, probs):
            ax.text(min(float(p), 1.0) + 0.02, b.get_y() + b.get_height() / 2,
                    f"{label}{float(p):.3f}", va="center", fontsize=6.5)
    ax.set_yticks(y)
    ax.set_yticklabels([_wrap(nm, 16) for nm in names], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.3)
    ax.set_xticks([0, 0.5, 1])
    ax.tick_params(axis="x", labelsize=6.5)
    ax.set_title(title, fontsize=7.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _class_rows(fig, expls: Sequence[Explanation], drawn: Sequence[dict], idx: Sequence[int], top: float,
                bottom: float, pairs_per_row: int, scale: ColorScale, labels: Sequence[str] = ("",)) -> None:
    """Base and refined maps for the classes ``idx``: one (base, refined) pair per explanation each."""
    per_class = 2 * len(expls)
    ncols = per_class * pairs_per_row
    nrows = math.ceil(len(idx) / pairs_per_row)
    # rows as high as the maps need (titles included), so that a short class set stays at the top
    h, w = expls[0].shape
    panel_w = 0.88 * PAGE_SIZE[0] / ncols * 0.72  # a colour bar and spacing take the rest
    row_h = (panel_w * h / w + 0.5) / PAGE_SIZE[1]
    bottom = max(bottom, top - nrows * row_h)
    gs = fig.add_gridspec(max(nrows, 1), ncols, left=0.04, right=0.92, top=top, bottom=bottom,
                          wspace=0.5, hspace=0.4)
    method = expls[0].method_label or expls[0].method
    width = 30 if ncols <= 2 else 22
    for n, i in enumerate(idx):
        r, c0 = divmod(n, pairs_per_row)
        c0 *= per_class
        for j, (expl, d) in enumerate(zip(expls, drawn)):
            blim, rlim = d["limits"]
            tag = labels[j] if j < len(labels) else ""
            name = _wrap(f"{tag}{expl.class_names[i]} (p {float(expl.probs[i]):.3f})", width)
            ax = fig.add_subplot(gs[r, c0 + 2 * j])
            _show(ax, d["base"][i], f"{name}\n{_wrap(method, width)}: base", 6.5)
            _vector(_colorbar(fig, ax, scale, blim[i], d["signed"]))
            ax = fig.add_subplot(gs[r, c0 + 2 * j + 1])
            _show(ax, d["refined"][i], f"{name}\nAttribution Lens", 6.5)
            _vector(_colorbar(fig, ax, scale, rlim[i], d["signed"]))


def _vector(colorbar) -> None:
    """Draw a colour bar's colours as vector shapes.

    matplotlib rasterises a bar of many colours into a crop of a whole-page buffer, and
    ``PdfPages`` keeps every such buffer (about 9 MB at 150 dpi) until the file is closed.
    """
    solids = getattr(colorbar, "solids", None)
    if solids is not None:
        solids.set_rasterized(False)


def _chunks(k: int, first: int, rest: int) -> list[list[int]]:
    out = [list(range(min(k, first)))]
    i = first
    while i < k:
        out.append(list(range(i, min(k, i + rest))))
        i += rest
    return out


def _explanation_pages(expl: Explanation, s: ReportSettings, n: int, total: int | None, footer: str) -> list:
    drawn = panels(expl, s.scale, s.opacity)
    pairs = 1 if expl.k <= 3 else 2
    pages = []
    chunks = _chunks(expl.k, 4 * pairs, 7 * pairs)
    # the item's number, said as such: "1 / 5" read as a page number beside the contents' pages
    counter = f"image {n} of {total}" if total else f"image {n}"
    name = input_name(expl)
    top5 = ", ".join(f"{nm} {float(p):.3f}" for _, nm, p in expl.top5)
    for c, idx in enumerate(chunks):
        fig = _new_page()
        lines = source_lines(expl, s.include_identifiers) + [_method_line(expl)]
        if top5:
            lines.append(f"model's top-5: {top5}")
        title = name if c == 0 else f"{name} (continued)"
        y = _header(fig, _wrap(title, 70), lines if c == 0 else [_method_line(expl)], footer, counter)
        if c == 0:
            h = 0.2
            gs = fig.add_gridspec(1, 3, left=0.04, right=0.96, top=y, bottom=y - h, wspace=0.6,
                                  width_ratios=(1, 1, 0.8))
            _show(fig.add_subplot(gs[0, 0]), expl.image, "image", 8)
            ax = fig.add_subplot(gs[0, 1])
            _show(ax, drawn["territory"], "class territory\n(winning class; faint = narrow win)", 7.5)
            territory_legend(fig, ax, expl, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2)
            _prob_bars(fig.add_subplot(gs[0, 2]), expl.class_names, [("", expl.probs)],
                       "probability (sigmoid per class)" if expl.output == "sigmoid"
                       else "probability (softmax over all classes)", classes=expl.classes)
            y -= h + 0.08
        _class_rows(fig, [expl], [drawn], idx, y, 0.04, pairs, s.scale)
        pages.append(fig)
    return pages


def _comparison_pages(cmp: Comparison, s: ReportSettings, n: int, total: int | None, footer: str) -> list:
    a, b = cmp.first, cmp.second
    da, db = comparison_panels(a, b, s.scale, s.opacity)  # one colour scale, as the window draws them
    na, nb = cmp.names
    counter = f"comparison {n} of {total}" if total else f"comparison {n}"
    diff = cmp.probability_differences()
    pages = []
    for c, idx in enumerate(_chunks(a.k, 4, 8)):
        fig = _new_page()
        lines = [f"A: {na}"] + [f"   {t}" for t in source_lines(a, s.include_identifiers)]
        lines += [f"B: {nb}"] + [f"   {t}" for t in source_lines(b, s.include_identifiers)]
        lines.append(_method_line(a) + "; one colour scale for A and B")
        title = f"Comparison: {na} vs {nb}" + (" (continued)" if c else "")
        y = _header(fig, _wrap(title, 70), lines if c == 0 else [_method_line(a)], footer, counter)
        if c == 0:
            h = 0.17
            gs = fig.add_gridspec(1, 4, left=0.04, right=0.96, top=y, bottom=y - h, wspace=0.3)
            _show(fig.add_subplot(gs[0, 0]), a.image, f"A: {_wrap(na, 28)}", 7)
            _show(fig.add_subplot(gs[0, 1]), b.image, f"B: {_wrap(nb, 28)}", 7)
            ax = fig.add_subplot(gs[0, 2])
            _show(ax, da["territory"], "A: class territory", 7)
            territory_legend(fig, ax, a, loc="upper center", bbox_to_anchor=(1.1, -0.02), ncol=2)
            _show(fig.add_subplot(gs[0, 3]), db["territory"], "B: class territory", 7)
            y -= h + 0.05
            h2 = 0.022 * a.k + 0.04
            gs2 = fig.add_gridspec(1, 2, left=0.2, right=0.96, top=y, bottom=y - h2, wspace=0.05,
                                   width_ratios=(1.4, 1))
            _prob_bars(fig.add_subplot(gs2[0, 0]), a.class_names, [("A ", a.probs), ("B ", b.probs)],
                       "probability: A (solid), B (hatched)", classes=a.classes)
            ax = fig.add_subplot(gs2[0, 1])
            ax.axis("off")
            ax.set_title("difference B - A", fontsize=7.5)
            for i, (nm, d) in enumerate(zip(a.class_names, diff)):
                ax.text(0.05, 1 - (i + 0.5) / a.k, f"{_wrap(nm, 22)}:  {d:+.3f}", fontsize=7, va="center",
                        transform=ax.transAxes, color=np.array(class_colors(a.classes)[i]) / 255.0)
            y -= h2 + 0.05
        _class_rows(fig, [a, b], [da, db], idx, y, 0.04, 1, s.scale, labels=("A: ", "B: "))
        pages.append(fig)
    return pages


# -- the first page(s) -----------------------------------------------------------------
def _settings_lines(rep: _Report) -> list[tuple[str, str]]:
    from .. import __version__
    from ..versions import package_versions

    s, first = rep.s, rep.first
    model = dict(s.model)
    explained = sum(1 for r in rep.rows if r[0] == "image")
    compared = sum(1 for r in rep.rows if r[0] == "compare")
    n_in = s.inputs if s.inputs is not None else explained + 2 * compared + len(rep.failures)
    parts = ([f"{explained} explained"] if explained or not compared else []) + (
        [f"{compared} comparison(s)"] if compared else []) + [f"{len(rep.failures)} failed"]
    counts = f"{n_in} input(s): " + ", ".join(parts)
    out = [("Date", f"{rep.date:%Y-%m-%d %H:%M:%S %Z}"), ("Inputs", counts)]
    name = model.pop("name", None) or (first.model_name if first is not None else "")
    out.append(("Model", name or "(unknown)"))
    for key, label in (("checkpoint", "Checkpoint"), ("checkpoint_sha256", "Checkpoint SHA-256"),
                       ("checkpoint_kind", "Checkpoint kind"), ("arch", "Architecture"),
                       ("arch_sha256", "Architecture SHA-256"), ("weights", "Weights"), ("labels", "Labels file"),
                       ("labels_sha256", "Labels SHA-256")):
        if model.get(key):
            out.append((label, str(model[key])))
    if s.model_input:
        out.append(("Model input", s.model_input))
    policy = s.input_policy or (first.geometry.policy if first is not None and first.geometry is not None else "")
    if policy:
        out.append(("Input policy", policy))
    output = s.output or ("sigmoid per class (multi-label)" if first is not None and first.output == "sigmoid" else "")
    if output:
        out.append(("Probabilities", output))
    if s.device:
        out.append(("Device", s.device))
    method = s.method_label or s.method or (first.method_label or first.method if first is not None else "")
    if method:
        out.append(("Method", method))
    opts = s.method_options if s.method_options is not None else (first.method_options if first is not None else {})
    if opts:
        out.append(("Method options", ", ".join(f"{k}={v}" for k, v in opts.items())))
    if s.class_request:
        out.append(("Class set", s.class_request))
    lens = s.lens or (first.lens if first is not None else None)
    if lens is not None:
        out.append(("Lens", lens.describe() + f", reduce={lens.reduce}"))
    out.append(("Intensity window", s.window or "as each page says, where an image has one"))
    sc = s.scale
    out.append(("Colour scale", f"limits per {sc.scope}, {sc.percentile:g}th percentile of |values|, gamma {sc.gamma:g}, "
                                f"opacity {s.opacity:g}; diverging (blue < 0 < red) for signed maps"))
    out.append(("Patient identifiers", "included (asked for)" if s.include_identifiers else "left out"))
    for k, v in s.extra.items():
        out.append((str(k), str(v)))
    import platform

    out.append(("Software", f"alens {__version__}, Python {platform.python_version()} "
                            f"({platform.system()} {platform.machine()})"))
    out.append(("Packages", ", ".join(f"{k} {v}" for k, v in package_versions().items() if k != "alens-gui")))
    return out


class _Lines:
    """Text laid out top to bottom over as many pages as it needs."""

    LINE = 0.0125
    TOP = 0.91
    BOTTOM = 0.05

    def __init__(self, title: str, footer: str) -> None:
        self.title = title
        self.footer = footer
        self.pages: list = []
        self.y = 0.0
        self._page()

    def _page(self) -> None:
        fig = _new_page()
        title = self.title if not self.pages else f"{self.title} (continued)"
        fig.text(0.06, 0.965, title, fontsize=13 if not self.pages else 11, weight="bold", va="top")
        fig.text(0.5, 0.012, self.footer, fontsize=6.5, ha="center", color="0.4")
        self.pages.append(fig)
        self.y = self.TOP + (0.02 if len(self.pages) > 1 else 0.0)

    def need(self, n: int) -> None:
        if self.y - n * self.LINE < self.BOTTOM:
            self._page()

    def heading(self, text: str) -> None:
        self.need(3)
        self.y -= 0.6 * self.LINE
        self.pages[-1].text(0.06, self.y, text, fontsize=10, weight="bold", va="top")
        self.y -= 1.6 * self.LINE

    def row(self, cells: Sequence[tuple[float, str, int]], bold: bool = False, color: str = "black") -> None:
        """Cells ``(x, text, wrap width)``; the row is as high as its tallest cell."""
        wrapped = [(x, _wrap(t, w) if w else str(t)) for x, t, w in cells]
        lines = max(t.count("\n") + 1 for _, t in wrapped)
        self.need(lines)
        for x, t in wrapped:
            self.pages[-1].text(x, self.y, t, fontsize=7.5, va="top", family="DejaVu Sans",
                                weight="bold" if bold else "normal", color=color, linespacing=1.25)
        self.y -= self.LINE * (lines + 0.3)


def _summary_pages(rep: _Report) -> list:
    # page numbers of the items: they follow the summary, whose length depends on them
    for guess in range(1, 100):
        text = _Lines(rep.s.title, rep._footer())
        _fill_summary(rep, text, offset=guess)
        if len(text.pages) == guess:
            return text.pages
    return text.pages  # pragma: no cover - a summary of 100 pages


def _fill_summary(rep: _Report, text: _Lines, offset: int) -> None:
    text.heading("Settings and provenance")
    for k, v in _settings_lines(rep):
        text.row([(0.06, k, 0), (0.27, v, 105)])
    images = [r for r in rep.rows if r[0] != "failed"]
    if images:
        text.heading("Contents")
        text.row([(0.06, "#", 0), (0.1, "input", 0), (0.55, "top class (p) / comparison", 0), (0.9, "page", 0)],
                 bold=True)
        for n, (_kind, name, detail, page) in enumerate(images, 1):
            text.row([(0.06, str(n), 0), (0.1, name, 62), (0.55, detail, 48), (0.9, str(page + 1 + offset), 0)])
    if rep.failures:
        text.heading(f"Could not be explained ({len(rep.failures)})")
        for f in rep.failures:
            text.row([(0.06, f.name, 40), (0.36, f.message, 85)], color="#8b0000")
