"""Write a :class:`~alens_gui.core.cohort.Cohort` to a folder: ``cohort.json``, the maps as
``.npy`` (H x W float32, the model's input frame) and ``cohort.pdf`` (a page per class).

``cohort.json`` holds, per class name: ``clusters`` (each ``{"members": [input paths as
listed], "prototype": "<file>.npy", "share": ...}``, largest first), the same for the base
maps (``base_clusters``; ``"empty": true`` marks the images whose map is 0 everywhere, where
the class wins no pixel), how the number was chosen and the eigenvalues, the embedding (one
point per member, in the order of ``members``), the territory statistics and, with two
groups, the group difference.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from .cohort import Clustering, Cohort
from .export import safe_name
from .outputs import atomic_write

JSON_NAME = "cohort.json"
PDF_NAME = "cohort.pdf"


def _npy(out: Path, name: str, arr: np.ndarray, written: list[Path]) -> str:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr), allow_pickle=False)
    data = buf.getvalue()
    written.append(atomic_write(out / name, lambda f: f.write(data)))
    return name


def _clusters(out: Path, cohort: Cohort, cl: Clustering, members: list[int], stem: str,
              written: list[Path]) -> list[dict]:
    rows = []
    for i, s in enumerate(cl.strategies):
        rows.append({
            "members": [cohort.items[members[m]].path for m in s.members],
            "prototype": _npy(out, f"{stem}_{i + 1}.npy", s.prototype, written),
            "share": round(float(s.share), 6),
            "empty": bool(s.empty),
        })
    return rows


def cohort_document(out: Path, cohort: Cohort, meta: dict) -> tuple[dict, list[Path]]:
    """Write the maps into ``out`` and return the JSON document (and the files written)."""
    written: list[Path] = []
    classes: dict[str, dict] = {}
    used: set[str] = set()
    for c, cc in cohort.classes.items():
        stem = safe_name(cc.class_name)
        while stem.casefold() in used:
            stem = f"{stem}_{c}"
        used.add(stem.casefold())
        doc: dict = {"index": int(c), "images": len(cc.members), "note": cc.note,
                     "members": [cohort.items[n].path for n in cc.members]}
        if cc.refined is not None:
            doc["clusters"] = _clusters(out, cohort, cc.refined, cc.members, f"prototype_{stem}", written)
            doc["n_clusters"] = cc.refined.n_clusters
            doc["chosen_by"] = cc.refined.chosen_by
            doc["eigenvalues"] = [round(float(v), 6) for v in cc.refined.eigenvalues]
            doc["embedding"] = {"method": cc.refined.embedding_method,
                                "points": [[round(float(x), 4), round(float(y), 4)] for x, y in cc.refined.embedding],
                                "cluster": [int(v) for v in cc.refined.labels]}
        if cc.base is not None:
            doc["base_clusters"] = _clusters(out, cohort, cc.base, cc.members, f"base_prototype_{stem}", written)
            doc["base_n_clusters"] = cc.base.n_clusters
            doc["base_eigenvalues"] = [round(float(v), 6) for v in cc.base.eigenvalues]
            doc["base_embedding"] = {"method": cc.base.embedding_method,
                                     "points": [[round(float(x), 4), round(float(y), 4)] for x, y in cc.base.embedding],
                                     "cluster": [int(v) for v in cc.base.labels]}
        if cc.territory is not None:
            t = cc.territory
            doc["territory"] = {"area": round(t.area, 6), "margin": round(t.margin, 6), "images": t.images,
                                "frequency": _npy(out, f"territory_{stem}.npy", t.frequency, written)}
        if cc.groups is not None:
            g = cc.groups
            doc["groups"] = {
                "names": list(g.groups), "counts": list(g.counts),
                "mean": [_npy(out, f"group_mean_{stem}_{safe_name(n)}.npy", m, written)
                         for n, m in zip(g.groups, (g.mean_a, g.mean_b))],
                "difference": _npy(out, f"group_difference_{stem}.npy", g.difference, written),
                "significant": _npy(out, f"group_significant_{stem}.npy", g.significant.astype(np.uint8), written),
                "share_significant": round(float(g.significant.mean()), 6),
                "smallest_p": round(float(g.p.min()), 6),
                "test": f"Welch t per pixel, {g.permutations} permutations of the group labels, maximum |t| over "
                        f"the map (family-wise error {g.alpha})",
                "alignment": None if not np.isfinite(g.alignment) else round(float(g.alignment), 4),
                "note": g.note,
            }
        classes[cc.class_name] = doc
    document = dict(meta)
    document.update({
        "model_input": list(cohort.model_hw or ()),
        "by": cohort.by,
        "inputs": [it.path for it in cohort.items],
        "classes": classes,
        "failures": list(cohort.failures),
        "notes": list(cohort.notes),
    })
    return document, written


def write_cohort(out, cohort: Cohort, meta: dict, *, pdf: bool = True) -> list[Path]:
    """Write everything into folder ``out``; returns the files written (``cohort.json`` last)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    document, written = cohort_document(out, cohort, meta)
    if pdf:
        data = cohort_pdf(cohort, meta)
        written.append(atomic_write(out / PDF_NAME, lambda f: f.write(data)))
    text = json.dumps(document, indent=1).encode("utf-8")
    written.append(atomic_write(out / JSON_NAME, lambda f: f.write(text)))
    return written


