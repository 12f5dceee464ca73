"""Perturbation methods: Occlusion, Feature Ablation, KernelSHAP, LIME, Shapley Value Sampling.

All of them replace parts of the image by a baseline (black by default) and read the
model's K class logits from the *same* forward passes: the perturbed inputs go through
the model in batches (option ``batch_size``), every batch yields the logits of all K
classes at once, and progress/cancel are handled between batches. K classes therefore
cost no more model calls than one. The perturbed inputs are built batch by batch, so
memory does not grow with the number of samples.

Occlusion slides a window (15 x 15, stride 8, as captum's ``Occlusion``); the other four
work on SLIC superpixels (scikit-image, 100 segments, compactness 10, computed on the
input image). Maps are ``(K, 1, H, W)``: every pixel of a feature gets its score.

These methods only need the model's outputs, so they work on CNNs and ViTs alike. On a
ViT, the grid pointing game needs trained weights: load them with
``--model PATH --arch timm:vit_base_patch16_224`` (a local state dict) or from the
timm / Hugging Face cache (``--model timm:vit_base_patch16_224``); see
:mod:`alens_gui.core.methods.vit`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import MethodError
from ..progress import Progress
from .gradient import baseline_for


def superpixels(x: torch.Tensor, segments: int = 100, compactness: float = 10.0) -> torch.Tensor:
    """SLIC superpixels of a model input ``(1, C, H, W)`` as consecutive labels ``(H, W)``.

    The normalised input is stretched to [0, 1] per channel, which undoes the model's
    mean/std normalisation up to a per-channel contrast change.
    """
    from skimage.segmentation import slic

    img = x[0].detach().float().cpu()
    lo = img.amin(dim=(1, 2), keepdim=True)
    hi = img.amax(dim=(1, 2), keepdim=True)
    img = ((img - lo) / (hi - lo).clamp(min=1e-8)).permute(1, 2, 0).numpy().astype(np.float64)
    if img.shape[-1] == 1:
        img = img[..., 0]
    labels = slic(img, n_segments=int(segments), compactness=float(compactness), start_label=0,
                  channel_axis=-1 if img.ndim == 3 else None)
    _, inverse = np.unique(labels, return_inverse=True)
    return torch.from_numpy(inverse.reshape(labels.shape).astype(np.int64)).to(x.device)


def batched_logits(
    model, make_batch: Callable[[int, int], torch.Tensor], n: int, classes: Sequence[int],
    progress: Progress, batch_size: int, what: str,
) -> torch.Tensor:
    """Logits ``(n, K)`` of ``n`` perturbed inputs built by ``make_batch(start, stop)``."""
    outs = []
    cls = torch.as_tensor(list(classes), dtype=torch.long)
    batches = -(-n // batch_size)
    for b, start in enumerate(range(0, n, batch_size)):
        progress.check()
        with torch.no_grad():
            out = model(make_batch(start, min(n, start + batch_size)))
        if out.ndim != 2:
            raise MethodError(f"the model must return logits of shape (batch, classes); got {tuple(out.shape)}")
        outs.append(out[:, cls.to(out.device)].float().cpu())
        progress.advance(1, f"{what}: batch {b + 1}/{batches}")
    return torch.cat(outs)


def _masked(x: torch.Tensor, ref: torch.Tensor, seg: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Inputs where feature ``f`` of row ``i`` is kept when ``keep[i, f]`` else set to the baseline."""
    pix = keep.to(x.device, x.dtype)[:, seg].unsqueeze(1)  # (B, 1, H, W)
    return ref + pix * (x - ref)


