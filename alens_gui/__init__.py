"""Attribution Lens Studio: class-competition-focused attribution maps.

The Python API lives in :mod:`alens_gui.core`; the most used names are re-exported
here lazily so ``import alens_gui`` stays cheap for the GUI's start-up.
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "Explainer", "Explanation", "LensParams", "refine", "AL", "VAR", "Progress",
    "AlensError", "load_model", "load_image", "ImageInput", "Window", "list_images",
}


def __getattr__(name: str):
    if name == "load_model":
        from .core.models import load_model

        return load_model
    if name in _EXPORTS:
        from . import core

        return getattr(core, name)
    raise AttributeError(name)