# -- the PDF ----------------------------------------------------------------------------------
def _show_map(ax, m, title: str = "") -> None:
    m = np.asarray(m, dtype=np.float32)
    lim = float(np.nanmax(np.abs(m))) or 1.0
    ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def _thumb_strip(items, members, n: int = 8) -> np.ndarray | None:
    if not members:
        return None
    thumbs = [items[m].thumb for m in members[:n]]
    h = max(t.shape[0] for t in thumbs)
    padded = [np.pad(t, ((0, h - t.shape[0]), (0, 2), (0, 0)), constant_values=255) for t in thumbs]
    return np.concatenate(padded, axis=1)


def cohort_pdf(cohort: Cohort, meta: dict) -> bytes:
    """A page per class: refined strategies (prototype, share, member thumbnails), the base
    strategies beside them, the embedding, the territory frequency and any group difference."""
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    buf = io.BytesIO()
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(buf) as pdf:
        for cc in cohort.classes.values():
            if cc.refined is None:
                continue
            rows = max(len(cc.refined.strategies), len(cc.base.strategies) if cc.base else 0)
            fig = Figure(figsize=(8.27, 11.69))
            fig.suptitle(f"{cc.class_name}: {len(cc.members)} image(s) ({cohort.by}); "
                         f"{cc.refined.n_clusters} strategies ({cc.refined.chosen_by})", fontsize=10)
            fig.text(0.02, 0.965, meta.get("settings_text", ""), fontsize=6)
            top = 0.93
            row_h = min(0.11, (0.35 if cc.groups is not None else 0.55) / max(rows, 1))
            for i in range(rows):
                y = top - (i + 1) * row_h
                for j, (cl, label) in enumerate(((cc.refined, "refined"), (cc.base, "base"))):
                    if cl is None or i >= len(cl.strategies):
                        continue
                    s = cl.strategies[i]
                    x0 = 0.03 + j * 0.49
                    ax = fig.add_axes((x0, y, 0.1, row_h * 0.85))
                    what = ", map 0 everywhere" if s.empty else ""
                    _show_map(ax, s.prototype, f"{label} {i + 1}: {100 * s.share:.0f}% ({len(s.members)}){what}")
                    strip = _thumb_strip(cohort.items, [cc.members[m] for m in s.members])
                    if strip is not None:
                        ax2 = fig.add_axes((x0 + 0.11, y, 0.34, row_h * 0.85))
                        ax2.imshow(strip, interpolation="nearest")
                        ax2.set_axis_off()
            y = top - rows * row_h - 0.27
            for j, (cl, label) in enumerate(((cc.refined, "refined"), (cc.base, "base"))):
                if cl is None:
                    continue
                ax = fig.add_axes((0.06 + j * 0.32, y, 0.26, 0.22))
                ax.scatter(cl.embedding[:, 0], cl.embedding[:, 1], c=cl.labels, cmap="tab10", s=8,
                           vmin=0, vmax=9)
                ax.set_title(f"{label} maps, {cl.embedding_method}", fontsize=7)
                ax.tick_params(labelsize=5)
            if cc.territory is not None:
                ax = fig.add_axes((0.7, y, 0.26, 0.22))
                ax.imshow(cc.territory.frequency, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(f"territory: wins {100 * cc.territory.area:.1f}% of area, margin "
                             f"{cc.territory.margin:.2f}", fontsize=6)
                ax.set_axis_off()
            if cc.groups is not None:
                g = cc.groups
                yy = y - 0.23
                for j, (m, t) in enumerate(((g.mean_a, f"mean {g.groups[0]} ({g.counts[0]})"),
                                            (g.mean_b, f"mean {g.groups[1]} ({g.counts[1]})"),
                                            (g.difference, "difference"))):
                    ax = fig.add_axes((0.04 + j * 0.24, yy, 0.2, 0.18))
                    _show_map(ax, m, t)
                ax = fig.add_axes((0.76, yy, 0.2, 0.18))
                ax.imshow(g.significant, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(f"significant (FWE {g.alpha})", fontsize=7)
                ax.set_axis_off()
                if g.note:
                    fig.text(0.04, yy - 0.03, g.note[:300], fontsize=6, wrap=True)
            pdf.savefig(fig)
    return buf.getvalue()
