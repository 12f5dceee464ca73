"""The Attribution Lens: per-pixel class competition over K base attribution maps.

This module is a pure function of cached base maps: nothing here runs a model, so any
lens parameter can be changed interactively at no cost (SPEC section 1, steps 2-5).

Choices the papers leave open (documented here, measured by ``alens evaluate``):

* A tie is never above chance. For K equal maps (or all-zero maps) every softmax gives
  ``1/K`` plus rounding, so a pixel is kept only where ``S_c > 1/K + tau + TIE_MARGIN``.
  :data:`TIE_MARGIN` (1e-6) is far above float32 rounding of a mean of softmaxes (a few
  units of 1e-8) and far below any gap a user would call a win.
* The lens runs in float32 (float64 when the maps are float64), which is what makes
  re-lensing fast enough for a slider: the maps are shifted by their per-pixel maximum
  once (a stable softmax that also cannot overflow for huge values), each temperature
  scales that into one scratch buffer, and the softmaxes accumulate in place. The
  float32 result matches a float64 evaluation of the SPEC formula to 1e-6.
  Refined maps are returned in the input's dtype.
* ``normalize="joint-maxabs"`` divides every map by one scalar, the largest absolute
  value over the whole K-map set; the scaled maps feed the softmax, while the refined
  map multiplies the *unscaled* base map, so refined maps stay in the method's units.
  The scale is folded into the temperature, so it costs no extra pass.
* Non-finite base maps (NaN or Inf) are rejected with :class:`LensError`; a run that
  produced them is a broken run, and silently zeroing pixels would hide that.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from .errors import LensError
from .lensparams import (  # noqa: F401 - re-exported: the lens's public names
    AL,
    NORMALIZE_CHOICES,
    PRESETS,
    REDUCE_CHOICES,
    SOFTMAX_INPUT_CHOICES,
    TIE_MARGIN,
    VAR,
    LensParams,
    preset,
)


class LensOutput(NamedTuple):
    """What :func:`refine` returns: per-pixel class distribution and refined maps."""

    distribution: torch.Tensor | np.ndarray
    refined: torch.Tensor | np.ndarray
    base: torch.Tensor | np.ndarray


def reduce_channels(maps: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """Reduce K x C x H x W maps over channels (``none`` keeps them)."""
    if maps.ndim != 4:
        return maps
    if reduce == "sum":
        return maps.sum(dim=1)
    if reduce == "abs-sum":
        return maps.abs().sum(dim=1)
    if reduce == "none":
        return maps
    raise LensError(f"reduce must be one of {', '.join(REDUCE_CHOICES)}; got {reduce!r}")


def _as_tensor(base) -> tuple[torch.Tensor, bool]:
    if isinstance(base, torch.Tensor):
        return base.detach(), False
    if isinstance(base, (list, tuple)):
        shapes = {tuple(np.shape(m)) for m in base}
        if len(shapes) > 1:
            raise LensError(f"all base maps must have the same shape; got {sorted(shapes)}")
        base = np.stack([np.asarray(m) for m in base])
    arr = np.asarray(base)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise LensError("base maps must be numeric arrays")
    return torch.from_numpy(np.ascontiguousarray(arr)), True


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _distribution(a: torch.Tensor, params: LensParams, lo: float, hi: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The class distribution of working-dtype maps ``a``, and a scratch buffer of its shape.

    ``lo``/``hi`` are ``a``'s extremes (already known to the caller, for ``joint-maxabs``).
    A stable softmax: ``a`` is shifted once by its maximum over the classes at every pixel,
    so every exponent is <= 0 (no overflow) and exactly 0 for the pixel's winner (the sum
    is >= 1). The shift also keeps float32 precise: what is rounded is the gap to the
    winner, not the value, so large maps at small temperatures lose nothing. Per
    temperature: scale into ``scratch``, clamp, exponentiate in place, add
    ``exp / (T * sum)`` to the result; no allocation of the maps' size.
    """
    scale = 1.0
    if params.normalize == "joint-maxabs":
        scale = max(abs(lo), abs(hi)) or 1.0
    n = len(params.temperatures)
    fmax = torch.finfo(a.dtype).max
    # exp() of less than this is below the smallest normal number (1e-35 in float32), which
    # is 0 next to the winner's 1 but makes the CPU crawl through denormals: clamp it
    floor = 0.9 * math.log(torch.finfo(a.dtype).tiny)
    shifted = a - a.amax(dim=0, keepdim=True)
    scratch = torch.empty_like(a)
    dist = torch.empty_like(a)
    for i, t in enumerate(params.temperatures):
        f = 1.0 / scale / t
        if f < fmax:
            e = torch.mul(shifted, f, out=scratch).clamp_(min=floor).exp_()
        elif math.isfinite(f):  # too large for float32: scale in float64
            e = scratch.copy_((shifted.double() * f).clamp_(min=floor).exp_())
        else:  # the limit t -> 0: the winners (ties included) share the pixel
            e = scratch.copy_(shifted == 0)
        norm = e.sum(dim=0, keepdim=True).mul_(n)
        if i == 0:
            torch.div(e, norm, out=dist)
        else:
            dist.addcdiv_(e, norm)
    return dist, scratch


