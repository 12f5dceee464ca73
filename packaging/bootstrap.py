"""PyInstaller entry point of the desktop bundle: start the GUI (or ``--self-test``, ...)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def keep_matplotlib_cache() -> None:
    """Give matplotlib one config/cache folder per user instead of a new one per start.

    PyInstaller's matplotlib run-time hook points ``MPLCONFIGDIR`` at a fresh temporary folder,
    so every start would rebuild matplotlib's font cache (seconds) before the first export.
    The folder is the program's own, so it never mixes with another matplotlib's files.
    """
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    os.environ["MPLCONFIGDIR"] = str(root / "alens-gui" / "matplotlib")


if __name__ == "__main__":
    if getattr(sys, "frozen", False):
        keep_matplotlib_cache()
    from alens_gui.qt.app import main

    sys.exit(main())
