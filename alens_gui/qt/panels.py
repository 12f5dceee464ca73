"""Side panels: hover distribution, probabilities, mask before/after, notifications, forms.

Each panel draws from :class:`~alens_gui.qt.model.ExplanationModel` signals; forms are
built generically from the core's declarations (method ``Option`` s, lens choices).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:  # the registry imports torch; keep it out of GUI start-up
    from alens_gui.core.methods.base import MethodInfo, Option

from .model import ExplanationModel

BAR_BRUSH = QColor(70, 120, 200)
AFTER_BRUSH = QColor(230, 120, 40)


def short(name: str, n: int = 14) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def _bar_plot(title: str, ylabel: str) -> pg.PlotWidget:
    w = pg.PlotWidget(title=title)
    w.setBackground("w")
    w.setMenuEnabled(False)
    w.setMouseEnabled(x=False, y=False)
    w.hideButtons()
    w.setLabel("left", ylabel)
    w.getAxis("left").enableAutoSIPrefix(False)
    w.setMinimumHeight(150)
    return w


class DistributionPanel(QWidget):
    """The class distribution S(pixel) under the cursor, with the raw base values."""

    def __init__(self, model: ExplanationModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.values: np.ndarray | None = None
        self.base_values: np.ndarray | None = None
        self.pixel: tuple[int, int] = (-1, -1)
        self.plot = _bar_plot("class distribution at the cursor", "S")
        self.plot.setYRange(0, 1, padding=0.02)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.6, brush=BAR_BRUSH)
        self.plot.addItem(self.bars)
        self.chance = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen("r", style=Qt.PenStyle.DashLine))
        self.plot.addItem(self.chance)
        self.text = QLabel("move the mouse over a map")
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)
        lay.addWidget(self.text)
        model.hoverChanged.connect(self.update_pixel)
        model.changed.connect(lambda _e: self.update_pixel(*self.model.hover))

    def update_pixel(self, y: int, x: int) -> None:
        expl = self.model.explanation
        self.pixel = (y, x)
        if expl is None or y < 0:
            self.values = None
            return
        d = expl.distribution_at(y, x)
        base = expl.base[:, y, x].astype(np.float64)
        refined = expl.refined[:, y, x].astype(np.float64)
        self.values, self.base_values = d, base
        k = expl.k
        self.bars.setOpts(x=np.arange(k), height=d, width=0.6, brush=BAR_BRUSH)
        self.plot.getAxis("bottom").setTicks([[(i, short(n)) for i, n in enumerate(expl.class_names)]])
        self.chance.setPos(1.0 / k + expl.lens.tau)
        rows = "".join(
            f"<tr><td>{int(c)} {n}</td><td align='right'>{s:.3f}</td><td align='right'>{b:.3g}</td>"
            f"<td align='right'>{r + 0.0:.3g}</td></tr>"
            for c, n, s, b, r in zip(expl.classes, expl.class_names, d, base, refined)
        )
        self.text.setText(
            f"pixel (row {y}, col {x}); dashed line: 1/K + τ<br><table cellspacing='4'>"
            f"<tr><th align='left'>class</th><th>S</th><th>base</th><th>refined</th></tr>{rows}</table>"
        )


class ProbabilityPanel(QWidget):
    """The class set's softmax probabilities (bars) and the model's top-5 (text)."""

    def __init__(self, model: ExplanationModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.plot = _bar_plot("class-set probabilities", "p")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.6, brush=BAR_BRUSH)
        self.plot.addItem(self.bars)
        self.top5 = QLabel("")
        self.top5.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)
        lay.addWidget(self.top5)
        model.changed.connect(self._on_changed)

    def _on_changed(self, expl) -> None:
        if expl is None:
            return
        self.bars.setOpts(x=np.arange(expl.k), height=expl.probs, width=0.6, brush=BAR_BRUSH)
        self.plot.getAxis("bottom").setTicks([[(i, short(n)) for i, n in enumerate(expl.class_names)]])
        self.plot.setYRange(0, max(1e-3, float(np.max(expl.probs))) * 1.1, padding=0)
        self.top5.setText(
            "<b>model top-5</b><br>" + "<br>".join(f"{c} {n}: {p:.3f}" for c, n, p in expl.top5)
        )


class MaskResultPanel(QWidget):
    """Per class: probability before and after masking, and the change."""

    def __init__(self, model: ExplanationModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.plot = _bar_plot("masking: before (blue) / after (orange)", "p")
        self.before = pg.BarGraphItem(x=[], height=[], width=0.35, brush=BAR_BRUSH)
        self.after = pg.BarGraphItem(x=[], height=[], width=0.35, brush=AFTER_BRUSH)
        self.plot.addItem(self.before)
        self.plot.addItem(self.after)
        self.text = QLabel("select a region to mask; the model then runs on the masked image")
        self.text.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)
        lay.addWidget(self.text)
        model.maskResultChanged.connect(self._on_result)

    def _on_result(self, r) -> None:
        if r is None:
            self.before.setOpts(x=[], height=[])
            self.after.setOpts(x=[], height=[])
            self.text.setText("select a region to mask; the model then runs on the masked image")
            return
        k = len(r.classes)
        x = np.arange(k)
        self.before.setOpts(x=x - 0.19, height=r.before, width=0.35, brush=BAR_BRUSH)
        self.after.setOpts(x=x + 0.19, height=r.after, width=0.35, brush=AFTER_BRUSH)
        expl = self.model.explanation
        names = {int(c): n for c, n in zip(expl.classes, expl.class_names)} if expl is not None else {}
        self.plot.getAxis("bottom").setTicks([[(i, short(names.get(int(c), str(c)))) for i, c in enumerate(r.classes)]])
        self.plot.setYRange(0, max(1e-3, float(max(r.before.max(), r.after.max()))) * 1.1, padding=0)
        rows = "".join(
            f"<tr><td>{int(c)} {names.get(int(c), '')}</td><td align='right'>{b:.3f}</td>"
            f"<td align='right'>{a:.3f}</td><td align='right'>{a - b:+.3f}</td></tr>"
            for c, b, a in zip(r.classes, r.before, r.after)
        )
        self.text.setText(
            f"{100 * r.fraction:.1f}% of the image masked, fill: {r.fill}<br><table cellspacing='4'>"
            f"<tr><th align='left'>class</th><th>before</th><th>after</th><th>change</th></tr>{rows}</table>"
        )


class NotificationArea(QListWidget):
    """The one place where every error, warning and notice is shown (newest on top)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.messages: list[tuple[str, str]] = []
        self.setMaximumHeight(90)
        self.setWordWrap(True)

    def notify(self, text: str, level: str = "info") -> None:
        self.messages.append((level, text))
        stamp = time.strftime("%H:%M:%S")
        item = QListWidgetItem(f"{stamp}  {level.upper()}: {text}" if level != "info" else f"{stamp}  {text}")
        if level == "error":
            item.setForeground(QColor(180, 0, 0))
        elif level == "warning":
            item.setForeground(QColor(160, 100, 0))
        self.insertItem(0, item)
        while self.count() > 200:
            self.takeItem(self.count() - 1)

    def errors(self) -> list[str]:
        return [t for lvl, t in self.messages if lvl == "error"]


