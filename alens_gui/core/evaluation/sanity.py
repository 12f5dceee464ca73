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
  sign, as in Adebayo et al.'s "absolute value" rank correlation); similarity with a
  constant map (e.g. a lensed map that became all zero) counts as 0.
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
) -> dict:
    """Cascading randomization on ``n`` seeded grids (class set: the four tile classes).

    Returns
    -------
    dict
        ``{method: {"base": {"spearman": [...], "pearson": [...], "cosine": [...]},
        "al": {...}, "variants": {...}}, "_meta": {"fractions", "groups", ...}}``; list
        entry s is the mean similarity after s groups were randomized (entry 0 is the
        unrandomized model, similarity 1). Lower is better.
    """
    run = prepare(explainer, methods, method_options, lens_params_list, progress)
    loaded, progress, infos, options, variants = run.loaded, run.progress, run.infos, run.options, run.variants
    if grids is None:
        progress.advance(0, "building grids")
        grids = make_grids(loaded, n, seed, folder)
    xs = [loaded.to_input(g.image) for g in grids]
    layers = randomization_layers(loaded.model, xs[0])
    groups = cascade_groups(layers, steps)
    progress.add_total((len(groups) + 1) * len(grids) * len(infos))
    keys = ["base"] + [v.label for v in variants]
    # original[g][method] = (base, refined list)
    original = []
    for gi, (g, x) in enumerate(zip(grids, xs)):
        row = {}
        for info in infos:
            row[info.name] = lensed(base_maps(loaded, x, g.classes, info, options[info.name], progress), variants)
            progress.advance(1, f"original model, grid {gi + 1} {info.label}")
        original.append(row)
    sims = {i.name: {k: [[{s: 1.0 for s in SIMILARITY_KEYS}]] for k in keys} for i in infos}
    for step, rmodel in cascade(loaded.model, groups, seed):
        per = {i.name: {k: [] for k in keys} for i in infos}
        for gi, (g, x) in enumerate(zip(grids, xs)):
            for info in infos:
                raw = base_maps(loaded, x, g.classes, info, options[info.name], progress, model=rmodel)
                base, refined = lensed(raw, variants)
                ob, orf = original[gi][info.name]
                for key, new, old in zip(keys, [base, *refined], [ob, *orf]):
                    for j in range(len(g.classes)):
                        per[info.name][key].append(similarity(np.abs(old[j]), np.abs(new[j])))
                progress.advance(1, f"randomized {step}/{len(groups)}, grid {gi + 1} {info.label}")
        for info in infos:
            for key in keys:
                sims[info.name][key].append(per[info.name][key])
    total = len(layers)
    done, fractions = 0, [0.0]
    for g in groups:
        done += len(g)
        fractions.append(done / total)
    results: dict = {}
    for info in infos:
        summ = {}
        for key in keys:
            summ[key] = {s: [float(np.mean([r[s] for r in step_rows])) for step_rows in sims[info.name][key]]
                         for s in SIMILARITY_KEYS}
        results[info.name] = method_entry(info, options[info.name], summ["base"], summ[variants[0].label],
                                          {v.label: summ[v.label] for v in variants})
    results["_meta"] = run_meta("sanity", run, grids, seed, fractions=fractions, groups=groups, layers=total,
                                better="lower")
    return results
