"""The main window: controls on the left, linked maps in the middle, read-outs on the right.

The window owns one :class:`~alens_gui.qt.model.ExplanationModel` (what every view
draws) and one :class:`~alens_gui.qt.tasks.TaskRunner` (all heavy work, one task per
slot, cancellable). Every error lands in the notification area; the window stays usable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, QStandardPaths, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from alens_gui.core.errors import AlensError, ClassSetError
from alens_gui.core.masking import FILLS, top_fraction_mask

from . import jobs
from .model import ExplanationModel
from .panels import ClassList, DistributionPanel, MaskResultPanel, NotificationArea, OptionsForm, ProbabilityPanel
from .tasks import TaskRunner, readable_error
from .views import TOOLS, MapsView

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp *.gif);;All files (*)"
GRID_DEFAULT = ("chelsea", "coffee", "rocket", "stereo_motorcycle")
MAX_RECENT = 10


def default_config_dir() -> Path:
    loc = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppConfigLocation)
    return Path(loc or Path.home() / ".config" / "alens-gui")


class PresetStore:
    """Named class sets saved as JSON (``{"name": [classes...]}``) in the config folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, list[int]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        out = {}
        for k, v in data.items():
            if isinstance(v, list) and all(isinstance(c, int) for c in v):
                out[str(k)] = [int(c) for c in v]
        return out

    def save(self, name: str, classes: Sequence[int]) -> None:
        from alens_gui.core.explanation import atomic_write

        data = self.load()
        data[name] = [int(c) for c in classes]
        text = json.dumps(data, indent=2, sort_keys=True).encode("utf-8")
        atomic_write(self.path, lambda f: f.write(text))


