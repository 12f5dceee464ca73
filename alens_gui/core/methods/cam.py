"""Class-activation-map methods: Grad-CAM, Guided Grad-CAM, LayerCAM.

The target layer is found automatically: the last module (in execution order) whose
output is a feature map over the image (4-D, spatial size > 1), and among modules
returning that very tensor the outermost one (``layer4`` rather than ``layer4.2.relu``).
Users can override it with the ``layer`` option (a module name as in
``model.named_modules()``). On a ViT the layer is the last block's first LayerNorm and its
tokens are reshaped to the patch grid (:mod:`.vit`).

Channels first or last
----------------------
A 4-D activation is either ``(1, C, h, w)`` (PyTorch's convention) or ``(1, h, w, C)``:
Swin, and every timm model whose ``output_fmt`` is ``"NHWC"``, keep channels last, and so do
the insides of ConvNeXt and MaxViT blocks. Taking the channel axis for the width gives a
map of the wrong shape without any error, so :func:`feature_layout` decides, per layer:

1. a layout is *plausible* when its two spatial sizes are the input's size divided by one
   common stride >= 1, up to rounding (a 7 x 7 map of a 224 x 224 input: stride 32;
   ``(7, 768)`` fits no stride);
2. when both layouts are plausible (channels equal to a spatial size), the model's own
   metadata decides: timm's ``feature_info`` (channel count of that module) and
   ``num_features`` / ``output_fmt``; without metadata, PyTorch's channels-first;
3. when neither is, the method refuses and names ``-O layer=NAME``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from ..errors import MethodError
from ..progress import Progress
from .base import class_gradients, hooks
from .gradient import guided_gradients
from .vit import tokens_to_grid, vit_cam_layer

_LAYER_CACHE: dict[tuple[int, tuple], str] = {}


def _fits_stride(h: int, w: int, in_h: int, in_w: int) -> bool:
    """Whether an ``h x w`` grid is the ``in_h x in_w`` input under one stride >= 1 (+-1 rounding)."""
    if h < 1 or w < 1 or h > in_h + 1 or w > in_w + 1:
        return False
    lo = max(1.0, in_h / (h + 1), in_w / (w + 1))
    hi = min(in_h / max(h - 1, 0.5), in_w / max(w - 1, 0.5))
    return lo <= hi or math.isclose(lo, hi)


def _declared_channels(model: nn.Module, name: str) -> tuple[set[int], str | None]:
    """Channel counts the model declares for layer ``name`` and its own channels-last flag.

    timm models list their stages in ``feature_info`` (``module``, ``num_chs``) and the width of
    the last feature map in ``num_features``; ``output_fmt`` is ``"NHWC"`` for channels-last models.
    """
    chans: set[int] = set()
    for entry in getattr(model, "feature_info", None) or []:
        if isinstance(entry, dict) and entry.get("module") == name and isinstance(entry.get("num_chs"), int):
            chans.add(int(entry["num_chs"]))
    if not chans and isinstance(getattr(model, "num_features", None), int):
        chans.add(int(model.num_features))
    fmt = getattr(model, "output_fmt", None)
    return chans, (str(fmt).upper() if isinstance(fmt, str) else None)


def feature_layout(model: nn.Module, name: str, shape, input_hw) -> str | None:
    """``"NCHW"``, ``"NHWC"`` or ``None`` (not a feature map over the image) for a 4-D output.

    See the module docstring for the rule.
    """
    if len(shape) != 4:
        return None
    _, a, b, c = (int(v) for v in shape)
    in_h, in_w = (int(v) for v in input_hw)
    first = _fits_stride(b, c, in_h, in_w)
    last = _fits_stride(a, b, in_h, in_w)
    if first != last:
        return "NCHW" if first else "NHWC"
    if not first:
        return None
    chans, fmt = _declared_channels(model, name)
    if a in chans and c not in chans:
        return "NCHW"
    if c in chans and a not in chans:
        return "NHWC"
    return "NHWC" if fmt == "NHWC" else "NCHW"


def _spatial(shape, layout: str) -> tuple[int, int]:
    return (int(shape[2]), int(shape[3])) if layout == "NCHW" else (int(shape[1]), int(shape[2]))


def find_cam_layer(model: nn.Module, x: torch.Tensor) -> str:
    """Name of the module whose output Grad-CAM should use (see module docstring)."""
    key = (id(model), tuple(x.shape[1:]))
    vit_layer = vit_cam_layer(model)  # a ViT's last block; its tokens are reshaped to the patch grid
    if vit_layer is not None:
        return vit_layer
    if key in _LAYER_CACHE:
        return _LAYER_CACHE[key]
    seen: list[tuple[str, torch.Tensor]] = []
    in_hw = tuple(x.shape[-2:])
    with hooks() as handles:
        for name, mod in model.named_modules():
            if not name:
                continue

            def rec(_m, _i, out, name=name):
                if isinstance(out, torch.Tensor) and out.ndim == 4:
                    layout = feature_layout(model, name, out.shape, in_hw)
                    if layout is not None and min(_spatial(out.shape, layout)) > 1:
                        seen.append((name, out))
            handles.append(mod.register_forward_hook(rec))
        with torch.no_grad():
            model(x)
    if not seen:
        raise MethodError(
            "no convolutional feature map found for a CAM method in this model; "
            "give the layer explicitly (-O layer=NAME, a name from model.named_modules())"
        )
    last_name, last_out = seen[-1]
    same = [n for n, o in seen if o.data_ptr() == last_out.data_ptr() and o.shape == last_out.shape]
    best = min(same, key=lambda n: (n.count("."), len(n))) if same else last_name
    _LAYER_CACHE[key] = best
    return best


@contextlib.contextmanager
def capturing_layer(model, x, layer: str) -> Iterator[tuple[str, dict]]:
    """The CAM layer (``layer`` or the automatic one for input ``x``) and a dict whose ``"a"`` is its
    output in the forward passes run inside the block (the hook is removed on exit)."""
    name = layer or find_cam_layer(model, x)
    modules = dict(model.named_modules())
    if name not in modules:
        raise MethodError(f"model has no layer named {name!r} (-O layer=NAME takes a name from model.named_modules())")
    store: dict[str, torch.Tensor] = {}

    def keep(_m, _i, out):
        if not isinstance(out, torch.Tensor):
            raise MethodError(f"layer {name!r} does not return a tensor; choose another with -O layer=NAME")
        store["a"] = out

    with hooks() as handles:
        handles.append(modules[name].register_forward_hook(keep))
        yield name, store


def _cam_gradients(model, x, classes, progress, layer: str):
    """Gradients and activations of the CAM layer as ``(K, C, h, w)`` and ``(C, h, w)``."""
    with capturing_layer(model, x, layer) as (name, store):
        grads = class_gradients(model, x, classes, progress, wrt=lambda: store["a"], count=True)[:, 0]
    full = store["a"]
    act = full.detach()[0]
    if act.ndim == 2:  # ViT tokens (N, D): drop class/register tokens, reshape to (D, h, w)
        return tokens_to_grid(model, x, grads), tokens_to_grid(model, x, act)
    if act.ndim != 3:
        raise MethodError(f"layer {name!r} output has shape {tuple(full.shape)}; a CAM needs a feature map "
                          "(C, h, w); choose another layer with -O layer=NAME")
    layout = feature_layout(model, name, full.shape, x.shape[-2:])
    if layout is None:
        raise MethodError(
            f"layer {name!r} output {tuple(full.shape)} is not a feature map over the "
            f"{x.shape[-2]} x {x.shape[-1]} input in either channels-first or channels-last layout; "
            "choose another layer with -O layer=NAME"
        )
    if layout == "NHWC":
        grads, act = grads.permute(0, 3, 1, 2), act.permute(2, 0, 1)
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
