"""Turn any captum attribution class into a lens-refined one.

>>> from captum.attr import InputXGradient
>>> lensed = LensedAttribution(InputXGradient(model))
>>> out = lensed.attribute(x, classes=[285, 967])   # out.refined: (K, H, W)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .errors import ClassSetError
from .lens import AL, LensOutput, LensParams, refine


class LensedAttribution:
    """Wraps a captum ``Attribution`` instance; ``attribute`` returns a :class:`LensOutput`.

    Parameters
    ----------
    attribution : captum.attr.Attribution
        Any captum attribution object (``InputXGradient(model)``, ``LayerGradCam(model,
        layer)``, ``Occlusion(model)``, ...).
    lens : LensParams
        Lens parameters (default AL).
    batched : bool
        If True the K classes go through captum in one call, the input repeated along
        the batch axis with one target per row; otherwise one call per class.
    """

    def __init__(self, attribution, lens: LensParams = AL, batched: bool = True) -> None:
        self.attribution = attribution
        self.lens = lens
        self.batched = batched

    def attribute(self, inputs: torch.Tensor, classes: Sequence[int], **kwargs) -> LensOutput:
        """Attribute one input (1, C, H, W) for K classes and refine with the lens."""
        classes = [int(c) for c in classes]
        if len(classes) < 2:
            raise ClassSetError("the lens needs at least two classes (K >= 2)")
        if inputs.ndim == 3:
            inputs = inputs.unsqueeze(0)
        if inputs.shape[0] != 1:
            raise ValueError("LensedAttribution explains one input at a time")
        k = len(classes)
        if self.batched:
            rep = inputs.expand(k, *inputs.shape[1:]).clone()
            kw = dict(kwargs)
            base = kw.get("baselines")
            if isinstance(base, torch.Tensor) and base.shape[0] == 1:
                kw["baselines"] = base.expand(k, *base.shape[1:]).clone()
            maps = self.attribution.attribute(rep, target=classes, **kw)
        else:
            maps = torch.cat([self.attribution.attribute(inputs, target=c, **kwargs) for c in classes])
        maps = maps.detach()
        if maps.shape[-2:] != inputs.shape[-2:]:  # layer attributions (Grad-CAM, ...)
            maps = F.interpolate(maps, size=inputs.shape[-2:], mode="bilinear", align_corners=False)
        return refine(maps, self.lens)
