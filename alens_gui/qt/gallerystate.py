"""The gallery's state: one row per image of an opened folder, as a Qt table model.

Rows hold the file, its true label (class sub-folders or ``labels.csv``), the model's
prediction and whether an explanation is cached; thumbnails are asked for only when a row
is drawn (:attr:`GalleryModel.thumbnailsWanted`), so a folder of 1,000 images costs the
GUI thread nothing per image until it is scrolled into view. Updates touch one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage

COLUMNS = ("", "file", "true label", "predicted", "p", "right?")
THUMB = 56


@dataclass
class GalleryRow:
    path: Path
    rel: str
    true_label: str | None = None
    pred: int | None = None
    pred_name: str = ""
    p: float | None = None
    top5: list | None = None
    explained: bool = False
    thumb: QImage | None = None
    asked: bool = False

    def correct(self, judge: LabelJudge | None = None) -> bool | None:
        """Whether the prediction matches the true label (None when either is unknown).

        ``judge`` knows the model's classes and output rule (a multi-label model is right when
        the true class's sigmoid is above 0.5); without one, labels are compared by name.
        """
        if self.true_label is None or self.pred is None:
            return None
        if judge is not None:
            return judge(self)
        label = self.true_label.strip().lower().replace("_", " ")
        if label.isdigit():
            return int(label) == self.pred
        return label == self.pred_name.strip().lower()


@dataclass(frozen=True)
class LabelJudge:
    """The model's side of right/wrong: its class names, WordNet ids and output rule."""

    class_names: tuple[str, ...]
    synsets: tuple[str, ...] | None = None
    output: str = "softmax"

    @classmethod
    def for_model(cls, loaded) -> LabelJudge:
        synsets = getattr(loaded, "synsets", None)
        return cls(tuple(loaded.class_names), tuple(synsets) if synsets else None,
                   getattr(loaded, "output", "softmax"))

    def __call__(self, row: GalleryRow) -> bool | None:
        from alens_gui.core.classsets import label_to_class, prediction_is_right

        label = label_to_class(row.true_label, self.class_names, self.synsets)
        if label is None:  # a label this model has no class for: right where the names agree, else not judged
            same = row.true_label.strip().lower().replace("_", " ") == row.pred_name.strip().lower()
            return True if same else None
        return prediction_is_right(label, row.pred, row.top5, self.output)


def thumbnail_image(rgb: np.ndarray) -> QImage:
    """A QImage that owns its copy of a (h, w, 3) uint8 array."""
    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = a.shape[:2]
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


#: What each column's marks mean (the header's tooltips).
HEADER_TIPS = {
    1: "● explained with the current settings (cached: opens at once)",
    2: "the true label: the class sub-folder the image lies in, or its row in labels.csv",
    3: "the model's top class",
    5: "✓ the prediction matches the true label, ✗ it does not; empty: no true label, or one the model "
       "has no class for",
}