class GridDialog(QDialog):
    """Pick four images (sample photographs or files) for a 2 x 2 grid."""

    def __init__(self, samples: Sequence[str], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compose a 2 × 2 grid")
        form = QFormLayout(self)
        self.combos: list[QComboBox] = []
        for i, pos in enumerate(("top left", "top right", "bottom left", "bottom right")):
            c = QComboBox()
            c.setEditable(True)
            c.addItems(list(samples))
            c.setCurrentText(GRID_DEFAULT[i])
            b = QPushButton("File…")
            b.clicked.connect(lambda _=False, c=c: self._browse(c))
            row = QHBoxLayout()
            row.addWidget(c, 1)
            row.addWidget(b)
            form.addRow(pos, row)
            self.combos.append(c)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        form.addRow(box)

    def _browse(self, combo: QComboBox) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Tile image", "", IMAGE_FILTER)
        if path:
            combo.setCurrentText(path)

    def sources(self) -> list[str]:
        return [c.currentText().strip() for c in self.combos]


class MainWindow(QMainWindow):
    """Attribution Lens Studio's main window.

    Parameters
    ----------
    image : path or array, optional
        The first image; a sample photograph (chelsea) when not given.
    model_spec, arch, labels, device
        The model to load (see ``alens_gui.core.models.load_model``).
    loaded : LoadedModel, optional
        An already loaded model (skips loading; tests share one).
    config_dir : path, optional
        Where settings (recent files) and class-set presets live.
    autorun : bool
        Explain the first image as soon as the model is ready.
    """

    def __init__(
        self,
        image=None,
        model_spec: str = "default",
        arch: str | None = None,
        labels: str | None = None,
        device: str | None = None,
        *,
        loaded=None,
        config_dir: str | os.PathLike | None = None,
        autorun: bool = True,
    ) -> None:
        super().__init__()
        self.setWindowTitle("Attribution Lens Studio")
        self.setAcceptDrops(True)
        self.resize(1500, 900)
        self.config_dir = Path(config_dir) if config_dir is not None else default_config_dir()
        self.settings = QSettings(str(self.config_dir / "settings.ini"), QSettings.Format.IniFormat)
        self.presets = PresetStore(self.config_dir / "class_presets.json")
        self.model = ExplanationModel(self)
        self.runner = TaskRunner(self)
        self._showing_partial = False  # the view shows a running estimate, not a result
        self._last_complete = None  # what to show again if that run is cancelled
        self.loaded = None
        self.source = None  # the full-resolution image being explained
        self.source_label = ""
        self._tiles: tuple = ()
        self.autorun = autorun
        self._lens_sync = False
        #: Asked before a file is overwritten; replaceable (tests inject an answer).
        self.confirm_overwrite: Callable[[str], bool] = self._ask_overwrite

        self.maps = MapsView(self.model)
        self.maps.on_region = self.model.add_to_mask
        self.maps.classClicked.connect(self.select_class)
        self.notifications = NotificationArea()
        self.distribution = DistributionPanel(self.model)
        self.probabilities = ProbabilityPanel(self.model)
        self.mask_panel = MaskResultPanel(self.model)
        self._build_controls()
        self._build_layout()
        self._build_menus()
        self._build_statusbar()

        self.runner.error.connect(lambda _slot, msg: self.notify(msg, "error"))
        self.runner.progress.connect(self._on_progress)
        self.runner.started.connect(self._on_task_started)
        self.runner.finished.connect(self._on_task_finished)
        self.model.maskChanged.connect(self._on_mask_changed)
        self.model.changed.connect(self._on_explanation)

        if image is not None:
            self._pending_image = image
        else:
            self._pending_image = ("sample", "chelsea")
        if loaded is not None:
            self.set_loaded(loaded)
        else:
            self.load_model(model_spec, arch, labels, device)

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        from alens_gui.core.images import sample_images
        from alens_gui.core.lens import NORMALIZE_CHOICES, SOFTMAX_INPUT_CHOICES
        from alens_gui.core.methods.base import list_methods

        self.sample_names = list(sample_images())
        panel = QWidget()
        lay = QVBoxLayout(panel)

        # Model
        g = QGroupBox("Model")
        f = QFormLayout(g)
        self.model_name = QLabel("loading…")
        self.model_name.setWordWrap(True)
        self.device_label = QLabel("")
        self.model_spec = QComboBox()
        self.model_spec.setEditable(True)
        self.model_spec.addItems(["default", "torchvision:resnet50", "timm:resnet18"])
        self.model_spec.setToolTip("default, torchvision:NAME, timm:NAME or a checkpoint file")
        ck = QPushButton("Checkpoint…")
        ck.clicked.connect(self._browse_checkpoint)
        self.arch_edit = QLineEdit()
        self.arch_edit.setPlaceholderText("for state dicts: timm:NAME or torchvision:NAME")
        self.labels_edit = QLineEdit()
        self.labels_edit.setPlaceholderText("optional labels file (.txt / .json)")
        lb = QPushButton("Labels…")
        lb.clicked.connect(self._browse_labels)
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu", "cuda"])
        load = QPushButton("Load model")
        load.clicked.connect(self._load_from_controls)
        row = QHBoxLayout()
        row.addWidget(self.model_spec, 1)
        row.addWidget(ck)
        row2 = QHBoxLayout()
        row2.addWidget(self.labels_edit, 1)
        row2.addWidget(lb)
        f.addRow("in use", self.model_name)
        f.addRow("device", self.device_label)
        f.addRow("model", row)
        f.addRow("architecture", self.arch_edit)
        f.addRow("labels", row2)
        f.addRow("device", self.device_combo)
        f.addRow(load)
        lay.addWidget(g)

        # Image
        g = QGroupBox("Image")
        v = QVBoxLayout(g)
        self.image_label = QLabel("")
        self.image_label.setWordWrap(True)
        v.addWidget(self.image_label)
        row = QHBoxLayout()
        b = QPushButton("Open…")
        b.clicked.connect(self._open_dialog)
        self.sample_combo = QComboBox()
        self.sample_combo.addItem("sample photograph…")
        self.sample_combo.addItems(self.sample_names)
        self.sample_combo.activated.connect(self._on_sample_chosen)
        row.addWidget(b)
        row.addWidget(self.sample_combo, 1)
        v.addLayout(row)
        b = QPushButton("Compose a 2 × 2 grid…")
        b.clicked.connect(self._grid_dialog)
        v.addWidget(b)
        lay.addWidget(g)

        # Method
        g = QGroupBox("Method")
        v = QVBoxLayout(g)
        self.method_combo = QComboBox()
        self.methods = {m.name: m for m in list_methods()}
        for m in self.methods.values():
            self.method_combo.addItem(m.label, m.name)
            self.method_combo.setItemData(self.method_combo.count() - 1, m.description, Qt.ItemDataRole.ToolTipRole)
        self.options_form = OptionsForm()
        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        v.addWidget(self.method_combo)
        v.addWidget(self.options_form)
        lay.addWidget(g)
        # Input x Gradient: one backward pass per class, a result in about a second on a CPU.
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData("ixg")))
        self._on_method_changed()

        # Class set
        g = QGroupBox("Class set")
        v = QVBoxLayout(g)
        self.class_mode = QComboBox()
        self.class_mode.addItem("top-k", "topk")
        self.class_mode.addItem("best vs worst", "best_vs_worst")
        self.class_mode.addItem("my classes", "picked")
        row = QHBoxLayout()
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 50)
        self.k_spin.setValue(3)
        self.lowest_check = QCheckBox("+ lowest")
        row.addWidget(QLabel("k"))
        row.addWidget(self.k_spin)
        row.addWidget(self.lowest_check)
        self.class_list = ClassList()
        self.class_list.changed.connect(self._on_picked_changed)
        prow = QHBoxLayout()
        self.preset_combo = QComboBox()
        self.preset_combo.activated.connect(self._on_preset_chosen)
        sp = QPushButton("Save preset…")
        sp.clicked.connect(self._save_preset_dialog)
        prow.addWidget(self.preset_combo, 1)
        prow.addWidget(sp)
        self.class_mode.currentIndexChanged.connect(self._on_class_mode)
        v.addWidget(self.class_mode)
        v.addLayout(row)
        v.addWidget(self.class_list)
        v.addLayout(prow)
        lay.addWidget(g)
        self._refresh_presets()
        self._on_class_mode()

        # Run
        row = QHBoxLayout()
        self.run_button = QPushButton("Explain")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run_explanation)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.run_button, 1)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)

        # Lens
        g = QGroupBox("Lens (no model run)")
        f = QFormLayout(g)
        self.lens_preset = QComboBox()
        self.lens_preset.addItems(["AL", "VAR", "custom"])
        self.temps_edit = QLineEdit("1, 0.2, 0.01")
        self.temps_edit.setToolTip("softmax temperatures t, comma separated (AL: 1, 0.2, 0.01; VAR: 0.1)")
        self.tau_spin = QDoubleSpinBox()
        self.tau_spin.setRange(-0.99, 0.99)
        self.tau_spin.setDecimals(3)
        self.tau_spin.setSingleStep(0.01)
        self.tau_spin.setToolTip("keep a pixel for class c where S_c > 1/K + τ")
        self.normalize_combo = QComboBox()
        self.normalize_combo.addItems(list(NORMALIZE_CHOICES))
        self.softmax_combo = QComboBox()
        self.softmax_combo.addItems(list(SOFTMAX_INPUT_CHOICES))
        f.addRow("preset", self.lens_preset)
        f.addRow("temperatures", self.temps_edit)
        f.addRow("τ", self.tau_spin)
        f.addRow("normalise", self.normalize_combo)
        f.addRow("softmax input", self.softmax_combo)
        self.lens_preset.currentIndexChanged.connect(self._on_lens_preset)
        self.temps_edit.editingFinished.connect(self.apply_lens)
        self.tau_spin.valueChanged.connect(self.apply_lens)
        self.normalize_combo.currentIndexChanged.connect(self.apply_lens)
        self.softmax_combo.currentIndexChanged.connect(self.apply_lens)
        lay.addWidget(g)

        # View
        g = QGroupBox("View")
        f = QFormLayout(g)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(self.maps.opacity * 100))
        self.opacity_slider.valueChanged.connect(lambda v: self.maps.set_opacity(v / 100.0))
        f.addRow("map opacity", self.opacity_slider)
        lay.addWidget(g)

        # Masking
        g = QGroupBox("Masking")
        f = QFormLayout(g)
        self.tool_combo = QComboBox()
        self.tool_combo.addItems(list(TOOLS))
        self.tool_combo.currentTextChanged.connect(self._on_tool)
        self.brush_spin = QSpinBox()
        self.brush_spin.setRange(1, 100)
        self.brush_spin.setValue(int(self.maps.brush_radius))
        self.brush_spin.valueChanged.connect(lambda v: setattr(self.maps, "brush_radius", float(v)))
        self.fill_combo = QComboBox()
        self.fill_combo.addItems(list(FILLS))
        self.fill_combo.currentIndexChanged.connect(lambda _i: self.run_mask())
        self.top_class = QComboBox()
        self.top_percent = QDoubleSpinBox()
        self.top_percent.setRange(0.1, 100.0)
        self.top_percent.setValue(10.0)
        self.top_percent.setSuffix(" %")
        tb = QPushButton("Select top p %")
        tb.clicked.connect(lambda: self.select_top_fraction(self.top_class.currentIndex(), self.top_percent.value()))
        trow = QHBoxLayout()
        trow.addWidget(self.top_percent)
        trow.addWidget(tb)
        urow = QHBoxLayout()
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.model.undo_mask)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.model.clear_mask)
        urow.addWidget(self.undo_button)
        urow.addWidget(clear)
        f.addRow("tool", self.tool_combo)
        f.addRow("brush radius", self.brush_spin)
        f.addRow("fill", self.fill_combo)
        f.addRow("class", self.top_class)
        f.addRow("refined map", trow)
        f.addRow(urow)
        lay.addWidget(g)
        lay.addStretch(1)

        self.controls = QScrollArea()
        self.controls.setWidgetResizable(True)
        self.controls.setWidget(panel)
        self.controls.setMinimumWidth(380)

    def _build_layout(self) -> None:
        right = QTabWidget()
        side = QWidget()
        v = QVBoxLayout(side)
        v.addWidget(self.distribution, 3)
        v.addWidget(self.probabilities, 2)
        right.addTab(side, "Pixel && probabilities")
        right.addTab(self.mask_panel, "Masking")
        self.side_tabs = right
        self.model.maskResultChanged.connect(lambda r: r is not None and right.setCurrentWidget(self.mask_panel))
        middle = QSplitter(Qt.Orientation.Vertical)
        middle.addWidget(self.maps)
        middle.addWidget(self.notifications)
        middle.setStretchFactor(0, 5)
        middle.setStretchFactor(1, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.controls)
        split.addWidget(middle)
        split.addWidget(right)
        split.setStretchFactor(1, 4)
        split.setSizes([400, 900, 320])
        self.setCentralWidget(split)

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        a = QAction("&Open image…", self, shortcut=QKeySequence.StandardKey.Open)
        a.triggered.connect(self._open_dialog)
        m.addAction(a)
        self.recent_menu = m.addMenu("Open &recent")
        samples = m.addMenu("&Sample photographs")
        for name in self.sample_names:
            samples.addAction(name, lambda name=name: self.open_sample(name))
        m.addAction("Compose a 2 × 2 &grid…", self._grid_dialog)
        m.addSeparator()
        m.addAction("Export figure, selected class…", lambda: self._export_dialog("figure", selected=True))
        m.addAction("Export figure, all classes…", lambda: self._export_dialog("figure", selected=False))
        m.addAction("Export raw maps (.npz)…", lambda: self._export_dialog("npz"))
        m.addSeparator()
        q = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        q.triggered.connect(self.close)
        m.addAction(q)
        e = self.menuBar().addMenu("&Evaluate")
        e.addAction("Grid pointing game, current method and lens…", self._grid_game_dialog)
        self._refresh_recent()

    def _build_statusbar(self) -> None:
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(260)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.hide()
        self.status_text = QLabel("")
        self.statusBar().addWidget(self.status_text, 1)
        self.statusBar().addPermanentWidget(self.progress_bar)

    # ------------------------------------------------------------------ notifications
    def notify(self, text: str, level: str = "info") -> None:
        self.notifications.notify(text, level)
        self.status_text.setText(text)

    # ------------------------------------------------------------------ model
    def load_model(self, spec: str, arch: str | None = None, labels: str | None = None, device: str | None = None):
        """Load a model in the background; on failure the current model stays in use."""
        if not str(spec or "").strip():
            self.notify("give a model: default, torchvision:NAME, timm:NAME or a checkpoint file", "error")
            return None
        self.model_name.setText(f"loading {spec}…" if self.loaded is None else self.model_name.text())
        return self.runner.run(
            "model", jobs.load_model_job, spec, arch, labels, None if device in (None, "auto") else device,
            label=f"loading model {spec}", on_return=self.set_loaded,
            on_error=lambda _exc, spec=spec: self._fall_back_to_default(spec),
        )

    def _fall_back_to_default(self, spec: str) -> None:
        """With no model at all (a failed first load, e.g. offline weights), use the bundled default."""
        if self.loaded is None and spec.strip() not in ("default", "efficientnet-lite0"):
            self.notify(f"could not load {spec}; using the default model (EfficientNet-Lite0, offline) instead",
                        "warning")
            self.load_model("default")

    def _load_from_controls(self) -> None:
        self.load_model(self.model_spec.currentText().strip(), self.arch_edit.text().strip() or None,
                        self.labels_edit.text().strip() or None, self.device_combo.currentText())

    def _browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model checkpoint", "",
                                              "Checkpoints (*.pt *.pth *.safetensors *.ts);;All files (*)")
        if path:
            self.model_spec.setCurrentText(path)

    def _browse_labels(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Labels file", "", "Labels (*.txt *.json);;All files (*)")
        if path:
            self.labels_edit.setText(path)

    def set_loaded(self, loaded) -> None:
        """Use ``loaded`` from now on and explain the current (or first) image with it."""
        self.loaded = loaded
        self.model_name.setText(loaded.name)
        self.device_label.setText(loaded.device_label())
        self.class_list.set_names(loaded.class_names)
        self.notify(f"model: {loaded.name} on {loaded.device_label()}")
        pending, self._pending_image = getattr(self, "_pending_image", None), None
        if pending is not None:
            if isinstance(pending, tuple) and pending and pending[0] == "sample":
                self.open_sample(pending[1])
            else:
                self.open_image(pending)
        elif self.source is not None and self.autorun:
            self.run_explanation()

    # ------------------------------------------------------------------ images
    def open_image(self, path_or_array, label: str | None = None) -> bool:
        """Read an image file (or take an array); on failure notify and keep the current one."""
        from alens_gui.core.images import as_image, read_image

        try:
            if isinstance(path_or_array, (str, os.PathLike)):
                img = read_image(path_or_array)
                label = label or str(path_or_array)
                self._add_recent(str(path_or_array))
            else:
                img = as_image(path_or_array)
                label = label or "array"
        except AlensError as exc:
            self.notify(readable_error(exc), "error")
            return False
        self._set_source(img, label)
        return True

    def open_sample(self, name: str) -> bool:
        from alens_gui.core.images import sample_image

        try:
            img = sample_image(name)
        except AlensError as exc:
            self.notify(readable_error(exc), "error")
            return False
        self._set_source(img, f"sample photograph: {name}")
        return True

    def compose_grid(self, sources: Sequence) -> bool:
        """Tile four images (sample names, paths or arrays) and explain the tiles' top-1 classes."""
        from alens_gui.core.images import as_image, compose_grid, read_image, sample_image

        try:
            tiles = []
            for s in sources:
                if isinstance(s, str) and s in self.sample_names:
                    tiles.append(sample_image(s))
                elif isinstance(s, (str, os.PathLike)):
                    tiles.append(read_image(s))
                else:
                    tiles.append(as_image(s))
            grid = compose_grid(tiles)
        except AlensError as exc:
            self.notify(readable_error(exc), "error")
            return False
        names = [Path(s).stem if isinstance(s, (str, os.PathLike)) else "array" for s in sources]
        self._tiles = tuple(tiles)
        self._set_source(grid, "2 × 2 grid: " + ", ".join(names), keep_tiles=True)
        return True

    def _set_source(self, img: np.ndarray, label: str, keep_tiles: bool = False) -> None:
        self.source = img
        self.source_label = label
        if not keep_tiles:
            self._tiles = ()
        self.image_label.setText(f"{label}  ({img.shape[1]} × {img.shape[0]})")
        if self.loaded is not None:
            self.model.set_image(self.loaded.resize_image(img))
            if self.autorun:
                self.run_explanation()

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", IMAGE_FILTER)
        if path:
            self.open_image(path)

    def _on_sample_chosen(self, index: int) -> None:
        if index > 0:
            self.open_sample(self.sample_combo.itemText(index))
            self.sample_combo.setCurrentIndex(0)

    def _grid_dialog(self) -> None:
        d = GridDialog(self.sample_names, self)
        if d.exec() == QDialog.DialogCode.Accepted:
            self.compose_grid(d.sources())

    def dragEnterEvent(self, event):  # noqa: N802 - Qt naming
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event):  # noqa: N802 - Qt naming
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.open_image(files[0])

    def recent_files(self) -> list[str]:
        v = self.settings.value("recent", [])
        if isinstance(v, str):
            v = [v]
        return [str(x) for x in (v or [])]

    def _add_recent(self, path: str) -> None:
        p = str(Path(path).resolve())
        items = [p] + [x for x in self.recent_files() if x != p]
        self.settings.setValue("recent", items[:MAX_RECENT])
        self.settings.sync()
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        items = self.recent_files()
        for p in items:
            self.recent_menu.addAction(p, lambda p=p: self.open_image(p))
        self.recent_menu.setEnabled(bool(items))

    # ------------------------------------------------------------------ method / classes
    def _on_method_changed(self, *_args) -> None:
        name = self.method_combo.currentData()
        if name in self.methods:
            self.options_form.set_method(self.methods[name])

    def set_method(self, name: str, **options) -> None:
        """Pick a method by name and set some of its options (as a user would in the form)."""
        idx = self.method_combo.findData(name)
        if idx < 0:
            self.notify(f"unknown method {name!r}", "error")
            return
        self.method_combo.setCurrentIndex(idx)
        for k, v in options.items():
            self.options_form.set_value(k, v)

    def _on_class_mode(self, *_args) -> None:
        mode = self.class_mode.currentData()
        self.k_spin.setEnabled(mode == "topk")
        self.lowest_check.setEnabled(mode == "topk")
        self.class_list.setEnabled(mode == "picked")

    def set_class_mode(self, mode: str, *, k: int | None = None, with_lowest: bool | None = None,
                       classes: Sequence[int] | None = None) -> None:
        self.class_mode.setCurrentIndex(self.class_mode.findData(mode))
        if k is not None:
            self.k_spin.setValue(int(k))
        if with_lowest is not None:
            self.lowest_check.setChecked(bool(with_lowest))
        if classes is not None:
            self.class_list.set_checked(classes)

    def _on_picked_changed(self) -> None:
        if self.class_list.checked() and self.class_mode.currentData() != "picked":
            self.class_mode.setCurrentIndex(self.class_mode.findData("picked"))

    def class_request(self) -> jobs.ClassRequest:
        """The class set the controls describe; raises ClassSetError for K < 2 picks."""
        from alens_gui.core.classsets import validate_classes

        mode = self.class_mode.currentData()
        if self._tiles and mode == "topk" and not self.class_list.checked():
            return jobs.ClassRequest("tiles", tiles=self._tiles)
        if mode == "picked":
            n = self.loaded.num_classes if self.loaded is not None else 10**9
            classes = validate_classes(self.class_list.checked(), n)
            return jobs.ClassRequest("picked", classes=tuple(classes))
        if mode == "best_vs_worst":
            return jobs.ClassRequest("best_vs_worst")
        k, low = self.k_spin.value(), self.lowest_check.isChecked()
        if k + int(low) < 2:
            raise ClassSetError(f"the lens compares classes, so it needs at least 2 (K >= 2); got K = {k + int(low)}")
        return jobs.ClassRequest("topk", k=k, with_lowest=low)

    def _refresh_presets(self) -> None:
        self.preset_combo.clear()
        self.preset_combo.addItem("class-set presets…", None)
        for name, classes in sorted(self.presets.load().items()):
            self.preset_combo.addItem(f"{name} ({len(classes)})", name)

    def save_preset(self, name: str, classes: Sequence[int] | None = None) -> bool:
        """Save the picked classes (or the current explanation's) under ``name``."""
        name = name.strip()
        if not name:
            self.notify("a preset needs a name", "error")
            return False
        if classes is None:
            classes = self.class_list.checked()
            if not classes and self.model.explanation is not None:
                classes = [int(c) for c in self.model.explanation.classes]
        if len(classes) < 2:
            self.notify("a class-set preset needs at least two classes (K >= 2)", "error")
            return False
        try:
            self.presets.save(name, classes)
        except OSError as exc:
            self.notify(f"could not save preset {name!r}: {exc.strerror or exc}", "error")
            return False
        self._refresh_presets()
        self.notify(f"saved class-set preset {name!r}: {', '.join(map(str, classes))}")
        return True

    def _save_preset_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Save class-set preset", "Name (e.g. retinopathy grades 1-4):")
        if ok:
            self.save_preset(name)

    def apply_preset(self, name: str) -> bool:
        classes = self.presets.load().get(name)
        if classes is None:
            self.notify(f"no class-set preset named {name!r}", "error")
            return False
        self.set_class_mode("picked", classes=classes)
        return True

    def _on_preset_chosen(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if name:
            self.apply_preset(name)

    # ------------------------------------------------------------------ running
    def method_settings(self):
        """``(method, options, lens)`` from the controls, checked (raises AlensError on bad input)."""
        lens = self.lens_params()
        method = self.method_combo.currentData()
        options = self.options_form.values()
        self.methods[method].resolve_options(options)
        return method, options, lens

    def run_explanation(self):
        """Explain the current image with the chosen method, options, class set and lens."""
        if self.loaded is None or self.source is None:
            self.notify("load a model and an image first", "warning")
            return None
        try:
            request = self.class_request()
            method, options, lens = self.method_settings()
        except AlensError as exc:
            self.notify(readable_error(exc), "error")
            return None
        label = f"{self.methods[method].label} on {self.source_label}"
        return self.runner.run(
            "explain", jobs.explain_job, self.loaded, self.source, method, options, request, lens,
            label=label, on_yield=self._on_explain_yield, on_return=self._on_explain_done,
        )

    def _on_explain_yield(self, item) -> None:
        kind, payload = item
        if kind == "prepared":
            display, classes, _probs = payload
            if self.model.image is None or not np.array_equal(self.model.image, display):
                self.model.set_image(display)
            names = self.loaded.class_names
            self.status_text.setText("explaining " + ", ".join(f"{c} {names[c]}" for c in classes) + "…")
            if self._tiles and self.class_mode.currentData() == "topk" and not self.class_list.checked():
                # the grid game: keep the tiles' classes as the user's own set for later runs
                self.set_class_mode("picked", classes=classes)
        elif kind == "partial":  # a running estimate (IG, SmoothGrad): show it while the rest computes
            if not self._showing_partial:
                self._last_complete = self.model.explanation
            self._showing_partial = True
            # the label travels into captions, so an export made now says what it is
            self._show(payload.with_meta(method_label=f"{payload.method_label} (partial estimate)"))
            self.status_text.setText(f"partial result shown; {self.source_label}: still computing…")

    def _show(self, expl) -> None:
        try:
            params = self.lens_params()
        except AlensError:
            params = expl.lens
        if params != expl.lens:  # the user moved a lens control while the model ran
            expl = expl.relens(params)
        self.model.set_explanation(expl)

    def _on_explain_done(self, expl) -> None:
        self._showing_partial = False
        self._show(expl)
        self.notify(f"{expl.method_label}: {expl.k} classes explained ({self.source_label})")

    def cancel(self) -> None:
        """Cancel whatever runs (explanation, model loading, masking, export)."""
        if self.runner.busy():
            self.runner.cancel()
            self.notify("cancelled")

    def _on_task_started(self, slot: str, label: str) -> None:
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(label[:40])
        self.progress_bar.show()
        self.cancel_button.setEnabled(True)
        self.status_text.setText(label + "…")

    def _on_progress(self, slot: str, done: float, total: float, message: str) -> None:
        if total > 0:
            self.progress_bar.setValue(int(1000 * min(1.0, done / total)))
        if message:
            self.progress_bar.setFormat(f"{message} (%p%)")

    def _on_task_finished(self, slot: str, outcome: str) -> None:
        if slot == "explain" and outcome != "done" and self._showing_partial:
            # a cancelled or failed run must not leave its partial estimate looking like a result
            self._showing_partial = False
            self.model.set_explanation(self._last_complete)
        if not self.runner.busy():
            self.progress_bar.hide()
            self.cancel_button.setEnabled(False)
        if outcome == "done" and slot in ("explain", "mask"):
            self.status_text.setText("ready")

    # ------------------------------------------------------------------ lens
    def lens_params(self):
        """The lens parameters the controls describe (raises LensError on bad input)."""
        from alens_gui.core.errors import LensError
        from alens_gui.core.lens import LensParams

        text = self.temps_edit.text().replace(";", ",")
        try:
            temps = tuple(float(t) for t in text.split(",") if t.strip())
        except ValueError:
            raise LensError(f"temperatures must be numbers separated by commas; got {text!r}") from None
        return LensParams(temperatures=temps, tau=self.tau_spin.value(), normalize=self.normalize_combo.currentText(),
                          softmax_input=self.softmax_combo.currentText())

    def apply_lens(self, *_args) -> None:
        """Re-lens the cached maps with the controls' parameters (no model run)."""
        if self._lens_sync:
            return
        try:
            params = self.lens_params()
        except AlensError as exc:
            self.notify(readable_error(exc), "error")
            return
        self._sync_preset_label(params)
        if self.model.explanation is not None:
            try:
                self.model.relens(params)
            except AlensError as exc:
                self.notify(readable_error(exc), "error")

    def set_lens(self, params) -> None:
        """Show ``params`` in the controls and apply them once."""
        self._lens_sync = True
        try:
            self.temps_edit.setText(", ".join(f"{t:g}" for t in params.temperatures))
            self.tau_spin.setValue(params.tau)
            self.normalize_combo.setCurrentText(params.normalize)
            self.softmax_combo.setCurrentText(params.softmax_input)
        finally:
            self._lens_sync = False
        self.apply_lens()

    def _on_lens_preset(self, *_args) -> None:
        from alens_gui.core.lens import preset

        name = self.lens_preset.currentText()
        if name in ("AL", "VAR") and not self._lens_sync:
            self.set_lens(preset(name))

    def _sync_preset_label(self, params) -> None:
        from alens_gui.core.lens import AL, VAR

        name = "AL" if params == AL else "VAR" if params == VAR else "custom"
        if self.lens_preset.currentText() != name:
            self._lens_sync = True
            self.lens_preset.setCurrentText(name)
            self._lens_sync = False

    def _on_explanation(self, expl) -> None:
        if expl is None:
            return
        items = [f"{int(c)} {n}" for c, n in zip(expl.classes, expl.class_names)]
        if items != [self.top_class.itemText(i) for i in range(self.top_class.count())]:
            current = self.top_class.currentIndex()
            self.top_class.clear()
            self.top_class.addItems(items)
            self.top_class.setCurrentIndex(max(0, min(current, expl.k - 1)))
        self.maps.set_selected(min(self.maps.selected, expl.k - 1))

    def select_class(self, index: int) -> None:
        """Make class ``index`` of the set the selected one (export, top-p masking)."""
        self.maps.set_selected(index)
        self.top_class.setCurrentIndex(index)

    # ------------------------------------------------------------------ masking
    def _on_tool(self, tool: str) -> None:
        self.maps.tool = tool

    def select_top_fraction(self, index: int, percent: float) -> bool:
        """Mask the top ``percent`` % of pixels of class ``index``'s refined map."""
        expl = self.model.explanation
        if expl is None:
            self.notify("explain an image first", "warning")
            return False
        if not 0 <= index < expl.k:
            self.notify(f"class index {index} is not in the class set", "error")
            return False
        try:
            region = top_fraction_mask(expl.refined[index], percent / 100.0)
        except AlensError as exc:
            self.notify(readable_error(exc), "error")
            return False
        if not region.any():
            self.notify(f"class {expl.class_names[index]} wins no pixel at this lens setting; nothing to mask",
                        "warning")
            return False
        self.model.add_to_mask(region)
        return True

    def _on_mask_changed(self, mask) -> None:
        self.undo_button.setEnabled(self.model.can_undo)
        self.run_mask()

    def run_mask(self):
        """Run the model on the masked image (a new mask cancels the running comparison)."""
        expl, mask = self.model.explanation, self.model.mask
        if expl is None or mask is None or self.loaded is None:
            return None
        if not mask.any():
            self.runner.cancel("mask")
            self.model.set_mask_result(None)
            self.maps.set_masked_preview(None)
            return None
        return self.runner.run(
            "mask", jobs.mask_job, self.loaded, expl.image, mask.copy(), expl.classes, self.fill_combo.currentText(),
            label="masking", on_return=self._on_mask_done,
        )

    def _on_mask_done(self, result) -> None:
        self.model.set_mask_result(result)
        self.maps.set_masked_preview(result.masked_image)

    # ------------------------------------------------------------------ export
    def _ask_overwrite(self, path: str) -> bool:
        answer = QMessageBox.question(self, "Overwrite?", f"{path} exists. Replace it?")
        return answer == QMessageBox.StandardButton.Yes

    def _export_dialog(self, kind: str, selected: bool = False) -> None:
        if self.model.explanation is None:
            self.notify("nothing to export yet: explain an image first", "warning")
            return
        filt = "NumPy maps (*.npz)" if kind == "npz" else "PNG (*.png);;SVG (*.svg);;PDF (*.pdf)"
        path, _ = QFileDialog.getSaveFileName(self, "Export", "", filt,
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            if kind == "npz":
                self.export_npz(path)
            else:
                self.export_figure(path, [self.maps.selected] if selected else None)

    def _check_target(self, path: str, suffixes: Sequence[str]) -> bool:
        if Path(path).suffix.lower() not in suffixes:
            self.notify(f"{Path(path).name}: choose a file ending in {', '.join(suffixes)}", "error")
            return False
        if Path(path).exists() and not self.confirm_overwrite(path):
            self.notify(f"not overwritten: {path}")
            return False
        return True

    def export_figure(self, path: str, indices: Sequence[int] | None = None):
        """Write an annotated figure (PNG, SVG or PDF by suffix) of some or all classes."""
        expl = self.model.explanation
        if expl is None or not self._check_target(str(path), (".png", ".svg", ".pdf")):
            return None
        return self.runner.run("export", jobs.export_job, "figure", expl, str(path), indices,
                               label="exporting figure", on_return=lambda p: self.notify(f"saved {p}"))

    def export_npz(self, path: str):
        """Write the raw maps as ``.npz``."""
        expl = self.model.explanation
        if expl is None or not self._check_target(str(path), (".npz",)):
            return None
        return self.runner.run("export", jobs.export_job, "npz", expl, str(path), None,
                               label="exporting maps", on_return=lambda p: self.notify(f"saved {p}"))

    # ------------------------------------------------------------------ evaluation
    def _grid_game_dialog(self) -> None:
        n, ok = QInputDialog.getInt(self, "Grid pointing game", "Number of 2 × 2 grids:", 8, 1, 500)
        if ok:
            self.run_grid_game(n)

    def run_grid_game(self, n: int = 8):
        """Score the current method and lens on ``n`` grids; the summary goes to the notifications."""
        if self.loaded is None:
            self.notify("load a model first", "warning")
            return None
        try:
            method, options, lens = self.method_settings()
        except AlensError as exc:
            self.notify(readable_error(exc), "error")
            return None
        return self.runner.run("evaluate", jobs.grid_game_job, self.loaded, method, options, int(n), lens,
                               label="grid pointing game", on_return=self._on_grid_game_done)

    def _on_grid_game_done(self, result: dict) -> None:
        self.grid_game_result = result
        self.notify(jobs.grid_game_summary(result))

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event):  # noqa: N802 - Qt naming
        """Cancel running work and wait for the thread pool before the window goes."""
        self.runner.shutdown()
        self.settings.sync()
        super().closeEvent(event)
