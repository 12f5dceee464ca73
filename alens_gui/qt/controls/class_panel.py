"""The class-set panel: top-k (+ lowest), best vs worst, the user's own classes, saved presets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..session import ClassRequest, Session
from ._util import combo, set_combo_data

MODES = (("top-k", "topk"), ("best vs worst", "best_vs_worst"), ("my classes", "picked"),
         ("the grid's tiles", "tiles"))


class PresetStore:
    """Named class sets saved as JSON (``{"name": [classes...]}``) in the config folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.problem: str | None = None  # why the last file set aside could not be read

    def load(self) -> dict[str, list[int]]:
        return self._read()[0]

    def _read(self) -> tuple[dict[str, list[int]], dict[str, list], str | None]:
        """The presets the GUI uses (class indices), every entry of the file as the command line reads
        it (indices or class names, kept as they are when the GUI saves), and why the file could not be
        read (None: it could, or there is none)."""
        import os

        from alens_gui.core.classsets import load_class_presets
        from alens_gui.core.errors import AlensError

        if not os.path.lexists(self.path):
            return {}, {}, None
        try:  # the one reader of the format: size and nesting limits, regular files only (safeio)
            entries = load_class_presets(self.path)
        except AlensError as exc:
            return {}, {}, str(exc)
        usable = {k: [int(c) for c in v] for k, v in entries.items() if all(isinstance(c, int) for c in v)}
        return usable, entries, None

    def save(self, name: str, classes: Sequence[int]) -> Path | None:
        """Add (or replace) one preset. A file that could not be read whole is not overwritten: it
        is kept beside the new one (``class_presets.json.unreadable``, numbered if that exists),
        whose path is returned (None when nothing had to be kept)."""
        import os

        from alens_gui.core.outputs import atomic_write

        _usable, data, problem = self._read()  # (entries by class name, for the command line, are kept)
        kept = None
        if problem is not None:
            kept = self.path.with_name(self.path.name + ".unreadable")
            n = 1
            while os.path.lexists(kept):
                n += 1
                kept = self.path.with_name(f"{self.path.name}.unreadable-{n}")
            os.replace(self.path, kept)
            self.problem = problem
        data[name] = [int(c) for c in classes]
        text = json.dumps(data, indent=2, sort_keys=True).encode("utf-8")
        atomic_write(self.path, lambda f: f.write(text))
        return kept


class ClassList(QWidget):
    """A searchable, checkable list of all class names; remembers the order classes were picked.

    The picked order is the list's state; an item's check mark follows it, and a check mark that
    already agrees with it changes nothing, so setting the marks from code sends no ``changed``."""

    changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("search classes (name or index)…")
        self.list = QListWidget()
        self.list.setMinimumHeight(110)
        self.summary = QLabel("no classes picked")
        self.summary.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.search)
        lay.addWidget(self.list)
        lay.addWidget(self.summary)
        self.search.textChanged.connect(self._filter)
        self.list.itemChanged.connect(self._on_item)
        self._order: list[int] = []
        self._names: list[str] = []

    def set_names(self, names: list[str]) -> None:
        self._order = [c for c in self._order if c < len(names)]
        self._names = list(names)
        self.list.clear()
        for i, n in enumerate(names):
            item = QListWidgetItem(f"{i} {n}")
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if i in self._order else Qt.CheckState.Unchecked)
            self.list.addItem(item)  # (an item gets its mark before it is in the list: no itemChanged)
        self._summary()
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
        else:
            return  # the mark already agrees with the picked order: set from code, nothing changed
        self._summary()
        self.changed.emit()

    def _summary(self) -> None:
        self.summary.setText("picked: " + ", ".join(
            f"{c} {self._names[c]}" if c < len(self._names) else str(c) for c in self._order)
            if self._order else "no classes picked")

    def checked(self) -> list[int]:
        """Picked classes, in the order they were picked."""
        return list(self._order)

    def set_checked(self, classes, emit: bool = True) -> None:
        wanted = [int(c) for c in classes]
        n = self.list.count()
        self._order = [c for c in wanted if 0 <= c < n] if n else wanted  # first: the marks then agree
        for row in range(n):
            item = self.list.item(row)
            state = Qt.CheckState.Checked if int(item.data(Qt.ItemDataRole.UserRole)) in wanted \
                else Qt.CheckState.Unchecked
            if item.checkState() != state:
                item.setCheckState(state)
        self._summary()
        if emit:
            self.changed.emit()


