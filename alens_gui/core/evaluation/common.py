"""Shared pieces of the benchmarks: lens variants, method options, progress plumbing."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import LensError, MethodError
from ..lens import LensParams, preset, refine
from ..methods.base import MethodInfo, compute_base, get_method
from ..progress import Progress, ensure_progress

#: The methods the results page reports: the first paper's six CNN methods and Saliency (ours only).
DEFAULT_METHODS = ("saliency", "ixg", "ig", "guided_backprop", "gradcam", "guided_gradcam", "lrp")


@dataclass(frozen=True)
class LensVariant:
    """A named set of lens parameters; ``label`` is ``preset/normalize/softmax_input``."""

    label: str
    params: LensParams


def lens_variants(
    presets: Sequence[str] = ("al",),
    normalize: Sequence[str] | None = None,
    softmax_input: Sequence[str] | None = None,
    temperatures: Sequence[float] | None = None,
    tau: float | None = None,
) -> list[LensVariant]:
    """The cartesian product of presets x normalisations x softmax inputs, in that order.

    ``None`` for ``normalize`` / ``softmax_input`` keeps each preset's own value. The
    first variant is the one reported as "AL" in the main tables.
    """
    out: list[LensVariant] = []
    seen = set()
    for p, nz, si in itertools.product(presets, normalize or (None,), softmax_input or (None,)):
        params = preset(p).with_(normalize=nz, softmax_input=si, temperatures=temperatures, tau=tau)
        label = f"{p.lower()}/{params.normalize}/{params.softmax_input}"
        if label in seen:
            continue
        seen.add(label)
        out.append(LensVariant(label, params))
    if not out:
        raise LensError("no lens variant to evaluate")
    return out


def as_variants(lens: Iterable | LensParams | str | None) -> list[LensVariant]:
    """Accept None (AL), a preset name, LensParams, or a list of them / of LensVariant."""
    if lens is None:
        return lens_variants()
    if isinstance(lens, (str, LensParams, LensVariant)):
        lens = [lens]
    out = []
    for i, item in enumerate(lens):
        if isinstance(item, LensVariant):
            out.append(item)
        elif isinstance(item, str):
            out.extend(lens_variants((item,)))
        elif isinstance(item, LensParams):
            out.append(LensVariant(f"lens{i}/{item.normalize}/{item.softmax_input}", item))
        else:
            raise LensError(f"not a lens setting: {item!r}")
    return out


def resolve_methods(methods: Sequence[str] | str | None) -> list[MethodInfo]:
    """Registered methods by name (comma-separated string or list); duplicates dropped."""
    if methods is None:
        methods = DEFAULT_METHODS
    if isinstance(methods, str):
        methods = [m for m in methods.split(",") if m.strip()]
    infos: list[MethodInfo] = []
    for m in methods:
        info = get_method(m)
        if info not in infos:
            infos.append(info)
    if not infos:
        raise MethodError("no methods to evaluate")
    return infos


def split_options(infos: Sequence[MethodInfo], options: dict | None) -> dict[str, dict]:
    """Per-method options from ``{"ig.steps": 16, "steps": 16, ...}``.

    ``method.name=value`` applies to that method; a bare ``name=value`` applies to every
    selected method that has that option (and must fit at least one of them).
    """
    per: dict[str, dict] = {i.name: {} for i in infos}
    for key, value in (options or {}).items():
        if "." in key:
            mname, opt = key.split(".", 1)
            info = get_method(mname)
            if info.name not in per:
                raise MethodError(f"option {key}: method {info.name} is not being evaluated")
            per[info.name][opt] = value
        else:
            hit = [i for i in infos if key in i.options]
            if not hit:
                raise MethodError(f"no selected method has an option {key!r}")
            for i in hit:
                per[i.name][key] = value
    for info in infos:  # fail on bad values before any work
        per[info.name] = info.resolve_options(per[info.name])
    return per


def inner_progress(outer: Progress) -> Progress:
    """A progress for the methods that only forwards cancellation to ``outer``."""
    return Progress(lambda *_: outer.check())


def base_maps(loaded, x, classes, info: MethodInfo, options: dict, outer: Progress, model=None) -> np.ndarray:
    """Raw (K, C, H, W) maps of one method (float32 NumPy), cancellable through ``outer``."""
    raw = compute_base(model if model is not None else loaded.model, x, classes, info,
                       inner_progress(outer), loaded.context(), **options)
    return raw.cpu().numpy()


def lensed(raw: np.ndarray, variants: Sequence[LensVariant]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Reduced base maps (K, H, W) and one refined stack per variant."""
    outs = [refine(raw, v.params) for v in variants]
    base = np.asarray(outs[0].base, dtype=np.float64)
    if base.ndim == 4:  # reduce="none": compare channel sums
        base = base.sum(axis=1)
    refined = []
    for o in outs:
        r = np.asarray(o.refined, dtype=np.float64)
        refined.append(r.sum(axis=1) if r.ndim == 4 else r)
    return base, refined


