"""Wheel and keyboard safety: a stray scroll over a control, or a letter typed into a field,
never changes the analysis.

Spin boxes, combo boxes and sliders take wheel events only when they have keyboard focus
(clicked or tabbed into). Otherwise the wheel event goes to the control's parent, so the
scrolling column under the mouse scrolls on instead. Tab bars (tabbed docks) ignore the
wheel: a scroll passing over them must not switch what the dock shows. The guard is one application-wide
event filter, so controls built later (method option forms) are covered too.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QScrollBar,
    QTabBar,
    QTextEdit,
    QWidget,
)

GUARDED = (QAbstractSpinBox, QComboBox, QAbstractSlider)


class WheelGuard(QObject):
    """Application-wide event filter; see the module docstring."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QTabBar):
            return True  # a dock's tab bar: the wheel passing over it never switches the tab
        if event.type() != QEvent.Type.Wheel or not isinstance(obj, GUARDED) or isinstance(obj, QScrollBar):
            return False  # scroll bars are what the wheel is for
        widget: QWidget = obj
        if widget.hasFocus() or not widget.isEnabled():
            return False
        if isinstance(widget, QAbstractSlider) and isinstance(widget.parent(), QAbstractSpinBox):
            return False
        # Not focused: hand the event to the parent, which scrolls the column.
        parent = widget.parentWidget()
        while parent is not None and isinstance(parent, GUARDED):
            parent = parent.parentWidget()
        if parent is not None:
            copy = QWheelEvent(
                parent.mapFromGlobal(event.globalPosition()), event.globalPosition(), event.pixelDelta(),
                event.angleDelta(), event.buttons(), event.modifiers(), event.phase(), event.inverted(),
                event.source(),
            )
            QApplication.sendEvent(parent, copy)
        return True


def make_wheel_safe(widget: QWidget) -> None:
    """Controls get focus by click or Tab only, never by the wheel (so the wheel never 'arms' them)."""
    for w in [widget, *widget.findChildren(QWidget)]:
        if isinstance(w, GUARDED) and w.focusPolicy() == Qt.FocusPolicy.WheelFocus:
            w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)


def install(app: QApplication | None = None) -> WheelGuard:
    """Install the guard on the application (once)."""
    app = app or QApplication.instance()
    guard = getattr(app, "_alens_wheel_guard", None)
    if guard is None:
        guard = WheelGuard(app)
        app.installEventFilter(guard)
        app._alens_wheel_guard = guard
    return guard


TYPING = (QLineEdit, QAbstractSpinBox, QComboBox, QTextEdit, QPlainTextEdit, QAbstractItemView)


class TypingGuard(QObject):
    """Application-wide: a key without Ctrl/Alt/Meta typed into a control that takes keys goes to the
    control, never to a one-key shortcut of the window (see the module docstring)."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
        if event.type() != QEvent.Type.ShortcutOverride or not isinstance(event, QKeyEvent):
            return False
        mods = event.modifiers() & ~(Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier)
        if mods != Qt.KeyboardModifier.NoModifier or not event.text().isalnum():
            return False  # letters and digits only: "[" and "]" step the class from anywhere
        w = QApplication.focusWidget()
        if isinstance(w, TYPING) and w.isEnabled() and w.isVisible():
            event.accept()  # the focused control takes the key; the shortcut does not fire
            return True
        return False


def install_typing_guard(app: QApplication | None = None) -> TypingGuard:
    app = app or QApplication.instance()
    guard = getattr(app, "_alens_typing_guard", None)
    if guard is None:
        guard = TypingGuard(app)
        app.installEventFilter(guard)
        app._alens_typing_guard = guard
    return guard