class ClassSetPanel(QWidget):
    """Binds ``session.class_request``; presets are named lists of classes kept in a JSON file."""

    notified = Signal(str, str)

    def __init__(self, session: Session, presets: PresetStore, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.presets = presets
        self.mode = combo(list(MODES), "which classes compete in the lens")
        self.k = QSpinBox()
        self.k.setRange(1, 50)
        self.k.setToolTip("the k most probable classes")
        self.lowest = QCheckBox("+ lowest")
        self.lowest.setToolTip("add the least probable class (a class the image is clearly not)")
        self.classes = ClassList()
        self.preset_combo = combo([("presets…", "")])
        save = QPushButton("Save preset…")
        save.clicked.connect(self._save_dialog)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.addWidget(self.mode)
        row = QHBoxLayout()
        row.addWidget(QLabel("k"))
        row.addWidget(self.k)
        row.addWidget(self.lowest)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addWidget(self.classes)
        row = QHBoxLayout()
        row.addWidget(self.preset_combo, 1)
        row.addWidget(save)
        lay.addLayout(row)
        # per field, no signal blocker: a control writes only its own part of the request, and only
        # when it says something else than the session, so setting it from the session writes nothing
        self.mode.currentIndexChanged.connect(lambda _i: self._mode_chosen())
        self.k.valueChanged.connect(lambda v: self._set_topk(k=int(v)))
        self.lowest.toggled.connect(lambda on: self._set_topk(with_lowest=bool(on)))
        self.classes.changed.connect(self._picked_changed)
        self.preset_combo.activated.connect(self._preset_chosen)
        session.class_request_changed.connect(self.pull)
        session.model_changed.connect(self._on_model)
        session.image_request_changed.connect(lambda _r: self._enable())
        self.refresh_presets()
        self.pull(session.class_request)

    def push(self) -> None:
        kind = self.mode.currentData()
        if kind == "topk":
            req = ClassRequest(kind="topk", k=self.k.value(), with_lowest=self.lowest.isChecked())
        elif kind == "picked":
            req = ClassRequest(kind="picked", classes=tuple(self.classes.checked()))
        else:
            req = ClassRequest(kind=kind)
        self.session.class_request = req
        self._enable()

    def _mode_chosen(self) -> None:
        if self.mode.currentData() != self.session.class_request.kind:
            self.push()

    def _set_topk(self, **changes) -> None:
        req = self.session.class_request
        if req.kind == "topk":  # (k and "+ lowest" are greyed for the other kinds)
            self.session.class_request = replace(req, **changes)

    def pull(self, req: ClassRequest) -> None:
        set_combo_data(self.mode, req.kind)
        if req.kind == "topk":
            if self.k.value() != req.k:
                self.k.setMaximum(max(self.k.maximum(), req.k))  # shown as it is, not clamped and written back
                self.k.setValue(req.k)
            if self.lowest.isChecked() != req.with_lowest:
                self.lowest.setChecked(req.with_lowest)
        if req.kind == "picked" and list(req.classes) != self.classes.checked():
            self.classes.set_checked(req.classes, emit=False)
        self._enable()

    def _enable(self) -> None:
        kind = self.session.class_request.kind
        self.k.setEnabled(kind == "topk")
        self.lowest.setEnabled(kind == "topk")
        self.classes.setVisible(kind == "picked")
        item = self.mode.model().item(self.mode.findData("tiles"))
        if item is not None:
            item.setEnabled(bool(self.session.image_request.tiles))

    def _picked_changed(self) -> None:
        """Picking a class in the list picks "my classes" (the session's change sets the mode)."""
        self.session.class_request = ClassRequest(kind="picked", classes=tuple(self.classes.checked()))

    def _on_model(self, loaded) -> None:
        if loaded is not None:
            self.classes.set_names(loaded.class_names)

    # -- presets --------------------------------------------------------------------------
    def refresh_presets(self) -> None:
        # (only the user's choice, ``activated``, applies a preset: refilling the list applies nothing)
        self.preset_combo.clear()
        self.preset_combo.addItem("presets…", "")
        for name, classes in sorted(self.presets.load().items()):
            self.preset_combo.addItem(f"{name} ({len(classes)})", name)

    def apply_preset(self, name: str) -> bool:
        classes = self.presets.load().get(name)
        if classes is None:
            self.notified.emit(f"no class-set preset named {name!r}", "error")
            return False
        self.session.class_request = ClassRequest(kind="picked", classes=tuple(classes))
        return True

    def _preset_chosen(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if name:
            self.apply_preset(name)

    def save_preset(self, name: str, classes: Sequence[int] | None = None) -> bool:
        """Save the picked classes (or the current explanation's) under ``name``."""
        name = name.strip()
        if not name:
            self.notified.emit("a preset needs a name", "error")
            return False
        if classes is None:
            classes = self.classes.checked()
            if not classes and self.session.explanation is not None:
                classes = [int(c) for c in self.session.explanation.classes]
        if len(classes) < 2:
            self.notified.emit("a class-set preset needs at least two classes (K >= 2)", "error")
            return False
        try:
            kept = self.presets.save(name, classes)
        except OSError as exc:
            self.notified.emit(f"could not save preset {name!r}: {exc.strerror or exc}", "error")
            return False
        if kept is not None:
            self.notified.emit(f"the class-set presets file could not be read whole ({self.presets.problem}); "
                               f"it is kept as {kept.name}, and a new one holds {name!r}",
                               "warning")
        self.refresh_presets()
        self.notified.emit(f"saved class-set preset {name!r}: {', '.join(map(str, classes))}", "info")
        return True

    def _save_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Save class-set preset", "Name (e.g. retinopathy grades 1-4):")
        if ok:
            self.save_preset(name)
