"""Helpers shared by the panels."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QWidget


def differs(spin, shown: float, value: float) -> bool:
    """Whether a spin box's value says something else than the session's ``value``: it shows
    values rounded to its decimals (a QSpinBox: to whole numbers), and writing the rounded value
    back would change the field."""
    decimals = spin.decimals() if hasattr(spin, "decimals") else 0
    return abs(float(shown) - float(value)) >= 0.5 * 10 ** -decimals


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
