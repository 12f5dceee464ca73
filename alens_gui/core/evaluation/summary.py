"""Markdown tables, JSON files and matplotlib figures of evaluation results."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..outputs import atomic_write
from .metrics import GRID_KEYS, LOCALISATION_KEYS, SIMILARITY_KEYS, relative_change
from .paper import PAPER_LABELS, SOURCES, paper_entry

_NAMES = {"ra": "RA", "ra_abs": "RA on |A|", "pointing": "Pointing game", "neg_mass": "Negative mass", "iou": "IoU", "precision": "Precision", "recall": "Recall", "f1": "F1",
          "spearman": "Spearman", "pearson": "Pearson", "cosine": "Cosine", "auc": "AUC"}


def method_names(results: dict) -> list[str]:
    return [k for k in results if not k.startswith("_")]


def _pct(base: float, al: float) -> str:
    r = relative_change(base, al)
    return "n/a" if math.isnan(r) else f"{r:+.0f}%"


def _cell(base: float, al: float) -> str:
    return f"{base:.3f} → {al:.3f} ({_pct(base, al)})"


def _diff(base: float, al: float) -> str:
    return f"{base:.3f} → {al:.3f} ({al - base:+.3f})"


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def format_markdown(results: dict, paper: bool = False) -> str:
    """A Markdown table of any results dict made by this package (grid, insertion, deletion, sanity).

    ``paper=True`` prints the first paper's ResNet-50 numbers next to ours where it has
    the method (:mod:`.paper`), and averages the relative changes twice: over the methods
    both ran (comparable) and over all of ours (ours only).
    """
    meta = results.get("_meta", {})
    proto = meta.get("protocol", "grid")
    if proto == "grid":
        return _grid_table(results, paper)
    if proto in ("insertion", "deletion"):
        return _perturbation_table(results, paper)
    if proto == "sanity":
        return _sanity_table(results)
    raise ValueError(f"unknown protocol {proto!r}")


def _header(meta: dict, what: str) -> str:
    return (f"{what} — {meta.get('model', '?')}, n = {meta.get('n', '?')} (seed {meta.get('seed', '?')}), "
            f"lens {meta.get('al_variant', '?')}; cells: base → AL (relative change)")


def common_methods(results: dict, protocol: str, metric: str) -> list[str]:
    """Our methods that the paper also reports for ``protocol`` / ``metric`` (in our order)."""
    return [m for m in method_names(results) if paper_entry(protocol, metric, m) is not None]


def average_change(results: dict, metric: str, methods) -> float:
    """Mean relative change (%) base -> AL of ``metric`` over ``methods`` (NaN-safe)."""
    vals = [relative_change(_num(results[m]["base"][metric]), _num(results[m]["al"][metric])) for m in methods]
    vals = [v for v in vals if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def paper_average(protocol: str, metric: str, methods) -> float:
    """The paper's mean relative change (%) over ``methods`` (those it reports)."""
    vals = [paper_entry(protocol, metric, m)[1] for m in methods if paper_entry(protocol, metric, m) is not None]
    return float(np.mean(vals)) if vals else float("nan")


def _paper_cell(protocol: str, metric: str, method: str, digits: int = 2) -> str:
    e = paper_entry(protocol, metric, method)
    return "ours only" if e is None else f"{e[0]:.{digits}f} ({e[1]:+.0f}%)"


def _pct_or_blank(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:+.1f}%"


