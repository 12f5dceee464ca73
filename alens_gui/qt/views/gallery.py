"""The gallery: a table of the open folder's images (thumbnail, file, true label, prediction, right or wrong).

It sorts by any column (click a header; "right?" puts the wrong ones first) and filters by
text, by right/wrong and by class. Double-click (or Enter) opens an image in the analysis
view; two selected rows can be compared. The buttons ask the window for work through
signals; the rows are the session's :class:`~alens_gui.qt.gallerystate.GalleryModel`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..gallerystate import THUMB, GalleryFilter
from ..session import Session

SHOW = (("all images", "all"), ("wrong only", "wrong"), ("right only", "right"), ("unlabelled", "unlabelled"))


class GalleryView(QWidget):
    """See the module docstring.

    Signals
    -------
    openRequested(int)
        A row (of the session's gallery model) to open in the analysis view.
    compareRequested(int, int)
    explainAllRequested()
    reportRequested()
    """

    openRequested = Signal(int)
    compareRequested = Signal(int, int)
    explainAllRequested = Signal()
    reportRequested = Signal()
    openFolderRequested = Signal()
    cancelRequested = Signal()

    def __init__(self, session: Session, parent=None) -> None:
        from PySide6.QtWidgets import QComboBox

        super().__init__(parent)
        self.session = session
        self.proxy = GalleryFilter(self)
        self.proxy.setSourceModel(session.gallery)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 4)
        self.table.verticalHeader().hide()
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        self.table.setColumnWidth(0, THUMB + 8)
        self.table.setColumnWidth(1, 220)
        self.table.setColumnWidth(2, 120)
        self.table.setColumnWidth(3, 170)
        self.table.setColumnWidth(4, 60)
        self.table.doubleClicked.connect(lambda ix: self.openRequested.emit(self.proxy.mapToSource(ix).row()))
        self.table.activated.connect(lambda ix: self.openRequested.emit(self.proxy.mapToSource(ix).row()))
        self.title = QLabel("No folder open: File → Open folder…")
        self.search = QLineEdit()
        self.search.setPlaceholderText("filter by file or class…")
        self.search.textChanged.connect(lambda t: self.proxy.set_filter(text=t))
        self.show_combo = QComboBox()
        for text, data in SHOW:
            self.show_combo.addItem(text, data)
        self.show_combo.currentIndexChanged.connect(lambda _i: self.proxy.set_filter(show=self.show_combo.currentData()))
        open_button = QPushButton("Open folder…")
        open_button.clicked.connect(self.openFolderRequested)
        explain = QPushButton("Explain all")
        explain.setToolTip("explain every image with the current settings in the background; results are cached")
        explain.clicked.connect(self.explainAllRequested)
        compare = QPushButton("Compare the two selected")
        compare.clicked.connect(self._compare)
        report = QPushButton("Report the selected…")
        report.clicked.connect(self.reportRequested)
        # the folder's background work (Explain all, classifying): its progress and a Cancel
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("stop the folder's work; the images done so far stay cached")
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.task_label = QLabel("")
        self.task_label.setStyleSheet("color: #555;")
        self.progress.setMaximumWidth(160)
        for w in (self.progress, self.cancel_button, self.task_label):
            # their place is kept while hidden: the table never re-lays out when the work starts or ends
            policy = w.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            w.setSizePolicy(policy)
            w.hide()
        self.task_label.setMinimumWidth(40)
        bar = QHBoxLayout()
        bar.addWidget(open_button)
        bar.addWidget(self.title, 1)
        bar.addWidget(self.task_label)
        bar.addWidget(self.progress)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.search)
        bar.addWidget(self.show_combo)
        bar.addWidget(explain)
        bar.addWidget(compare)
        bar.addWidget(report)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(bar)
        lay.addWidget(self.table, 1)
        session.gallery.modelReset.connect(self._on_reset)
        session.gallery_activity_changed.connect(self._on_activity)

    def _on_activity(self, a) -> None:
        """Show the folder's work while it runs: what, how far (n of N) and a Cancel."""
        busy = a.busy
        for w in (self.progress, self.cancel_button, self.task_label):
            w.setVisible(busy)
        if not busy:
            return
        text = a.label + "…" + (f"  {a.message}" if a.message else "")
        self.task_label.setText(text)
        self.task_label.setToolTip(text)
        if a.total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(1.0, a.done / a.total)))
        else:
            self.progress.setRange(0, 0)  # busy, extent unknown yet

    def _on_reset(self) -> None:
        g = self.session.gallery
        n = len(g.rows)
        labelled = sum(r.true_label is not None for r in g.rows)
        why = next((note for note in g.notes if note.startswith("no true labels")), "")
        self.title.setText(f"<b>{html.escape(g.root.name) if g.root else ''}</b>: {n} images"
                           + (f", {labelled} with a true label" if labelled else "")
                           + (" — <span style='color:#a05000'>no true labels (hover for why)</span>" if why else ""))
        self.title.setToolTip(html.escape(why) if why else "")

    def selected_rows(self) -> list[int]:
        """Rows (of the session's gallery model) selected in the table, in table order."""
        picked = sorted(self.table.selectionModel().selectedRows(), key=lambda ix: ix.row())
        return [self.proxy.mapToSource(ix).row() for ix in picked]

    def select_rows(self, rows: Sequence[int]) -> None:
        """Select these rows (of the session's gallery model) in the table, as a click would."""
        sel = QItemSelection()
        for r in rows:
            ix = self.proxy.mapFromSource(self.session.gallery.index(r, 0))
            if ix.isValid():
                sel.select(ix, ix)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().select(sel, flags)

    def _compare(self) -> None:
        rows = self.selected_rows()
        if len(rows) == 2:
            self.compareRequested.emit(rows[0], rows[1])
        else:
            self.title.setText("select exactly two images (Ctrl+click) to compare them")

    def step(self, n: int) -> int | None:
        """Move the selection ``n`` rows (in table order) and return the gallery row it lands on."""
        count = self.proxy.rowCount()
        if not count:
            return None
        cur = self.table.currentIndex()
        r = 0 if not cur.isValid() else min(count - 1, max(0, cur.row() + n))
        ix = self.proxy.index(r, 1)
        self.table.setCurrentIndex(ix)
        self.table.selectRow(r)
        return self.proxy.mapToSource(ix).row()

    def sort_wrong_first(self) -> None:
        self.table.sortByColumn(5, Qt.SortOrder.AscendingOrder)
