"""The shared machinery of batched multi-class attribution (torch).

The methods' names, options and metadata live in the torch-free :mod:`.registry`
(re-exported here for existing callers). A method is a function
``fn(model, x, classes, progress, **options)`` that returns a tensor of shape
``(K, C, H, W)`` (pixel-space) or ``(K, 1, h, w)`` (CAM-style, any resolution):
:func:`compute_base` upsamples, checks and restores the model afterwards.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import AlensError, Cancelled, MethodError
from ..locking import using_model
from ..progress import Progress, ensure_progress
from .hooks import hooks  # noqa: F401 - re-exported (methods import it from here)
from .registry import MethodInfo, Option, get_method, list_methods, register_method  # noqa: F401 - re-exported


@dataclass(frozen=True)
class MethodContext:
    """What a method may need to know about the model's input space.

    Attributes
    ----------
    black : tensor (1, C, 1, 1) or (1, C, H, W)
        A black image in the model's input space (after normalisation).
    value_range : (float, float)
        The range of valid input values (after normalisation), for noise scales.
    """

    black: torch.Tensor
    value_range: tuple[float, float]

    @classmethod
    def for_normalization(cls, mean, std, channels: int = 3) -> MethodContext:
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        black = (0.0 - mean_t) / std_t
        white = (1.0 - mean_t) / std_t
        if black.shape[1] == 1 and channels > 1:
            black, white = black.expand(1, channels, 1, 1), white.expand(1, channels, 1, 1)
        return cls(black, (float(black.min()), float(white.max())))


# ---------------------------------------------------------------------------------
# Shared machinery
# ---------------------------------------------------------------------------------
@contextlib.contextmanager
def cancellation_points(model: nn.Module, progress: Progress) -> Iterator[None]:
    """Let a cancel interrupt a forward or backward pass half-way, not only between passes.

    Methods check for cancel between backward passes; on a slow CPU one pass over a batch
    of IG steps takes seconds. Inside this context the model's blocks (modules at most
    two levels below the root: a few dozen checks per pass, cheap next to the pass
    itself) check on their forward call and put a no-op gradient hook on their output
    that checks during backward. Only the calling thread's passes are affected; all
    hooks are removed on exit. Modules that refuse hooks (TorchScript) are skipped.
    """
    owner = threading.get_ident()

    def check_grad(_grad):
        progress.check()  # returns None: the gradient is unchanged

    def after_forward(_module, _inputs, output):
        if threading.get_ident() != owner:
            return
        progress.check()
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(check_grad)

    with hooks() as handles:
        for name, m in model.named_modules():
            if name and name.count(".") <= 1:
                try:
                    handles.append(m.register_forward_hook(after_forward))
                except (RuntimeError, AttributeError):  # scripted modules
                    continue
        yield


@contextlib.contextmanager
def eval_and_frozen(model: nn.Module) -> Iterator[None]:
    """Run in eval mode; restore every module's train/eval flag afterwards.

    A model already in eval mode (the usual case) is left alone: switching a few hundred
    modules twice per call is measurable next to one forward pass.
    """
    modules = list(model.modules())
    flags = [m.training for m in modules]
    if any(flags):
        model.eval()
    try:
        yield
    finally:
        if any(flags):
            for m, flag in zip(modules, flags):
                m.training = flag


class PendingClasses:
    """A class set chosen from the logits of the run's first forward pass at the input.

    Pass one to :func:`compute_base` instead of a list to run one forward pass end to end:
    ``choose(logits)`` receives the detached ``(1, N)`` logits of the model at the input
    and returns the class list (it may also report them, e.g. to show the classes before
    the backward passes). Methods marked ``shares_forward`` in the registry resolve it
    from their own gradient-enabled forward pass at the input (in
    :func:`class_gradients`), and then run their K backward passes on that very graph;
    for every other method :func:`compute_base` runs one plain forward pass first.

    Attributes
    ----------
    classes : list of int or None
        The chosen classes, once resolved.
    x : tensor or None
        The input the logits must come from (set by :func:`compute_base`).
    """

    def __init__(self, choose: Callable[[torch.Tensor], Sequence[int]]) -> None:
        self._choose = choose
        self.classes: list[int] | None = None
        self.x: torch.Tensor | None = None

    def resolve(self, logits: torch.Tensor) -> list[int]:
        """Choose the classes from ``logits`` (only the first call chooses)."""
        if self.classes is None:
            chosen = [int(c) for c in self._choose(logits.detach())]
            if not chosen:
                raise MethodError("no classes to explain")
            self.classes = chosen
        return self.classes


def class_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    classes: Sequence[int] | PendingClasses,
    progress: Progress,
    *,
    wrt: Callable[[], torch.Tensor] | None = None,
    batch_size: int | None = None,
    count: bool = False,
) -> torch.Tensor:
    """Gradients of K class logits, one forward pass and K backward passes per batch.

    Parameters
    ----------
    inputs : tensor (B, C, H, W)
        A batch of inputs (e.g. IG interpolation steps, SmoothGrad samples); the
        gradient of each class logit summed over the batch is returned per sample.
    classes : list of int or PendingClasses
        A :class:`PendingClasses` is resolved from the logits of this forward pass,
        which must then be at the run's own input.
    wrt : callable, optional
        Returns the tensor to differentiate with respect to, after the forward pass
        (e.g. a hooked activation for Grad-CAM). Defaults to the input.
    batch_size : int, optional
        Internal batching over B so memory stays bounded.
    count : bool
        Add the K backward passes to ``progress``'s total once K is known.

    Returns
    -------
    tensor (K, B, ...) of gradients.
    """
    b = inputs.shape[0]
    bs = b if not batch_size else max(1, int(batch_size))
    chunks = []
    for start in range(0, b, bs):
        x = inputs[start:start + bs].detach().clone().requires_grad_(True)
        out = model(x)
        if out.ndim != 2:
            raise MethodError(f"the model must return logits of shape (batch, classes); got {tuple(out.shape)}")
        if isinstance(classes, PendingClasses):
            if inputs is not classes.x:
                raise MethodError("internal error: a pending class set can only be chosen at the run's input")
            classes = classes.resolve(out)
        if count and start == 0:
            progress.add_total(len(classes))
        target = wrt() if wrt is not None else x
        grads = []
        for i, c in enumerate(classes):
            progress.check()
            (g,) = torch.autograd.grad(out[:, c].sum(), target, retain_graph=i < len(classes) - 1)
            grads.append(g.detach())
            progress.advance(1, f"class {i + 1}/{len(classes)}")
        del out
        chunks.append(torch.stack(grads))
    return torch.cat(chunks, dim=1)


def check_architecture(info, model) -> None:
    """Refuse, in one line, a method that cannot run on this kind of model (a CNN-only method on a
    Vision Transformer and the reverse), before any work."""
    from .vit import model_architecture

    arch = model_architecture(model)
    if arch not in info.architectures:
        kinds = {"cnn": "CNNs", "vit": "Vision Transformers"}
        raise MethodError(f"{info.label} does not support {kinds.get(arch, arch)}; it supports: "
                          f"{', '.join(kinds.get(a, a) for a in info.architectures)}")


def compute_base(
    model: nn.Module,
    x: torch.Tensor,
    classes: Sequence[int] | PendingClasses,
    method: str | MethodInfo = "ixg",
    progress: Progress | None = None,
    context: MethodContext | None = None,
    **options: Any,
) -> torch.Tensor:
    """Run a registered method for K classes on one input; return (K, C, H, W) maps.

    ``classes`` may be a :class:`PendingClasses`, chosen from the logits of the run's
    first forward pass at ``x`` (one forward pass end to end for ``shares_forward``
    methods; one extra plain forward pass for the others).

    CAM-style maps are upsampled bilinearly to the input size. The model's lock
    (:func:`~..locking.using_model`) is held throughout, so another thread's method on the
    same model waits (cancellably). The model's train/eval state is restored and every
    hook removed, also when the method fails or is cancelled.
    """
    info = method if isinstance(method, MethodInfo) else get_method(method)
    opts = info.resolve_options(options)
    progress = ensure_progress(progress)
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[0] != 1:
        raise MethodError(f"expected one input of shape (1, C, H, W); got {tuple(x.shape)}")
    pending = classes if isinstance(classes, PendingClasses) else None
    if pending is None:
        classes = [int(c) for c in classes]
        if not classes:
            raise MethodError("no classes to explain")
    else:
        pending.x = x
    if context is None:  # ImageNet normalisation unless the caller knows better
        context = MethodContext.for_normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), x.shape[1])
    check_architecture(info, model)
    with using_model(model, progress), eval_and_frozen(model), cancellation_points(model, progress):
        try:
            if pending is not None and not info.shares_forward:
                with torch.no_grad():  # the method needs its class set before it starts
                    classes = pending.resolve(model(x))
            maps = info.fn(model, x, classes, progress, ctx=context, **opts)
        except (AlensError, Cancelled):
            raise
        except torch.OutOfMemoryError as exc:
            raise MethodError(f"{info.label} ran out of memory: {exc}; try fewer steps or a smaller batch") from exc
        except RuntimeError as exc:
            if isinstance(model, torch.jit.ScriptModule) and "ScriptModule" in str(exc):
                raise MethodError(
                    f"{info.label} needs hooks on the model's layers, which a TorchScript model does not "
                    "offer: use a gradient method (saliency, ixg, ig, smoothgrad) or load the state dict "
                    "with its architecture (--arch)"
                ) from exc
            raise
    if pending is not None:
        if pending.classes is None:
            raise MethodError(f"internal error: {info.label} never chose its class set")
        classes = pending.classes
    maps = maps.detach()
    if maps.ndim == 3:
        maps = maps.unsqueeze(1)
    if maps.ndim != 4 or maps.shape[0] != len(classes):
        raise MethodError(f"{info.label} returned maps of shape {tuple(maps.shape)} for {len(classes)} classes")
    if maps.shape[-2:] != x.shape[-2:]:
        maps = F.interpolate(maps.float(), size=x.shape[-2:], mode="bilinear", align_corners=False)
    return maps.float()
