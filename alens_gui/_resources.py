"""Access to the files in the top-level ``resources/`` folder.

Installed wheels carry them as the package ``alens_gui.resources``; a source checkout
(or an editable install) reads them from the folder beside the package.
"""

from __future__ import annotations

from pathlib import Path


def resource_path(name: str) -> Path:
    """Path of a resource file such as ``"icon.png"``."""
    try:
        from importlib.resources import files

        p = Path(str(files("alens_gui.resources") / name))
        if p.exists():
            return p
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "resources" / name
