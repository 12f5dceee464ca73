"""Panels that bind their widgets to the session both ways (a widget is never the source of truth).

Each panel pushes user edits into session fields and updates its widgets from the
fields' change signals (inside a signal blocker, so nothing echoes back). Panels never
run work themselves: buttons that ask for work (Run, Load, Mask top p %) emit a request
signal that the window hands to the controller.
"""

from .class_panel import ClassSetPanel
from .image_panel import ImagePanel
from .lens_panel import LensPanel
from .masking_panel import MaskingPanel
from .method_panel import MethodPanel
from .model_panel import ModelPanel
from .view_panel import ViewPanel
from .window_panel import WindowPanel

__all__ = ["ClassSetPanel", "ImagePanel", "LensPanel", "MaskingPanel", "MethodPanel", "ModelPanel", "ViewPanel",
           "WindowPanel"]
