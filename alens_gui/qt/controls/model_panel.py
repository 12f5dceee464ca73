"""The model panel: which classifier, which architecture and class names, which device."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from ..session import ModelRequest, Session
from ._util import blocked, combo, set_combo_data

SPECS = ("default", "torchvision:resnet50", "timm:resnet18")
CHECKPOINT_FILTER = "Checkpoints, state dicts (*.pt *.pth *.safetensors)"
#: A file chosen through this filter is loaded as a TorchScript program, which runs its code.
TORCHSCRIPT_FILTER = "TorchScript (runs code) (*.pt *.pth *.zip)"
ALL_FILTER = "All files (*)"


class ModelPanel(QWidget):
    """Edits a :class:`~alens_gui.qt.session.ModelRequest`; *Load* puts it into the session."""

    loadRequested = Signal()

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.status = QLabel("loading…")
        self.status.setWordWrap(True)
        self.spec = combo([(s, s) for s in SPECS], "default, torchvision:NAME, timm:NAME or a checkpoint file")
        self.spec.setEditable(True)
        browse = QPushButton("File…")
        browse.setToolTip("a checkpoint: a state dict (.pt/.pth/.safetensors) with its architecture, or a "
                          "TorchScript program (choose the filter that says it runs code)")
        browse.clicked.connect(self._browse_checkpoint)
        self.torchscript = QCheckBox("TorchScript (runs code)")
        self.torchscript.setToolTip("load the checkpoint as a TorchScript program: the code inside it runs, so only "
                                    "for files from people you trust; without this a TorchScript file is refused")
        self.arch = QLineEdit()
        self.arch.setPlaceholderText("for state dicts: timm:NAME or torchvision:NAME")
        self.labels = QLineEdit()
        self.labels.setPlaceholderText("optional class names (.txt / .json)")
        lb = QPushButton("File…")
        lb.clicked.connect(self._browse_labels)
        self.device = combo([("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda")], "where the model runs")
        self.load = QPushButton("Load model")
        self.load.clicked.connect(self.push)
        f = QFormLayout(self)
        f.setContentsMargins(4, 2, 4, 2)
        row = QHBoxLayout()
        row.addWidget(self.spec, 1)
        row.addWidget(browse)
        row2 = QHBoxLayout()
        row2.addWidget(self.labels, 1)
        row2.addWidget(lb)
        f.addRow("in use", self.status)
        f.addRow("model", row)
        f.addRow("", self.torchscript)
        f.addRow("architecture", self.arch)
        f.addRow("labels", row2)
        f.addRow("device", self.device)
        f.addRow(self.load)
        session.model_request_changed.connect(self.pull)
        session.model_status_changed.connect(self.status.setText)
        self.pull(session.model_request)

    def request(self) -> ModelRequest:
        return ModelRequest(spec=self.spec.currentText().strip() or "default", arch=self.arch.text().strip(),
                            labels=self.labels.text().strip(), device=self.device.currentData() or "auto",
                            torchscript=self.torchscript.isChecked())

    def push(self) -> None:
        """Put the edited request into the session and ask for it to be loaded."""
        self.session.model_request = self.request()
        self.loadRequested.emit()

    def pull(self, req: ModelRequest) -> None:
        with blocked(self.spec, self.arch, self.labels, self.device, self.torchscript):
            self.spec.setCurrentText(req.spec)
            self.torchscript.setChecked(req.torchscript)
            self.arch.setText(req.arch)
            self.labels.setText(req.labels)
            set_combo_data(self.device, req.device)

    def _browse_checkpoint(self) -> None:
        """Choose a checkpoint; the filter it was chosen through says whether it is TorchScript
        (a program, loaded only when asked for) or a state dict (read as data)."""
        path, chosen = QFileDialog.getOpenFileName(self, "Model checkpoint", "",
                                                   ";;".join((CHECKPOINT_FILTER, TORCHSCRIPT_FILTER, ALL_FILTER)))
        if path:
            self.spec.setCurrentText(path)
            if chosen in (CHECKPOINT_FILTER, TORCHSCRIPT_FILTER):  # (all files: the check box says)
                self.torchscript.setChecked(chosen == TORCHSCRIPT_FILTER)

    def _browse_labels(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Class names", "", "Labels (*.txt *.json);;All files (*)")
        if path:
            self.labels.setText(path)
