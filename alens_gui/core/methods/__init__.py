"""Attribution methods, registered once and batched over classes."""

from __future__ import annotations

from .base import (
    MethodContext,
    MethodInfo,
    Option,
    class_gradients,
    compute_base,
    get_method,
    hooks,
    list_methods,
    register_method,
)

__all__ = [
    "MethodContext", "MethodInfo", "Option", "class_gradients", "compute_base",
    "get_method", "hooks", "list_methods", "register_method",
]
