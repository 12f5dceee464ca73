"""Cascading model-parameter randomization (Adebayo et al. 2018), base vs lensed.

Choices (SPEC section 3 leaves them open):

* Layers are the modules with a weight of two or more dimensions (convolutions and
  linear layers), in the order they first run in a forward pass; the cascade starts at
  the logits layer and walks towards the input. Normalisation layers keep their
  parameters and statistics.
* The layers are split into ``steps`` contiguous groups; step s randomizes the last s
  groups (so the x axis is the fraction of layers randomized).
* Randomizing calls the module's own ``reset_parameters()`` (its construction-time
  initialiser) under a seed, or draws He-normal weights and zero biases when the module
  has none.
* The cascade runs on a deep copy: the caller's model is never modified.
* Maps are compared as absolute values of the channel-reduced maps (importance without
  sign, as in Adebayo et al.'s "absolute value" rank correlation).
* A constant map (for example a lensed map in which the class wins no pixel) has no
  ranking to compare: its similarity is undefined. Such pairs are left out of the
  means and counted (``undefined`` per step), never scored as 0, which would reward an
  empty map as "perfectly decorrelated".
* Class sets (the lens needs one): ``"top2"``, the model's two most probable classes on
  the input, as the first paper does for this test, scoring the map of the top-1 class
  (the explanation of the prediction, as in Adebayo et al.); ``"tiles"``, the four tile
  classes of the grid, scoring all four maps. The base maps of the union of both sets
  are computed once per model state and the lens is applied to each subset (SPEC
  section 1.5), so the second class set costs only the extra classes.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import AlensError
from ..methods.base import eval_and_frozen, hooks
from ..progress import Progress
from .common import base_maps, lensed, method_entry, prepare, run_meta
from .data import Sample, make_grids
from .metrics import SIMILARITY_KEYS, similarity


def randomization_layers(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the weight layers (conv / linear), from the logits towards the input."""
    order: list[str] = []
    with hooks() as handles:
        for name, mod in model.named_modules():
            w = getattr(mod, "weight", None)
            if name and isinstance(w, torch.Tensor) and w.ndim >= 2:
                def rec(_m, _i, _o, name=name):
                    if name not in order:
                        order.append(name)
                handles.append(mod.register_forward_hook(rec))
        with eval_and_frozen(model), torch.no_grad():
            model(example)
    if not order:
        raise AlensError("the model has no convolution or linear layers to randomize")
    return order[::-1]


def cascade_groups(layers: Sequence[str], steps: int) -> list[list[str]]:
    """Split logits-first ``layers`` into ``steps`` contiguous groups (at most one per layer)."""
    steps = max(1, min(int(steps), len(layers)))
    return [list(g) for g in np.array_split(np.array(layers, dtype=object), steps)]