def _average_rows(results: dict, protocol: str, metrics, paper: bool, blank_before: int = 0) -> list[str]:
    """Average-change rows: over the methods in both (ours | paper), then over all of ours."""
    names = method_names(results)
    pad = " |" * blank_before
    lines = []
    if paper:
        common = common_methods(results, protocol, metrics[0])
        label = (f"Avg. change, the {len(common)} methods in both ({', '.join(PAPER_LABELS[m] for m in common)})"
                 if common else "Avg. change, methods in both: none")
        cells = "".join(f" {_pct_or_blank(average_change(results, k, common))} | "
                        f"{_pct_or_blank(paper_average(protocol, k, common))} |" for k in metrics)
        lines.append(f"| {label} |{pad}{cells}")
        only = [m for m in names if m not in common]
        if only:
            cells = "".join(f" {_pct_or_blank(average_change(results, k, names))} | |" for k in metrics)
            lines.append(f"| Avg. change, all {len(names)} of ours (with ours-only "
                         f"{', '.join(results[m]['label'] for m in only)}) |{pad}{cells}")
    else:
        cells = "".join(f" {_pct_or_blank(average_change(results, k, names))} |" for k in metrics)
        lines.append(f"| Avg. change |{pad}{cells}")
    return lines


#: The sentence under every grid table: how signed maps are scored.
GRID_RULE = ("Scoring: RA on the positive part max(A, 0) (the paper's rule) and on |A|; the pointing game "
             "is a hit when a maximum of the blurred positive part lies in the class's tile; negative mass "
             "is the share of |A| that is negative (what the positive-part rule drops).")


def _grid_keys(results: dict) -> tuple[str, ...]:
    """The grid metrics every method of ``results`` has (older files lack the newer ones)."""
    names = method_names(results)
    return tuple(k for k in GRID_KEYS if all(k in results[m]["base"] and k in results[m]["al"] for m in names))


def _grid_cell(k: str, b: float, a: float) -> str:
    return _diff(b, a) if k == "neg_mass" else _cell(b, a)


def _grid_table(results: dict, paper: bool = False) -> str:
    meta = results["_meta"]
    lines = [_header(meta, "Grid pointing game"), ""]
    names = method_names(results)
    gkeys = _grid_keys(results)
    if paper:
        keys = ("ra", "iou", "f1")
        lines[0] += f"; paper: its {SOURCES['grid']}, value with AL (relative change)"
        lines.append("| Method | " + " | ".join(f"{_NAMES[k]} ours | {_NAMES[k]} paper" for k in keys) + " |")
        lines.append("|---" * (2 * len(keys) + 1) + "|")
        for m in names:
            b, a = results[m]["base"], results[m]["al"]
            cells = " | ".join(f"{_cell(b[k], a[k])} | {_paper_cell('grid', k, m)}" for k in keys)
            lines.append(f"| {results[m]['label']} | {cells} |")
        lines += _average_rows(results, "grid", keys, paper=True)
        more = tuple(k for k in ("ra_abs", "pointing", "neg_mass", "precision", "recall") if k in gkeys)
        lines += ["", "The same maps under the other rules and the masks' precision and recall "
                      "(the paper's Table 1 does not report them):", ""]
        lines.append("| Method | " + " | ".join(_NAMES[k] for k in more) + " |")
        lines.append("|---" * (len(more) + 1) + "|")
        for m in names:
            b, a = results[m]["base"], results[m]["al"]
            lines.append(f"| {results[m]['label']} | " + " | ".join(_grid_cell(k, b[k], a[k]) for k in more) + " |")
    else:
        lines.append("| Method | " + " | ".join(_NAMES[k] for k in gkeys) + " |")
        lines.append("|---" * (len(gkeys) + 1) + "|")
        for m in names:
            b, a = results[m]["base"], results[m]["al"]
            lines.append(f"| {results[m]['label']} | " + " | ".join(_grid_cell(k, b[k], a[k]) for k in gkeys)
                         + " |")
        lines += _average_rows(results, "grid", gkeys, paper=False)
    if "pointing" in gkeys:
        lines += ["", GRID_RULE]
    if len(meta.get("lens", {})) > 1:
        lines += ["", lens_sweep_table(results)]
    return "\n".join(lines)


