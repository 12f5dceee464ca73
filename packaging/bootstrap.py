"""PyInstaller entry point: import the installed app and start the GUI."""

from __future__ import annotations

import sys

from alens_gui.qt.app import main

if __name__ == "__main__":
    sys.exit(main())