def randomize_module(mod: nn.Module, generator_seed: int) -> None:
    """Re-initialise one module's own parameters under a seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(generator_seed)
        if hasattr(mod, "reset_parameters"):
            mod.reset_parameters()
            return
        with torch.no_grad():
            for name, p in mod.named_parameters(recurse=False):
                if p.ndim >= 2:
                    nn.init.kaiming_normal_(p, nonlinearity="relu")
                elif name == "bias":
                    p.zero_()


def cascade(model: nn.Module, groups: Sequence[Sequence[str]], seed: int = 0) -> Iterator[tuple[int, nn.Module]]:
    """Yield ``(step, model copy)`` with the first ``step`` groups randomized (step 1..len(groups)).

    The same copy is randomized further at every step; ``model`` itself is never touched.
    """
    work = copy.deepcopy(model)
    work.eval()
    modules = dict(work.named_modules())
    for s, group in enumerate(groups, start=1):
        for name in group:
            randomize_module(modules[name], zlib.crc32(f"{seed}:{name}".encode()))
        yield s, work


CLASS_SETS = ("top2", "tiles")


def _class_sets(loaded, grids: Sequence[Sample], xs, class_sets: Sequence[str]) -> list[dict[str, tuple[list, list]]]:
    """Per grid: ``{set name: (classes, indices of the scored classes)}``."""
    out = []
    for g, x in zip(grids, xs):
        sets = {}
        for cs in class_sets:
            if cs == "top2":
                probs = loaded.probabilities(x)
                top = [int(c) for c in np.argsort(-np.asarray(probs), kind="stable")[:2]]
                sets[cs] = (top, [0])
            elif cs == "tiles":
                sets[cs] = (list(g.classes), list(range(len(g.classes))))
            else:
                raise AlensError(f"unknown class set {cs!r}; choose from {', '.join(CLASS_SETS)}")
        out.append(sets)
    return out


def run_sanity(
    explainer,
    methods: Sequence[str] | str | None = None,
    n: int = 2,
    seed: int = 0,
    lens_params_list=None,
    progress: Progress | None = None,
    *,
    steps: int = 8,
    folder=None,
    method_options: dict | None = None,
    grids: Sequence[Sample] | None = None,
    class_sets: Sequence[str] = CLASS_SETS,
) -> dict:
    """Cascading randomization on ``n`` seeded grids, for each class set in ``class_sets``.

    Returns
    -------
    dict
        ``{method: {"base": {...}, "al": {...}, "variants": {...}, "class_sets": {set: {"base",
        "al", "variants"}}}, "_meta": {"fractions", "groups", "class_sets", ...}}``. Each
        summary holds ``"spearman"``, ``"pearson"``, ``"cosine"`` (list entry s: the mean
        similarity over the defined pairs after s groups were randomized; entry 0 is the
        unrandomized model, 1 by definition), ``"n"`` (pairs per step) and
        ``"undefined"`` (pairs left out per step because a map was constant). The
        top-level ``base`` / ``al`` / ``variants`` are those of the first class set.
        Lower is better.
    """
    run = prepare(explainer, methods, method_options, lens_params_list, progress)
    loaded, progress, infos, options, variants = run.loaded, run.progress, run.infos, run.options, run.variants
    class_sets = list(dict.fromkeys(class_sets))
    if not class_sets:
        raise AlensError("no class set for the sanity check")
    if grids is None:
        progress.advance(0, "building grids")
        grids = make_grids(loaded, n, seed, folder)
    xs = [loaded.to_input(g.image) for g in grids]
    sets = _class_sets(loaded, grids, xs, class_sets)
    unions = [list(dict.fromkeys(c for cs in class_sets for c in s[cs][0])) for s in sets]
    layers = randomization_layers(loaded.model, xs[0])
    groups = cascade_groups(layers, steps)
    progress.add_total((len(groups) + 1) * len(grids) * len(infos))
    keys = ["base"] + [v.label for v in variants]

    def lens_per_set(raw: np.ndarray, gi: int) -> dict[str, list[np.ndarray]]:
        """``{set: [base, refined per variant]}`` (each (K, H, W)) from the union's raw maps."""
        out = {}
        for cs in class_sets:
            idx = [unions[gi].index(c) for c in sets[gi][cs][0]]
            base, refined = lensed(raw[idx], variants)
            out[cs] = [base, *refined]
        return out

    original = []  # original[g][method][set] = [base, refined...]
    for gi, x in enumerate(xs):
        row = {}
        for info in infos:
            row[info.name] = lens_per_set(base_maps(loaded, x, unions[gi], info, options[info.name], progress), gi)
            progress.advance(1, f"original model, grid {gi + 1} {info.label}")
        original.append(row)
    # rows[method][set][key] = one list of similarity dicts per step
    rows = {i.name: {cs: {k: [] for k in keys} for cs in class_sets} for i in infos}
    for step, rmodel in cascade(loaded.model, groups, seed):
        per = {i.name: {cs: {k: [] for k in keys} for cs in class_sets} for i in infos}
        for gi, x in enumerate(xs):
            for info in infos:
                raw = base_maps(loaded, x, unions[gi], info, options[info.name], progress, model=rmodel)
                new = lens_per_set(raw, gi)
                for cs in class_sets:
                    for ki, key in enumerate(keys):
                        old_maps, new_maps = original[gi][info.name][cs][ki], new[cs][ki]
                        for j in sets[gi][cs][1]:
                            per[info.name][cs][key].append(similarity(np.abs(old_maps[j]), np.abs(new_maps[j])))
                progress.advance(1, f"randomized {step}/{len(groups)}, grid {gi + 1} {info.label}")
        for info in infos:
            for cs in class_sets:
                for key in keys:
                    rows[info.name][cs][key].append(per[info.name][cs][key])
    total = len(layers)
    done, fractions = 0, [0.0]
    for g in groups:
        done += len(g)
        fractions.append(done / total)
    results: dict = {}
    for info in infos:
        by_set = {}
        for cs in class_sets:
            summ = {key: _summary(rows[info.name][cs][key]) for key in keys}
            by_set[cs] = {"base": summ["base"], "al": summ[variants[0].label],
                          "variants": {v.label: summ[v.label] for v in variants}}
        first = by_set[class_sets[0]]
        entry = method_entry(info, options[info.name], first["base"], first["al"], first["variants"])
        entry["class_sets"] = by_set
        results[info.name] = entry
    results["_meta"] = run_meta(
        "sanity", run, grids, seed, fractions=fractions, groups=groups, layers=total, better="lower",
        class_sets={cs: {"top2": "the model's two most probable classes on the grid; the top-1 class's map is scored",
                         "tiles": "the four tile classes; all four maps are scored"}[cs] for cs in class_sets},
        top2=[{"classes": s["top2"][0], "names": [loaded.class_names[c] for c in s["top2"][0]]}
              for s in sets] if "top2" in class_sets else [],
    )
    return results


def _summary(step_rows: list[list[dict[str, float]]]) -> dict:
    """Mean similarity per step over the defined pairs, with the pairs per step and those left out."""
    n = len(step_rows[0]) if step_rows else 0
    undefined = [0] + [sum(1 for r in rows if np.isnan(r["spearman"])) for rows in step_rows]
    out: dict = {}
    for s in SIMILARITY_KEYS:
        means = [1.0]
        for rows in step_rows:
            vals = [r[s] for r in rows if not np.isnan(r[s])]
            means.append(float(np.mean(vals)) if vals else float("nan"))
        out[s] = means
    out["n"] = n
    out["undefined"] = undefined
    return out