def lens_sweep_table(results: dict) -> str:
    """One row per lens variant: metrics averaged over methods (base first), best RA in bold."""
    names = method_names(results)
    labels = list(results["_meta"]["lens"])
    lines = ["Lens sweep (mean over methods: " + ", ".join(results[m]["label"] for m in names) + ")", ""]
    lines.append("| Lens (preset/normalize/softmax input) | " + " | ".join(_NAMES[k] for k in LOCALISATION_KEYS) + " |")
    lines.append("|---" * (len(LOCALISATION_KEYS) + 1) + "|")

    def avg(get):
        return {k: float(np.mean([get(m)[k] for m in names])) for k in LOCALISATION_KEYS}

    base = avg(lambda m: results[m]["base"])
    lines.append("| base (no lens) | " + " | ".join(f"{base[k]:.3f}" for k in LOCALISATION_KEYS) + " |")
    rows = {lab: avg(lambda m, lab=lab: results[m]["variants"][lab]) for lab in labels}
    best = max(rows, key=lambda lab: rows[lab]["ra"])
    for lab in labels:
        r = rows[lab]
        name = f"**{lab}**" if lab == best else lab
        lines.append(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k in LOCALISATION_KEYS) + " |")
    lines += ["", "Per method, RA of every variant:", ""]
    lines.append("| Method | base | " + " | ".join(labels) + " |")
    lines.append("|---" * (len(labels) + 2) + "|")
    for m in names:
        cells = [f"{results[m]['variants'][lab]['ra']:.3f}" for lab in labels]
        lines.append(f"| {results[m]['label']} | {results[m]['base']['ra']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _perturbation_table(results: dict, paper: bool = False) -> str:
    meta = results["_meta"]
    proto = meta["protocol"]
    what = f"{proto.capitalize()} AUC ({meta.get('better', '')} is better)"
    lines = [_header(meta, what)]
    if paper:
        lines[0] += f"; paper: its {SOURCES[proto]}, AUC with AL (relative change)"
    lines.append("")
    labels = list(meta.get("lens", {}))
    extra = labels[1:]
    pcol = " paper AL AUC (change) |" if paper else ""
    lines.append("| Method | base AUC | AL AUC (change) |" + pcol + "".join(f" {lab} |" for lab in extra))
    lines.append("|---|---|---|" + ("---|" if paper else "") + "---|" * len(extra))
    for m in method_names(results):
        b, a = results[m]["base"]["auc"], results[m]["al"]["auc"]
        cells = "".join(f" {results[m]['variants'][lab]['auc']:.3f} ({_pct(b, results[m]['variants'][lab]['auc'])}) |"
                        for lab in extra)
        pc = f" {_paper_cell(proto, 'auc', m)} |" if paper else ""
        lines.append(f"| {results[m]['label']} | {b:.3f} | {a:.3f} ({_pct(b, a)}) |{pc}{cells}")
    for row in _average_rows(results, proto, ("auc",), paper=paper, blank_before=1):
        lines.append(row + " |" * len(extra))
    return "\n".join(lines)


def _sanity_means(summary: dict) -> dict[str, float]:
    """Mean over the randomization steps (entry 0, the unrandomized model, excluded)."""
    out = {}
    for k in SIMILARITY_KEYS:
        vals = [_num(v) for v in summary[k][1:]]
        vals = [v for v in vals if not math.isnan(v)]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    out["after_logits"] = _num(summary["spearman"][1]) if len(summary["spearman"]) > 1 else float("nan")
    return out


def _left_out(summary: dict) -> str:
    und = summary.get("undefined")
    if und is None:
        return "?"
    steps = len(und) - 1
    return f"{sum(und[1:])}/{summary.get('n', 0) * steps}"


def _fmt_diff(b: float, a: float) -> str:
    if math.isnan(b) or math.isnan(a):
        return f"{b:.3f} → {a:.3f}"
    return _diff(b, a)


_SET_NAMES = {"top2": "top-2 (as the paper)", "tiles": "4 tiles"}


def _sanity_table(results: dict) -> str:
    meta = results["_meta"]
    head = _header(meta, f"Cascading randomization, mean similarity over {len(meta['fractions']) - 1} steps "
                         "(lower is better)").replace("(relative change)", "(difference)")
    lines = [head, ""]
    sets = list(meta.get("class_sets", {})) or [None]
    lines.append("| Method | Class set | " + " | ".join(_NAMES[k] for k in SIMILARITY_KEYS)
                 + " | Spearman after the logits layer group | Left out (constant map): base, AL |")
    lines.append("|---" * (len(SIMILARITY_KEYS) + 4) + "|")
    for m in method_names(results):
        for cs in sets:
            entry = results[m]["class_sets"][cs] if cs else results[m]
            b, a = _sanity_means(entry["base"]), _sanity_means(entry["al"])
            # Similarities hover around 0, where relative changes mean nothing: show differences.
            cells = [_fmt_diff(b[k], a[k]) for k in (*SIMILARITY_KEYS, "after_logits")]
            cells.append(f"{_left_out(entry['base'])}, {_left_out(entry['al'])}")
            lines.append(f"| {results[m]['label']} | {_SET_NAMES.get(cs, cs or 'all')} | " + " | ".join(cells) + " |")
    fr = ", ".join(f"{100 * f:.0f}%" for f in meta["fractions"][1:])
    lines += ["", f"Steps randomize cumulatively {fr} of the {meta['layers']} weight layers, logits first."]
    for cs in sets:
        if cs:
            lines.append(f"Class set {_SET_NAMES.get(cs, cs)}: {meta['class_sets'][cs]}.")
    lines.append("A pair whose original or randomized map is constant has no defined similarity; it is left out "
                 "of the means and counted in the last column (pairs left out / pairs over all steps).")
    labels = list(meta.get("lens", {}))
    if len(labels) > 1:
        for cs in sets:
            lines += ["", f"Lens sweep, mean Spearman over the steps, class set {_SET_NAMES.get(cs, cs or 'all')}:", ""]
            lines.append("| Method | base | " + " | ".join(labels) + " |")
            lines.append("|---" * (len(labels) + 2) + "|")
            for m in method_names(results):
                entry = results[m]["class_sets"][cs] if cs else results[m]
                cells = [f"{_sanity_means(entry['variants'][lab])['spearman']:.3f}" for lab in labels]
                lines.append(f"| {results[m]['label']} | {_sanity_means(entry['base'])['spearman']:.3f} | "
                             + " | ".join(cells) + " |")
    return "\n".join(lines)


def with_al_variant(results: dict, label: str) -> dict:
    """The same results with lens variant ``label`` reported as "AL" (and listed first).

    Every variant's numbers are already in a results dict, so a table for another lens
    default needs no new model run.
    """
    meta = results["_meta"]
    lens = meta.get("lens", {})
    if label not in lens:
        raise ValueError(f"lens variant {label!r} is not in these results; they have: {', '.join(lens)}")
    out: dict = {}
    for m in method_names(results):
        entry = dict(results[m])
        entry["al"] = entry["variants"][label]
        if "class_sets" in entry:
            entry["class_sets"] = {cs: {**e, "al": e["variants"][label]} for cs, e in entry["class_sets"].items()}
            entry["al"] = next(iter(entry["class_sets"].values()))["al"]
        out[m] = entry
    out.update({k: v for k, v in results.items() if k.startswith("_") and k != "_meta"})
    out["_meta"] = {**meta, "al_variant": label, "lens": {label: lens[label], **{k: v for k, v in lens.items()
                                                                                if k != label}}}
    return out


def _first_set(entry: dict) -> dict:
    """A sanity entry's first class set (the headline), or the entry itself for old files."""
    return next(iter(entry["class_sets"].values())) if "class_sets" in entry else entry


def summary_table(by_protocol: dict[str, dict]) -> str:
    """One row per method across the benchmarks given: our relative change next to the paper's.

    Grid: RA; insertion and deletion: AUC (relative change base -> AL, %); sanity: mean
    Spearman over the randomization steps, base -> AL, first class set (the paper gives
    curves only). The last rows average over the methods that both we and the paper ran,
    then over all of ours.
    """
    order = [p for p in ("grid", "insertion", "deletion", "sanity") if p in by_protocol]
    if not order:
        raise ValueError("no grid, insertion, deletion or sanity results given")
    methods: list[str] = []
    for p in order:
        methods += [m for m in method_names(by_protocol[p]) if m not in methods]
    labels = {m: by_protocol[p][m]["label"] for p in order for m in method_names(by_protocol[p])}
    cols = {"grid": ("ra", "grid RA"), "insertion": ("auc", "insertion AUC ↑"), "deletion": ("auc", "deletion AUC ↓")}
    head = ["Method"]
    for p in order:
        if p == "sanity":
            head.append("sanity Spearman ↓, ours base → AL (paper: curves only)")
        else:
            head += [f"{cols[p][1]}, ours", f"{cols[p][1]}, paper"]
    lines = ["Per method, relative change with the lens (ours: EfficientNet-Lite0; paper: ResNet-50)", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---" * len(head) + "|")

    def ours(p, m):
        r = by_protocol[p]
        if m not in r:
            return "not run"
        if p == "sanity":
            e = _first_set(r[m])
            b, a = _sanity_means(e["base"])["spearman"], _sanity_means(e["al"])["spearman"]
            return _fmt_diff(b, a)
        k = cols[p][0]
        return _pct(_num(r[m]["base"][k]), _num(r[m]["al"][k]))

    for m in methods:
        cells = [labels[m]]
        for p in order:
            cells.append(ours(p, m))
            if p != "sanity":
                e = paper_entry(p, cols[p][0], m)
                cells.append("ours only" if e is None else f"{e[1]:+.0f}%")
        lines.append("| " + " | ".join(cells) + " |")
    common = [m for m in methods if all(p == "sanity" or paper_entry(p, cols[p][0], m) is not None for p in order)
              and all(m in by_protocol[p] for p in order)]
    everywhere = [m for m in methods if all(m in by_protocol[p] for p in order)]
    avg_rows = [(f"Avg., the {len(common)} methods in both", common, True)]
    if everywhere != common:
        avg_rows.append((f"Avg., all {len(everywhere)} of ours", everywhere, False))
    for title, ms, with_paper in avg_rows:
        cells = [title]
        for p in order:
            if p == "sanity":
                entries = [_first_set(by_protocol[p][m]) for m in ms]
                b = float(np.nanmean([_sanity_means(e["base"])["spearman"] for e in entries])) if entries else math.nan
                a = float(np.nanmean([_sanity_means(e["al"])["spearman"] for e in entries])) if entries else math.nan
                cells.append(_fmt_diff(b, a))
            else:
                cells.append(_pct_or_blank(average_change(by_protocol[p], cols[p][0], ms)))
                cells.append(_pct_or_blank(paper_average(p, cols[p][0], ms)) if with_paper else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- lens choice
#: The metric each benchmark contributes to the lens choice, and whether higher is better.
CHOICE_METRICS = (
    ("grid", "ra", True),
    ("insertion", "auc", True),
    ("deletion", "auc", False),
    ("sanity", "spearman", False),
)
#: Benchmarks weigh equally; insertion and deletion together are one benchmark.
CHOICE_BENCHMARKS = {"grid": ("grid",), "insertion/deletion": ("insertion", "deletion"), "sanity": ("sanity",)}


def _variant_value(results: dict, proto: str, method: str, label: str) -> float:
    entry = results[method]
    if proto == "sanity":
        return _sanity_means(_first_set(entry)["variants"][label])["spearman"]
    metric = "ra" if proto == "grid" else "auc"
    return _num(entry["variants"][label][metric])


def lens_choice(by_protocol: dict[str, dict]) -> dict:
    """Rank lens variants over all benchmarks together (SPEC section 1.2).

    The rule: for each benchmark metric (grid RA; insertion AUC; deletion AUC; sanity
    Spearman, mean over the randomization steps, first class set) and each method, the
    variants are ranked (1 = best, ties share the mean rank, values compared at 4
    decimals); a benchmark's score is the mean rank over its metrics and methods
    (insertion and deletion together form one benchmark); the variant with the lowest
    mean of the three benchmark scores wins. Only variants and methods present in every
    given result count.

    Returns
    -------
    dict
        ``{"variants": [...], "methods": [...], "means": {variant: {proto: mean value}},
        "scores": {variant: {benchmark: mean rank, "combined": ...}}, "best": variant}``
    """
    from scipy.stats import rankdata

    protos = [p for p, _, _ in CHOICE_METRICS if p in by_protocol]
    if not protos:
        raise ValueError("no grid, insertion, deletion or sanity results given")
    variants = None
    methods = None
    for p in protos:
        r = by_protocol[p]
        labs = list(r["_meta"]["lens"])
        variants = labs if variants is None else [v for v in variants if v in labs]
        ms = method_names(r)
        methods = ms if methods is None else [m for m in methods if m in ms]
    if not variants or not methods:
        raise ValueError("the results share no lens variant or no method")
    ranks: dict[str, dict[str, list[float]]] = {v: {} for v in variants}
    means: dict[str, dict[str, float]] = {v: {} for v in variants}
    for proto, _metric, higher in CHOICE_METRICS:
        if proto not in by_protocol:
            continue
        r = by_protocol[proto]
        table = np.array([[_variant_value(r, proto, m, v) for v in variants] for m in methods])
        for j, v in enumerate(variants):
            means[v][proto] = float(np.nanmean(table[:, j]))
        for row in table:
            if np.isnan(row).any():
                continue
            score = -np.round(row, 4) if higher else np.round(row, 4)
            for v, rk in zip(variants, rankdata(score, method="average")):
                ranks[v].setdefault(proto, []).append(float(rk))
    scores: dict[str, dict[str, float]] = {}
    for v in variants:
        sc = {}
        for bench, members in CHOICE_BENCHMARKS.items():
            vals = [x for p in members for x in ranks[v].get(p, [])]
            if vals:
                sc[bench] = float(np.mean(vals))
        sc["combined"] = float(np.mean(list(sc.values())))
        scores[v] = sc
    best = min(variants, key=lambda v: (scores[v]["combined"], variants.index(v)))
    return {"variants": variants, "methods": methods, "means": means, "scores": scores, "best": best}


def lens_choice_table(by_protocol: dict[str, dict]) -> str:
    """Markdown of :func:`lens_choice`: the mean value per benchmark and the mean ranks."""
    c = lens_choice(by_protocol)
    protos = [p for p, _, _ in CHOICE_METRICS if p in by_protocol]
    benches = [b for b in CHOICE_BENCHMARKS if b in c["scores"][c["variants"][0]]]
    names = {"grid": "grid RA ↑", "insertion": "insertion AUC ↑", "deletion": "deletion AUC ↓",
             "sanity": "sanity Spearman ↓"}
    first = next(iter(by_protocol.values()))
    labels = {m: first[m]["label"] for m in c["methods"]}
    lines = [f"Lens choice over {len(protos)} benchmark metrics and {len(c['methods'])} methods "
             f"({', '.join(labels.values())}); means over methods, then mean rank per benchmark "
             "(1 = best of the variants) and their mean", ""]
    lines.append("| Lens variant | " + " | ".join(names[p] for p in protos) + " | "
                 + " | ".join(f"rank: {b}" for b in benches) + " | combined rank |")
    lines.append("|---" * (len(protos) + len(benches) + 2) + "|")
    for v in c["variants"]:
        name = f"**{v}**" if v == c["best"] else v
        cells = [f"{c['means'][v][p]:.3f}" for p in protos] + [f"{c['scores'][v][b]:.2f}" for b in benches]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {c['scores'][v]['combined']:.2f} |")
    lines += ["", f"Best over all benchmarks: {c['best']}."]
    return "\n".join(lines)


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.floating, float)):
        f = float(o)
        return f if math.isfinite(f) else None
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    return o


def write_json(results: dict, path: str | os.PathLike) -> Path:
    """Write results as JSON (atomically); NaN and Inf become null."""
    text = json.dumps(_jsonable(results), indent=1, ensure_ascii=False)
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _figure():
    # A bare Figure renders with the Agg canvas and never touches pyplot or a GUI backend.
    from matplotlib.figure import Figure

    return Figure


def _save(fig, path: Path) -> Path:
    def write(f):
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")

    return atomic_write(path, write)


def save_plots(results: dict, folder: str | os.PathLike, prefix: str = "") -> list[Path]:
    """Write the figures of a results dict as PNGs into ``folder``; return their paths.

    Grid: bar chart of RA / IoU / F1, base vs AL. Insertion / deletion: mean curves,
    base dashed, AL solid. Sanity: one plot per similarity and class set, base dashed,
    AL solid (``sanity_<similarity>.png`` for the first class set,
    ``sanity_<set>_<similarity>.png`` for the others).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = results["_meta"]
    proto = meta["protocol"]
    names = method_names(results)
    Figure = _figure()
    import matplotlib

    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    paths = []
    if proto == "grid":
        fig = Figure(figsize=(11, 3.4))
        keys = ("ra", "iou", "f1")
        axes = fig.subplots(1, len(keys))
        xs = np.arange(len(names))
        for ax, k in zip(axes, keys):
            ax.bar(xs - 0.2, [results[m]["base"][k] for m in names], 0.4, label="base", color="#999999")
            ax.bar(xs + 0.2, [results[m]["al"][k] for m in names], 0.4, label="AL", color="#1f77b4")
            ax.set_xticks(xs, [results[m]["label"] for m in names], rotation=35, ha="right", fontsize=8)
            ax.set_title(_NAMES[k])
            ax.set_ylim(0, 1)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"Grid pointing game, {meta['model']}, n = {meta['n']}", fontsize=10)
        paths.append(_save(fig, folder / f"{prefix}grid.png"))
    elif proto in ("insertion", "deletion"):
        fig = Figure(figsize=(6, 4.2))
        ax = fig.subplots()
        fr = meta["fractions"]
        for i, m in enumerate(names):
            c = colours[i % len(colours)]
            ax.plot(fr, results[m]["base"]["curve"], "--", color=c, alpha=0.8)
            ax.plot(fr, results[m]["al"]["curve"], "-", color=c, label=results[m]["label"])
        ax.set_xlabel("fraction of pixels " + ("revealed" if proto == "insertion" else "removed"))
        ax.set_ylabel("target-class probability")
        ax.set_title(f"{proto.capitalize()} ({meta['better']} AUC is better): base dashed, AL solid", fontsize=9)
        ax.legend(fontsize=7)
        paths.append(_save(fig, folder / f"{prefix}{proto}.png"))
    elif proto == "sanity":
        fr = 100 * np.asarray(meta["fractions"])
        sets = list(meta.get("class_sets", {})) or [None]
        for si, cs in enumerate(sets):
            for k in SIMILARITY_KEYS:
                fig = Figure(figsize=(6, 4.2))
                ax = fig.subplots()
                for i, m in enumerate(names):
                    entry = results[m]["class_sets"][cs] if cs else results[m]
                    c = colours[i % len(colours)]
                    ax.plot(fr, [_num(v) for v in entry["base"][k]], "--", color=c, alpha=0.8)
                    ax.plot(fr, [_num(v) for v in entry["al"][k]], "-", color=c, marker=".", label=results[m]["label"])
                ax.set_xlabel("% of weight layers randomized (logits first)")
                ax.set_ylabel(f"{_NAMES[k]} similarity to the original map")
                what = f", class set {_SET_NAMES.get(cs, cs)}" if cs else ""
                ax.set_title(f"Cascading randomization, {meta['model']}{what}:\nbase dashed, AL solid "
                             "(lower is better)", fontsize=8)
                ax.axhline(0, color="#cccccc", lw=0.8)
                ax.legend(fontsize=7)
                stem = f"sanity_{k}" if si == 0 else f"sanity_{cs}_{k}"
                paths.append(_save(fig, folder / f"{prefix}{stem}.png"))
    else:
        raise ValueError(f"unknown protocol {proto!r}")
    return paths
