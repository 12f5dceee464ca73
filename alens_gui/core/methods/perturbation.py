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


def _feature_logits(model, x, ref, seg, keep_fn, n, classes, progress, batch_size, what):
    return batched_logits(model, lambda a, b: _masked(x, ref, seg, keep_fn(a, b)), n, classes, progress,
                          batch_size, what)


def _paint(scores: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
    """Per-feature scores ``(K, M)`` as maps ``(K, 1, H, W)``."""
    return scores.to(seg.device)[:, seg].unsqueeze(1)


def _reference(x, ctx, baseline) -> torch.Tensor:
    return baseline_for(x, baseline, ctx).expand_as(x).contiguous()


def occlusion(model, x, classes, progress: Progress, ctx=None, window=15, stride=8, baseline="black", batch_size=32):
    h, w = x.shape[-2:]
    if window > min(h, w):
        raise MethodError(f"the occlusion window ({window}) is larger than the image ({h} x {w})")
    ref = _reference(x, ctx, baseline)
    ys = list(range(0, h - window + 1, stride))
    xs = list(range(0, w - window + 1, stride))
    pos = [(y, xx) for y in ys for xx in xs]
    progress.add_total(1 + -(-len(pos) // batch_size))

    def make(a, b):
        batch = x.expand(b - a, *x.shape[1:]).clone()
        for i, (y, xx) in enumerate(pos[a:b]):
            batch[i, :, y:y + window, xx:xx + window] = ref[0, :, y:y + window, xx:xx + window]
        return batch

    full = batched_logits(model, lambda a, b: x, 1, classes, progress, 1, "occlusion")[0]  # (K,)
    drops = full - batched_logits(model, make, len(pos), classes, progress, batch_size, "occlusion")  # (P, K)
    total = torch.zeros(len(classes), h, w)
    count = torch.zeros(h, w)
    for (y, xx), d in zip(pos, drops):
        total[:, y:y + window, xx:xx + window] += d[:, None, None]
        count[y:y + window, xx:xx + window] += 1
    return (total / count.clamp(min=1)).unsqueeze(1).to(x.device)


def feature_ablation(model, x, classes, progress: Progress, ctx=None, segments=100, compactness=10.0,
                     baseline="black", batch_size=32):
    seg = superpixels(x, segments, compactness)
    m = int(seg.max()) + 1
    ref = _reference(x, ctx, baseline)
    progress.add_total(1 + -(-m // batch_size))
    full = batched_logits(model, lambda a, b: x, 1, classes, progress, 1, "feature ablation")[0]
    eye = torch.eye(m, dtype=torch.bool)
    ablated = _feature_logits(model, x, ref, seg, lambda a, b: ~eye[a:b], m, classes, progress, batch_size,
                              "feature ablation")
    return _paint((full - ablated).T, seg)


def shapley_sampling(model, x, classes, progress: Progress, ctx=None, samples=25, seed=0, segments=100,
                     compactness=10.0, baseline="black", batch_size=32):
    seg = superpixels(x, segments, compactness)
    m = int(seg.max()) + 1
    ref = _reference(x, ctx, baseline)
    gen = torch.Generator().manual_seed(int(seed))
    perms = torch.stack([torch.randperm(m, generator=gen) for _ in range(samples)])  # (S, M)
    rank = perms.argsort(dim=1)  # rank[p, f]: position of feature f in permutation p
    n = samples * m
    progress.add_total(1 + -(-n // batch_size))

    def keep(a, b):
        t = torch.arange(a, b)
        return rank[t // m] <= (t % m)[:, None]

    empty = batched_logits(model, lambda a, b: ref[:1], 1, classes, progress, 1, "Shapley sampling")  # (1, K)
    ys = _feature_logits(model, x, ref, seg, keep, n, classes, progress, batch_size, "Shapley sampling")
    ys = ys.view(samples, m, -1)
    gains = ys - torch.cat([empty.expand(samples, 1, -1), ys[:, :-1]], dim=1)  # (S, M positions, K)
    per_feature = torch.gather(gains, 1, rank.unsqueeze(-1).expand(-1, -1, gains.shape[-1]))  # (S, M, K)
    return _paint(per_feature.mean(dim=0).T, seg)


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


def kernel_shap(model, x, classes, progress: Progress, ctx=None, samples=200, seed=0, segments=100,
                compactness=10.0, baseline="black", batch_size=32):
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
    progress.add_total(-(-z.shape[0] // batch_size))
    y = _feature_logits(model, x, ref, seg, lambda a, b: z[a:b], z.shape[0], classes, progress, batch_size,
                        "KernelSHAP")
    return _paint(_weighted_linear_fit(z.float(), y, weights, ridge=0.0), seg)


def lime(model, x, classes, progress: Progress, ctx=None, samples=200, kernel_width=0.25, ridge=1.0, seed=0,
         segments=100, compactness=10.0, baseline="black", batch_size=32):
    seg = superpixels(x, segments, compactness)
    m = int(seg.max()) + 1
    ref = _reference(x, ctx, baseline)
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.rand(samples, m, generator=gen) < 0.5
    z[0] = True  # the unperturbed image anchors the surrogate
    progress.add_total(-(-samples // batch_size))
    y = _feature_logits(model, x, ref, seg, lambda a, b: z[a:b], samples, classes, progress, batch_size, "LIME")
    on = z.sum(dim=1).double()
    distance = 1.0 - (on / m).sqrt()  # cosine distance between a coalition and the full image
    weights = torch.exp(-(distance**2) / kernel_width**2)
    return _paint(_weighted_linear_fit(z.float(), y, weights, ridge=float(ridge)), seg)
