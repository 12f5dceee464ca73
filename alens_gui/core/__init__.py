"""The Qt-free core of Attribution Lens Studio: torch + numpy only, never Qt."""

from __future__ import annotations

from .api import Explainer
from .errors import AlensError, Cancelled, ClassSetError, ImageReadError, LensError, MethodError, ModelLoadError
from .explanation import Explanation
from .lens import AL, VAR, LensParams, refine
from .progress import Progress

__all__ = [
    "AL", "VAR", "AlensError", "Cancelled", "ClassSetError", "Explainer", "Explanation",
    "ImageReadError", "LensError", "LensParams", "MethodError", "ModelLoadError", "Progress", "refine",
]
