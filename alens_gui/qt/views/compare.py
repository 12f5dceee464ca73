"""The comparison read-out: which two images, their probabilities and the differences."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..session import Session
from ..widgets import BarPlot


def image_label(expl) -> str:
    """The image's file name, escaped for the rich-text read-out (it comes from a file)."""
    return html.escape(str((expl.source.get("file") if expl is not None else None) or "image"))


class CompareView(QWidget):
    """Shown while an explanation is pinned: both images' class-set probabilities and their differences."""

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.plot = BarPlot("p: pinned (blue) / current (orange)", "p", min_height=120)
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.differences = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.addWidget(self.text)
        lay.addWidget(self.plot)
        session.pinned_changed.connect(lambda _e: self.refresh())
        session.explanation_changed.connect(lambda _e: self.refresh())

    def refresh(self) -> None:
        a, b = self.session.pinned, self.session.explanation
        if a is None or b is None:
            self.differences = None
            self.text.setText("Pin an explanation (View → Pin for comparison), then open another image.")
            return
        same = list(a.classes) == list(b.classes)
        warn = []
        if not same:
            warn.append("the class sets differ: Run again (the class set is now the pinned image's)")
        if a.method != b.method or a.method_options != b.method_options:
            warn.append(html.escape(f"the methods differ ({a.method_label} vs {b.method_label})"))
        if same:
            self.differences = b.probs - a.probs
            self.plot.set_bars(a.class_names, a.probs, b.probs)
            rows = "".join(
                f"<tr><td>{int(c)} {html.escape(n)}</td><td align='right'>{pa:.3f}</td><td align='right'>{pb:.3f}</td>"
                f"<td align='right'><b>{pb - pa:+.3f}</b></td></tr>"
                for c, n, pa, pb in zip(a.classes, a.class_names, a.probs, b.probs))
            table = (f"<table cellspacing='3'><tr><th align='left'>class</th><th>{image_label(a)}</th>"
                     f"<th>{image_label(b)}</th><th>difference</th></tr>{rows}</table>")
        else:
            self.differences = None
            table = ""
        head = f"<b>Comparing</b> {image_label(a)} (pinned, left) with {image_label(b)} (right)"
        notes = "".join(f"<br><span style='color:#a05000'>{w}</span>" for w in warn)
        self.text.setText(head + notes + table)
