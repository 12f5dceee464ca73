"""Layer-wise Relevance Propagation for CNNs, through captum's LRP (epsilon rule).

captum has rules for Conv2d, Linear, BatchNorm2d, pooling, ReLU, Dropout and Tanh
(flattening must be ``torch.flatten`` in ``forward``, as in torchvision's VGG). The
model is checked *before* captum touches it: any other layer (timm's ``BatchNormAct2d``,
``Conv2dSame``, ``ReLU6``, SiLU, LayerNorm, attention, ...) gives a :class:`MethodError`
naming the first such layer, so LRP runs on VGG-style networks and says clearly where
it does not apply (EfficientNet, ViTs: use ``transformer_lrp`` for ViTs).
"""

from __future__ import annotations

from torch import nn

from ..errors import MethodError
from ..progress import Progress

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def unsupported_lrp_layer(model: nn.Module) -> tuple[str, str] | None:
    """``(name, type)`` of the first layer captum's LRP has no rule for, or ``None``."""
    from captum.attr._core.lrp import SUPPORTED_LAYERS_WITH_RULES, SUPPORTED_NON_LINEAR_LAYERS

    supported = set(SUPPORTED_LAYERS_WITH_RULES) | set(SUPPORTED_NON_LINEAR_LAYERS)
    for name, mod in model.named_modules():
        if not name or isinstance(mod, _CONTAINERS):
            continue
        leaf = next(mod.children(), None) is None
        if leaf and type(mod) not in supported:
            return name, type(mod).__name__
        # A composite module with its own weights computes something captum cannot see.
        if not leaf and any(True for _ in mod.parameters(recurse=False)):
            return name, type(mod).__name__
    return None


def lrp(model, x, classes, progress: Progress, ctx=None):
    from captum.attr import LRP

    bad = unsupported_lrp_layer(model)
    if bad is not None:
        raise MethodError(
            f"LRP is not supported for this architecture: captum has no LRP rule for layer "
            f"{bad[0]!r} ({bad[1]}); use a VGG-style CNN or another method"
        )
    inplace = [m for m in model.modules() if isinstance(m, nn.ReLU) and m.inplace]
    progress.add_total(1)
    k = len(classes)
    for m in inplace:  # captum's relevance hooks need the ReLU inputs intact
        m.inplace = False
    try:
        attr = LRP(model).attribute(x.expand(k, *x.shape[1:]).clone(), target=list(classes))
    except (RuntimeError, AssertionError, TypeError, KeyError) as exc:
        raise MethodError(f"LRP failed on this model: {str(exc).splitlines()[0]}") from exc
    finally:
        for m in inplace:
            m.inplace = True
    progress.advance(1)
    return attr.detach()
