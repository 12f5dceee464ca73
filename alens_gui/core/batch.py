"""The batch engine: many images, one :class:`~.settings.RunSettings`, explanations in input order.

Every front end that explains more than one image (``alens explain DIR``, ``alens report``,
the gallery's Explain all, ``--engine ray``) goes through :class:`BatchEngine`:

1. **Decode ahead.** A small thread pool reads, windows and fits images to the model
   (:func:`~.images.load_image`, :meth:`~.models.LoadedModel.fit`) while the model computes;
   at most a few batches are in flight, so memory stays flat whatever the folder's size.
2. **Compute in batches.** B images are stacked into one forward pass; the class set of each
   image (its own top-k) comes from that pass's logits, and the K backward passes run for
   the whole batch at once (:func:`explain_batch`): Saliency, Input × Gradient, Guided
   Backprop, Grad-CAM, LayerCAM and Guided Grad-CAM. Integrated Gradients and SmoothGrad
   put the steps of all B images into shared passes. Perturbation methods can put the
   perturbed inputs of all B images into shared passes (:func:`perturbation_batched`: on a
   GPU; on a CPU only where it was measured to pay, :data:`CPU_CROSS_IMAGE`). Every other
   method runs image by image inside the batch (:data:`BATCHED_METHODS` lists the batched
   ones; ``note`` says so). The maps equal the per-image path (:meth:`~.api.Explainer.explain`) up to float
   rounding of batched kernels (tests per method family).
3. **Finish on a writer thread.** The lens at display size and whatever the caller does
   with a result (``finish``: npz, PNGs, a cache entry) run on one writer thread, so the
   next batch computes meanwhile. Files are written by the caller through
   :func:`~.outputs.atomic_write`, so a cancel or Ctrl-C leaves no partial file.

Progress is counted per image (``progress.advance(1, name)``); a cancel is honoured
between batches (and between the backward passes of a batch). An image that fails
(unreadable, a method error) yields a :class:`BatchResult` with ``error`` set, one line,
and the run goes on.

:func:`explain_batch` is the per-batch function shared with the Ray engine
(:mod:`.raybatch`): prepared inputs in, explanations out, no threads of its own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import AlensError, Cancelled, MethodError
from .explanation import Explanation
from .geometry import Geometry
from .images import load_image
from .methods.base import (
    PendingClasses,
    cancellation_points,
    check_architecture,
    compute_base,
    eval_and_frozen,
    get_method,
    hooks,
)
from .methods.registry import MethodInfo
from .models import LoadedModel
from .progress import Progress, ensure_progress
from .settings import RunSettings

log = logging.getLogger(__name__)

#: Methods whose passes are batched across images; the others run image by image in a batch.
BATCHED_METHODS = frozenset({"saliency", "ixg", "guided_backprop", "gradcam", "layercam", "guided_gradcam",
                             "ig", "smoothgrad"})
#: Largest automatic batch on a CPU (measured on EfficientNet-Lite0: 4-8 images per pass gain most;
#: larger batches leave the caches and lose again).
CPU_MAX_BATCH = 8
#: Largest automatic batch on a GPU.
GPU_MAX_BATCH = 64
#: Share of the available memory the automatic batch size may plan to use.
MEMORY_SHARE = 0.25


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------
@dataclass
class PreparedImage:
    """One decoded image ready for the model: display image, geometry, model input, provenance."""

    index: int
    name: str
    display: np.ndarray
    geometry: Geometry
    x: torch.Tensor  # (1, C, H, W) on the model's device
    source: dict = field(default_factory=dict)
    #: This image's own class set (e.g. a grid's tile classes) instead of the settings' class set.
    classes: list[int] | None = None


@dataclass
class BatchResult:
    """What the engine yields for each input, in input order.

    Attributes
    ----------
    index : int
        Position of the input in the iterable given to :meth:`BatchEngine.run`.
    input : object
        The input itself (a path, an array, an :class:`~.images.ImageInput`).
    name : str
        A short name for messages (the file name, or ``image <index>``).
    explanation : Explanation or None
        None when the image failed.
    error : str or None
        One line saying why the image failed.
    finished : object
        What ``finish`` returned for this result (None without ``finish``).
    finish_error : BaseException or None
        What ``finish`` raised (the caller decides: a write error, a name clash ...).
    probs : (N,) array or None
        The model's probabilities over all classes (for a gallery's prediction column).
    raw, classes : (K, C, H, W) array and list of int, or None
        With ``run(..., raw=True)``: the method's maps in the model frame and their classes.
    """

    index: int
    input: Any
    name: str
    explanation: Explanation | None = None
    error: str | None = None
    finished: Any = None
    finish_error: BaseException | None = None
    probs: np.ndarray | None = None
    raw: np.ndarray | None = None
    classes: list[int] | None = None

    @property
    def ok(self) -> bool:
        return ((self.explanation is not None or self.raw is not None) and self.error is None
                and self.finish_error is None)


def input_name(item, index: int) -> str:
    """A short name of an input for messages and progress."""
    if isinstance(item, (str, os.PathLike)):
        return os.path.basename(os.fspath(item)) or os.fspath(item)
    name = getattr(item, "name", None)
    if isinstance(name, str) and name:
        return name
    return f"image {index}"


# ---------------------------------------------------------------------------------------------
# Preparing (decode, window, fit to the model): runs on the decode pool
# ---------------------------------------------------------------------------------------------
def prepare_image(loaded: LoadedModel, settings: RunSettings, item, index: int = 0,
                  include_identifiers: bool = False, name: str | None = None) -> PreparedImage:
    """Read ``item`` (path, array, ImageInput ...) with the settings' window and frame, fit it to the model."""
    src = load_image(item, window=settings.window, frame=settings.frame)
    display, geometry, x = loaded.fit(src.pixels)
    return PreparedImage(index, name or input_name(item, index), display, geometry, x,
                         src.provenance(include_identifiers))


