"""The method registry as the GUI sees it: names, labels, families and option declarations.

The core's registry module describes methods without importing torch, so the window can
build its method forms before torch has loaded.
"""

from __future__ import annotations


def method_specs() -> list:
    """Every registered method's description (in registration order)."""
    from alens_gui.core.methods.registry import list_methods

    return list_methods()


def method_spec(name: str):
    """One method's description by name or alias (raises MethodError for unknown names)."""
    from alens_gui.core.methods.registry import get_method

    return get_method(name)
