"""The image panel: open a file, a sample photograph or a 2 x 2 grid; the model's input policy."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..session import SAMPLES, ImageRequest, Session
from ._util import combo, set_combo_data

POLICIES = (
    ("the model's own (its resize and crop)", "model"),
    ("stretch the whole image", "stretch"),
    ("center crop (maps cover the crop)", "center-crop"),
    ("pad to square", "pad"),
)


class ImagePanel(QWidget):
    """Shows what is being explained; *Open…* and *Grid…* ask the window for a dialog."""

    openRequested = Signal()
    gridRequested = Signal()

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.label = QLabel("")
        self.label.setWordWrap(True)
        open_button = QPushButton("Open…")
        open_button.setToolTip("an image file (Ctrl+O); you can also drop files on the window")
        open_button.clicked.connect(self.openRequested)
        self.samples = combo([("sample photograph…", "")] + [(n, n) for n in SAMPLES])
        self.samples.activated.connect(self._sample_chosen)
        grid = QPushButton("Compose a 2 × 2 grid…")
        grid.clicked.connect(self.gridRequested)
        self.policy = combo(list(POLICIES), "how the image is fitted to the model's square input; "
                                            "the maps are always shown in the image's own shape")
        self.policy.currentIndexChanged.connect(lambda _i: setattr(session, "input_policy", self.policy.currentData()))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.addWidget(self.label)
        row = QHBoxLayout()
        row.addWidget(open_button)
        row.addWidget(self.samples, 1)
        lay.addLayout(row)
        lay.addWidget(grid)
        row = QHBoxLayout()
        row.addWidget(QLabel("model input"))
        row.addWidget(self.policy, 1)
        lay.addLayout(row)
        session.image_request_changed.connect(self._on_request)
        session.input_policy_changed.connect(self._on_policy)
        self._on_request(session.image_request)
        self._on_policy(session.input_policy)

    def _sample_chosen(self, index: int) -> None:
        name = self.samples.itemData(index)
        if name:
            self.session.image_request = ImageRequest(sample=name)

    def _on_request(self, req: ImageRequest) -> None:
        self.label.setText(req.label or "no image yet")
        # bound per field: the echo (the combo's change setting the same request) ends at the
        # session field's equality check; the placeholder entry ("") asks for nothing
        set_combo_data(self.samples, req.sample if req.sample and not req.path else "")

    def _on_policy(self, policy: str) -> None:
        set_combo_data(self.policy, policy)  # the echo sets the same policy: no signal
