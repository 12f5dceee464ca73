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
from ._util import differs, set_combo_data


def shown_value(opt, value):
    """An option's value as its editor holds it (a text option's "automatic" None is "")."""
    if opt.choices is not None or isinstance(opt.default, (bool, int, float)):
        return value
    return "" if value is None else str(value).strip()


class OptionsForm(QWidget):
    """Editors for a method's options, built from its ``Option`` declarations alone.

    The form renders a values dict (:meth:`show_values`) and reports one edited option at a
    time to ``on_change(name, value)``, from the editors' change signals; setting an editor to
    the value it already holds sends nothing, and the receiver compares with what it holds, so
    rendering never writes a different value back (no signal blocker)."""

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
            self._connect(name, ed)  # after the editor holds its value: building writes nothing
            self.editors[name] = ed
            self.form.addRow(name.replace("_", " "), ed)

    def _edited(self, name: str) -> None:
        if self.on_change is not None and name in self.editors:
            self.on_change(name, self.value(name))

    def _connect(self, name: str, w: QWidget) -> None:
        edited = lambda *_a: self._edited(name)  # noqa: E731
        if isinstance(w, QComboBox):
            w.currentIndexChanged.connect(edited)
        elif isinstance(w, QCheckBox):
            w.toggled.connect(edited)
        elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.valueChanged.connect(edited)
        else:
            w.editingFinished.connect(edited)

    @staticmethod
    def _editor(opt, value) -> QWidget:
        d = opt.default
        if opt.choices is not None:
            w = QComboBox()
            for c in opt.choices:
                w.addItem(str(c), c)
            w.setCurrentIndex(max(0, w.findData(value)))
            return w
        if isinstance(d, bool):
            w = QCheckBox()
            w.setChecked(bool(value))
            return w
        if isinstance(d, int):
            w = QSpinBox()
            w.setRange(int(opt.minimum if opt.minimum is not None else -1_000_000),
                       int(opt.maximum if opt.maximum is not None else 1_000_000))
            w.setValue(int(value))
            w.setKeyboardTracking(False)
            return w
        if isinstance(d, float):
            w = QDoubleSpinBox()
            w.setDecimals(4)
            w.setRange(opt.minimum if opt.minimum is not None else -1e6, opt.maximum if opt.maximum is not None else 1e6)
            w.setSingleStep(0.01 if abs(d) < 1 else 1.0)
            w.setValue(float(value))
            w.setKeyboardTracking(False)
            return w
        w = QLineEdit("" if value is None else str(value))
        w.setPlaceholderText("automatic" if not d else "")
        return w

    def value(self, name: str):
        w = self.editors[name]
        if isinstance(w, QComboBox):
            return w.currentData()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            return w.value()
        return w.text().strip()

    def values(self) -> dict:
        """What the editors show (the session's options are the truth; this is for checks)."""
        return {name: self.value(name) for name in self.editors}

    def shows(self, name: str, value) -> bool:
        """Whether editor ``name`` already shows ``value`` (a spin box: to its decimals)."""
        w = self.editors[name]
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            try:
                return not differs(w, w.value(), float(value))
            except (TypeError, ValueError):
                return False
        if isinstance(w, QLineEdit):
            return w.text().strip() == ("" if value is None else str(value).strip())
        return _same_option(self.value(name), value)

    def show_values(self, values: dict) -> None:
        """Set the editors that show something else than ``values`` (the others stay as they are)."""
        for name, w in self.editors.items():
            if name not in values or self.shows(name, values[name]):
                continue
            v = values[name]
            if isinstance(w, QComboBox):
                w.setCurrentIndex(max(0, w.findData(v)))
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(v))
            elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
                _show_number(w, v)
            else:
                w.setText("" if v is None else str(v))


def _show_number(spin, value) -> None:
    """Show ``value`` as it is: a value outside the editor's range widens the range instead of
    being clamped (a clamped value would be written back; the run says what the range is)."""
    try:
        value = int(value) if isinstance(spin, QSpinBox) else float(value)
    except (TypeError, ValueError):
        return  # not a number: the editor keeps its value, the run names the problem
    spin.setRange(min(spin.minimum(), value), max(spin.maximum(), value))
    spin.setValue(value)


def _same_option(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - a value without a usable ==
        return False


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
        self.form.on_change = self._option_edited
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
        set_combo_data(self.combo, name)  # its change signal finds the session's method: no write
        self.description.setText(spec.description)
        remembered = self._remembered.get(name, {})
        values = {k: shown_value(o, remembered.get(k, o.default)) for k, o in spec.options.items()}
        self.form.build(spec, values)  # the new editors first: the old ones never see these values
        self.session.options = values  # the session holds the options; the form renders them

    def _option_edited(self, name: str, value) -> None:
        """One editor changed: write that option alone, and only when the editor says something
        else than the session (a value shown rounded is not written back)."""
        options = self.session.options
        if name in options and self.form.shows(name, options[name]):
            return
        self.session.options = {**options, name: value}
