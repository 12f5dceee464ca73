"""The Qt-free core of Attribution Lens Studio: torch + numpy only, never Qt.

Names are resolved lazily so that importing a light module (``core.progress``,
``core.errors``) does not pull in torch; the GUI shows its window before torch loads.
"""

from __future__ import annotations

import importlib

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

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
