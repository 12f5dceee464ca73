"""Attribution methods, registered once and batched over classes.

The registry (names, options, metadata: :mod:`.registry`) is imported without torch;
the torch machinery (:mod:`.base`) and the implementations load on first use.
"""

from __future__ import annotations

import importlib

from .registry import MethodInfo, Option, get_method, list_methods, register_method

_FROM_BASE = ("MethodContext", "class_gradients", "compute_base", "hooks")

__all__ = [
    "MethodContext", "MethodInfo", "Option", "class_gradients", "compute_base",
    "get_method", "hooks", "list_methods", "register_method",
]


def __getattr__(name: str):
    if name in _FROM_BASE:
        return getattr(importlib.import_module(".base", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