def class_distribution(maps: torch.Tensor, params: LensParams) -> torch.Tensor:
    """``S_c = mean_t softmax_c(A_c / t)`` over the first axis (see the module notes).

    Computed in float32 (float64 for float64 maps) with a stable softmax, after the
    ``softmax_input`` and ``normalize`` steps of ``params``. Returns a new tensor of the
    working dtype; ``maps`` is not modified.
    """
    a = maps.to(_work_dtype(maps.dtype))
    if params.softmax_input == "abs":
        a = a.abs()
    lo, hi = (float(v) for v in torch.aminmax(a))
    return _distribution(a, params, lo, hi)[0]


def refine(
    base,
    params: LensParams | None = None,
    *,
    temperatures=None,
    tau: float | None = None,
    normalize: str | None = None,
    softmax_input: str | None = None,
    reduce: str | None = None,
) -> LensOutput:
    """Focus K base attribution maps by class competition (the Attribution Lens).

    Parameters
    ----------
    base : tensor or array, shape (K, H, W) or (K, C, H, W)
        One base map per class; pixel-space maps are reduced over channels first
        according to ``reduce``. A list of equally shaped 2-D maps is also accepted.
    params : LensParams, optional
        Defaults to :data:`AL`. Keyword arguments override single fields.

    Returns
    -------
    LensOutput
        ``distribution`` (same shape as the reduced base; sums to 1 over axis 0 at
        every pixel), ``refined`` (``A_c * S_c * [S_c > 1/K + tau + TIE_MARGIN]``) and
        the reduced ``base``, all in the input's dtype. Torch in, torch out; NumPy in,
        NumPy out. The input is never modified.

    Raises
    ------
    LensError
        For K < 2, empty or non-finite maps, or maps of different shapes.
    """
    params = (params or AL).with_(
        temperatures=temperatures, tau=tau, normalize=normalize,
        softmax_input=softmax_input, reduce=reduce,
    )
    maps, was_numpy = _as_tensor(base)
    if maps.ndim not in (3, 4):
        raise LensError(
            f"base maps must have shape (K, H, W) or (K, C, H, W); got {tuple(maps.shape)}"
        )
    k = maps.shape[0]
    if k < 2:
        raise LensError(f"the lens needs at least two classes to compare (K >= 2); got K = {k}")
    if maps.numel() == 0:
        raise LensError(f"base maps are empty (shape {tuple(maps.shape)})")
    if not maps.is_floating_point():
        maps = maps.to(torch.float32)
    lo, hi = torch.aminmax(maps)  # one read pass; NaN and Inf show up in the extremes
    if not (torch.isfinite(lo) and torch.isfinite(hi)):
        bad = int((~torch.isfinite(maps)).sum())
        raise LensError(
            f"base maps contain {bad} non-finite values (NaN or Inf); the attribution "
            "run failed for this input and cannot be refined"
        )
    given = maps
    maps = reduce_channels(given, params.reduce)
    a = maps.to(_work_dtype(maps.dtype))
    if a is not given:
        lo, hi = torch.aminmax(a)  # the reduced (or converted) maps have other extremes
    if params.softmax_input == "abs":
        a = a.abs()
        lo, hi = torch.zeros(()), torch.maximum(lo.abs(), hi.abs())
    dist, buf = _distribution(a, params, float(lo), float(hi))
    # refined = A * S * [S > 1/K + tau + margin]: threshold S into the spare buffer, times A
    torch.threshold(dist, 1.0 / k + params.tau + TIE_MARGIN, 0.0, out=buf)
    refined = buf.mul_(maps)
    out_dtype = maps.dtype
    dist_out, refined_out = dist.to(out_dtype), refined.to(out_dtype)
    if was_numpy:
        return LensOutput(dist_out.numpy(), refined_out.numpy(), maps.numpy())
    return LensOutput(dist_out, refined_out, maps)
