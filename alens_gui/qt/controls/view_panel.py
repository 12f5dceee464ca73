"""The view panel: which maps, overlay and opacity, the colour scale (scope, percentile, gamma).

Bound per field, with no signal blocker: see :meth:`ViewPanel.pull`."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QLabel, QPushButton, QSlider, QWidget

from alens_gui.core.colors import ColorScale

from ..session import Session, ViewOptions
from ..widgets import FlowLayout
from ._util import combo, differs, labeled, set_combo_data

MODES = (("base + refined", "both"), ("refined only", "refined"), ("base only", "base"))
SCOPES = (("one limit per row", "row"), ("one limit for all", "all"), ("one limit per map", "class"))


class ViewPanel(QWidget):
    """One row of view controls bound to ``session.view`` (which maps, overlay, opacity, territory)
    and ``session.color_scale`` (colour limit scope, percentile, gamma)."""

    resetZoomRequested = Signal()

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.mode = combo(list(MODES), "which maps are shown for each class")
        self.overlay = QCheckBox("overlay")
        self.overlay.setToolTip("show the maps over the image (O toggles)")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setMaximumWidth(90)
        self.opacity.setToolTip("opacity of the maps over the grey image")
        self.territory = QCheckBox("territory")
        self.territory.setToolTip("show the class-territory view: the winning class at every pixel")
        self.scope = combo(list(SCOPES), "which maps share one colour limit")
        self.percentile = QDoubleSpinBox()
        self.percentile.setRange(50.0, 100.0)
        self.percentile.setDecimals(1)
        self.percentile.setSingleStep(0.5)
        self.percentile.setKeyboardTracking(False)
        self.percentile.setToolTip("the colour limit is this percentile of the non-zero |values|; lower = more contrast")
        self.gamma = QDoubleSpinBox()
        self.gamma.setRange(0.1, 5.0)
        self.gamma.setDecimals(2)
        self.gamma.setSingleStep(0.1)
        self.gamma.setKeyboardTracking(False)
        self.gamma.setToolTip("contrast: below 1 lifts faint values, above 1 keeps only the strongest")
        reset = QPushButton("Reset zoom")
        reset.clicked.connect(self.resetZoomRequested)
        lay = FlowLayout(self)
        lay.addWidget(QLabel("<b>View</b>"))
        lay.addWidget(self.mode)
        lay.addWidget(labeled("", self.overlay))
        lay.addWidget(labeled("opacity", self.opacity))
        lay.addWidget(self.territory)
        lay.addWidget(labeled("colour limit", self.scope))
        lay.addWidget(labeled("percentile", self.percentile))
        lay.addWidget(labeled("γ", self.gamma))
        lay.addWidget(reset)
        # per field: a widget writes only its own field, so setting the widgets from the session
        # writes back values the session already holds, and the field's equality check ends the echo
        self.mode.currentIndexChanged.connect(lambda _i: self._set(mode=self.mode.currentData()))
        self.overlay.toggled.connect(lambda on: self._set(overlay=bool(on)))
        self.opacity.valueChanged.connect(self._opacity)
        self.territory.toggled.connect(lambda on: self._set(territory=bool(on)))
        self.scope.currentIndexChanged.connect(lambda _i: self._set_scale(scope=self.scope.currentData()))
        self.percentile.valueChanged.connect(lambda x: self._set_scale(percentile=float(x))
                                             if differs(self.percentile, x, session.color_scale.percentile) else None)
        self.gamma.valueChanged.connect(lambda x: self._set_scale(gamma=float(x))
                                        if differs(self.gamma, x, session.color_scale.gamma) else None)
        session.view_changed.connect(self.pull)
        session.color_scale_changed.connect(self.pull_scale)
        self.pull(session.view)
        self.pull_scale(session.color_scale)

    def _set(self, **changes) -> None:
        self.session.view = self.session.view.with_(**changes)

    def _set_scale(self, **changes) -> None:
        self.session.color_scale = self.session.color_scale.with_(**changes)

    def _opacity(self, percent: int) -> None:
        if percent != round(self.session.view.opacity * 100):  # (a slider shows whole percents)
            self._set(opacity=percent / 100.0)

    def pull(self, v: ViewOptions) -> None:
        set_combo_data(self.mode, v.mode)
        self.overlay.setChecked(v.overlay)
        self.opacity.setValue(round(v.opacity * 100))
        self.territory.setChecked(v.territory)

    def pull_scale(self, scale: ColorScale) -> None:
        set_combo_data(self.scope, scale.scope)
        self.percentile.setValue(scale.percentile)
        self.gamma.setValue(scale.gamma)



class HoverRadius(QWidget):
    """The radius the hover read-out averages over, bound to ``session.hover_radius`` (the
    field's equality check ends the echo: no signal blocker)."""

    def __init__(self, session: Session, parent=None) -> None:
        from PySide6.QtWidgets import QHBoxLayout, QSpinBox

        super().__init__(parent)
        self.session = session
        self.spin = QSpinBox()
        self.spin.setRange(0, 50)
        self.spin.setSuffix(" px")
        self.spin.setToolTip("0: the pixel itself; gradient maps are noisy, and a neighbourhood says more")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("average over a radius of"))
        lay.addWidget(self.spin)
        lay.addStretch(1)
        self.spin.valueChanged.connect(lambda v: setattr(session, "hover_radius", int(v)))
        session.hover_radius_changed.connect(lambda r: self.spin.setValue(int(r)))
