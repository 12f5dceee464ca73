"""Layer-wise Relevance Propagation (epsilon rule, epsilon -> 0) for CNNs.

Why not captum's ``LRP``: its rules cover ``nn.Conv2d``, ``nn.Linear``,
``nn.BatchNorm2d``, pooling, ReLU, Dropout and Tanh by exact type, so the default model
(timm's EfficientNet-Lite0: ``Conv2dSame``, ``BatchNormAct2d`` with ``ReLU6``) is
refused, and an addition written in a ``forward`` (every residual block of ResNet or
EfficientNet) sends the full relevance down *both* branches unless the model is
rewritten with captum's ``Addition_Module``.

How it is computed here: for a network made of linear maps (convolutions with any
zero padding, TF-"same" included; linear layers; batch norm in eval mode; average and
max pooling; flattening; residual additions) and element-wise activations, the
epsilon rule with epsilon -> 0 gives exactly the input times a *modified* gradient in
which each activation ``a = f(z)`` passes the gradient on multiplied by ``f(z) / z``
instead of ``f'(z)`` (Ancona et al. 2018, "Towards better understanding of
gradient-based attribution methods", section 3). At a linear map the relevance ratio
``R / z`` travels back like a gradient, and at an addition ``y = o + s`` it reaches
both inputs unchanged, which splits ``R_y`` in proportion ``o / y`` and ``s / y``: the
epsilon rule for a sum. So

* on a ReLU network this LRP *is* Input x Gradient (``relu(z) / z = relu'(z)``);
* with ReLU6 (the default model) it differs where a unit saturates: for ``z > 6`` the
  gradient is 0 but the relevance ratio is ``6 / z``;
* epsilon is a limit, not a setting: captum's default (1e-9) changes nothing measurable
  (``tests/test_methods_extra.py`` compares the two on a VGG-style network).

The model is checked before it runs: every leaf module must be one of the layers
above, and a module with its own parameters must be a convolution, linear or
batch-norm layer; anything else (SiLU, sigmoid gates of squeeze-excitation, LayerNorm,
attention) gives a :class:`MethodError` naming the first such layer. Operations written
inside a ``forward`` (other than additions, concatenation and reshaping) cannot be seen
by that check.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import MethodError
from ..progress import Progress
from .base import class_gradients, hooks

#: Activations whose relevance passes on unchanged (LRP treats them as identity for R).
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)
_LINEAR_WITH_PARAMS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_LINEAR_NO_PARAMS = (
    nn.Identity, nn.Flatten, nn.Dropout, nn.Dropout2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool2d,
    nn.AdaptiveMaxPool2d,
)


def unsupported_lrp_layer(model: nn.Module) -> tuple[str, str] | None:
    """``(name, type)`` of the first module this LRP has no rule for, or ``None``."""
    for name, mod in model.named_modules():
        if not name:
            continue
        if isinstance(mod, _LINEAR_WITH_PARAMS):
            continue
        if any(True for _ in mod.parameters(recurse=False)):
            return name, type(mod).__name__  # own weights in a computation we cannot see
        leaf = next(mod.children(), None) is None
        if leaf and not isinstance(mod, ACTIVATIONS + _LINEAR_NO_PARAMS):
            return name, type(mod).__name__
    return None


class _RelevanceRatio(torch.autograd.Function):
    """Returns ``a = f(z)`` unchanged; backward multiplies by ``f(z) / z`` (0 where z = 0)."""

    @staticmethod
    def forward(ctx, z, a):
        nz = z != 0
        ctx.save_for_backward(torch.where(nz, a / torch.where(nz, z, torch.ones_like(z)), torch.zeros_like(z)))
        return a.clone()

    @staticmethod
    def backward(ctx, g):
        (ratio,) = ctx.saved_tensors
        return g * ratio, None


def lrp(model, x, classes, progress: Progress, ctx=None):
    bad = unsupported_lrp_layer(model)
    if bad is not None:
        raise MethodError(
            f"LRP is not supported for this architecture: no LRP rule for layer {bad[0]!r} ({bad[1]}); "
            "it needs convolution, linear, batch-norm, pooling and ReLU-type layers"
        )
    acts = [m for m in model.modules() if isinstance(m, ACTIVATIONS)]
    inplace = [m for m in acts if getattr(m, "inplace", False)]
    progress.add_total(len(classes))
    with hooks() as handles:
        for m in inplace:  # the ratio needs the activation's input intact
            m.inplace = False
        try:
            for m in acts:
                handles.append(m.register_forward_hook(lambda _m, inp, out: _RelevanceRatio.apply(inp[0], out)))
            g = class_gradients(model, x, classes, progress)[:, 0]
        finally:
            for m in inplace:
                m.inplace = True
    return g * x
