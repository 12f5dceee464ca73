"""Small tensor operations shared by methods, masking and evaluation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel1d(sigma: float, size: int | None = None, dtype=torch.float32) -> torch.Tensor:
    """A normalised 1-D Gaussian; ``size`` defaults to the odd integer nearest 6 sigma."""
    if size is None:
        size = max(3, int(2 * math.ceil(3 * sigma) + 1))
    half = (size - 1) / 2.0
    xs = torch.arange(size, dtype=torch.float64) - half
    k = torch.exp(-0.5 * (xs / sigma) ** 2)
    return (k / k.sum()).to(dtype)


def gaussian_blur(x: torch.Tensor, sigma: float, size: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur of (..., H, W) with reflect padding (shape preserved)."""
    if sigma <= 0:
        return x.clone()
    k = gaussian_kernel1d(sigma, size, dtype=x.dtype).to(x.device)
    n = k.numel()
    shape = x.shape
    y = x.reshape(-1, 1, shape[-2], shape[-1])
    pad = n // 2
    mode = "reflect" if min(shape[-2:]) > pad else "replicate"
    y = F.pad(y, (pad, pad, 0, 0), mode=mode)
    y = F.conv2d(y, k.view(1, 1, 1, n))
    y = F.pad(y, (0, 0, pad, pad), mode=mode)
    y = F.conv2d(y, k.view(1, 1, n, 1))
    return y.reshape(shape)


def opencv_sigma(ksize: int) -> float:
    """The sigma OpenCV picks for a kernel size when sigma <= 0 (getGaussianKernel)."""
    return 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
