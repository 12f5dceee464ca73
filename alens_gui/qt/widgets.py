"""Small widgets shared by panels and views: bar plots, the notification list, a collapsible section."""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QLabel,
    QLayout,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

BAR_BRUSH = QColor(70, 120, 200)
AFTER_BRUSH = QColor(230, 120, 40)


def short(name: str, n: int = 14) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


class BarPlot(pg.PlotWidget):
    """A small, non-interactive bar chart with class names on the x axis."""

    def __init__(self, title: str, ylabel: str, parent=None, min_height: int = 140) -> None:
        super().__init__(parent, title=title)
        self.setBackground("w")
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setLabel("left", ylabel)
        self.getAxis("left").enableAutoSIPrefix(False)
        self.getPlotItem().titleLabel.setMaximumHeight(18)
        self.setMinimumHeight(min_height)
        self.setMaximumHeight(int(min_height * 1.4))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.series: list[pg.BarGraphItem] = []

    def set_bars(self, names, *series, colors=(BAR_BRUSH, AFTER_BRUSH), ymax: float | None = None) -> None:
        """Draw one or more series of bars (side by side) for ``names``."""
        while len(self.series) < len(series):
            item = pg.BarGraphItem(x=[], height=[], width=0.5, brush=colors[len(self.series) % len(colors)])
            self.addItem(item)
            self.series.append(item)
        n = max(1, len(series))
        width = 0.7 / n
        for j, item in enumerate(self.series):
            if j < len(series):
                x = np.arange(len(names)) + (j - (n - 1) / 2) * width
                item.setOpts(x=x, height=np.asarray(series[j], dtype=float), width=width, brush=colors[j % len(colors)])
            else:
                item.setOpts(x=[], height=[])
        self.getAxis("bottom").setTicks([[(i, short(str(nm))) for i, nm in enumerate(names)]])
        top = ymax if ymax is not None else max([1e-3] + [float(np.nanmax(s)) for s in series if len(s)]) * 1.1
        self.setYRange(0, top, padding=0)
        self.setXRange(-0.6, max(0.6, len(names) - 0.4), padding=0)

    def heights(self, j: int = 0) -> np.ndarray:
        return np.asarray(self.series[j].opts["height"]) if j < len(self.series) else np.array([])


class NotificationArea(QListWidget):
    """The one place where every error, warning and notice is shown (newest on top)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.messages: list[tuple[str, str]] = []
        self.setWordWrap(True)
        self.setMinimumHeight(40)

    def notify(self, text: str, level: str = "info") -> None:
        self.messages.append((level, text))
        stamp = time.strftime("%H:%M:%S")
        item = QListWidgetItem(f"{stamp}  {level.upper()}: {text}" if level != "info" else f"{stamp}  {text}")
        item.setToolTip(text)
        if level == "error":
            item.setForeground(QColor(180, 0, 0))
        elif level == "warning":
            item.setForeground(QColor(160, 100, 0))
        self.insertItem(0, item)
        while self.count() > 300:
            self.takeItem(self.count() - 1)

    def errors(self) -> list[str]:
        return [t for lvl, t in self.messages if lvl == "error"]


class Section(QWidget):
    """A titled section of a control column whose body can be folded away."""

    toggled = Signal(bool)

    def __init__(self, title: str, body: QWidget, parent=None, expanded: bool = True) -> None:
        super().__init__(parent)
        self.button = QToolButton()
        self.button.setText(title)
        self.button.setCheckable(True)
        self.button.setChecked(expanded)
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.button.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.button.setStyleSheet("QToolButton { border: none; font-weight: bold; }")
        self.button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.body = body
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 2, 0, 2)
        lay.setSpacing(2)
        lay.addWidget(self.button)
        lay.addWidget(line)
        lay.addWidget(body)
        body.setVisible(expanded)
        self.button.toggled.connect(self._toggle)

    def _toggle(self, on: bool) -> None:
        self.body.setVisible(on)
        self.button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.toggled.emit(on)


def hint(text: str) -> QLabel:
    """A small grey explanatory label."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet("color: #666; font-size: 11px;")
    return label


class FlowLayout(QLayout):
    """Lays widgets out left to right and wraps to a new line when the width runs out.

    Control rows above the maps use it, so that at 1280 x 800 nothing is clipped: a
    row that does not fit becomes two.
    """

    def __init__(self, parent=None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list = []
        self.setSpacing(spacing)
        self.setContentsMargins(2, 2, 2, 2)

    def addItem(self, item) -> None:  # noqa: N802 - Qt naming
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, i: int):  # noqa: N802 - Qt naming
        return self._items[i] if 0 <= i < len(self._items) else None

    def takeAt(self, i: int):  # noqa: N802 - Qt naming
        return self._items.pop(i) if 0 <= i < len(self._items) else None

    def expandingDirections(self):  # noqa: N802 - Qt naming
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt naming
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt naming
        return self._place(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect) -> None:  # noqa: N802 - Qt naming
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self):  # noqa: N802 - Qt naming
        return self.minimumSize()

    def minimumSize(self):  # noqa: N802 - Qt naming
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _place(self, rect, move: bool) -> int:
        m = self.contentsMargins()
        r = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, line = r.x(), r.y(), 0
        sp = self.spacing()
        for item in self._items:
            if item.widget() is not None and not item.widget().isVisible() and move:
                continue
            hint = item.sizeHint()
            if x + hint.width() > r.right() + 1 and line > 0:
                x = r.x()
                y += line + sp
                line = 0
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + sp
            line = max(line, hint.height())
        return y + line - rect.y() + m.bottom()


def compact_combos(root: QWidget) -> None:
    """Combo boxes size to a short text, not their longest item, so side columns never clip."""
    for c in root.findChildren(QComboBox):
        c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        c.setMinimumContentsLength(8)


def scroll_column(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    # never narrower than its content: a column that cannot show its controls whole would clip them
    area.setMinimumWidth(widget.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width() + 4)
    return area


class RecentList:
    """A most-recent-first list of paths kept in QSettings and offered in a menu."""

    def __init__(self, settings, key: str, menu, opener, limit: int = 10) -> None:
        self.settings, self.key, self.menu, self.opener, self.limit = settings, key, menu, opener, limit
        self.refresh()

    def items(self) -> list[str]:
        value = self.settings.value(self.key, [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def add(self, path: str) -> None:
        self.settings.setValue(self.key, ([path] + [p for p in self.items() if p != path])[: self.limit])
        self.refresh()

    def refresh(self) -> None:
        self.menu.clear()
        items = self.items()
        for p in items:
            act = self.menu.addAction(p)
            act.triggered.connect(lambda _c=False, p=p: self.opener(p))
        self.menu.setEnabled(bool(items))
