"""The grid pointing game (Rao et al. 2022) for base maps and lensed maps.

For every 2 x 2 grid the class set is the four tile classes; each method runs once per
grid (K = 4 classes batched), and every lens variant is applied to the same cached
maps, so a lens sweep costs no extra model time.

Every map is scored with :data:`~.metrics.GRID_KEYS`: RA on the positive part (``ra``, the
paper's rule) and on ``|A|`` (``ra_abs``), the pointing game (``pointing``), the negative
share of the map's mass (``neg_mass``) and the IoU / precision / recall / F1 of the
binarised map. Besides the means, the results keep every value per instance (one grid
tile, one method) under ``"_instances"``, so paired tests (base vs refined on the same
tile) are possible; :func:`instance_rows` flattens them for a CSV file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..progress import Progress
from .common import engine_results, lensed, mean_dicts, method_entry, prepare, run_meta
from .data import EvaluationDataError, Sample, make_grids
from .metrics import GRID_KEYS, grid_scores


def run_grid_game(
    explainer,
    methods: Sequence[str] | str | None = None,
    n: int = 8,
    seed: int = 0,
    lens_params_list=None,
    progress: Progress | None = None,
    *,
    folder=None,
    method_options: dict | None = None,
    grids: Sequence[Sample] | None = None,
    source: str | None = None,
    batch_size: int | None = None,
) -> dict:
    """Run the grid pointing game; return ``{method: {"base": ..., "al": ..., "variants": ...}, "_meta": ...}``.

    Parameters
    ----------
    explainer : Explainer or LoadedModel
    methods : names, or a comma-separated string (default: the six CNN methods of the page)
    n, seed : number of grids and their seed
    lens_params_list : list of LensVariant / LensParams / preset names, optional
        The lens settings to compare; the first is reported as ``"al"``.
    progress : Progress, optional
        One unit per (grid, method); cancelling stops between backward passes.
    folder : path, optional
        ImageNet-val style folder instead of the scikit-image photographs.
    method_options : dict, optional
        ``{"ig.steps": 16, ...}`` (see :func:`~.common.split_options`).
    grids : list of Sample, optional
        Pre-built grids (overrides ``n``, ``seed`` and ``folder``), e.g. from
        :func:`~.data.read_grids`.
    source : str, optional
        Where the grids came from, for ``_meta.source``.
    batch_size : int or "auto", optional
        Grids per batch of the batch engine (:class:`~..batch.BatchEngine`; ``None`` or
        ``"auto"``: chosen from the model and the free memory): it composes the grids' model
        inputs ahead on its pool, runs one forward pass per batch with each grid's own tile
        classes in the backward passes (gradient, CAM, IG/SmoothGrad; perturbation methods
        where sharing their passes pays; the others grid by grid), and scores each grid on
        its writer thread while the next batch computes. The values equal batch size 1.

    Returns
    -------
    dict
        Per method: ``base`` and ``al`` hold the means of :data:`~.metrics.GRID_KEYS` and
        ``n`` (class instances), plus ``per_class`` means keyed ``"idx name"``;
        ``variants`` holds the refined means for every lens variant. ``_meta`` records
        the protocol, model, grids, lens settings and the scoring rule (``scoring``);
        ``_instances`` lists every (grid, tile, method) with its ``base`` values and its
        ``refined`` values per lens variant.
    """
    run = prepare(explainer, methods, method_options, lens_params_list, progress)
    loaded, progress, infos, options, variants = run.loaded, run.progress, run.infos, run.options, run.variants
    if grids is None:
        progress.advance(0, "building grids")
        grids = make_grids(loaded, n, seed, folder)
    rows: dict[str, dict[str, list]] = {i.name: {"base": [], **{v.label: [] for v in variants}} for i in infos}
    instances: list[dict] = []
    scored: dict[tuple[int, str], dict] = {}
    grids = list(grids)

    def score(result):  # on the engine's writer thread, while the next batch computes
        if result.raw is None:
            return None
        return _scores(grids[result.index], result.raw, variants)

    for info in infos:
        for r in engine_results(loaded, grids, info, options[info.name], progress,
                                "auto" if batch_size is None else batch_size, finish=score):
            scored[(r.index, info.name)] = r.finished
    for gi, g in enumerate(grids):  # grid by grid, method by method: the order of the per-instance values
        for info in infos:
            _record(g, gi, info, scored.pop((gi, info.name)), variants, rows, instances)
    results: dict = {}
    for info in infos:
        r = rows[info.name]
        results[info.name] = method_entry(
            info, options[info.name], _summary(r["base"]), _summary(r[variants[0].label]),
            {v.label: _summary(r[v.label], per_class=False) for v in variants},
        )
    results["_instances"] = instances
    results["_meta"] = run_meta("grid", run, grids, seed, source=source or (
        str(folder) if folder else "skimage photographs"), scoring=SCORING)
    return results


def _scores(g: Sample, raw: np.ndarray, variants) -> dict:
    """The scores of one method's raw (K, C, H, W) maps of grid ``g``: base and every lens variant."""
    base, refined = lensed(raw, variants)
    return {key: grid_scores(maps, g.regions)
            for key, maps in [("base", base)] + [(v.label, r) for v, r in zip(variants, refined)]}


