"""Class-activation-map methods: Grad-CAM, Guided Grad-CAM, LayerCAM.

The target layer is found automatically: the last module (in execution order) whose
output is a 4-D feature map with spatial size > 1, and among modules returning that
very tensor the outermost one (``layer4`` rather than ``layer4.2.relu``). Users can
override it with the ``layer`` option (a module name as in ``model.named_modules()``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import MethodError
from ..progress import Progress
from .base import class_gradients, hooks
from .gradient import guided_gradients
from .vit import tokens_to_grid, vit_cam_layer

_LAYER_CACHE: dict[tuple[int, tuple], str] = {}


def find_cam_layer(model: nn.Module, x: torch.Tensor) -> str:
    """Name of the module whose output Grad-CAM should use (see module docstring)."""
    key = (id(model), tuple(x.shape[1:]))
    vit_layer = vit_cam_layer(model)  # a ViT's last block; its tokens are reshaped to the patch grid
    if vit_layer is not None:
        return vit_layer
    if key in _LAYER_CACHE:
        return _LAYER_CACHE[key]
    seen: list[tuple[str, torch.Tensor]] = []
    with hooks() as handles:
        for name, mod in model.named_modules():
            if not name:
                continue

            def rec(_m, _i, out, name=name):
                if isinstance(out, torch.Tensor) and out.ndim == 4 and min(out.shape[-2:]) > 1:
                    seen.append((name, out))
            handles.append(mod.register_forward_hook(rec))
        with torch.no_grad():
            model(x)
    if not seen:
        raise MethodError(
            "no convolutional feature map found for a CAM method in this model; "
            "give the layer explicitly (option layer=NAME)"
        )
    last_name, last_out = seen[-1]
    same = [n for n, o in seen if o.data_ptr() == last_out.data_ptr() and o.shape == last_out.shape]
    best = min(same, key=lambda n: (n.count("."), len(n))) if same else last_name
    _LAYER_CACHE[key] = best
    return best


def _cam_gradients(model, x, classes, progress, layer: str):
    name = layer or find_cam_layer(model, x)
    modules = dict(model.named_modules())
    if name not in modules:
        raise MethodError(f"model has no layer named {name!r}")
    store: dict[str, torch.Tensor] = {}

    def keep(_m, _i, out):
        if not isinstance(out, torch.Tensor):
            raise MethodError(f"layer {name!r} does not return a tensor")
        store["a"] = out

    with hooks() as handles:
        handles.append(modules[name].register_forward_hook(keep))
        grads = class_gradients(model, x, classes, progress, wrt=lambda: store["a"], count=True)[:, 0]
    act = store["a"].detach()[0]
    if act.ndim == 2:  # ViT tokens (N, D): drop class/register tokens, reshape to (D, h, w)
        grads, act = tokens_to_grid(model, x, grads), tokens_to_grid(model, x, act)
    if act.ndim != 3:
        raise MethodError(f"layer {name!r} output has shape {tuple(act.shape)}; a CAM needs (C, h, w)")
    return grads, act


def gradcam(model, x, classes, progress: Progress, ctx=None, layer=""):
    return _gradcam(model, x, classes, progress, layer)


def _gradcam(model, x, classes, progress, layer):
    grads, act = _cam_gradients(model, x, classes, progress, layer)
    weights = grads.mean(dim=(-2, -1), keepdim=True)  # (K, C, 1, 1)
    return torch.relu((weights * act).sum(dim=1, keepdim=True))


def layercam(model, x, classes, progress: Progress, ctx=None, layer=""):
    grads, act = _cam_gradients(model, x, classes, progress, layer)
    return torch.relu((grads.clamp(min=0) * act).sum(dim=1, keepdim=True))


def guided_gradcam(model, x, classes, progress: Progress, ctx=None, layer=""):
    cam = _gradcam(model, x, classes, progress, layer)
    cam = torch.nn.functional.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return guided_gradients(model, x, classes, progress) * cam
