"""The lens panel: preset, temperatures, margin τ, normalisation and softmax input (no model run)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QLineEdit, QWidget

from alens_gui.core.errors import AlensError
from alens_gui.core.lensparams import AL, NORMALIZE_CHOICES, SOFTMAX_INPUT_CHOICES, VAR, LensParams

from ..session import Session
from ..widgets import FlowLayout
from ._util import combo, differs, labeled, set_combo_data


def parse_temperatures(text: str) -> tuple[float, ...]:
    from alens_gui.core.errors import LensError

    try:
        return tuple(float(t) for t in text.replace(";", ",").split(",") if t.strip())
    except ValueError:
        raise LensError(f"temperatures must be numbers separated by commas; got {text!r}") from None


class LensPanel(QWidget):
    """One row of lens controls bound to ``session.lens``; bad input goes to ``notified``."""

    notified = Signal(str, str)

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.preset = combo([("AL", "al"), ("VAR", "var"), ("custom", "custom")],
                            "AL: 1/t ∈ {1, 5, 100}, τ = 0; VAR: t = 0.1, τ = 0.01")
        self.temps = QLineEdit()
        self.temps.setToolTip("softmax temperatures t, comma separated; S is the mean of the softmaxes")
        self.temps.setMaximumWidth(110)
        self.tau = QDoubleSpinBox()
        self.tau.setRange(-0.99, 0.99)
        self.tau.setDecimals(3)
        self.tau.setSingleStep(0.01)
        self.tau.setKeyboardTracking(False)
        self.tau.setToolTip("keep a pixel for class c where S_c > 1/K + τ")
        self.normalize = combo([(c, c) for c in NORMALIZE_CHOICES], "scale applied to all K maps before the softmax")
        self.softmax = combo([(c, c) for c in SOFTMAX_INPUT_CHOICES], "feed signed maps or |maps| to the softmax")
        lay = FlowLayout(self)
        lay.addWidget(QLabel("<b>Lens</b> (no model run)"))
        for text, w in (("preset", self.preset), ("temperatures", self.temps), ("τ", self.tau),
                        ("normalise", self.normalize), ("softmax input", self.softmax)):
            lay.addWidget(labeled(text, w))
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        self.temps.editingFinished.connect(self.push)
        # per field: a control writes only its own field, so setting the controls from the session
        # writes back what the session holds, and the field's equality check ends the echo
        self.tau.valueChanged.connect(lambda x: self._set(tau=float(x)) if differs(self.tau, x, session.lens.tau)
                                      else None)
        self.normalize.currentIndexChanged.connect(lambda _i: self._set(normalize=self.normalize.currentData()))
        self.softmax.currentIndexChanged.connect(lambda _i: self._set(softmax_input=self.softmax.currentData()))
        session.lens_changed.connect(self.pull)
        self.pull(session.lens)

    def push(self) -> None:
        """The temperatures as typed (on Enter or leaving the field)."""
        try:
            temps = parse_temperatures(self.temps.text())
        except AlensError as exc:
            self.notified.emit(str(exc), "error")
            self.pull(self.session.lens)
            return
        self._set(temperatures=temps)

    def _set(self, **changes) -> None:
        try:
            self.session.lens = self.session.lens.with_(**changes)
        except AlensError as exc:  # the controls show the session again
            self.notified.emit(str(exc), "error")
            self.pull(self.session.lens)

    def _preset_chosen(self, _index: int) -> None:
        name = self.preset.currentData()
        if name == "al":
            self.session.lens = AL.with_(reduce=self.session.lens.reduce)
        elif name == "var":
            self.session.lens = VAR.with_(reduce=self.session.lens.reduce)

    def pull(self, params: LensParams) -> None:
        self.temps.setText(", ".join(f"{t:g}" for t in params.temperatures))
        self.tau.setValue(params.tau)
        set_combo_data(self.normalize, params.normalize)
        set_combo_data(self.softmax, params.softmax_input)
        base = params.with_(reduce="sum")
        set_combo_data(self.preset, "al" if base == AL else "var" if base == VAR else "custom")
