"""The masking panel: the tools (brush, rectangle, top p % of a class) beside their result.

Remove part of the image and see how every class's probability moves: the model runs
on the masked image as soon as the mask changes (the controller does that), and the
bars, the table and the masked image below show the outcome.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from alens_gui.core.masking import FILLS

from ..session import Session
from ..widgets import BarPlot
from ._util import combo, set_combo_data

TOOLS = (("navigate", "navigate"), ("brush", "brush"), ("rectangle", "rectangle"))


class MaskingPanel(QWidget):
    """Tool settings bound to the session; ``topRequested(index, percent)`` asks for a top-p mask."""

    topRequested = Signal(int, float)

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.tool = combo(list(TOOLS), "navigate: drag pans, wheel zooms, a click selects a class; "
                                       "brush and rectangle draw the mask on any map or on the image")
        self.brush = QSpinBox()
        self.brush.setRange(1, 200)
        self.brush.setSuffix(" px")
        self.fill = combo([(f, f) for f in FILLS], "what replaces the masked pixels")
        self.top_class = combo([])
        self.top_percent = QDoubleSpinBox()
        self.top_percent.setRange(0.5, 100.0)
        self.top_percent.setValue(20.0)
        self.top_percent.setSuffix(" %")
        top = QPushButton("Mask top")
        top.setToolTip("mask the top p % of pixels of this class's refined map (added to a mask already "
                       "drawn: Clear first to mask only these)")
        top.clicked.connect(lambda: self.topRequested.emit(max(0, self.top_class.currentIndex()),
                                                           self.top_percent.value()))
        self.undo = QPushButton("Undo")
        self.undo.clicked.connect(session.undo_mask)
        clear = QPushButton("Clear")
        clear.clicked.connect(session.clear_mask)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("tool", self.tool)
        form.addRow("brush radius", self.brush)
        form.addRow("fill", self.fill)
        row = QHBoxLayout()
        row.addWidget(top)
        row.addWidget(self.top_percent)
        row.addWidget(QLabel("of"))
        row.addWidget(self.top_class, 1)
        row2 = QHBoxLayout()
        row2.addWidget(self.undo)
        row2.addWidget(clear)
        row2.addStretch(1)
        self.plot = BarPlot("p before (blue) / after (orange)", "p")
        self.text = QLabel("Select a region to mask; the model then runs on the masked image.")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.preview = pg.GraphicsLayoutWidget()
        self.preview.setBackground("w")
        self.preview.setFixedHeight(120)
        self.preview_vb = self.preview.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.preview_img = pg.ImageItem()
        self.preview_vb.addItem(self.preview_img)
        # the preview keeps its place while hidden and the read-out its rows while empty: the
        # buttons above and below never move under the mouse (Clear moved "Mask top" 200 px)
        policy = self.preview.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.preview.setSizePolicy(policy)
        self.preview.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.addLayout(form)
        lay.addLayout(row)
        lay.addLayout(row2)
        lay.addWidget(self.plot)
        lay.addWidget(self.text)
        lay.addWidget(self.preview)
        self.tool.currentIndexChanged.connect(lambda _i: setattr(session, "tool", self.tool.currentData()))
        self.brush.valueChanged.connect(lambda v: setattr(session, "brush_radius", int(v)))
        self.fill.currentIndexChanged.connect(lambda _i: setattr(session, "fill", self.fill.currentData()))
        session.tool_changed.connect(self._pull)
        session.brush_radius_changed.connect(self._pull)
        session.fill_changed.connect(self._pull)
        session.explanation_changed.connect(self._on_explanation)
        session.selected_changed.connect(self._on_selected)
        session.mask_changed.connect(lambda _m: self.undo.setEnabled(session.can_undo_mask))
        session.mask_result_changed.connect(self._on_result)
        self._pull()
        self.undo.setEnabled(False)

    def _pull(self, *_args) -> None:
        s = self.session
        # bound per field: each widget's echo sets its field to the value it has (no signal)
        set_combo_data(self.tool, s.tool)
        self.brush.setValue(int(s.brush_radius))
        set_combo_data(self.fill, s.fill)
        self.brush.setEnabled(s.tool == "brush")

    def _on_explanation(self, expl) -> None:
        if expl is None:
            return
        if self.session.mask_result is None:
            self.text.setText(self._empty_text())
        items = [f"{int(c)} {n}" for c, n in zip(expl.classes, expl.class_names)]
        if items != [self.top_class.itemText(i) for i in range(self.top_class.count())]:
            self.top_class.clear()  # (read when "Mask top" is clicked: nothing listens to its changes)
            self.top_class.addItems(items)
            self._on_selected(self.session.selected)

    def _on_selected(self, index: int) -> None:
        if 0 <= index < self.top_class.count():
            self.top_class.setCurrentIndex(index)

    def _empty_text(self) -> str:
        """The read-out with no mask: the explanation's classes with empty values (the same rows
        as a result has, so nothing below moves when one arrives or is cleared)."""
        expl = self.session.explanation
        head = "Select a region to mask; the model then runs on the masked image."
        if expl is None:
            return head
        rows = "".join(f"<tr><td>{int(c)} {html.escape(n)}</td><td align='right'>–</td><td align='right'>–</td>"
                       f"<td align='right'>–</td></tr>" for c, n in zip(expl.classes, expl.class_names))
        return (f"{head}<br><table cellspacing='3'><tr><th align='left'>class</th><th>before</th><th>after</th>"
                f"<th>change</th></tr>{rows}</table>")

    def _on_result(self, r) -> None:
        if r is None:
            self.plot.set_bars([], [], [])
            self.text.setText(self._empty_text())
            self.preview.hide()
            return
        expl = self.session.explanation
        names = {int(c): n for c, n in zip(expl.classes, expl.class_names)} if expl is not None else {}
        labels = [names.get(int(c), str(c)) for c in r.classes]
        self.plot.set_bars(labels, r.before, r.after)
        rows = "".join(
            f"<tr><td>{int(c)} {html.escape(names.get(int(c), ''))}</td><td align='right'>{b:.3f}</td>"
            f"<td align='right'>{a:.3f}</td><td align='right'>{a - b:+.3f}</td></tr>"
            for c, b, a in zip(r.classes, r.before, r.after)
        )
        self.text.setText(
            f"{100 * r.fraction:.1f}% of the image masked, fill: {html.escape(r.fill)}<br><table cellspacing='3'>"
            f"<tr><th align='left'>class</th><th>before</th><th>after</th><th>change</th></tr>{rows}</table>"
        )
        self.preview_img.setImage(np.asarray(r.masked_image), levels=(0.0, 1.0))
        self.preview_vb.autoRange(padding=0.0)
        self.preview.show()
