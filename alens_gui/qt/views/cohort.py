"""The Cohort view: what the model uses for each class across the gallery's folder.

Pick a class: its strategies are rows (the prototype map, the share, a strip of member
thumbnails), from the refined maps or, to compare, the base maps; the embedding is a
scatter (hover shows the image's name and its map, a click opens it in the analysis view);
the territory frequency map shows where the class wins. Everything is computed in the
background (explanations from the result cache first) with progress and cancel, and kept
per folder and settings, so going back to a cohort is instant.

The view only draws: the work (the cohort's settings, its task, the cohorts kept) is the
:class:`~alens_gui.qt.cohortcontrol.CohortController`'s, which writes the session's ``cohort``,
``cohort_status`` and ``cohort_activity`` (the cohort task's state: the progress line, *Find
strategies* and *Cancel* read it); the buttons ask for work through this view's signals.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..messages import TaskState

PROTO = 72
BY = (("in the class set", "classset"), ("predicted as", "predicted"), ("labelled (sub-folder)", "label"))


def _qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def map_rgb(m: np.ndarray) -> np.ndarray:
    """A signed map as RGB on white (the diverging colour map of the maps view)."""
    from alens_gui.core.colors import lut

    table = lut(True, n=255)
    m = np.nan_to_num(np.asarray(m, dtype=np.float32))
    lim = float(np.percentile(np.abs(m), 99.5)) or float(np.abs(m).max()) or 1.0  # as the maps view: robust
    idx = np.clip(np.round((np.clip(m / lim, -1, 1) + 1) / 2 * 254), 0, 254).astype(int)
    rgba = table[idx].astype(np.float32)
    a = rgba[..., 3:] / 255.0
    return np.round(rgba[..., :3] * a + 255 * (1 - a)).astype(np.uint8)


def strip(thumbs: list[np.ndarray], gap: int = 2) -> np.ndarray:
    h = max(t.shape[0] for t in thumbs)
    parts = [np.pad(t, ((0, h - t.shape[0]), (0, gap), (0, 0)), constant_values=255) for t in thumbs]
    return np.concatenate(parts, axis=1)


class CohortView(QWidget):
    """See the module docstring. Draws the session's ``cohort``, ``cohort_status`` and
    ``cohort_activity``; the class picker and the base/refined toggle choose what is drawn.

    Signals
    -------
    computeRequested(str, int, str)
        Find the folder's strategies: the grouping (``classset``, ``predicted``, ``label``), the
        number of strategies per class (0: auto) and two label groups ``"A,B"`` (or "").
    cancelRequested()
        Stop the cohort being computed.
    openRequested(int)
        A row of the session's gallery to open in the analysis view.
    """

    computeRequested = Signal(str, int, str)
    cancelRequested = Signal()
    openRequested = Signal(int)

    def __init__(self, session, parent=None) -> None:
        import pyqtgraph as pg

        super().__init__(parent)
        self.session = session
        self.compute_button = QPushButton("Find strategies")
        self.compute_button.setToolTip("explain the gallery's images (cached ones are read, not explained again) "
                                       "and cluster each class's refined maps")
        self.compute_button.clicked.connect(self.compute)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.by_combo = QComboBox()
        for text, data in BY:
            self.by_combo.addItem(text, data)
        self.clusters = QSpinBox()
        self.clusters.setRange(0, 12)
        self.clusters.setSpecialValueText("auto")
        self.clusters.setToolTip("number of strategies per class; auto: the eigengap")
        self.class_combo = QComboBox()
        # the user's choice only: refilling the list for a new cohort shows its class once, from _set_cohort
        self.class_combo.activated.connect(lambda _i: self.show_class())
        self.base_box = QCheckBox("base maps")
        self.base_box.setToolTip("strategies of the base maps, to compare with the lens's refined maps")
        self.base_box.toggled.connect(lambda _on: self.show_class())
        self.groups_edit = QLineEdit()
        self.groups_edit.setPlaceholderText("compare groups A,B")
        self.groups_edit.setToolTip("two sub-folders (true labels) of the gallery's folder: each class's mean refined "
                                    "map in each, their difference and where it is more than chance")
        self.status = QLabel(session.cohort_status or "Find strategies groups the images of the gallery's folder "
                                                      "by what the model uses for each class.")
        self.status.setWordWrap(True)
        bar = QHBoxLayout()
        for w in (self.compute_button, self.cancel_button, QLabel("images"), self.by_combo, QLabel("strategies"),
                  self.clusters, self.groups_edit, QLabel("class"), self.class_combo, self.base_box):
            bar.addWidget(w)
        bar.addStretch(1)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["prototype", "share", "members"])
        self.table.setIconSize(QSize(PROTO, PROTO))
        self.table.verticalHeader().setDefaultSectionSize(PROTO + 6)
        self.table.verticalHeader().hide()
        self.table.setColumnWidth(0, PROTO + 10)
        self.table.setColumnWidth(1, 110)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(140)
        self.plot.setBackground("w")
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.scatter = pg.ScatterPlotItem(size=9, hoverable=True, tip=None)
        self.scatter.sigClicked.connect(self._clicked)
        self.scatter.sigHovered.connect(self._hovered)
        self.plot.addItem(self.scatter)
        self.hover = QLabel("hover over a point: the image and its map")
        self.hover.setMinimumHeight(PROTO)
        self.territory = QLabel()
        self.territory.setAlignment(Qt.AlignmentFlag.AlignCenter)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.plot, 3)
        below = QHBoxLayout()
        below.addWidget(self.hover)
        below.addWidget(self.territory)
        rv.addLayout(below)
        self.groups_label = QLabel()
        self.groups_label.setWordWrap(True)
        rv.addWidget(self.groups_label)
        self.groups_note = QLabel()
        self.groups_note.setWordWrap(True)
        rv.addWidget(self.groups_note)
        # the embedding, territory and group maps scroll inside the dock: their pictures set no
        # minimum height on it, so showing a cohort never squeezes the maps above to a strip
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(right)
        self.table.setMinimumHeight(PROTO + 40)
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(scroll)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(bar)
        lay.addWidget(self.status)
        lay.addWidget(split, 1)
        session.cohort_changed.connect(self._set_cohort)
        session.cohort_status_changed.connect(self.status.setText)
        session.cohort_activity_changed.connect(self._on_activity)
        if session.cohort is not None:
            self._set_cohort(session.cohort)
        self._on_activity(session.cohort_activity)

    @property
    def cohort(self):
        """The cohort drawn (the session's)."""
        return self.session.cohort

    def compute(self) -> None:
        """Ask for the folder's strategies with the choices of the bar (the controller computes them,
        or shows the ones kept for these settings)."""
        self.computeRequested.emit(self.by_combo.currentData(), self.clusters.value(), self.groups_edit.text())

    def _on_activity(self, state: TaskState) -> None:
        """The cohort task's state: its progress line; Find strategies while none runs, Cancel while one does."""
        self.compute_button.setEnabled(not state.busy)
        self.cancel_button.setEnabled(state.busy and not state.cancelled)
        if state.busy:
            if state.message:
                self.status.setText(f"{state.message} ({state.done:g} of {state.total:g})" if state.total
                                    else state.message)
        else:
            self.status.setText(self.session.cohort_status or self.status.text())

    # -- showing ----------------------------------------------------------------------------------
    def _set_cohort(self, cohort) -> None:
        if cohort is None:
            self.class_combo.clear()
            self.show_class()
            return
        current = self.class_combo.currentData()
        self.class_combo.clear()
        for c, cc in cohort.classes.items():
            self.class_combo.addItem(f"{cc.class_name} ({len(cc.members)})", c)
        pick = self.class_combo.findData(current)
        self.class_combo.setCurrentIndex(max(pick, 0))
        self.show_class()

    def current(self):
        if self.cohort is None:
            return None, None
        cc = self.cohort.classes.get(self.class_combo.currentData())
        if cc is None:
            return None, None
        return cc, (cc.base if self.base_box.isChecked() else cc.refined)

    def show_class(self) -> None:
        cc, cl = self.current()
        self.table.setRowCount(0)
        self.scatter.clear()
        self.territory.clear()
        self.groups_label.clear()
        self.groups_note.clear()
        if cl is None:
            return
        items = self.cohort.items
        self.table.setRowCount(len(cl.strategies))
        for i, s in enumerate(cl.strategies):
            icon = QTableWidgetItem()
            icon.setIcon(QIcon(QPixmap.fromImage(_qimage(map_rgb(s.prototype)))))
            self.table.setItem(i, 0, icon)
            self.table.setItem(i, 1, QTableWidgetItem(f"{100 * s.share:.0f}% ({len(s.members)})"
                                                      + ("\nwins nothing" if s.empty else "")))
            members = [items[cc.members[m]] for m in s.members]
            label = QLabel()
            label.setPixmap(QPixmap.fromImage(_qimage(strip([it.thumb for it in members[:12]]))))
            label.setToolTip("\n".join(Path(it.path).name for it in members[:40]))
            self.table.setCellWidget(i, 2, label)
        import pyqtgraph as pg

        colors = [pg.intColor(int(lab), hues=max(cl.n_clusters, 3)) for lab in cl.labels]
        self.scatter.setData(pos=np.asarray(cl.embedding, dtype=float), brush=colors,
                             data=list(range(len(cc.members))))
        self.plot.setTitle(f"{cl.embedding_method} of {cc.class_name}'s "
                           f"{'base' if self.base_box.isChecked() else 'refined'} maps", size="8pt")
        if cc.territory is not None:
            freq = cc.territory.frequency
            rgb = np.round(np.stack([1 - freq, 1 - freq * 0.6, np.ones_like(freq)], axis=-1) * 255).astype(np.uint8)
            self.territory.setPixmap(QPixmap.fromImage(_qimage(rgb)).scaled(
                160, 160, Qt.AspectRatioMode.KeepAspectRatio))
            self.territory.setToolTip(f"where {cc.class_name} wins: {100 * cc.territory.area:.1f}% of the image on "
                                      f"average, margin {cc.territory.margin:.2f}")

        g = cc.groups
        if g is not None:
            sig = np.where(g.significant[..., None], np.array([20, 20, 20]), np.array([235, 235, 235]))
            sig = _resize_rgb(sig.astype(np.uint8), g.mean_a.shape)
            gap = np.full((g.mean_a.shape[0], 4, 3), 255, np.uint8)
            row = np.concatenate([map_rgb(g.mean_a), gap, map_rgb(g.mean_b), gap, map_rgb(g.difference), gap, sig],
                                 axis=1)
            self.groups_label.setPixmap(QPixmap.fromImage(_qimage(row)).scaledToHeight(110))
            self.groups_label.setToolTip(
                f"mean of {g.groups[0]} ({g.counts[0]}), mean of {g.groups[1]} ({g.counts[1]}), difference, "
                f"significant pixels (family-wise {g.alpha}, {g.permutations} permutations): "
                f"{100 * g.significant.mean():.1f}% of the map")
            self.groups_note.setText(
                f"{html.escape(g.groups[0])} | {html.escape(g.groups[1])} | difference | significant: "
                f"{100 * g.significant.mean():.1f}% of the map" + (f". {html.escape(g.note)}" if g.note else ""))

    def _member(self, point) -> tuple | None:
        cc, cl = self.current()
        if cc is None:
            return None
        k = int(point.data())
        return cc, cl, k, self.cohort.items[cc.members[k]]

    def _hovered(self, _item, points, _event=None) -> None:
        if points is None or len(points) == 0:
            return
        found = self._member(points[0])
        if found is None:
            return
        cc, cl, k, item = found
        pos = item.position(cc.class_index)
        maps = item.base if self.base_box.isChecked() else item.refined
        both = np.concatenate([
            item.thumb,
            np.full((item.thumb.shape[0], 4, 3), 255, np.uint8),
            np.asarray(_resize_rgb(map_rgb(maps[pos].astype(np.float32)), item.thumb.shape[:2])),
        ], axis=1)
        self.hover.setPixmap(QPixmap.fromImage(_qimage(both)).scaled(
            2 * both.shape[1], 2 * both.shape[0], Qt.AspectRatioMode.KeepAspectRatio))
        self.hover.setToolTip(html.escape(item.path))
        self.hover.setText("")
        self.hover.setAccessibleName(Path(item.path).name)

    def _clicked(self, _item, points, _event=None) -> None:
        if points is None or len(points) == 0:
            return
        found = self._member(points[0])
        if found is None:
            return
        path = found[3].path
        for i, r in enumerate(self.session.gallery.rows):
            if str(r.path) == path:
                self.openRequested.emit(i)
                return


def _resize_rgb(rgb: np.ndarray, hw) -> np.ndarray:
    from alens_gui.core.geometry import resize_image

    out = resize_image(rgb.astype(np.float32) / 255.0, tuple(hw), interpolation="nearest")
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)