def _paint(scores: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
    """Per-feature scores ``(K, M)`` as maps ``(K, 1, H, W)``."""
    return scores.to(seg.device)[:, seg].unsqueeze(1)


def _reference(x, ctx, baseline) -> torch.Tensor:
    return baseline_for(x, baseline, ctx).expand_as(x).contiguous()


def _weighted_linear_fit(z: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, ridge: float) -> torch.Tensor:
    """Coefficients ``(K, M)`` of ``y ~ b + z @ c`` by weighted (ridge) least squares, all K at once."""
    z = z.double()
    design = torch.cat([torch.ones(z.shape[0], 1, dtype=z.dtype), z], dim=1)
    sw = weights.double().sqrt()[:, None]
    a = design * sw
    rhs = y.double() * sw
    if ridge > 0:
        pen = torch.eye(design.shape[1], dtype=z.dtype) * math.sqrt(ridge)
        pen[0, 0] = 0.0  # the intercept is not penalised
        a = torch.cat([a, pen])
        rhs = torch.cat([rhs, torch.zeros(design.shape[1], y.shape[1], dtype=z.dtype)])
    sol = torch.linalg.lstsq(a, rhs, driver="gelsd").solution
    return sol[1:].T.float()


# ---------------------------------------------------------------------------------
# Plans: what a method needs from the model, and how it turns the logits into maps
# ---------------------------------------------------------------------------------
@dataclass
class Plan:
    """The forward passes one image's perturbation method needs, and how its maps follow from them.

    ``passes`` lists ``(n, make)``: ``n`` inputs built by ``make(start, stop)`` (a
    ``(stop - start, C, H, W)`` tensor). ``finish`` takes, per pass, the ``(n, K)`` logits of
    the image's K classes and returns the ``(K, 1, H, W)`` maps. A plan knows nothing of
    other images, so the passes of several images can share forward passes
    (:func:`plans_logits`) and still give each image the maps its own run gives.
    """

    passes: list[tuple[int, Callable[[int, int], torch.Tensor]]]
    finish: Callable[[list[torch.Tensor]], torch.Tensor]
    what: str


def run_plan(model, plan: Plan, classes, progress: Progress, batch_size: int) -> torch.Tensor:
    """One image's maps: its passes in batches of ``batch_size`` (progress counts the batches)."""
    progress.add_total(sum(-(-n // batch_size) for n, _ in plan.passes))
    outs = [batched_logits(model, make, n, classes, progress, batch_size, plan.what) for n, make in plan.passes]
    return plan.finish(outs)


def plans_logits(model, plans: Sequence[Plan], classes: Sequence[Sequence[int]], progress: Progress,
                 chunk: int) -> list[torch.Tensor]:
    """Maps of several images whose perturbed inputs share forward passes of ``chunk`` inputs.

    The passes of all plans are walked in order (image by image, pass by pass) and cut into
    chunks of ``chunk`` inputs regardless of where one image ends and the next begins; each
    chunk is one forward pass, and each image reads its own K classes from its own rows.
    Memory holds one chunk of inputs at a time, as :func:`run_plan` does. ``progress`` is
    checked between passes (a cancel stops there).
    """
    chunk = max(1, int(chunk))
    outs: list[list[list[torch.Tensor]]] = [[[] for _ in p.passes] for p in plans]
    cls = [torch.as_tensor(list(c), dtype=torch.long) for c in classes]
    pieces: list[tuple[int, int, torch.Tensor]] = []
    rows = 0

    def flush():
        nonlocal pieces, rows
        if not pieces:
            return
        progress.check()
        with torch.no_grad():
            out = model(torch.cat([t for _i, _j, t in pieces]) if len(pieces) > 1 else pieces[0][2])
        if out.ndim != 2:
            raise MethodError(f"the model must return logits of shape (batch, classes); got {tuple(out.shape)}")
        at = 0
        for i, j, t in pieces:
            part = out[at:at + t.shape[0]]
            outs[i][j].append(part[:, cls[i].to(out.device)].float().cpu())
            at += t.shape[0]
        pieces, rows = [], 0

    for i, plan in enumerate(plans):
        for j, (n, make) in enumerate(plan.passes):
            start = 0
            while start < n:
                stop = min(n, start + chunk - rows)
                pieces.append((i, j, make(start, stop)))
                rows += stop - start
                start = stop
                if rows >= chunk:
                    flush()
    flush()
    return [plan.finish([torch.cat(o) for o in outs[i]]) for i, plan in enumerate(plans)]


def _full(x):
    return 1, (lambda a, b: x)


def plan_occlusion(x, ctx=None, window=15, stride=8, baseline="black", batch_size=32) -> Plan:
    h, w = x.shape[-2:]
    if window > min(h, w):
        raise MethodError(f"the occlusion window ({window}) is larger than the image ({h} x {w})")
    ref = _reference(x, ctx, baseline)
    ys = list(range(0, h - window + 1, stride))
    xs = list(range(0, w - window + 1, stride))
    pos = [(y, xx) for y in ys for xx in xs]

    def make(a, b):
        batch = x.expand(b - a, *x.shape[1:]).clone()
        for i, (y, xx) in enumerate(pos[a:b]):
            batch[i, :, y:y + window, xx:xx + window] = ref[0, :, y:y + window, xx:xx + window]
        return batch

    def finish(outs):
        full, drops = outs[0][0], outs[0][0] - outs[1]  # (K,), (P, K)
        total = torch.zeros(full.shape[0], h, w)
        count = torch.zeros(h, w)
        for (y, xx), d in zip(pos, drops):
            total[:, y:y + window, xx:xx + window] += d[:, None, None]
            count[y:y + window, xx:xx + window] += 1
        return (total / count.clamp(min=1)).unsqueeze(1).to(x.device)

    return Plan([_full(x), (len(pos), make)], finish, "occlusion")


def plan_feature_ablation(x, ctx=None, segments=100, compactness=10.0, baseline="black", batch_size=32) -> Plan:
    seg = superpixels(x, segments, compactness)
    m = int(seg.max()) + 1
    ref = _reference(x, ctx, baseline)
    eye = torch.eye(m, dtype=torch.bool)

    def finish(outs):
        return _paint((outs[0][0] - outs[1]).T, seg)

    return Plan([_full(x), (m, lambda a, b: _masked(x, ref, seg, ~eye[a:b]))], finish, "feature ablation")


def plan_shapley_sampling(x, ctx=None, samples=25, seed=0, segments=100, compactness=10.0, baseline="black",
                          batch_size=32) -> Plan:
    seg = superpixels(x, segments, compactness)
    m = int(seg.max()) + 1
    ref = _reference(x, ctx, baseline)
    gen = torch.Generator().manual_seed(int(seed))
    perms = torch.stack([torch.randperm(m, generator=gen) for _ in range(samples)])  # (S, M)
    rank = perms.argsort(dim=1)  # rank[p, f]: position of feature f in permutation p

    def keep(a, b):
        t = torch.arange(a, b)
        return rank[t // m] <= (t % m)[:, None]

    def finish(outs):
        empty, ys = outs[0], outs[1].view(samples, m, -1)  # (1, K), (S, M, K)
        gains = ys - torch.cat([empty.expand(samples, 1, -1), ys[:, :-1]], dim=1)  # (S, M positions, K)
        per_feature = torch.gather(gains, 1, rank.unsqueeze(-1).expand(-1, -1, gains.shape[-1]))  # (S, M, K)
        return _paint(per_feature.mean(dim=0).T, seg)

    return Plan([_full(ref[:1]), (samples * m, lambda a, b: _masked(x, ref, seg, keep(a, b)))], finish,
                "Shapley sampling")


def plan_kernel_shap(x, ctx=None, samples=200, seed=0, segments=100, compactness=10.0, baseline="black",
                     batch_size=32) -> Plan:
    seg = superpixels(x, segments, compactness)
    m = int(seg.max()) + 1
    if m < 2:
        raise MethodError("KernelSHAP needs at least two superpixels")
    ref = _reference(x, ctx, baseline)
    gen = torch.Generator().manual_seed(int(seed))
    # Coalition sizes drawn with the Shapley kernel's total weight per size, members uniformly;
    # the empty and the full coalition enter with a large weight (the efficiency constraint).
    sizes = torch.arange(1, m, dtype=torch.float64)
    size_p = (m - 1) / (sizes * (m - sizes))
    drawn = torch.multinomial(size_p, samples, replacement=True, generator=gen) + 1
    scores = torch.rand(samples, m, generator=gen)
    order = scores.argsort(dim=1).argsort(dim=1)
    z = torch.cat([order < drawn[:, None], torch.ones(1, m, dtype=torch.bool), torch.zeros(1, m, dtype=torch.bool)])
    weights = torch.cat([torch.ones(samples, dtype=torch.float64), torch.full((2,), 1e6, dtype=torch.float64)])

    def finish(outs):
        return _paint(_weighted_linear_fit(z.float(), outs[0], weights, ridge=0.0), seg)

    return Plan([(z.shape[0], lambda a, b: _masked(x, ref, seg, z[a:b]))], finish, "KernelSHAP")


def plan_lime(x, ctx=None, samples=200, kernel_width=0.25, ridge=1.0, seed=0, segments=100, compactness=10.0,
              baseline="black", batch_size=32) -> Plan:
    seg = superpixels(x, segments, compactness)
    m = int(seg.max()) + 1
    ref = _reference(x, ctx, baseline)
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.rand(samples, m, generator=gen) < 0.5
    z[0] = True  # the unperturbed image anchors the surrogate
    on = z.sum(dim=1).double()
    distance = 1.0 - (on / m).sqrt()  # cosine distance between a coalition and the full image
    weights = torch.exp(-(distance**2) / kernel_width**2)

    def finish(outs):
        return _paint(_weighted_linear_fit(z.float(), outs[0], weights, ridge=float(ridge)), seg)

    return Plan([(samples, lambda a, b: _masked(x, ref, seg, z[a:b]))], finish, "LIME")


#: The plan of each perturbation method (the engine batches their passes across images).
PLANS = {"occlusion": plan_occlusion, "feature_ablation": plan_feature_ablation,
         "shapley_sampling": plan_shapley_sampling, "kernel_shap": plan_kernel_shap, "lime": plan_lime}


def _method(name):
    def fn(model, x, classes, progress: Progress, ctx=None, **opts):
        return run_plan(model, PLANS[name](x, ctx, **opts), classes, progress, int(opts.get("batch_size", 32)))

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"The registered ``{name}`` method: its plan (:func:`plan_{name}`) run image by image."
    # its keywords are the plan's (the options and their defaults), as introspection and the
    # method registry's check see them
    import inspect

    P = inspect.Parameter
    plan_params = list(inspect.signature(PLANS[name]).parameters.values())[1:]  # after x
    head = [P("model", P.POSITIONAL_OR_KEYWORD), P("x", P.POSITIONAL_OR_KEYWORD),
            P("classes", P.POSITIONAL_OR_KEYWORD), P("progress", P.POSITIONAL_OR_KEYWORD, annotation="Progress")]
    fn.__signature__ = inspect.Signature(head + plan_params)
    return fn


occlusion = _method("occlusion")
feature_ablation = _method("feature_ablation")
shapley_sampling = _method("shapley_sampling")
kernel_shap = _method("kernel_shap")
lime = _method("lime")