class GalleryModel(QAbstractTableModel):
    """The rows of the open folder (see the module docstring).

    Signals
    -------
    thumbnailsWanted(list)
        Row numbers whose thumbnails were drawn before they were loaded (batched).
    """

    thumbnailsWanted = Signal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[GalleryRow] = []
        self.root: Path | None = None
        #: The loaded model's classes and output rule, for the right/wrong column (set_model).
        self.judge: LabelJudge | None = None
        #: What the user should know about the listing (sub-folders opened; why no labels).
        self.notes: list[str] = []
        self._wanted: list[int] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self._ask)

    # -- filling ---------------------------------------------------------------------------
    def set_rows(self, root: Path | None, rows: list[GalleryRow]) -> None:
        self.beginResetModel()
        self.root, self.rows = root, rows
        self._wanted = []
        self.endResetModel()

    def set_model(self, loaded) -> None:
        """Judge right and wrong with ``loaded``'s classes, WordNet ids and output rule."""
        self.judge = LabelJudge.for_model(loaded) if loaded is not None else None
        if self.rows:
            self.dataChanged.emit(self.index(0, 5), self.index(len(self.rows) - 1, 5))

    def row_of(self, path) -> int:
        p = str(Path(path))
        return next((i for i, r in enumerate(self.rows) if str(r.path) == p), -1)

    def update_prediction(self, i: int, record: dict | None, explained: bool | None = None) -> None:
        if not 0 <= i < len(self.rows):
            return
        r = self.rows[i]
        if record:
            r.pred, r.pred_name, r.p, r.top5 = int(record["top1"]), str(record["name"]), float(record["p"]), \
                record.get("top5")
        if explained is not None:
            r.explained = explained
        self.dataChanged.emit(self.index(i, 2), self.index(i, len(COLUMNS) - 1))

    def set_thumbnail(self, i: int, rgb: np.ndarray) -> None:
        if 0 <= i < len(self.rows):
            self.rows[i].thumb = thumbnail_image(rgb)
            self.dataChanged.emit(self.index(i, 0), self.index(i, 0))

    def forget_unloaded(self, rows) -> None:
        """Rows whose thumbnail never came (a cancelled or failed batch) are asked for again."""
        for i in rows:
            if 0 <= i < len(self.rows) and self.rows[i].thumb is None:
                self.rows[i].asked = False

    def _ask(self) -> None:
        wanted, self._wanted = self._wanted, []
        if wanted:
            self.thumbnailsWanted.emit(wanted)

    # -- Qt model ------------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt naming
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt naming
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 - Qt naming
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS.get(section)
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            if r.thumb is None and not r.asked:
                r.asked = True
                self._wanted.append(index.row())
                self._timer.start()
            return r.thumb
        ok = r.correct(self.judge)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 1:
                return r.rel + ("  ●" if r.explained else "")
            if col == 2:
                return r.true_label or ""
            if col == 3:
                return f"{r.pred} {r.pred_name}" if r.pred is not None else "…"
            if col == 4:
                return f"{r.p:.3f}" if r.p is not None else ""
            if col == 5:
                return "" if ok is None else ("✓" if ok else "✗ wrong")
        if role == Qt.ItemDataRole.UserRole:  # sort keys
            return (None, r.rel.lower(), (r.true_label or "").lower(), r.pred_name.lower(), r.p if r.p is not None
                    else -1.0, {False: 0, None: 1, True: 2}[ok])[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 5 and ok is not None:
            return QColor(0, 130, 0) if ok else QColor(190, 0, 0)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = str(r.path)
            if r.top5:
                tip += "\n" + "\n".join(f"{c} {n}: {p:.3f}" for c, n, p in r.top5)
            if r.explained:
                tip += "\nexplained with the current settings (cached)"
            return tip
        return None


class GalleryFilter(QSortFilterProxyModel):
    """Sorting by any column and filtering by text, by right/wrong and by class."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setSortRole(Qt.ItemDataRole.UserRole)
        self.text = ""
        self.show = "all"  # all | wrong | right | unlabelled
        self.cls = ""

    def set_filter(self, text: str | None = None, show: str | None = None, cls: str | None = None) -> None:
        begin = getattr(self, "beginFilterChange", None)  # Qt >= 6.10; invalidateFilter() before
        if begin is not None:
            begin()
        if text is not None:
            self.text = text.strip().lower()
        if show is not None:
            self.show = show
        if cls is not None:
            self.cls = cls
        if begin is not None:
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - older Qt
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:  # noqa: N802 - Qt naming
        model = self.sourceModel()
        r = model.rows[source_row]
        if self.text and self.text not in r.rel.lower() and self.text not in r.pred_name.lower() \
                and self.text not in (r.true_label or "").lower():
            return False
        ok = r.correct(model.judge)
        if self.show == "wrong" and ok is not False:
            return False
        if self.show == "right" and ok is not True:
            return False
        if self.show == "unlabelled" and r.true_label is not None:
            return False
        return not (self.cls and self.cls not in (r.pred_name, r.true_label or ""))
