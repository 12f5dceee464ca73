"""Warnings and errors logged anywhere (``alens_gui`` and library ``warnings.warn``) reach the
window's one notification place, from any thread, through a queued signal."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

#: Library warnings that say nothing to a user (captum's hooks, its inputs' grad flag).
QUIET_WARNINGS = ("Setting forward, backward hooks", "Input Tensor 0 did not already require gradients")
_LOGGERS = ("alens_gui", "py.warnings")


class _LogRelay(QObject):
    """Carries log records from any thread to the GUI thread (a queued signal)."""

    record = Signal(str, str)


class _NotifyHandler(logging.Handler):
    """Puts warnings and errors of the ``alens_gui`` log and of libraries into the notification list."""

    def __init__(self, relay: _LogRelay) -> None:
        super().__init__(logging.WARNING)
        self.relay = relay

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.name == "py.warnings":  # "file:line: Category: message", then the source line
                first = text.strip().splitlines()[0] if text.strip() else text
                text = "warning from a library: " + first.split(": ", 1)[-1]
            if any(q in text for q in QUIET_WARNINGS):
                return
            self.relay.record.emit(text, "error" if record.levelno >= logging.ERROR else "warning")
        except RuntimeError:  # the window is gone
            pass


class LogNotifier(QObject):
    """While it lives (until :meth:`close`), logged warnings and errors go to ``notify(text, level)``."""

    def __init__(self, notify: Callable[[str, str], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._relay = _LogRelay(self)
        self._relay.record.connect(notify)
        self._handler = _NotifyHandler(self._relay)
        logging.captureWarnings(True)
        for name in _LOGGERS:
            logging.getLogger(name).addHandler(self._handler)

    def close(self) -> None:
        for name in _LOGGERS:
            logging.getLogger(name).removeHandler(self._handler)