class OptionsForm(QWidget):
    """Editors for a method's options, built from its ``Option`` declarations alone."""

    changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.editors: dict[str, QWidget] = {}
        self.info: MethodInfo | None = None

    def set_method(self, info: MethodInfo) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors = {}
        self.info = info
        for name, opt in info.options.items():
            ed = self._editor(opt)
            ed.setToolTip(opt.help)
            ed.setObjectName(f"option_{name}")
            self.editors[name] = ed
            self.form.addRow(name.replace("_", " "), ed)

    def _editor(self, opt: Option) -> QWidget:
        d = opt.default
        if opt.choices is not None:
            w = QComboBox()
            for c in opt.choices:
                w.addItem(str(c), c)
            w.setCurrentIndex(list(opt.choices).index(d) if d in opt.choices else 0)
            w.currentIndexChanged.connect(self.changed)
            return w
        if isinstance(d, bool):
            w = QCheckBox()
            w.setChecked(d)
            w.toggled.connect(self.changed)
            return w
        if isinstance(d, int):
            w = QSpinBox()
            w.setRange(int(opt.minimum if opt.minimum is not None else -1_000_000),
                       int(opt.maximum if opt.maximum is not None else 1_000_000))
            w.setValue(d)
            w.valueChanged.connect(self.changed)
            return w
        if isinstance(d, float):
            w = QDoubleSpinBox()
            w.setDecimals(4)
            w.setRange(opt.minimum if opt.minimum is not None else -1e6, opt.maximum if opt.maximum is not None else 1e6)
            w.setSingleStep(0.01 if abs(d) < 1 else 1.0)
            w.setValue(d)
            w.valueChanged.connect(self.changed)
            return w
        w = QLineEdit("" if d is None else str(d))
        w.setPlaceholderText("automatic" if not d else "")
        w.editingFinished.connect(self.changed)
        return w

    def values(self) -> dict:
        out = {}
        for name, w in self.editors.items():
            if isinstance(w, QComboBox):
                out[name] = w.currentData()
            elif isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
                out[name] = w.value()
            else:
                out[name] = w.text().strip()
        return out

    def set_value(self, name: str, value) -> None:
        w = self.editors[name]
        if isinstance(w, QComboBox):
            w.setCurrentIndex(w.findData(value))
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.setValue(value)
        else:
            w.setText(str(value))


