"""The Attribution Lens: per-pixel class competition over K base attribution maps.

This module is a pure function of cached base maps: nothing here runs a model, so any
lens parameter can be changed interactively at no cost (SPEC section 1, steps 2-5).

Choices the papers leave open (documented here, measured by ``alens evaluate``):

* The lens is computed in float64 so that ties (for example K identical or all-zero
  maps, where every class gets exactly ``1/K``) are *not* counted as "above chance".
  Refined maps are returned in the input's dtype.
* ``normalize="joint-maxabs"`` divides every map by one scalar, the largest absolute
  value over the whole K-map set; the scaled maps feed the softmax, while the refined
  map multiplies the *unscaled* base map, so refined maps stay in the method's units.
* Non-finite base maps (NaN or Inf) are rejected with :class:`LensError`; a run that
  produced them is a broken run, and silently zeroing pixels would hide that.
"""

from __future__ import annotations

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


def class_distribution(maps: torch.Tensor, params: LensParams) -> torch.Tensor:
    """``S_c = mean_t softmax_c(A_c / t)`` over the first axis, in float64."""
    a = maps.to(torch.float64)
    if params.softmax_input == "abs":
        a = a.abs()
    if params.normalize == "joint-maxabs":
        scale = a.abs().max()
        if scale > 0:
            a = a / scale
    dist = torch.zeros_like(a)
    for t in params.temperatures:
        dist += torch.softmax(a / t, dim=0)
    return dist / len(params.temperatures)


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
        every pixel), ``refined`` (``A_c * S_c * [S_c > 1/K + tau]``) and the reduced
        ``base``. Torch in, torch out; NumPy in, NumPy out.

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
    if not torch.isfinite(maps).all():
        bad = int((~torch.isfinite(maps)).sum())
        raise LensError(
            f"base maps contain {bad} non-finite values (NaN or Inf); the attribution "
            "run failed for this input and cannot be refined"
        )
    maps = reduce_channels(maps, params.reduce)
    dist = class_distribution(maps, params)
    keep = dist > (1.0 / k + params.tau)
    refined = maps.to(torch.float64) * dist * keep
    out_dtype = maps.dtype
    dist_out, refined_out = dist.to(out_dtype), refined.to(out_dtype)
    if was_numpy:
        return LensOutput(dist_out.numpy(), refined_out.numpy(), maps.numpy())
    return LensOutput(dist_out, refined_out, maps)
