"""Helpers shared by the panels."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import QComboBox, QWidget


@contextlib.contextmanager
def blocked(*widgets: QWidget) -> Iterator[None]:
    """Update widgets from the session without their change signals echoing back."""
    blockers = [QSignalBlocker(w) for w in widgets]
    try:
        yield
    finally:
        for b in blockers:
            b.unblock()


def differs(spin, shown: float, value: float) -> bool:
    """Whether a spin box's value says something else than the session's ``value``: it shows
    values rounded to its decimals, and writing the rounded value back would change the field."""
    return abs(float(shown) - float(value)) >= 0.5 * 10 ** -spin.decimals()


def set_combo_data(combo: QComboBox, value) -> None:
    i = combo.findData(value)
    if i >= 0 and i != combo.currentIndex():
        combo.setCurrentIndex(i)


def combo(items: list[tuple[str, object]], tooltip: str = "") -> QComboBox:
    c = QComboBox()
    for text, data in items:
        c.addItem(text, data)
    if tooltip:
        c.setToolTip(tooltip)
    return c


def labeled(text: str, widget: QWidget) -> QWidget:
    """A label and its control as one unit (so a wrapping row never separates them)."""
    from PySide6.QtWidgets import QHBoxLayout, QLabel

    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(3)
    if text:
        lay.addWidget(QLabel(text))
    lay.addWidget(widget)
    return box