def mean_dicts(rows: Sequence[dict[str, float]], keys: Sequence[str]) -> dict[str, float]:
    """Average of each key over rows (NaN-free input assumed); ``n`` is the row count."""
    out = {k: float(np.mean([r[k] for r in rows])) if rows else 0.0 for k in keys}
    out["n"] = len(rows)
    return out


def model_meta(loaded) -> dict:
    return {"model": loaded.name, "device": loaded.device_label(), "input_size": list(loaded.input_size)}


@dataclass(frozen=True)
class Run:
    """What every benchmark resolves before its first model call."""

    loaded: object
    progress: Progress
    infos: list[MethodInfo]
    options: dict[str, dict]
    variants: list[LensVariant]


def prepare(explainer, methods, method_options, lens_params_list, progress: Progress | None) -> Run:
    """Resolve model, methods, options and lens variants; bad input fails here, before any work.

    ``explainer`` may be an :class:`~alens_gui.core.api.Explainer` or a ``LoadedModel``.
    """
    infos = resolve_methods(methods)
    return Run(
        loaded=getattr(explainer, "loaded", explainer),
        progress=ensure_progress(progress),
        infos=infos,
        options=split_options(infos, method_options),
        variants=as_variants(lens_params_list),
    )


def method_entry(info: MethodInfo, options: dict, base, al, variants: dict) -> dict:
    """One method's results: the same keys for every benchmark."""
    return {"label": info.label, "options": options, "base": base, "al": al, "variants": variants}


def run_meta(protocol: str, run: Run, samples, seed: int, samples_key: str = "grids", **extra) -> dict:
    """The ``_meta`` record shared by every benchmark's results (``samples`` listed under ``samples_key``)."""
    return {
        "protocol": protocol,
        **model_meta(run.loaded),
        "n": len(samples),
        "seed": seed,
        **extra,
        "lens": {v.label: v.params.as_dict() for v in run.variants},
        "al_variant": run.variants[0].label,
        samples_key: [{"classes": g.classes, "names": g.names, "sources": g.sources} for g in samples],
    }


def engine_results(loaded, samples: Sequence, info: MethodInfo, options: dict, progress: Progress,
                   batch_size="auto", finish=None, what: str = "grid", cross_image: bool | None = None):
    """Yield, in order, each sample's :class:`~..batch.BatchResult` of ``info`` through the batch engine.

    The engine composes each sample's model input on its decode pool (its ``image`` through
    the model's input policy, and the sample's own ``classes``), runs B samples per batch
    (one forward pass, each sample's classes in the backward passes; perturbation methods
    share their perturbed passes across samples where that pays), and calls ``finish(result)``
    (the scoring) on its writer thread while the next batch computes. Each result holds the
    raw ``(K, C, H, W)`` maps (``result.raw``) and what ``finish`` returned (``finished``).
    ``progress`` counts one unit per sample; a method error raises it as one line.
    ``cross_image`` is the engine's (None: perturbation methods share passes where that pays).
    """
    from ..batch import BatchEngine, PreparedImage
    from ..settings import ClassSet, RunSettings

    if not samples:
        return
    k = max(len(s.classes) for s in samples)
    settings = RunSettings(info.name, options, ClassSet.top(k))
    engine = BatchEngine(loaded, settings, batch_size=batch_size, cross_image=cross_image)

    def compose(sample, index: int, name: str) -> PreparedImage:
        return PreparedImage(index, name, sample.image, loaded.geometry(sample.image.shape[:2]),
                             loaded.to_input(sample.image), classes=[int(c) for c in sample.classes])

    names = [f"{what} {i + 1}/{len(samples)} {info.label}" for i in range(len(samples))]
    for r in engine.run(samples, progress, finish=finish, names=names, prepare=compose, raw=True):
        if r.error is not None:
            raise MethodError(r.error)
        if r.finish_error is not None:
            raise r.finish_error
        yield r
