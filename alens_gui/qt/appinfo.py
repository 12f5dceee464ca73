"""The program's names and its one QApplication: imported by the start-up check, the self-test
and the entry point alike, so none of them imports another."""

from __future__ import annotations

import sys
from collections.abc import Sequence

APP_NAME = "Attribution Lens Studio"
ORG_NAME = "alens"


def make_app(argv: Sequence[str] | None = None):
    """The QApplication (created once), with the names QSettings/QStandardPaths use."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName("alens-gui")  # the window manager matches the window to alens-gui.desktop
    return app
