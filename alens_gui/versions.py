"""Versions of the packages a bug report needs, read from the installed metadata (no imports).

``python -m alens_gui.versions`` prints them; ``make test`` does so first, so every CI log
says what it ran with.
"""

from __future__ import annotations

import platform
from importlib import metadata

#: The packages whose versions change results or behaviour.
KEY_PACKAGES = (
    "alens-gui", "torch", "torchvision", "timm", "captum", "numpy", "PySide6-Essentials", "pyqtgraph",
    "superqt", "scikit-image", "scikit-learn", "pillow", "matplotlib", "pydicom", "transformers",
)


def package_versions(names=KEY_PACKAGES) -> dict[str, str]:
    """``{name: version}`` for each package, ``"not installed"`` where it is missing."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def versions_line() -> str:
    """One line: Python, platform and the key package versions."""
    pkgs = ", ".join(f"{k} {v}" for k, v in package_versions().items())
    return f"Python {platform.python_version()} ({platform.system()} {platform.machine()}); {pkgs}"


if __name__ == "__main__":
    print(versions_line())
