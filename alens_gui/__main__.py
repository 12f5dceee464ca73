"""``python -m alens_gui`` starts the desktop GUI."""

from __future__ import annotations

from alens_gui.qt.app import main

if __name__ == "__main__":
    raise SystemExit(main())