class ClassList(QWidget):
    """A searchable, checkable list of all class names (the user's own class set)."""

    changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("search classes (name or index)…")
        self.list = QListWidget()
        self.list.setMinimumHeight(120)
        self.summary = QLabel("no classes picked")
        self.summary.setWordWrap(True)
        self.clear_button = QPushButton("Uncheck all")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.search)
        lay.addWidget(self.list)
        lay.addWidget(self.summary)
        lay.addWidget(self.clear_button)
        self.search.textChanged.connect(self._filter)
        self.list.itemChanged.connect(self._on_item)
        self.clear_button.clicked.connect(lambda: self.set_checked([]))
        self._order: list[int] = []
        self._names: list[str] = []

    def set_names(self, names: list[str]) -> None:
        keep = [c for c in self._order if c < len(names)]
        self._names = list(names)
        self.list.blockSignals(True)
        self.list.clear()
        for i, n in enumerate(names):
            item = QListWidgetItem(f"{i} {n}")
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self._order = []
        self.set_checked(keep)
        self._filter(self.search.text())

    def _filter(self, text: str) -> None:
        t = text.strip().lower()
        for row in range(self.list.count()):
            item = self.list.item(row)
            item.setHidden(bool(t) and t not in item.text().lower())

    def _on_item(self, item: QListWidgetItem) -> None:
        c = int(item.data(Qt.ItemDataRole.UserRole))
        on = item.checkState() == Qt.CheckState.Checked
        if on and c not in self._order:
            self._order.append(c)
        elif not on and c in self._order:
            self._order.remove(c)
        self._update_summary()
        self.changed.emit()

    def _update_summary(self) -> None:
        if not self._order:
            self.summary.setText("no classes picked")
        else:
            self.summary.setText("picked: " + ", ".join(
                f"{c} {self._names[c]}" if c < len(self._names) else str(c) for c in self._order))

    def checked(self) -> list[int]:
        """Picked classes, in the order they were picked."""
        return list(self._order)

    def set_checked(self, classes) -> None:
        wanted = [int(c) for c in classes]
        self.list.blockSignals(True)
        for row in range(self.list.count()):
            item = self.list.item(row)
            c = int(item.data(Qt.ItemDataRole.UserRole))
            item.setCheckState(Qt.CheckState.Checked if c in wanted else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        self._order = [c for c in wanted if 0 <= c < self.list.count()] if self.list.count() else wanted
        self._update_summary()
        self.changed.emit()
