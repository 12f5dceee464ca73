"""The grid pointing game (Rao et al. 2022) for base maps and lensed maps.

For every 2 x 2 grid the class set is the four tile classes; each method runs once per
grid (K = 4 classes batched), and every lens variant is applied to the same cached
maps, so a lens sweep costs no extra model time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..progress import Progress
from .common import base_maps, lensed, mean_dicts, method_entry, prepare, run_meta
from .data import Sample, make_grids
from .metrics import LOCALISATION_KEYS, localisation_batch


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
        Pre-built grids (overrides ``n``, ``seed`` and ``folder``).

    Returns
    -------
    dict
        Per method: ``base`` and ``al`` hold the mean RA, IoU, precision, recall, F1 and
        ``n`` (class instances), plus ``per_class`` means keyed ``"idx name"``;
        ``variants`` holds the refined means for every lens variant. ``_meta`` records
        the protocol, model, grids and lens settings.
    """
    run = prepare(explainer, methods, method_options, lens_params_list, progress)
    loaded, progress, infos, options, variants = run.loaded, run.progress, run.infos, run.options, run.variants
    if grids is None:
        progress.advance(0, "building grids")
        grids = make_grids(loaded, n, seed, folder)
    progress.add_total(len(grids) * len(infos))
    rows: dict[str, dict[str, list]] = {i.name: {"base": [], **{v.label: [] for v in variants}} for i in infos}
    for gi, g in enumerate(grids):
        x = loaded.to_input(g.image)
        for info in infos:
            raw = base_maps(loaded, x, g.classes, info, options[info.name], progress)
            base, refined = lensed(raw, variants)
            for key, maps in [("base", base)] + [(v.label, r) for v, r in zip(variants, refined)]:
                for c, name, m in zip(g.classes, g.names, localisation_batch(maps, g.regions)):
                    rows[info.name][key].append({"class": f"{c} {name}", **m})
            progress.advance(1, f"grid {gi + 1}/{len(grids)} {info.label}")
    results: dict = {}
    for info in infos:
        r = rows[info.name]
        results[info.name] = method_entry(
            info, options[info.name], _summary(r["base"]), _summary(r[variants[0].label]),
            {v.label: _summary(r[v.label], per_class=False) for v in variants},
        )
    results["_meta"] = run_meta("grid", run, grids, seed,
                                source=str(folder) if folder else "skimage photographs")
    return results


def _summary(rows: list[dict], per_class: bool = True) -> dict:
    out = mean_dicts(rows, LOCALISATION_KEYS)
    if per_class:
        by: dict[str, list] = {}
        for r in rows:
            by.setdefault(r["class"], []).append(r)
        out["per_class"] = {k: mean_dicts(v, LOCALISATION_KEYS) for k, v in sorted(by.items())}
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
