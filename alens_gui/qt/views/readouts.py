"""Read-outs that draw the session: the class distribution under the cursor and the probabilities."""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..session import Session
from ..widgets import BarPlot


def _table(header: list[str], rows: list[list[str]]) -> str:
    # (cells hold class names from files: escaped, or Qt would read them as markup and load images)
    head = "".join(f"<th align='{'left' if i == 0 else 'right'}'>{html.escape(h)}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f"<td align='{'left' if i == 0 else 'right'}'>{html.escape(c)}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table cellspacing='3'><tr>{head}</tr>{body}</table>"


class DistributionView(QWidget):
    """The class distribution S at the hovered pixel (or averaged over a disc), with the maps' values."""

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.values: np.ndarray | None = None
        self.base_values: np.ndarray | None = None
        self.pinned_values: np.ndarray | None = None
        self.plot = BarPlot("class distribution S", "S")
        self.text = QLabel("Move the mouse over a map.")
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)
        lay.addWidget(self.text)
        session.hover_changed.connect(lambda _yx: self.refresh())
        session.explanation_changed.connect(lambda _e: self.refresh())
        session.estimate_changed.connect(lambda _e: self.refresh())
        session.hover_radius_changed.connect(lambda _r: self.refresh())
        session.pinned_changed.connect(lambda _p: self.refresh())

    def refresh(self) -> None:
        s = self.session
        expl = s.drawn_explanation  # (the maps under the mouse: the running estimate while there is one)
        y, x = s.hover
        if expl is None or y < 0 or not (0 <= y < expl.shape[0] and 0 <= x < expl.shape[1]):
            self.values = self.base_values = self.pinned_values = None
            self._idle(expl)
            return
        r = s.hover_radius
        d = expl.distribution_at(y, x, radius=r)
        if not np.isfinite(d).all():
            self.values = None
            self.text.setText(f"pixel (row {y}, col {x}) is outside the part of the image the model saw")
            return
        if r > 0:
            base = np.array([_disc_mean(expl.base[i], y, x, r) for i in range(expl.k)])
            refined = np.array([_disc_mean(expl.refined[i], y, x, r) for i in range(expl.k)])
        else:
            base = expl.base[:, y, x].astype(np.float64)
            refined = expl.refined[:, y, x].astype(np.float64)
        self.values, self.base_values = d, base
        self.pinned_values = self._pinned_distribution(expl, y, x, r)
        if self.pinned_values is not None:  # a comparison: the same relative position in the pinned image
            self.plot.set_bars(expl.class_names, self.pinned_values, d, ymax=1.0)
        else:
            self.plot.set_bars(expl.class_names, d, ymax=1.0)
        self.plot.set_reference(1.0 / expl.k + expl.lens.tau)
        where = f"pixel (row {y}, col {x})" if r <= 0 else f"disc of radius {r} around (row {y}, col {x})"
        rows = [[f"{int(c)} {n}", f"{sv:.3f}", f"{b:.3g}", f"{rf + 0.0:.3g}"]
                for c, n, sv, b, rf in zip(expl.classes, expl.class_names, d, base, refined)]
        if self.pinned_values is not None:
            rows = [row[:2] + [f"{pv:.3f}"] + row[2:] for row, pv in zip(rows, self.pinned_values)]
            header = ["class", "S", "S pinned", "base", "refined"]
            where += "; blue: pinned image, orange: this one"
        else:
            header = ["class", "S", "base", "refined"]
        self._set_text(f"{where}; dashed line: chance 1/K + τ<br>" + _table(header, rows))

    def _idle(self, expl) -> None:
        """No pixel under the mouse: this explanation's classes with empty values, so the
        read-out never shows another image's classes and keeps its height (nothing below it jumps)."""
        if expl is None:
            self.plot.set_bars([], np.zeros(0), ymax=1.0)
            self.text.setText("Move the mouse over a map.")
            return
        self.plot.set_bars(expl.class_names, np.zeros(expl.k), ymax=1.0)
        pinned = self.session.pinned is not None and list(self.session.pinned.classes) == list(expl.classes)
        header = ["class", "S", "S pinned", "base", "refined"] if pinned else ["class", "S", "base", "refined"]
        rows = [[f"{int(c)} {n}"] + ["–"] * (len(header) - 1) for c, n in zip(expl.classes, expl.class_names)]
        self._set_text("Move the mouse over a map to read it here; dashed line: chance 1/K + τ<br>"
                       + _table(header, rows))

    def _set_text(self, text: str) -> None:
        """Set the read-out; its height only grows (until the class set changes), so the sections
        below it never jump up and down as the mouse enters and leaves the maps."""
        self.text.setText(text)
        expl = self.session.drawn_explanation
        key = (expl.k if expl is not None else 0, self.width())
        if key != getattr(self, "_height_key", None):
            self._height_key = key
            self.text.setMinimumHeight(0)
        self.text.setMinimumHeight(max(self.text.minimumHeight(), self.text.heightForWidth(max(50, self.width()))))

    def _pinned_distribution(self, expl, y: int, x: int, r: int):
        p = self.session.pinned
        if p is None or list(p.classes) != list(expl.classes):
            return None
        (h, w), (hp, wp) = expl.shape, p.shape
        yp, xp = int((y + 0.5) * hp / h), int((x + 0.5) * wp / w)
        d = p.distribution_at(min(yp, hp - 1), min(xp, wp - 1), radius=r)
        return d if np.isfinite(d).all() else None


def _disc_mean(m: np.ndarray, y: int, x: int, r: float) -> float:
    h, w = m.shape[-2:]
    y0, y1 = max(0, y - int(r)), min(h, y + int(r) + 1)
    x0, x1 = max(0, x - int(r)), min(w, x + int(r) + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    disc = (yy - y) ** 2 + (xx - x) ** 2 <= r * r
    vals = m[y0:y1, x0:x1][disc]
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else float("nan")


class ProbabilityView(QWidget):
    """The class set's softmax probabilities (bars) and the model's own top-5."""

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.plot = BarPlot("class-set probabilities", "p")
        self.top5 = QLabel("")
        self.top5.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.top5.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)
        lay.addWidget(self.top5)
        session.explanation_changed.connect(self._on_explanation)
        session.estimate_changed.connect(lambda _e: self._on_explanation(session.drawn_explanation))

    def _on_explanation(self, expl) -> None:
        if expl is None:
            return
        self.plot.set_bars(expl.class_names, expl.probs)
        self.top5.setText("<b>model top-5</b><br>" + "<br>".join(f"{c} {html.escape(n)}: {p:.3f}"
                                                                for c, n, p in expl.top5))
