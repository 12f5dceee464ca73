"""The method panel: the attribution method and a form for its options, built from the registry."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..registry import method_specs
from ..session import Session
from ._util import blocked, set_combo_data


class OptionsForm(QWidget):
    """Editors for a method's options, built from its ``Option`` declarations alone."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.editors: dict[str, QWidget] = {}
        self.on_change = None

    def build(self, spec, values: dict) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors = {}
        for name, opt in spec.options.items():
            ed = self._editor(opt, values.get(name, opt.default))
            ed.setToolTip(opt.help)
            ed.setObjectName(f"option_{name}")
            self.editors[name] = ed
            self.form.addRow(name.replace("_", " "), ed)

    def _changed(self, *_args) -> None:
        if self.on_change is not None:
            self.on_change(self.values())

    def _editor(self, opt, value) -> QWidget:
        d = opt.default
        if opt.choices is not None:
            w = QComboBox()
            for c in opt.choices:
                w.addItem(str(c), c)
            w.setCurrentIndex(max(0, w.findData(value)))
            w.currentIndexChanged.connect(self._changed)
            return w
        if isinstance(d, bool):
            w = QCheckBox()
            w.setChecked(bool(value))
            w.toggled.connect(self._changed)
            return w
        if isinstance(d, int):
            w = QSpinBox()
            w.setRange(int(opt.minimum if opt.minimum is not None else -1_000_000),
                       int(opt.maximum if opt.maximum is not None else 1_000_000))
            w.setValue(int(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(self._changed)
            return w
        if isinstance(d, float):
            w = QDoubleSpinBox()
            w.setDecimals(4)
            w.setRange(opt.minimum if opt.minimum is not None else -1e6, opt.maximum if opt.maximum is not None else 1e6)
            w.setSingleStep(0.01 if abs(d) < 1 else 1.0)
            w.setValue(float(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(self._changed)
            return w
        w = QLineEdit("" if value is None else str(value))
        w.setPlaceholderText("automatic" if not d else "")
        w.editingFinished.connect(self._changed)
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

    def show_values(self, values: dict) -> None:
        for name, w in self.editors.items():
            if name not in values:
                continue
            v = values[name]
            with blocked(w):
                if isinstance(w, QComboBox):
                    w.setCurrentIndex(max(0, w.findData(v)))
                elif isinstance(w, QCheckBox):
                    w.setChecked(bool(v))
                elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
                    w.setValue(v)
                else:
                    w.setText("" if v is None else str(v))


class MethodPanel(QWidget):
    """Binds ``session.method`` and ``session.options``; each method remembers its own options."""

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.specs = {m.name: m for m in method_specs()}
        self.combo = QComboBox()
        families = {"gradient": "gradient", "cam": "CAM", "perturbation": "perturbation", "attention": "attention (ViT)"}
        for m in self.specs.values():
            self.combo.addItem(f"{m.label}  [{families.get(m.family, m.family)}]", m.name)
            self.combo.setItemData(self.combo.count() - 1, m.description, Qt.ItemDataRole.ToolTipRole)
        self.description = QLabel("")
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: #666; font-size: 11px;")
        self.form = OptionsForm()
        self.form.on_change = self._options_edited
        self._remembered: dict[str, dict] = {}
        self._current = ""
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.addWidget(self.combo)
        lay.addWidget(self.description)
        lay.addWidget(self.form)
        self.combo.currentIndexChanged.connect(self._method_chosen)
        session.method_changed.connect(self._on_method)
        session.options_changed.connect(self.form.show_values)
        session.model_changed.connect(self._on_model)
        self._on_method(session.method)

    def _on_model(self, model) -> None:
        """Methods the loaded model's architecture cannot run are listed greyed, with the reason
        (before: offered, and refused only after Run)."""
        arch = getattr(model, "architecture", None)
        kinds = {"cnn": "CNNs", "vit": "Vision Transformers"}
        items = self.combo.model()
        for i in range(self.combo.count()):
            spec = self.specs.get(self.combo.itemData(i))
            ok = arch is None or spec is None or arch in spec.architectures
            items.item(i).setEnabled(ok)
            why = "" if ok else (f"not for this model ({kinds.get(arch, arch)}); it supports "
                                 f"{', '.join(kinds.get(a, a) for a in spec.architectures)}\n\n")
            self.combo.setItemData(i, why + (spec.description if spec else ""), Qt.ItemDataRole.ToolTipRole)

    def _method_chosen(self, _index: int) -> None:
        name = self.combo.currentData()
        if name and name != self.session.method:
            self.session.method = name

    def _on_method(self, name: str) -> None:
        spec = self.specs.get(name)
        if spec is None:
            return
        if self._current and self._current != name:  # the options on screen are still the old method's
            self._remembered[self._current] = dict(self.session.options)
        self._current = name
        with blocked(self.combo):
            set_combo_data(self.combo, name)
        self.description.setText(spec.description)
        values = {k: o.default for k, o in spec.options.items()}
        values.update(self._remembered.get(name, {}))
        self.form.build(spec, values)
        self.session.options = self.form.values()

    def _options_edited(self, values: dict) -> None:
        self.session.options = values
