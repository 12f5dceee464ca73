"""The Cohort view: what the model uses for each class across the gallery's folder.

Pick a class: its strategies are rows (the prototype map, the share, a strip of member
thumbnails), from the refined maps or, to compare, the base maps; the embedding is a
scatter (hover shows the image's name and its map, a click opens it in the analysis view);
the territory frequency map shows where the class wins. Everything is computed in the
background (explanations from the result cache first) with progress and cancel, and kept
per folder and settings, so going back to a cohort is instant.
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
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..cohortjob import cohort_job
from ..sessionstate import run_settings

SLOT = "cohort"
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
    """See the module docstring.

    ``controller`` is the window's controller (its task runner, result cache, cache keys and
    settings check); nothing here touches the model but through the background job.

    Signals
    -------
    openRequested(int)
        A row of the session's gallery to open in the analysis view.
    """

    openRequested = Signal(int)

    def __init__(self, session, controller, parent=None) -> None:
        import pyqtgraph as pg

        super().__init__(parent)
        self.session = session
        self.controller = controller
        self.cohort = None
        self._kept: dict[tuple, object] = {}
        self._key: tuple | None = None
        self.compute_button = QPushButton("Find strategies")
        self.compute_button.setToolTip("explain the gallery's images (cached ones are read, not explained again) "
                                       "and cluster each class's refined maps")
        self.compute_button.clicked.connect(self.compute)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(lambda: controller.runner.cancel(SLOT))
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
        self.status = QLabel("Open a folder in the gallery, then find its strategies.")
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
        self.plot.setMinimumHeight(180)
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
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(bar)
        lay.addWidget(self.status)
        lay.addWidget(split, 1)
        controller.runner.progress.connect(self._progress)
        controller.runner.finished.connect(self._finished)

    # -- work -------------------------------------------------------------------------------------
    def _request(self):
        s = self.session
        rows = s.gallery.rows
        if s.model is None or not rows:
            return None, "open a folder in the gallery (and let the model load) first"
        try:
            method, options = self.controller.check_settings()
            settings = run_settings(s, method, options)
        except Exception as exc:  # a bad setting: one line, nothing runs
            return None, str(exc)
        by = self.by_combo.currentData()
        clusters = self.clusters.value() or "auto"
        groups = None
        text = self.groups_edit.text().strip()
        if text:
            parts = [p.strip() for p in text.split(",") if p.strip()]
            labels = {r.true_label for r in rows}
            if len(parts) != 2:
                return None, f"groups: name two sub-folders, e.g. benign,malignant; got {text!r}"
            missing = [p for p in parts if p not in labels]
            if missing:
                return None, f"groups: no sub-folder {missing[0]!r} in this folder"
            groups = (parts[0], parts[1])
        key = (s.folder, tuple(str(r.path) for r in rows), settings.key(), self.controller.gallery.model_id(), by, clusters,
               groups)
        return (key, settings, by, clusters, groups), ""

    def compute(self):
        """Compute the cohort in the background (or show the one kept for these settings)."""
        request, problem = self._request()
        if request is None:
            self.status.setText(problem)
            return None
        key, settings, by, clusters, groups = request
        if key in self._kept:
            self._set_cohort(key, self._kept[key])
            return None
        items = [(r.path, r.true_label) for r in self.session.gallery.rows]
        self.compute_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"explaining and grouping {len(items)} images…")

        def done(cohort) -> None:
            self._kept[key] = cohort
            self._set_cohort(key, cohort)

        return self.controller.runner.run(
            SLOT, cohort_job, self.session.model, items, settings, self.controller.cache,
            self.controller.gallery.explain_key_fn(settings), by, clusters, groups, label=f"cohort of {len(items)} images",
            on_return=done)

    def _progress(self, slot: str, done: float, total: float, message: str) -> None:
        if slot == SLOT:
            self.status.setText(f"{message} ({done:g} of {total:g})" if total else message)

    def _finished(self, slot: str, outcome: str) -> None:
        if slot != SLOT:
            return
        self.compute_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if outcome == "cancelled":
            self.status.setText("cancelled; nothing was changed")
        elif outcome == "error":
            self.status.setText("the cohort could not be computed (see the notifications)")

    # -- showing ----------------------------------------------------------------------------------
    def _set_cohort(self, key, cohort) -> None:
        self._key, self.cohort = key, cohort
        current = self.class_combo.currentData()
        self.class_combo.clear()
        for c, cc in cohort.classes.items():
            self.class_combo.addItem(f"{cc.class_name} ({len(cc.members)})", c)
        pick = self.class_combo.findData(current)
        self.class_combo.setCurrentIndex(max(pick, 0))
        notes = cohort.failures + cohort.notes
        self.status.setText(f"{len(cohort.items)} images, {len(cohort.classes)} classes"
                            + (f"; {len(cohort.failures)} failed" if cohort.failures else "")
                            + ("; " + "; ".join(notes[:3]) if notes else ""))
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
