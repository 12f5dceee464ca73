"""The Qt-free core of Attribution Lens Studio: torch + numpy only, never Qt.

Names are resolved lazily so that importing a light module (``core.progress``,
``core.errors``) does not pull in torch; the GUI shows its window before torch loads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load on first use
    from .api import Explainer
    from .errors import (
        AlensError,
        Cancelled,
        ClassSetError,
        FolderError,
        ImageReadError,
        LensError,
        MethodError,
        ModelLoadError,
        ReportError,
        WindowError,
    )
    from .explanation import Explanation
    from .folders import folder_labels, list_images
    from .images import ImageInput, load_image
    from .lens import AL, VAR, LensParams, refine
    from .progress import Progress
    from .report import ReportSettings, write_report
    from .windowing import Window

_EXPORTS = {
    "Explainer": "api",
    "Explanation": "explanation",
    "ImageInput": "images",
    "load_image": "images",
    "Window": "windowing",
    "list_images": "folders",
    "folder_labels": "folders",
    "AL": "lens",
    "VAR": "lens",
    "LensParams": "lens",
    "refine": "lens",
    "Progress": "progress",
    "AlensError": "errors",
    "Cancelled": "errors",
    "ClassSetError": "errors",
    "FolderError": "errors",
    "ImageReadError": "errors",
    "LensError": "errors",
    "MethodError": "errors",
    "ModelLoadError": "errors",
    "WindowError": "errors",
    "ReportError": "errors",
    "ReportSettings": "report",
    "write_report": "report",
}

__all__ = [
    "AL", "AlensError", "Cancelled", "ClassSetError", "Explainer", "Explanation", "FolderError", "ImageInput",
    "ImageReadError", "LensError", "LensParams", "MethodError", "ModelLoadError", "Progress", "ReportError",
    "ReportSettings", "VAR", "Window", "WindowError", "folder_labels", "list_images", "load_image", "refine",
    "write_report",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
