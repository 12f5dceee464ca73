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
from ..widgets import ElidedLabel
from ._util import combo, set_combo_data

SPECS = ("default", "torchvision:resnet50", "timm:resnet18")
CHECKPOINT_FILTER = "Checkpoints, state dicts (*.pt *.pth *.safetensors)"
#: A file chosen through this filter is loaded as a TorchScript program, which runs its code.
TORCHSCRIPT_FILTER = "TorchScript (runs code) (*.pt *.pth *.zip)"
ALL_FILTER = "All files (*)"
OUTPUTS = (("the model's own", ""), ("softmax (one class)", "softmax"), ("sigmoid per class (multi-label)", "sigmoid"))


class ModelPanel(QWidget):
    """Edits a :class:`~alens_gui.qt.session.ModelRequest`; *Load* puts it into the session."""

    loadRequested = Signal()

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.status = ElidedLabel("loading…")
        self.spec = combo([(s, s) for s in SPECS], "default, torchvision:NAME, timm:NAME (also timm:hf-hub:ORG/NAME, "
                                                   "timm:local-dir:DIR), hf:DIR (a transformers folder) or a checkpoint file")
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
        self.output = combo(list(OUTPUTS), "how logits become probabilities: a softmax over all classes, or a "
                                           "sigmoid per class for multi-label models (several findings at once)")
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
        row3 = QHBoxLayout()  # one row for both: the setup column must not grow past 800 pixels
        row3.addWidget(self.device, 1)
        row3.addWidget(QLabel("output"))
        row3.addWidget(self.output, 1)
        f.addRow("device", row3)
        f.addRow(self.load)
        session.model_request_changed.connect(self.pull)
        session.model_status_changed.connect(self.status.setText)
        self.pull(session.model_request)

    def request(self) -> ModelRequest:
        return ModelRequest(spec=self.spec.currentText().strip() or "default", arch=self.arch.text().strip(),
                            labels=self.labels.text().strip(), device=self.device.currentData() or "auto",
                            torchscript=self.torchscript.isChecked(), output=self.output.currentData() or "")

    def push(self) -> None:
        """Put the edited request into the session and ask for it to be loaded."""
        self.session.model_request = self.request()
        self.loadRequested.emit()

    def pull(self, req: ModelRequest) -> None:
        """Show the session's request. No signal blocker: this is a form read only by *Load*
        (:meth:`push`); nothing listens to its controls, so there is no echo to stop."""
        self.spec.setCurrentText(req.spec)
        self.torchscript.setChecked(req.torchscript)
        self.arch.setText(req.arch)
        self.labels.setText(req.labels)
        set_combo_data(self.device, req.device)
        set_combo_data(self.output, req.output)

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
