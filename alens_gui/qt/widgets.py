"""Small widgets shared by panels and views: a bar chart, the notification list, a collapsible section."""

from __future__ import annotations

import html
import time
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen
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
    QToolTip,
    QVBoxLayout,
    QWidget,
)

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

BAR_BRUSH = QColor(70, 120, 200)
AFTER_BRUSH = QColor(230, 120, 40)


class Throttled(QObject):
    """Call ``fn`` at most once per ``ms``: the first call at once, the last of a burst when the time is up.

    Mouse moves arrive faster than a map can be redrawn; the latest position always wins.
    """

    def __init__(self, fn: Callable, ms: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fn = fn
        self.pending: tuple | None = None
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(ms)
        self.timer.timeout.connect(self._flush)

    def __call__(self, *args) -> None:
        if self.timer.isActive():
            self.pending = args
            return
        self.fn(*args)
        self.timer.start()

    def _flush(self) -> None:
        if self.pending is not None:
            args, self.pending = self.pending, None
            self.fn(*args)
            self.timer.start()


def short(name: str, n: int = 14) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


class BarPlot(QWidget):
    """A small, non-interactive bar chart with class names on the x axis, painted directly.

    One or more series side by side (blue, then orange), an optional dashed reference line
    (e.g. chance, 1/K + τ), the y axis from 0 to ``ymax``. It is drawn with QPainter rather
    than as a pyqtgraph plot: it is redrawn on every hover move, and a pyqtgraph plot cost
    about 15 ms to build at start-up, four of them before the window could show.
    Hovering a bar shows the class's full name and values as a tooltip.
    """

    def __init__(self, title: str, ylabel: str, parent=None, min_height: int = 140) -> None:
        super().__init__(parent)
        self.title, self.ylabel = title, ylabel
        self.names: list[str] = []
        self.values: list[np.ndarray] = []
        self.colors: tuple = (BAR_BRUSH, AFTER_BRUSH)
        self.ymax = 1.0
        self.reference: float | None = None
        self.setMinimumHeight(min_height)
        self.setMaximumHeight(int(min_height * 1.4))
        self.setMinimumWidth(160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMouseTracking(True)

    # -- data -------------------------------------------------------------------------------
    def set_bars(self, names, *series, colors=(BAR_BRUSH, AFTER_BRUSH), ymax: float | None = None) -> None:
        """Draw one or more series of bars (side by side) for ``names``."""
        self.names = [str(n) for n in names]
        self.values = [np.asarray(v, dtype=float).reshape(-1) for v in series]
        self.colors = tuple(colors)
        finite = [float(np.nanmax(v)) for v in self.values if v.size and np.isfinite(v).any()]
        # nothing to show (e.g. a cleared mask): a plain 0-1 axis, not one scaled to nothing
        self.ymax = float(ymax) if ymax is not None else (max([1e-3] + finite) * 1.1 if finite else 1.0)
        self.update()

    def set_reference(self, y: float | None) -> None:
        """A dashed horizontal line at ``y`` (None: none)."""
        self.reference = None if y is None else float(y)
        self.update()

    def heights(self, j: int = 0) -> np.ndarray:
        return self.values[j].copy() if j < len(self.values) else np.array([])

    # -- geometry -----------------------------------------------------------------------------
    def plot_area(self) -> tuple[QRect, bool]:
        """The plot area and whether the class names are drawn slanted (they do not fit flat)."""
        fm = self.fontMetrics()
        n = max(1, len(self.names))
        left = max(fm.horizontalAdvance(label) for _t, label in self.ticks()) + fm.height() + 8
        top = fm.height() + 6
        width = max(10, self.width() - left - 8)
        widest = max([fm.horizontalAdvance(short(nm)) for nm in self.names] + [0])
        slanted = widest > width / n - 4
        bottom = fm.height() + 6 if not slanted else int(widest * 0.72) + fm.height() // 2 + 6
        bottom = min(bottom, max(fm.height() + 6, self.height() // 2))
        return QRect(left, top, width, max(10, self.height() - top - bottom)), slanted

    def ticks(self) -> list[tuple[float, str]]:
        """The y-axis ticks: 0, half and the top, as values and labels."""
        ymax = self.ymax if self.ymax > 0 else 1.0
        fmt = "{:.2f}" if 0.1 <= ymax < 10 else "{:.2g}"
        return [(t * ymax, fmt.format(t * ymax)) for t in (0.0, 0.5, 1.0)]

    def _bar_at(self, x: float) -> int:
        area, _ = self.plot_area()
        if not self.names or not area.left() <= x <= area.right():
            return -1
        return min(len(self.names) - 1, int((x - area.left()) / area.width() * len(self.names)))

    # -- drawing ----------------------------------------------------------------------------
    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt naming
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.fillRect(self.rect(), QColor("white"))
        fm = p.fontMetrics()
        area, slanted = self.plot_area()
        p.setPen(QColor(40, 40, 40))
        p.drawText(QRect(0, 0, self.width(), area.top()), int(Qt.AlignmentFlag.AlignCenter), self.title)
        ymax = self.ymax if self.ymax > 0 else 1.0

        def ypix(v: float) -> float:
            return area.bottom() - max(0.0, min(1.0, v / ymax)) * area.height()

        # axis, ticks, grid
        p.setPen(QPen(QColor(225, 225, 225)))
        for t in (0.5, 1.0):
            y = ypix(t * ymax)
            p.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
        p.setPen(QColor(90, 90, 90))
        p.drawLine(area.bottomLeft(), area.topLeft())
        p.drawLine(area.bottomLeft(), area.bottomRight())
        for value, label in self.ticks():
            y = ypix(value)
            p.drawText(QRectF(0, y - fm.height() / 2, area.left() - 4, fm.height()),
                       int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), label)
        p.save()
        p.translate(fm.height() * 0.2, area.center().y())
        p.rotate(-90)
        p.drawText(QRectF(-area.height() / 2, 0, area.height(), fm.height()), int(Qt.AlignmentFlag.AlignCenter),
                   self.ylabel)
        p.restore()
        # bars
        n, m = len(self.names), max(1, len(self.values))
        slot = area.width() / max(1, n)
        bar = slot * 0.7 / m
        for j, vals in enumerate(self.values):
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(self.colors[j % len(self.colors)]))
            for i in range(min(n, vals.size)):
                v = vals[i]
                if not np.isfinite(v):
                    continue
                x0 = area.left() + slot * (i + 0.15) + j * bar
                y = ypix(v)
                p.drawRect(QRectF(x0, y, bar, area.bottom() - y))
        if self.reference is not None and 0 <= self.reference <= ymax:
            p.setPen(QPen(QColor(220, 0, 0), 1.2, Qt.PenStyle.DashLine))
            y = ypix(self.reference)
            p.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
        # class names
        p.setPen(QColor(40, 40, 40))
        for i, name in enumerate(self.names):
            cx = area.left() + slot * (i + 0.5)
            text = short(name)
            if not slanted:
                p.drawText(QRectF(cx - slot / 2, area.bottom() + 3, slot, fm.height()),
                           int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop),
                           fm.elidedText(text, Qt.TextElideMode.ElideRight, int(slot)))
            else:
                p.save()
                p.translate(cx + fm.height() * 0.3, area.bottom() + 4)
                p.rotate(-45)
                room = int((self.height() - area.bottom() - 4) * 1.41)
                shown = fm.elidedText(text, Qt.TextElideMode.ElideRight, room)
                p.drawText(QPointF(-fm.horizontalAdvance(shown), 0), shown)
                p.restore()
        p.end()

    def event(self, e) -> bool:
        if e.type() == QEvent.Type.ToolTip:
            i = self._bar_at(e.pos().x())
            if i >= 0:
                vals = ", ".join(f"{v[i]:.3f}" for v in self.values if i < v.size)
                QToolTip.showText(e.globalPos(), plain_tip(f"{self.names[i]}: {vals}"), self)
            else:
                QToolTip.hideText()
            return True
        return super().event(e)


def plain_tip(text: str) -> str:
    """``text`` as a tool tip that shows it as it is. Qt reads a tool tip (and a label) that looks
    like markup as rich text, and rich text loads the images it names: a class or file name
    such as ``<img src="/some/fifo">`` from someone else's file would hang the window."""
    return f"<p>{html.escape(text)}</p>"


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
        item.setToolTip(plain_tip(text))
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


class ElidedLabel(QLabel):
    """One line of plain text that shrinks with its column: elided with "…", whole in the tooltip."""

    def __init__(self, text: str = "", parent=None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(40)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt naming
        self._full = str(text)
        self.setToolTip(plain_tip(self._full) if self._full else "")
        self._elide()

    def full_text(self) -> str:
        return self._full

    def text(self) -> str:  # what was set (the shown, elided text is the label's own)
        return self._full

    def sizeHint(self):  # noqa: N802 - Qt naming: one line high, as wide as the room it gets
        hint = super().sizeHint()
        hint.setWidth(40)
        return hint

    def resizeEvent(self, ev):  # noqa: N802 - Qt naming
        super().resizeEvent(ev)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(10, self.width()))
        super().setText(shown)


def compact_combos(root: QWidget) -> None:
    """Combo boxes size to a short text, not their longest item, so side columns never clip."""
    for c in root.findChildren(QComboBox):
        c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        c.setMinimumContentsLength(8)
        # an explicit minimum is what layouts use (not the style's hint, 200 px for some fonts):
        # a combo narrower than its text elides it and shows it whole in the list and tooltip
        c.setMinimumWidth(min(c.minimumSizeHint().width(), 90))
        if not c.toolTip():
            c.currentTextChanged.connect(c.setToolTip)
            c.setToolTip(c.currentText())


class ScrollColumn(QScrollArea):
    """A side column that scrolls vertically and is never narrower than its content.

    Its minimum width follows the content's (a section opened later, a longer status text),
    up to ``cap``; content wider than that gets a horizontal scroll bar instead of being
    cut off at the right without a sign.
    """

    def __init__(self, widget: QWidget, cap: int = 420) -> None:
        super().__init__()
        self.cap = cap
        self.setWidget(widget)
        self.setWidgetResizable(True)
        widget.installEventFilter(self)
        self._fit()

    def eventFilter(self, obj, ev):  # noqa: N802 - Qt naming
        if obj is self.widget() and ev.type() in (QEvent.Type.LayoutRequest, QEvent.Type.Show):
            QTimer.singleShot(0, self._fit)
        return False

    def _fit(self) -> None:
        w = self.widget()
        if w is None:
            return
        need = w.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() + 4
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded if need > self.cap
                                          else Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        if self.minimumWidth() != min(need, self.cap):
            self.setMinimumWidth(min(need, self.cap))

    def clipped(self) -> int:
        """How many pixels of the content are out of sight to the right (0: none)."""
        w = self.widget()
        return max(0, w.minimumSizeHint().width() - self.viewport().width()) if w is not None else 0


def scroll_column(widget: QWidget, cap: int = 420) -> QScrollArea:
    return ScrollColumn(widget, cap)


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
