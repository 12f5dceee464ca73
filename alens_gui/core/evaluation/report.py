"""Markdown tables, JSON files and matplotlib figures of evaluation results."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..explanation import atomic_write
from .metrics import LOCALISATION_KEYS, SIMILARITY_KEYS, relative_change

_NAMES = {"ra": "RA", "iou": "IoU", "precision": "Precision", "recall": "Recall", "f1": "F1",
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


def format_markdown(results: dict) -> str:
    """A Markdown table of any results dict made by this package (grid, insertion, deletion, sanity)."""
    meta = results.get("_meta", {})
    proto = meta.get("protocol", "grid")
    if proto == "grid":
        return _grid_table(results)
    if proto in ("insertion", "deletion"):
        return _perturbation_table(results)
    if proto == "sanity":
        return _sanity_table(results)
    raise ValueError(f"unknown protocol {proto!r}")


def _header(meta: dict, what: str) -> str:
    return (f"{what} — {meta.get('model', '?')}, n = {meta.get('n', '?')} (seed {meta.get('seed', '?')}), "
            f"lens {meta.get('al_variant', '?')}; cells: base → AL (relative change)")


def _grid_table(results: dict) -> str:
    meta = results["_meta"]
    lines = [_header(meta, "Grid pointing game"), ""]
    lines.append("| Method | " + " | ".join(_NAMES[k] for k in LOCALISATION_KEYS) + " |")
    lines.append("|---" * (len(LOCALISATION_KEYS) + 1) + "|")
    changes = {k: [] for k in LOCALISATION_KEYS}
    for m in method_names(results):
        b, a = results[m]["base"], results[m]["al"]
        lines.append(f"| {results[m]['label']} | " + " | ".join(_cell(b[k], a[k]) for k in LOCALISATION_KEYS) + " |")
        for k in LOCALISATION_KEYS:
            changes[k].append(relative_change(b[k], a[k]))
    lines.append("| Avg. change | " + " | ".join(f"{np.nanmean(changes[k]):+.1f}%" for k in LOCALISATION_KEYS) + " |")
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


def _perturbation_table(results: dict) -> str:
    meta = results["_meta"]
    what = f"{meta['protocol'].capitalize()} AUC ({meta.get('better', '')} is better)"
    lines = [_header(meta, what), ""]
    labels = list(meta.get("lens", {}))
    extra = labels[1:]
    lines.append("| Method | base AUC | AL AUC (change) |" + "".join(f" {lab} |" for lab in extra))
    lines.append("|---|---|---|" + "---|" * len(extra))
    changes = []
    for m in method_names(results):
        b, a = results[m]["base"]["auc"], results[m]["al"]["auc"]
        changes.append(relative_change(b, a))
        cells = "".join(f" {results[m]['variants'][lab]['auc']:.3f} ({_pct(b, results[m]['variants'][lab]['auc'])}) |"
                        for lab in extra)
        lines.append(f"| {results[m]['label']} | {b:.3f} | {a:.3f} ({_pct(b, a)}) |{cells}")
    lines.append(f"| Avg. change | | {np.nanmean(changes):+.1f}% |" + " |" * len(extra))
    return "\n".join(lines)


def _sanity_table(results: dict) -> str:
    meta = results["_meta"]
    head = _header(meta, f"Cascading randomization, mean similarity over {len(meta['fractions']) - 1} steps "
                         "(lower is better)").replace("(relative change)", "(difference)")
    lines = [head, ""]
    lines.append("| Method | " + " | ".join(_NAMES[k] for k in SIMILARITY_KEYS)
                 + " | Spearman after the logits layer group |")
    lines.append("|---" * (len(SIMILARITY_KEYS) + 2) + "|")
    for m in method_names(results):
        b, a = results[m]["base"], results[m]["al"]
        # Similarities hover around 0, where relative changes mean nothing: show differences.
        cells = [_diff(float(np.mean(b[k][1:])), float(np.mean(a[k][1:]))) for k in SIMILARITY_KEYS]
        cells.append(_diff(b["spearman"][1], a["spearman"][1]))
        lines.append(f"| {results[m]['label']} | " + " | ".join(cells) + " |")
    fr = ", ".join(f"{100 * f:.0f}%" for f in meta["fractions"][1:])
    lines += ["", f"Steps randomize cumulatively {fr} of the {meta['layers']} weight layers, logits first."]
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
    base dashed, AL solid. Sanity: one plot per similarity, base dashed, AL solid.
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
        for k in SIMILARITY_KEYS:
            fig = Figure(figsize=(6, 4.2))
            ax = fig.subplots()
            for i, m in enumerate(names):
                c = colours[i % len(colours)]
                ax.plot(fr, results[m]["base"][k], "--", color=c, alpha=0.8)
                ax.plot(fr, results[m]["al"][k], "-", color=c, marker=".", label=results[m]["label"])
            ax.set_xlabel("% of weight layers randomized (logits first)")
            ax.set_ylabel(f"{_NAMES[k]} similarity to the original map")
            ax.set_title(f"Cascading randomization, {meta['model']}: base dashed, AL solid (lower is better)",
                         fontsize=8)
            ax.axhline(0, color="#cccccc", lw=0.8)
            ax.legend(fontsize=7)
            paths.append(_save(fig, folder / f"{prefix}sanity_{k}.png"))
    else:
        raise ValueError(f"unknown protocol {proto!r}")
    return paths