def _record(g: Sample, gi: int, info, scored: dict, variants, rows: dict, instances: list) -> None:
    """One method's scores of grid ``gi`` as summary rows and per-instance values."""
    for key, per_tile in scored.items():
        for c, name, m in zip(g.classes, g.names, per_tile):
            rows[info.name][key].append({"class": f"{c} {name}", **m})
    for ti, (c, name) in enumerate(zip(g.classes, g.names)):
        instances.append({
            "grid": gi, "tile": ti, "class": int(c), "class_name": name, "method": info.name,
            "source": g.sources[ti] if ti < len(g.sources) else "",
            "base": scored["base"][ti],
            "refined": {v.label: scored[v.label][ti] for v in variants},
        })


#: How the grid game scores a map, written into every results file (``_meta.scoring``).
SCORING = {
    "ra": "relevance accuracy on the positive part max(A, 0), blurred 11x11 sigma 2 (the paper's rule)",
    "ra_abs": "relevance accuracy on |A|, same blur: negative evidence counts as mass",
    "pointing": "pointing game: 1 when a maximum of the blurred positive part lies in the class's tile",
    "neg_mass": "sum(max(-A, 0)) / sum(|A|) before the blur: the mass the positive-part rule drops",
    "iou/precision/recall/f1": "blurred positive part binarised at > 0, against the tile",
}

#: The columns of :func:`instance_rows` (one row per grid, tile, method, lens variant and metric).
INSTANCE_COLUMNS = ("grid", "tile", "class", "class_name", "method", "lens", "metric", "base", "refined")


def instance_rows(results: dict) -> list[dict]:
    """The per-instance values of grid results as flat rows (:data:`INSTANCE_COLUMNS`).

    One row per (grid, tile, method, lens variant, metric), with the base map's value and
    the refined map's value side by side: ready for a paired test per method and metric.
    """
    out = []
    instances = results.get("_instances", [])
    for n, inst in enumerate(instances if isinstance(instances, list) else [None]):
        # results files are passed around: a malformed entry is one clear line, not a traceback
        if not (isinstance(inst, dict) and isinstance(inst.get("base"), dict) and isinstance(inst.get("refined"), dict)
                and all(isinstance(r, dict) for r in inst["refined"].values())
                and all(c in inst for c in ("grid", "tile", "class", "class_name", "method"))):
            raise EvaluationDataError(f"per-instance entry {n + 1} of these results is malformed")
        for lens, refined in inst["refined"].items():
            for k in GRID_KEYS:
                if k in inst["base"]:
                    out.append({"grid": inst["grid"], "tile": inst["tile"], "class": inst["class"],
                                "class_name": inst["class_name"], "method": inst["method"], "lens": lens,
                                "metric": k, "base": inst["base"][k], "refined": refined.get(k)})
    return out


def _summary(rows: list[dict], per_class: bool = True) -> dict:
    out = mean_dicts(rows, GRID_KEYS)
    if per_class:
        by: dict[str, list] = {}
        for r in rows:
            by.setdefault(r["class"], []).append(r)
        out["per_class"] = {k: mean_dicts(v, GRID_KEYS) for k, v in sorted(by.items())}
    return out


def method_names(results: dict) -> list[str]:
    """The method keys of a results dict (everything but ``_meta``)."""
    return [k for k in results if not k.startswith("_")]


def lens_ranking(results: dict, key: str = "ra") -> list[tuple[str, float]]:
    """Lens variants ranked by their mean ``key`` over all methods (best first)."""
    names = method_names(results)
    labels = list(results["_meta"]["lens"])
    scores = [(lab, float(np.mean([results[m]["variants"][lab][key] for m in names]))) for lab in labels]
    return sorted(scores, key=lambda t: -t[1])


def write_instances(results: dict, path) -> Path:
    """Write :func:`instance_rows` as CSV (``.csv``) or as a JSON list of rows (any other suffix), atomically."""
    import csv
    import io
    import json

    from ..outputs import atomic_write

    rows = instance_rows(results)
    if not rows:
        raise EvaluationDataError("these results hold no per-instance values (only grid results written by "
                                  "this version have them)")
    if str(path).lower().endswith(".csv"):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=INSTANCE_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        text = buf.getvalue()
    else:
        text = json.dumps(rows, indent=0, ensure_ascii=False)
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
