"""Insertion and deletion (Petsiuk et al. 2018) on two-image composites, base vs lensed.

Choices (SPEC section 3 leaves them open):

* Baseline: the image blurred with a Gaussian of sigma = S / 20 (11.2 px at S = 224),
  the same blur the ``blurred`` IG baseline uses.
* Pixels are ranked by the channel-reduced, signed map (largest first). Lensed maps are
  zero on most pixels; ties are broken by a seeded random order, never by position,
  so neither map gets a free ordering from the raster scan.
* ``steps`` + 1 points at revealed/removed fractions 0, 1/steps, ..., 1; the curve is
  the target class's probability (the model's own: softmax over all classes, or the class's
  sigmoid for a multi-label model); AUC by the trapezoid rule over [0, 1].
* The class set of each composite is its two classes (K = 2), each explained and
  scored on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import AlensError
from ..masking import fill_image
from ..progress import Progress
from .common import engine_results, lensed, method_entry, prepare, run_meta
from .data import Sample, make_composites
from .metrics import auc

MODES = ("insertion", "deletion")


def blurred_baseline(image: np.ndarray) -> np.ndarray:
    """The blurred copy (H, W, 3) that insertion starts from and deletion fills in.

    The same blur (sigma = size / 20) as the masking tool's ``blur`` fill.
    """
    return fill_image(image, "blur")


def pixel_order(score: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flat pixel indices sorted by score, largest first, ties in seeded random order."""
    s = np.asarray(score, dtype=np.float64).ravel()
    tiebreak = rng.permutation(s.size)
    return np.lexsort((tiebreak, -s))


@torch.no_grad()
def perturbation_curve(
    loaded, image: np.ndarray, baseline: np.ndarray, score: np.ndarray, cls: int, mode: str,
    steps: int, rng: np.random.Generator, batch_size: int = 32,
) -> np.ndarray:
    """Target-class probabilities at ``steps + 1`` revealed (insertion) or removed (deletion) fractions."""
    if mode not in MODES:
        raise AlensError(f"mode must be insertion or deletion; got {mode!r}")
    h, w = image.shape[:2]
    order = pixel_order(score, rng)
    npx = h * w
    counts = np.round(np.linspace(0, npx, steps + 1)).astype(int)
    start, fill = (baseline, image) if mode == "insertion" else (image, baseline)
    start_f = start.reshape(npx, 3)
    fill_f = fill.reshape(npx, 3)
    frames = []
    for k in counts:
        f = start_f.copy()
        f[order[:k]] = fill_f[order[:k]]
        frames.append(f.reshape(h, w, 3))
    probs = []
    for i in range(0, len(frames), batch_size):
        xb = torch.cat([loaded.to_input(f) for f in frames[i:i + batch_size]])
        probs.append(loaded.batch_probabilities(xb)[:, cls].cpu().numpy())
    return np.concatenate(probs).astype(np.float64)


def run_perturbation(
    explainer,
    methods: Sequence[str] | str | None = None,
    n: int = 8,
    seed: int = 0,
    lens_params_list=None,
    progress: Progress | None = None,
    *,
    modes: Sequence[str] = MODES,
    steps: int = 16,
    folder=None,
    method_options: dict | None = None,
    composites: Sequence[Sample] | None = None,
    batch_size="auto",
) -> dict[str, dict]:
    """Insertion and/or deletion AUC on ``n`` seeded composites.

    The maps come from the batch engine (``batch_size`` composites per batch, ``"auto"``
    by default; the values equal batch size 1), each composite with its own two classes;
    the curves are drawn as the maps come back, in order.

    Returns
    -------
    dict
        ``{mode: {method: {"base": {"auc", "std", "n", "curve"}, "al": {...},
        "variants": {...}}, "_meta": {...}}}`` for each mode in ``modes``. Higher is
        better for insertion, lower for deletion.
    """
    modes = list(dict.fromkeys(modes))
    for m in modes:
        if m not in MODES:
            raise AlensError(f"mode must be insertion or deletion; got {m!r}")
    if steps < 2:
        raise AlensError(f"insertion/deletion needs at least 2 steps; got {steps}")
    run = prepare(explainer, methods, method_options, lens_params_list, progress)
    loaded, progress, infos, options, variants = run.loaded, run.progress, run.infos, run.options, run.variants
    if composites is None:
        progress.advance(0, "building composites")
        composites = make_composites(loaded, n, seed, folder)
    keys = ["base"] + [v.label for v in variants]
    curves = {m: {i.name: {k: [] for k in keys} for i in infos} for m in modes}
    composites = list(composites)

    def comp_curves(result):
        """Every curve of one composite's maps. Run here as each result comes back, not on the engine's
        writer thread: the curves need the model, whose lock a caller may hold around the whole run."""
        if result.raw is None:
            return None
        ci = result.index
        comp = composites[ci]
        baseline = blurred_baseline(comp.image)
        base, refined = lensed(result.raw, variants)
        # Lens variants often give the very same map (signed and abs softmax input agree
        # on non-negative maps): such a curve is computed once.
        done: dict[tuple, np.ndarray] = {}
        out: dict[tuple, np.ndarray] = {}
        for key, maps in zip(keys, [base, *refined]):
            for j, cls in enumerate(comp.classes):
                for mode in modes:
                    tag = (j, mode, hashlib.blake2b(np.ascontiguousarray(maps[j]).tobytes()).digest())
                    if tag not in done:
                        # The same tie-break for base and every variant: one seed per (composite, class).
                        rng = np.random.default_rng([seed, ci, j])
                        done[tag] = perturbation_curve(loaded, comp.image, baseline, maps[j], cls, mode, steps, rng)
                    out[(key, j, mode)] = done[tag]
        return out

    found: dict[tuple[int, str], dict] = {}
    for info in infos:
        for r in engine_results(loaded, composites, info, options[info.name], progress, batch_size,
                                what="composite"):
            found[(r.index, info.name)] = comp_curves(r)
    for ci, comp in enumerate(composites):  # composite by composite: the order of the curves
        for info in infos:
            got = found.pop((ci, info.name))
            for key in keys:
                for j in range(len(comp.classes)):
                    for mode in modes:
                        curves[mode][info.name][key].append(got[(key, j, mode)])
    fractions = np.linspace(0.0, 1.0, steps + 1)
    out: dict[str, dict] = {}
    for mode in modes:
        res: dict = {}
        for info in infos:
            summ = {k: _summary(curves[mode][info.name][k], fractions) for k in keys}
            res[info.name] = method_entry(info, options[info.name], summ["base"], summ[variants[0].label],
                                          {v.label: summ[v.label] for v in variants})
        res["_meta"] = run_meta(
            mode, run, composites, seed, samples_key="composites", steps=steps, fractions=fractions.tolist(),
            source=str(folder) if folder else "skimage photographs",
            better="higher" if mode == "insertion" else "lower",
        )
        out[mode] = res
    return out


def _summary(curves: list[np.ndarray], fractions: np.ndarray) -> dict:
    aucs = [auc(c, fractions) for c in curves]
    return {
        "auc": float(np.mean(aucs)),
        "std": float(np.std(aucs)),
        "n": len(aucs),
        "curve": np.mean(curves, axis=0).tolist(),
    }
