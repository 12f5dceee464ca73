"""Gradient-family methods, batched over classes (SPEC section 2).

All of them share one forward pass per input batch and run one backward pass per
class on the retained graph (:func:`~.base.class_gradients`), which is what makes K
classes cheaper than K separate captum calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import MethodError
from ..ops import gaussian_blur
from ..progress import Progress
from .base import class_gradients, hooks

GUIDED_ACTIVATIONS = (nn.ReLU, nn.ReLU6)


def baseline_for(x: torch.Tensor, kind: str, ctx) -> torch.Tensor:
    """The reference input of IG / DeepLift: ``black`` image, ``zero`` tensor or ``blurred`` input."""
    if kind == "black":
        return ctx.black.to(x.device, x.dtype).expand_as(x)
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "blurred":
        sigma = max(x.shape[-2:]) / 20.0
        return gaussian_blur(x, sigma)
    raise MethodError(f"unknown baseline {kind!r}; choose black, zero or blurred")


def saliency(model, x, classes, progress: Progress, ctx=None, abs: bool = True):
    g = class_gradients(model, x, classes, progress, count=True)[:, 0]
    return g.abs() if abs else g


def input_x_gradient(model, x, classes, progress: Progress, ctx=None):
    g = class_gradients(model, x, classes, progress, count=True)[:, 0]
    return g * x


def integrated_gradients(model, x, classes, progress: Progress, ctx=None, steps=50, baseline="black", batch_size=25):
    ref = baseline_for(x, baseline, ctx)
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
    path = ref + alphas.view(-1, 1, 1, 1) * (x - ref)
    progress.add_total(len(classes) * -(-steps // batch_size))
    return _streamed_mean(model, path, classes, progress, batch_size, lambda g: g * (x - ref))


def _streamed_mean(model, inputs, classes, progress: Progress, batch_size: int, finish, transform=None):
    """Mean over the batch axis of per-class gradients, one batch of inputs at a time.

    After each batch but the last, ``finish(running mean)`` goes to ``progress.partial``
    so a viewer can show the estimate while the rest is computed; memory holds one
    batch of gradients, not all of them.
    """
    total = None
    done = 0
    n = inputs.shape[0]
    for start in range(0, n, batch_size):
        g = class_gradients(model, inputs[start:start + batch_size], classes, progress)
        if transform is not None:
            g = transform(g)
        total = g.sum(dim=1) if total is None else total + g.sum(dim=1)
        done += g.shape[1]
        if done < n:
            progress.partial(finish(total / done))
    return finish(total / n)


def smoothgrad(model, x, classes, progress: Progress, ctx=None, samples=25, noise=0.15, abs=True, seed=0, batch_size=25):
    lo, hi = ctx.value_range if ctx is not None else (float(x.min()), float(x.max()))
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    eps = torch.randn((samples, *x.shape[1:]), generator=gen).to(x.device, x.dtype)
    noisy = x + eps * noise * (hi - lo)
    progress.add_total(len(classes) * -(-samples // batch_size))
    return _streamed_mean(model, noisy, classes, progress, batch_size, lambda m: m,
                          transform=torch.abs if abs else None)


class _GuidedGrad(torch.autograd.Function):
    """Identity whose backward keeps only positive gradients (guided backpropagation)."""

    @staticmethod
    def forward(ctx, t):
        return t.clone()

    @staticmethod
    def backward(ctx, g):
        return g.clamp(min=0)


def guided_gradients(model: nn.Module, x: torch.Tensor, classes: Sequence[int], progress: Progress) -> torch.Tensor:
    """Guided-backprop gradients for K classes (ReLU/ReLU6 modules), hooks always removed."""
    acts = [m for m in model.modules() if isinstance(m, GUIDED_ACTIVATIONS)]
    if not acts:
        raise MethodError(
            "Guided Backprop needs ReLU activation modules; this model has none "
            "(use Saliency or Input × Gradient instead)"
        )
    with hooks() as handles:
        for m in acts:
            # A forward hook wrapping the output works for reused and in-place modules,
            # where module backward hooks do not.
            handles.append(m.register_forward_hook(lambda _m, _i, out: _GuidedGrad.apply(out)))
        return class_gradients(model, x, classes, progress, count=True)[:, 0]


def guided_backprop(model, x, classes, progress: Progress, ctx=None):
    return guided_gradients(model, x, classes, progress)


def deeplift(model, x, classes, progress: Progress, ctx=None, baseline="black"):
    from captum.attr import DeepLift

    progress.add_total(1)
    k = len(classes)
    ref = baseline_for(x, baseline, ctx)
    try:
        attr = DeepLift(model).attribute(
            x.expand(k, *x.shape[1:]).clone(), baselines=ref.expand(k, *x.shape[1:]).clone(),
            target=list(classes),
        )
    except (RuntimeError, AssertionError) as exc:
        raise MethodError(f"DeepLift does not support this architecture: {str(exc).splitlines()[0]}") from exc
    progress.advance(1)
    return attr.detach()
