"""Attribution Lens Studio: class-competition-focused attribution maps.

The Python API lives in :mod:`alens_gui.core`; the most used names are re-exported
here lazily so ``import alens_gui`` stays cheap for the GUI's start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load on first use
    from .core.api import Explainer
    from .core.errors import AlensError
    from .core.explanation import Explanation
    from .core.folders import list_images
    from .core.images import ImageInput, load_image
    from .core.lens import AL, VAR, LensParams, refine
    from .core.models import load_model
    from .core.progress import Progress
    from .core.windowing import Window

_EXPORTS = {
    "Explainer", "Explanation", "LensParams", "refine", "AL", "VAR", "Progress",
    "AlensError", "load_model", "load_image", "ImageInput", "Window", "list_images",
}
__all__ = [
    "AL", "AlensError", "Explainer", "Explanation", "ImageInput", "LensParams", "Progress", "VAR", "Window",
    "list_images", "load_image", "load_model", "refine",
]


def __getattr__(name: str):
    if name == "load_model":
        from .core.models import load_model

        return load_model
    if name in _EXPORTS:
        from . import core

        return getattr(core, name)
    raise AttributeError(name)