def prepare_checked(loaded: LoadedModel, settings: RunSettings, item, index: int, include_identifiers: bool,
                    name: str) -> PreparedImage:
    """:func:`prepare_image`, with an unexpected decoder failure turned into a one-line :class:`AlensError`."""
    try:
        return prepare_image(loaded, settings, item, index, include_identifiers, name)
    except AlensError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise AlensError(_one_line(exc, name)) from exc


def loaded_for(loaded: LoadedModel, settings: RunSettings) -> LoadedModel:
    """The model with the settings' input policy (as :meth:`Explainer.explain` does)."""
    if settings.resize and settings.resize != loaded.resize:
        return replace(loaded, resize=settings.resize)
    return loaded


# ---------------------------------------------------------------------------------------------
# The per-batch function (shared by the local engine and Ray)
# ---------------------------------------------------------------------------------------------
def _class_grads(model, x: torch.Tensor, cls, progress: Progress, wrt=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of each sample's own K class logits: one forward pass, K backward passes.

    ``cls`` is a (S, K) long tensor (the classes of each sample) or a callable choosing it
    from the detached (S, N) logits. Returns ``((S, K, ...) gradients, (S, K) classes)``.
    """
    xg = x.detach().clone().requires_grad_(True)
    out = model(xg)
    if out.ndim != 2:
        raise MethodError(f"the model must return logits of shape (batch, classes); got {tuple(out.shape)}")
    if callable(cls):
        cls = cls(out.detach())
    target = wrt() if wrt is not None else xg
    rows = torch.arange(out.shape[0], device=out.device)
    grads = []
    k = cls.shape[1]
    for j in range(k):
        progress.check()
        (g,) = torch.autograd.grad(out[rows, cls[:, j]].sum(), target, retain_graph=j < k - 1)
        grads.append(g.detach())
    del out
    return torch.stack(grads, dim=1), cls


def _cam_batch(model, x, cls, progress, layer: str, kind: str):
    """Batched Grad-CAM / LayerCAM: (B, K, 1, h, w) maps and the (B, K) classes."""
    from .methods.cam import capturing_layer, feature_layout
    from .methods.vit import tokens_to_grid

    with capturing_layer(model, x[:1], layer) as (name, store):
        grads, cls = _class_grads(model, x, cls, progress, wrt=lambda: store["a"])
    full = store["a"]
    act = full.detach()
    if act.ndim == 3:  # ViT tokens (B, N, D)
        grads, act = tokens_to_grid(model, x[:1], grads), tokens_to_grid(model, x[:1], act)
    elif act.ndim == 4:
        layout = feature_layout(model, name, full.shape, x.shape[-2:])
        if layout is None:
            raise MethodError(
                f"layer {name!r} output {tuple(full.shape[1:])} is not a feature map over the "
                f"{x.shape[-2]} x {x.shape[-1]} input in either channels-first or channels-last layout; "
                "choose another layer with -O layer=NAME")
        if layout == "NHWC":
            grads, act = grads.permute(0, 1, 4, 2, 3), act.permute(0, 3, 1, 2)
    else:
        raise MethodError(f"layer {name!r} output has shape {tuple(full.shape[1:])}; a CAM needs a feature map "
                          "(C, h, w); choose another layer with -O layer=NAME")
    act = act[:, None]  # (B, 1, C, h, w)
    if kind == "layercam":
        cam = (grads.clamp(min=0) * act).sum(dim=2, keepdim=True)
    else:
        cam = (grads.mean(dim=(-2, -1), keepdim=True) * act).sum(dim=2, keepdim=True)
    return torch.relu(cam), cls


def _upsample(maps: torch.Tensor, hw) -> torch.Tensor:
    """(B, K, c, h, w) maps bilinearly to (B, K, c, H, W), as :func:`compute_base` does per image."""
    if tuple(maps.shape[-2:]) == tuple(hw):
        return maps
    b, k, c = maps.shape[:3]
    up = F.interpolate(maps.reshape(b * k, c, *maps.shape[-2:]).float(), size=tuple(hw), mode="bilinear",
                       align_corners=False)
    return up.reshape(b, k, c, *up.shape[-2:])


def _guided(model, x, cls, progress):
    from .methods.gradient import GUIDED_ACTIVATIONS, _GuidedGrad

    acts = [m for m in model.modules() if isinstance(m, GUIDED_ACTIVATIONS)]
    if not acts:
        raise MethodError("Guided Backprop needs ReLU activation modules; this model has none "
                          "(use Saliency or Input × Gradient instead)")
    with hooks() as handles:
        for m in acts:
            handles.append(m.register_forward_hook(lambda _m, _i, out: _GuidedGrad.apply(out)))
        return _class_grads(model, x, cls, progress)


def _sampled(model, x, choose, progress, ctx, name: str, opts: dict, chunk: int):
    """IG / SmoothGrad: the samples of all B images in shared passes of ``chunk`` samples."""
    from .methods.gradient import baseline_for

    b = x.shape[0]
    with torch.no_grad():  # the class sets first, as the per-image path does for these methods
        cls = choose(model(x))
    per_image = []
    if name == "ig":
        steps = int(opts["steps"])
        alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
        refs = [baseline_for(x[i:i + 1], opts["baseline"], ctx) for i in range(b)]
        for i in range(b):
            per_image.append(refs[i] + alphas.view(-1, 1, 1, 1) * (x[i:i + 1] - refs[i]))
    else:
        samples = int(opts["samples"])
        lo, hi = ctx.value_range
        for i in range(b):
            gen = torch.Generator(device="cpu").manual_seed(int(opts["seed"]))
            eps = torch.randn((samples, *x.shape[1:]), generator=gen).to(x.device, x.dtype)
            per_image.append(x[i:i + 1] + eps * float(opts["noise"]) * (hi - lo))
    n = per_image[0].shape[0]
    owner = torch.arange(b, device=x.device).repeat_interleave(n)
    flat = torch.cat(per_image)
    del per_image
    total = None
    for start in range(0, flat.shape[0], chunk):
        own = owner[start:start + chunk]
        g, _ = _class_grads(model, flat[start:start + chunk], cls[own], progress)
        if name == "smoothgrad" and opts["abs"]:
            g = g.abs()
        if total is None:
            total = torch.zeros((b, *g.shape[1:]), dtype=g.dtype, device=g.device)
        total.index_add_(0, own, g)
    mean = total / n
    if name == "ig":
        refs_t = torch.cat(refs)
        mean = mean * (x - refs_t)[:, None]
    return mean, cls


def batched_maps(model, x: torch.Tensor, choose: Callable[[torch.Tensor], torch.Tensor], info: MethodInfo,
                 opts: dict, progress: Progress, ctx, sample_chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps (B, K, C, H, W) of a batched method for a (B, C, H, W) stack, and the (B, K) classes.

    ``choose`` turns the (B, N) logits of the batch at its inputs into each image's classes.
    """
    name = info.name
    if name in ("saliency", "ixg"):
        g, cls = _class_grads(model, x, choose, progress)
        if name == "ixg":
            maps = g * x[:, None]
        else:
            maps = g.abs() if opts.get("abs", True) else g
    elif name == "guided_backprop":
        maps, cls = _guided(model, x, choose, progress)
    elif name in ("gradcam", "layercam"):
        maps, cls = _cam_batch(model, x, choose, progress, opts.get("layer", ""), name)
    elif name == "guided_gradcam":
        cam, cls = _cam_batch(model, x, choose, progress, opts.get("layer", ""), "gradcam")
        cam = _upsample(cam, x.shape[-2:])
        guided, _ = _guided(model, x, cls, progress)
        maps = guided * cam
    elif name in ("ig", "smoothgrad"):
        maps, cls = _sampled(model, x, choose, progress, ctx, name, opts, sample_chunk)
    else:  # pragma: no cover - guarded by BATCHED_METHODS
        raise MethodError(f"{info.label} is not batched")
    return _upsample(maps.detach(), x.shape[-2:]).float(), cls


def _build(loaded: LoadedModel, prep: PreparedImage, all_probs: np.ndarray, cls: list[int], raw: np.ndarray,
           settings: RunSettings, info: MethodInfo, opts: dict) -> Explanation:
    """The explanation of one image, exactly as :meth:`Explainer._build` makes it (the lens at display size)."""
    names = loaded.class_names
    top = np.argsort(-all_probs)[:5]
    return Explanation.from_raw(
        prep.display, cls, [names[c] for c in cls], all_probs[cls], raw, settings.lens,
        geometry=prep.geometry, method=info.name, method_label=info.label, method_options=dict(opts),
        model_name=loaded.name, top5=[(int(c), names[c], float(all_probs[c])) for c in top],
        source=dict(prep.source or {}), partial=False, output=loaded.output,
    )


@dataclass
class ComputedImage:
    """An image's raw maps and class set, before the lens (what :func:`compute_batch` returns)."""

    prepared: PreparedImage
    probs: np.ndarray | None = None
    classes: list[int] | None = None
    raw: np.ndarray | None = None
    error: str | None = None


def _one_line(exc: BaseException, name: str) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if name in text else f"{name}: {text}"


def compute_batch(loaded: LoadedModel, settings: RunSettings, items: Sequence[PreparedImage],
                  progress: Progress | None = None, sample_chunk: int | None = None,
                  cross_image: bool | None = None) -> list[ComputedImage]:
    """Raw maps of a batch of prepared images (model frame, before the lens).

    Batched methods (:data:`BATCHED_METHODS`) run as one batch; perturbation methods put the
    perturbed inputs of all the batch's images into shared forward passes where that pays
    (``cross_image``: None decides by :func:`perturbation_batched`). If a batched pass fails
    (a model that refuses batches, NaN logits for one image), each image is tried alone so
    one bad image does not fail its neighbours. Other methods run image by image.

    An item with its own ``classes`` (a grid's tile classes) is explained for those classes
    instead of the settings' class set.
    """
    progress = ensure_progress(progress)
    info = get_method(settings.method)
    opts = settings.resolved_options()
    if not items:
        return []
    model = loaded.model
    request = settings.classes
    cross = _cross_image(info, loaded, cross_image)
    if (info.name in BATCHED_METHODS or cross) and len(items) > 0:
        try:
            if cross:
                return _compute_perturbed(loaded, request, items, info, opts, progress)
            return _compute_batched(loaded, request, items, info, opts, progress, sample_chunk)
        except Cancelled:
            raise
        except (AlensError, RuntimeError) as exc:
            if len(items) == 1:
                return [ComputedImage(items[0], error=_one_line(exc, items[0].name))]
            log.info("a batch of %d failed (%s); trying its images one by one", len(items), exc)
            out = []
            for it in items:
                out.extend(compute_batch(loaded, settings, [it], progress, sample_chunk, cross_image))
            return out
    out = []
    ctx = loaded.context()
    for it in items:
        progress.check()
        found: dict = {}

        def choose(logits, found=found):
            probs = loaded.to_probabilities(logits)[0].cpu().numpy()
            found["probs"] = probs
            found["classes"] = request.resolve(probs, loaded.num_classes)
            return found["classes"]

        try:
            if it.classes is not None:  # given: no forward pass to choose them
                raw = compute_base(model, it.x, list(it.classes), info, FollowProgress(progress), ctx, **opts)
                out.append(ComputedImage(it, None, [int(c) for c in it.classes], raw.cpu().numpy()))
                continue
            raw = compute_base(model, it.x, PendingClasses(choose), info, FollowProgress(progress), ctx, **opts)
            out.append(ComputedImage(it, found["probs"], found["classes"], raw.cpu().numpy()))
        except Cancelled:
            raise
        except (AlensError, RuntimeError) as exc:
            out.append(ComputedImage(it, error=_one_line(exc, it.name)))
    return out


def _compute_batched(loaded, request, items, info, opts, progress, sample_chunk) -> list[ComputedImage]:
    model = loaded.model
    check_architecture(info, model)
    x = torch.cat([it.x for it in items]).to(loaded.device)
    found: dict = {}

    def choose(logits: torch.Tensor) -> torch.Tensor:
        probs = loaded.to_probabilities(logits).cpu().numpy()
        found["probs"] = probs
        chosen = _chosen(items, probs, request, loaded.num_classes)
        if len({len(c) for c in chosen}) != 1:
            raise MethodError("the images of a batch have class sets of different sizes")
        return torch.as_tensor(chosen, dtype=torch.long, device=logits.device)

    chunk = sample_chunk or max(int(opts.get("batch_size", 25)), len(items))
    with loaded.using(progress), eval_and_frozen(model), cancellation_points(model, progress):
        try:
            maps, cls = batched_maps(model, x, choose, info, opts, progress, loaded.context(), chunk)
        except torch.OutOfMemoryError as exc:
            raise MethodError(f"{info.label} ran out of memory: {exc}; try a smaller --batch-size") from exc
    maps_np = maps.cpu().numpy()
    cls_np = cls.cpu().numpy()
    return [ComputedImage(it, found["probs"][i], [int(c) for c in cls_np[i]], maps_np[i])
            for i, it in enumerate(items)]


def _chosen(items, probs, request, num_classes: int) -> list[list[int]]:
    """Each item's class set: its own ``classes`` when given, else the request resolved on its probabilities."""
    return [[int(c) for c in it.classes] if it.classes is not None else request.resolve(p, num_classes)
            for it, p in zip(items, probs)]


#: Perturbation methods whose passes the engine batches across images on a CPU (measured with
#: ``alens bench --methods ...``; see the README, "Many images"). On a GPU all of them are.
CPU_CROSS_IMAGE: frozenset[str] = frozenset()


def perturbation_batched(info: MethodInfo, device: torch.device) -> bool:
    """Whether the engine puts the perturbed inputs of several images into shared forward passes.

    Every perturbation method with a plan (:data:`~.methods.perturbation.PLANS`) can; the
    engine does it on a GPU, and on a CPU for :data:`CPU_CROSS_IMAGE`: where one image's
    passes already fill the option ``batch_size``, merging images only saves each image's
    last, partly filled pass, which a CPU's time per input hardly notices.
    """
    from .methods.perturbation import PLANS

    if info.name not in PLANS:
        return False
    return device.type == "cuda" or info.name in CPU_CROSS_IMAGE


def _cross_image(info: MethodInfo, loaded: LoadedModel, cross_image: bool | None) -> bool:
    from .methods.perturbation import PLANS

    if info.name not in PLANS:
        return False
    return perturbation_batched(info, loaded.device) if cross_image is None else bool(cross_image)


def _compute_perturbed(loaded, request, items, info, opts, progress) -> list[ComputedImage]:
    """A perturbation method for a batch: one forward pass for the class sets (unless given), then the
    perturbed inputs of all images in shared passes of the option ``batch_size`` inputs
    (:func:`~.methods.perturbation.plans_logits`), each image scoring its own classes."""
    from .methods.perturbation import PLANS, plans_logits

    model = loaded.model
    check_architecture(info, model)
    ctx = loaded.context()
    with loaded.using(progress), eval_and_frozen(model), cancellation_points(model, progress):
        try:
            if all(it.classes is not None for it in items):
                probs = [None] * len(items)
                chosen = [[int(c) for c in it.classes] for it in items]
            else:
                with torch.no_grad():
                    logits = model(torch.cat([it.x for it in items]).to(loaded.device))
                probs = loaded.to_probabilities(logits).cpu().numpy()
                chosen = _chosen(items, probs, request, loaded.num_classes)
            plans = [PLANS[info.name](it.x.to(loaded.device), ctx, **opts) for it in items]
            maps = plans_logits(model, plans, chosen, progress, int(opts.get("batch_size", 32)))
        except torch.OutOfMemoryError as exc:
            raise MethodError(f"{info.label} ran out of memory: {exc}; try a smaller -O batch_size") from exc
    out = []
    for it, p, c, m in zip(items, probs, chosen, maps):
        m = m.detach()
        if m.shape[-2:] != it.x.shape[-2:]:
            m = F.interpolate(m.float(), size=it.x.shape[-2:], mode="bilinear", align_corners=False)
        out.append(ComputedImage(it, p, c, m.float().cpu().numpy()))
    return out


def explain_batch(loaded: LoadedModel, settings: RunSettings, items: Sequence[PreparedImage],
                  progress: Progress | None = None) -> list[tuple[PreparedImage, Explanation | None, str | None]]:
    """The per-batch function: prepared images in, ``(prepared, explanation or None, error or None)`` out.

    The same function runs in the local engine (split in two: the model part on the
    computing thread, the lens on the writer thread) and in each Ray actor.
    """
    info = get_method(settings.method)
    opts = settings.resolved_options()
    out = []
    for c in compute_batch(loaded, settings, items, progress):
        out.append(finish_computed(loaded, settings, info, opts, c))
    return out


def finish_computed(loaded, settings, info, opts, c: ComputedImage):
    """Lens one computed image (``(prepared, explanation, None)`` or ``(prepared, None, error)``)."""
    if c.error is not None:
        return c.prepared, None, c.error
    try:
        return c.prepared, _build(loaded, c.prepared, c.probs, c.classes, c.raw, settings, info, opts), None
    except AlensError as exc:
        return c.prepared, None, _one_line(exc, c.prepared.name)


# ---------------------------------------------------------------------------------------------
# Batch size
# ---------------------------------------------------------------------------------------------
def available_memory(device: torch.device) -> int:
    """Bytes free for a batch: the GPU's free memory, else the system's available memory."""
    if device.type == "cuda":
        try:
            free, _total = torch.cuda.mem_get_info(device)
            return int(free)
        except RuntimeError:
            pass
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2 << 30


def per_sample_bytes(loaded: LoadedModel) -> int:
    """Memory one input sample needs for a forward pass with gradients: the sum of every module's output.

    Measured once per model and input size with one plain forward pass (hooks count the outputs).
    """
    key = (id(loaded.model), tuple(loaded.input_size))
    if key in _SAMPLE_BYTES:
        return _SAMPLE_BYTES[key]
    total = [0]

    def count(_m, _i, out):
        if isinstance(out, torch.Tensor):
            total[0] += out.numel() * out.element_size()

    x = torch.zeros((1, 3, *loaded.input_size), device=loaded.device)  # inputs are RGB (LoadedModel.to_input)
    try:
        with loaded.using(), eval_and_frozen(loaded.model), hooks() as handles, torch.no_grad():
            for _n, m in loaded.model.named_modules():
                try:
                    handles.append(m.register_forward_hook(count))
                except (RuntimeError, AttributeError):
                    continue
            loaded.model(x)
    except Exception as exc:  # a model that fails here fails on the images too, with their own message
        log.info("could not measure the model's activations (%s); assuming 64 MB per image", exc)
        total[0] = 64 << 20
    # the input, its gradient and K maps come on top; at least the input's own size
    value = max(total[0], x.numel() * 4) + 2 * x.numel() * 4
    _SAMPLE_BYTES[key] = value
    return value


_SAMPLE_BYTES: dict = {}


def choose_batch_size(loaded: LoadedModel, settings: RunSettings, requested: int | str | None = "auto",
                      cross_image: bool | None = None) -> int:
    """B images per batch: ``requested`` when a number, else from the model, input size, K and memory.

    A pass holds B samples' activations (IG/SmoothGrad: their chunk of steps, see
    :func:`compute_batch`) plus K maps per image; B is the largest that fits
    :data:`MEMORY_SHARE` of the free memory (the GPU's on a GPU), at most
    :data:`CPU_MAX_BATCH` on a CPU and :data:`GPU_MAX_BATCH` on a GPU.
    """
    if requested not in (None, "auto"):
        b = int(requested)
        if b < 1:
            raise MethodError(f"the batch size must be >= 1; got {b}")
        return b
    info = get_method(settings.method)
    if info.name not in BATCHED_METHODS and not (cross_image or (cross_image is None and
                                                                 perturbation_batched(info, loaded.device))):
        return 4  # decoded ahead and written behind; computed image by image
    k = settings.classes.size()
    per = per_sample_bytes(loaded)
    pixels = 3 * loaded.input_size[0] * loaded.input_size[1] * 4
    per_image = per + k * pixels * (2 if info.name == "guided_gradcam" else 1)
    if info.name in ("ig", "smoothgrad"):  # a pass holds a chunk of steps, however many images
        opts = settings.resolved_options()
        per_image = k * pixels * 3  # the running sums
        budget = int(available_memory(loaded.device) * MEMORY_SHARE) - int(opts["batch_size"]) * per
        return int(max(1, min(CPU_MAX_BATCH if loaded.device.type != "cuda" else GPU_MAX_BATCH,
                              budget // max(per_image, 1), 8)))
    cap = GPU_MAX_BATCH if loaded.device.type == "cuda" else CPU_MAX_BATCH
    budget = int(available_memory(loaded.device) * MEMORY_SHARE)
    return int(max(1, min(cap, budget // max(per_image, 1))))


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------
class BatchEngine:
    """Explain many images with one model and one :class:`RunSettings` (see the module docstring).

    Parameters
    ----------
    loaded : LoadedModel
    settings : RunSettings
    batch_size : int or "auto"
        Images per forward pass (:func:`choose_batch_size` for ``"auto"``).
    workers : int
        Threads that decode and fit images ahead of the model.
    include_identifiers : bool
        Copy DICOM identifiers into each explanation's ``source`` (off by default).
    cross_image : bool or None
        Perturbation methods: put the perturbed inputs of a batch's images into shared
        forward passes (True), or run them image by image (False); None decides by
        :func:`perturbation_batched` (where it pays).
    """

    def __init__(self, loaded: LoadedModel, settings: RunSettings, *, batch_size: int | str | None = "auto",
                 workers: int = 2, include_identifiers: bool = False, cross_image: bool | None = None) -> None:
        self.loaded = loaded_for(loaded, settings)
        self.settings = settings
        self.info = get_method(settings.method)
        self.opts = settings.resolved_options()  # bad options fail before any work
        settings.classes.check(self.loaded.num_classes)
        self.cross_image = _cross_image(self.info, self.loaded, cross_image)
        self.batch_size = choose_batch_size(self.loaded, settings, batch_size, self.cross_image)
        self.workers = max(1, int(workers))
        self.include_identifiers = include_identifiers

    @property
    def batched(self) -> bool:
        """Whether the method's passes are batched across images (else image by image, decoded ahead)."""
        return self.info.name in BATCHED_METHODS or self.cross_image

    @property
    def note(self) -> str:
        """One line on how this run computes, for a front end to show."""
        if self.cross_image:
            return (f"{self.info.label}: {self.batch_size} image(s) per batch, their perturbed inputs in shared "
                    f"passes of {self.opts.get('batch_size', 32)}")
        if self.batched:
            return f"{self.info.label}: {self.batch_size} image(s) per batch"
        return (f"{self.info.label} is not batched across images: computed image by image "
                f"(images read ahead, results written behind)")

    def run(self, inputs: Iterable, progress: Progress | None = None,
            finish: Callable[[BatchResult], Any] | None = None,
            names: Sequence[str] | None = None, *,
            prepare: Callable[[Any, int, str], PreparedImage] | None = None,
            raw: bool = False) -> Iterator[BatchResult]:
        """Explain ``inputs``; yield a :class:`BatchResult` per input, in input order.

        ``prepare(item, index, name)`` replaces the reading and fitting of an input on the
        decode pool (e.g. composing an evaluation grid, with its own ``classes``); ``raw``
        skips the lens: each result holds the method's maps in the model frame
        (``result.raw``, ``(K, C, H, W)``) and its ``classes``, and ``explanation`` stays None.

        ``finish(result)`` runs on the writer thread for every result (failed ones too, with
        ``explanation`` None) before it is yielded; what it returns is ``result.finished``,
        what it raises is ``result.finish_error``. ``progress`` counts images (its total grows
        by the number of inputs as they are read) and cancels between batches: the results
        already computed are still finished (written) before :class:`Cancelled` is raised.
        """
        progress = ensure_progress(progress)
        items = list(inputs) if not isinstance(inputs, list) else inputs
        progress.add_total(len(items))
        ahead = max(2 * self.batch_size, 2 * self.workers)
        decode = ThreadPoolExecutor(self.workers, thread_name_prefix="alens-decode")
        writer = ThreadPoolExecutor(1, thread_name_prefix="alens-write")
        pending_decode: deque[tuple[int, Future]] = deque()
        pending_write: deque[Future] = deque()
        next_in = 0
        stop = threading.Event()

        def submit_decode():
            nonlocal next_in
            while next_in < len(items) and len(pending_decode) < ahead:
                i = next_in
                name = names[i] if names is not None else input_name(items[i], i)
                pending_decode.append((i, decode.submit(self._prepare, items[i], i, name, stop, prepare)))
                next_in += 1

        def finish_job(result: BatchResult, computed: ComputedImage | None) -> BatchResult:
            if computed is not None and raw:
                result.raw, result.classes, result.error, result.probs = (computed.raw, computed.classes,
                                                                          computed.error, computed.probs)
            elif computed is not None:
                _p, expl, err = finish_computed(self.loaded, self.settings, self.info, self.opts, computed)
                result.explanation, result.error, result.probs = expl, err, computed.probs
            if finish is not None:
                try:
                    result.finished = finish(result)
                except BaseException as exc:  # handed to the caller with the result
                    result.finish_error = exc
            return result

        def drain(limit: int):
            while pending_write and (len(pending_write) > limit or pending_write[0].done()):
                result = pending_write.popleft().result()
                progress.advance(1, result.name)
                yield result

        try:
            submit_decode()
            while pending_decode:
                progress.check()
                batch: list[PreparedImage] = []
                while pending_decode and len(batch) < self.batch_size:
                    i, fut = pending_decode.popleft()
                    try:
                        prep = fut.result()
                    except AlensError as exc:
                        name = names[i] if names is not None else input_name(items[i], i)
                        r = BatchResult(i, items[i], name, error=_one_line(exc, name))
                        if batch:  # keep input order: the failed one waits for the batch before it
                            self._flush(batch, items, writer, pending_write, finish_job, progress)
                            batch = []
                        pending_write.append(writer.submit(finish_job, r, None))
                        submit_decode()
                        continue
                    batch.append(prep)
                    submit_decode()
                if batch:
                    self._flush(batch, items, writer, pending_write, finish_job, progress)
                yield from drain(2 * self.batch_size)
            yield from drain(0)
        finally:
            stop.set()
            decode.shutdown(wait=False, cancel_futures=True)
            # what is computed is written before the run ends (a cancel or Ctrl-C loses nothing done)
            writer.shutdown(wait=True)

    def _prepare(self, item, index: int, name: str, stop: threading.Event, prepare=None) -> PreparedImage:
        if stop.is_set():
            raise Cancelled()
        if prepare is not None:
            return prepare(item, index, name)
        return prepare_checked(self.loaded, self.settings, item, index, self.include_identifiers, name)

    def _flush(self, batch, items, writer, pending_write, finish_job, progress) -> None:
        computed = compute_batch(self.loaded, self.settings, batch, progress, cross_image=self.cross_image)
        for c in computed:
            p = c.prepared
            r = BatchResult(p.index, items[p.index], p.name)
            pending_write.append(writer.submit(finish_job, r, c))


def settings_from_keywords(class_names, method: str, keywords: dict, image_options: dict | None = None
                           ) -> tuple[RunSettings, bool]:
    """The keyword form of :meth:`Explainer.explain` (class set, ``lens``, method options) and its
    image options (``window``, ``frame``, ``include_identifiers``) as ``(RunSettings, include_identifiers)``."""
    from .api import resolve_lens
    from .settings import ClassSet

    kw = dict(keywords)
    classes = ClassSet.from_request(kw.pop("classes", None), kw.pop("top_k", None), bool(kw.pop("with_lowest", False)),
                                    bool(kw.pop("best_vs_worst", False)), class_names)
    lens = resolve_lens(kw.pop("lens", None))
    img = dict(image_options or {})
    settings = RunSettings(method, kw, classes, lens, window=img.get("window"), frame=img.get("frame"))
    return settings, bool(img.get("include_identifiers", False))


class FollowProgress(Progress):
    """Cancels with ``parent`` and counts nothing there (for a caller that counts items itself)."""

    def __init__(self, parent: Progress) -> None:
        super().__init__()
        self._parent = parent

    @property
    def cancelled(self) -> bool:
        return self._parent.cancelled

    def check(self) -> None:
        self._parent.check()


def explain_many(loaded: LoadedModel, inputs: Iterable, settings: RunSettings, *, batch_size="auto",
                 progress: Progress | None = None, **kwargs) -> list[BatchResult]:
    """All results of :meth:`BatchEngine.run` as a list (small folders, tests)."""
    return list(BatchEngine(loaded, settings, batch_size=batch_size, **kwargs).run(inputs, progress))


__all__ = ["BATCHED_METHODS", "CPU_CROSS_IMAGE", "BatchEngine", "BatchResult", "PreparedImage", "choose_batch_size",
           "compute_batch", "explain_batch", "explain_many", "prepare_checked", "prepare_image"]
