"""The main window: a shell of layout, menus, shortcuts, status and notifications.

State lives in one :class:`~alens_gui.qt.session.Session`; panels in
:mod:`alens_gui.qt.controls` bind to it, the :class:`~alens_gui.qt.controller.Controller`
runs the work, and the views in :mod:`alens_gui.qt.views` draw it. The window only
arranges them: the setup column on the left (model, image, method, class set), the lens
and view rows above the maps in the middle, and what you inspect on the right (the
pixel under the cursor, the probabilities, the masking tools beside their result).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QHBoxLayout,
    QInputDialog,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from . import dialogs, wheel
from .controller import Controller
from .controls import (
    ClassSetPanel,
    ImagePanel,
    LensPanel,
    MaskingPanel,
    MethodPanel,
    ModelPanel,
    ViewPanel,
    WindowPanel,
)
from .controls.class_panel import PresetStore
from .controls.view_panel import HoverRadius
from .session import SAMPLES, ImageRequest, ModelRequest, Session
from .views import CompareView, DistributionView, MapsView, ProbabilityView
from .views.cohort import CohortView
from .views.gallery import GalleryView
from .widgets import ElidedLabel, NotificationArea, RecentList, Section, compact_combos, scroll_column

MAX_RECENT = 10
SESSION_SUFFIX = ".alens"  # (core.sessionfile.SUFFIX; that module loads torch, the window must not yet)


def default_config_dir() -> Path:
    loc = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppConfigLocation)
    return Path(loc or Path.home() / ".config" / "alens-gui")


def initial_size() -> tuple[int, int]:
    """1500 x 900, or the screen's free area where that is smaller (a 1280 x 800 laptop)."""
    from PySide6.QtGui import QGuiApplication

    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return 1500, 900
    free = screen.availableGeometry()
    return min(1500, free.width()), min(900, free.height())


class MainWindow(QMainWindow):
    """Attribution Lens Studio's main window.

    Parameters
    ----------
    image : path, optional
        What to open first (:meth:`open_path`): an image, a folder (shown in the gallery) or a
        ``.alens`` session; a sample photograph (chelsea) when not given.
    model_spec, arch, labels, device, torchscript
        The model to load (see ``alens_gui.core.models.load_model``); given by the user, so
        it may run code (an architecture file, a TorchScript program asked for as such).
    loaded : LoadedModel, optional
        An already loaded model (tests share one); nothing is loaded then.
    config_dir : path, optional
        Where settings (recent files, window layout) and class-set presets live.
    autorun : bool
        Explain each new image (and the first one) as soon as the model is ready.
    compare_with : path, optional
        A second image: once ``image`` is explained it is pinned, and this one is explained
        with its class set beside it (``alens-gui A B``).
    """

    def __init__(self, image=None, model_spec: str = "default", arch: str | None = None, labels: str | None = None,
                 device: str | None = None, *, loaded=None, config_dir: str | os.PathLike | None = None,
                 autorun: bool = True, torchscript: bool = False, compare_with=None) -> None:
        super().__init__()
        self.setWindowTitle("Attribution Lens Studio")
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        self.resize(*initial_size())
        self.config_dir = Path(config_dir) if config_dir is not None else default_config_dir()
        self.settings = QSettings(str(self.config_dir / "settings.ini"), QSettings.Format.IniFormat)
        #: Asked before a file is overwritten; replaceable (tests inject an answer).
        self.confirm_overwrite: Callable[[str], bool] = self._ask_overwrite
        #: Asked before the result cache is cleared (the question names its size); replaceable.
        self.confirm_clear_cache: Callable[[str], bool] = self._ask_clear_cache
        wheel.install()
        wheel.install_typing_guard()

        self.session = Session(self)
        # the result cache lives in the platform's cache folder (ALENS_CACHE_DIR overrides), not here
        self.controller = Controller(self.session, self, autorun=autorun)
        self.controller.files.confirm_code = self._ask_run_code
        self.notifications = NotificationArea()
        self.controller.notified.connect(self.notify)
        self._build_panels()
        self._build_docks()
        self._build_menus()
        self._build_status()
        self._restore_layout()
        wheel.make_wheel_safe(self)
        compact_combos(self)

        self._compare_with = compare_with
        self._first = (image, ModelRequest(spec=model_spec or "default", arch=arch or "", labels=labels or "",
                                           device=device or "auto", torchscript=bool(torchscript)), loaded)
        QTimer.singleShot(0, self.start)

    # ------------------------------------------------------------------ building
    def _build_panels(self) -> None:
        s = self.session
        self.model_panel = ModelPanel(s)
        self.image_panel = ImagePanel(s)
        self.window_panel = WindowPanel(s)
        self.method_panel = MethodPanel(s)
        self.class_panel = ClassSetPanel(s, PresetStore(self.config_dir / "class_presets.json"))
        self.lens_panel = LensPanel(s)
        self.view_panel = ViewPanel(s)
        self.masking_panel = MaskingPanel(s)
        self.maps = MapsView(s)
        self.pinned_maps = MapsView(s, role="pinned")
        self.pinned_maps.follow(self.maps)
        self.compare_view = CompareView(s)
        self.distribution = DistributionView(s)
        self.probabilities = ProbabilityView(s)
        for panel in (self.class_panel, self.lens_panel):
            panel.notified.connect(self.notify)
        for panel in (self.model_panel, self.image_panel, self.window_panel, self.method_panel, self.class_panel,
                      self.masking_panel):
            compact_combos(panel)  # before the docks take their widths from these panels
        self.model_panel.loadRequested.connect(self.controller.load_model)
        self.image_panel.openRequested.connect(self._open_dialog)
        self.image_panel.gridRequested.connect(self._grid_dialog)
        self.view_panel.resetZoomRequested.connect(self.maps.reset_zoom)
        self.masking_panel.topRequested.connect(self.controller.checks.select_top_fraction)

        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.setSpacing(2)
        lay.addWidget(self.lens_panel)
        lay.addWidget(self.view_panel)
        # a comparison's two halves always get one width (equal stretch, no splitter to drag
        # one of them narrow), and lay out alike (the pinned half follows the current one)
        self.map_split = QWidget()
        halves = QHBoxLayout(self.map_split)
        halves.setContentsMargins(0, 0, 0, 0)
        halves.setSpacing(6)
        halves.addWidget(self.pinned_maps, 1)
        halves.addWidget(self.maps, 1)
        lay.addWidget(self.map_split, 1)
        self.setCentralWidget(central)

    def _build_docks(self) -> None:
        setup = QWidget()
        v = QVBoxLayout(setup)
        v.setContentsMargins(2, 2, 2, 2)
        self.window_section = Section("Intensity window", self.window_panel, expanded=False)
        for section in (Section("Model", self.model_panel), Section("Image", self.image_panel), self.window_section,
                        Section("Method", self.method_panel), Section("Class set", self.class_panel)):
            v.addWidget(section)
        # scans and 16-bit images open with their window shown; 8-bit photographs keep it folded
        self.session.image_changed.connect(
            lambda img: self.window_section.button.setChecked(True)
            if img is not None and getattr(img, "provenance", None) and img.provenance().get("windowed") else None)
        v.addStretch(1)
        run_row = QWidget()
        r = QHBoxLayout(run_row)
        r.setContentsMargins(4, 4, 4, 4)
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("explain the image with the current method, options and class set (Ctrl+R)")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("stop the running work (Esc)")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.controller.cancel)
        r.addWidget(self.run_button, 1)
        r.addWidget(self.cancel_button)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(scroll_column(setup), 1)
        lv.addWidget(run_row)
        self.setup_dock = self._dock("Setup", "setup", left, Qt.DockWidgetArea.LeftDockWidgetArea, 280)

        inspect = QWidget()
        v = QVBoxLayout(inspect)
        v.setContentsMargins(2, 2, 2, 2)
        pixel = QWidget()
        pv = QVBoxLayout(pixel)
        pv.setContentsMargins(4, 2, 4, 2)
        self.hover_radius = HoverRadius(self.session)
        pv.addWidget(self.hover_radius)
        pv.addWidget(self.distribution)
        # the comparison's read-out sits at the top of this column while an image is pinned, so
        # the maps keep the height of the window
        self.compare_section = Section("Comparison", self.compare_view)
        v.addWidget(self.compare_section)
        for title, panel in (("Under the cursor", pixel), ("Probabilities", self.probabilities),
                             ("Masking", self.masking_panel)):
            v.addWidget(Section(title, panel))
        v.addStretch(1)
        self.inspect_dock = self._dock("Inspect", "inspect", scroll_column(inspect), Qt.DockWidgetArea.RightDockWidgetArea,
                                       300)
        self.notes_dock = self._dock("Notifications", "notifications", self.notifications,
                                     Qt.DockWidgetArea.BottomDockWidgetArea, 0)
        self.gallery = GalleryView(self.session)
        self.gallery_dock = self._dock("Gallery", "gallery", self.gallery, Qt.DockWidgetArea.BottomDockWidgetArea, 0)
        self.tabifyDockWidget(self.notes_dock, self.gallery_dock)
        self.gallery_dock.hide()
        g, c = self.gallery, self.controller
        g.openRequested.connect(c.gallery.open_row)
        g.compareRequested.connect(c.gallery.compare_rows)
        g.explainAllRequested.connect(c.gallery.explain_all)
        g.cancelRequested.connect(c.gallery.cancel)
        g.openFolderRequested.connect(self._open_folder_dialog)
        g.reportRequested.connect(lambda: self._report_dialog("gallery"))
        self.cohort = CohortView(self.session)
        self.cohort.computeRequested.connect(c.cohort.compute)
        self.cohort.cancelRequested.connect(c.cohort.cancel)
        self.cohort_dock = self._dock("Cohort", "cohort", self.cohort, Qt.DockWidgetArea.BottomDockWidgetArea, 0)
        self.tabifyDockWidget(self.gallery_dock, self.cohort_dock)
        self.cohort_dock.hide()
        self.cohort.openRequested.connect(c.gallery.open_row)
        self.resizeDocks([self.notes_dock], [70], Qt.Orientation.Vertical)
        self._show_comparison(None)
        self.session.pinned_changed.connect(self._show_comparison)

    def _show_comparison(self, pinned) -> None:
        self.pinned_maps.setVisible(pinned is not None)
        self.compare_section.setVisible(pinned is not None)
        self.compare_view.setVisible(pinned is not None)

    def _dock(self, title: str, name: str, widget: QWidget, area, width: int) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        if width:
            self.resizeDocks([dock], [max(width, widget.minimumSizeHint().width())], Qt.Orientation.Horizontal)
        return dock

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcut:
            keys = shortcut if isinstance(shortcut, (list, tuple)) else [shortcut]
            act.setShortcuts([QKeySequence(k) for k in keys])
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            act.setStatusTip(tip)
        act.triggered.connect(lambda _checked=False: slot())
        menu.addAction(act)
        self.addAction(act)
        return act

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        self._action(m, "&Open image…", self._open_dialog, QKeySequence.StandardKey.Open)
        self.recent_menu = m.addMenu("Recent images")
        self._action(m, "Open f&older…", self._open_folder_dialog, "Ctrl+Shift+F",
                     "a gallery of every image in a folder: predictions, true labels, right and wrong")
        self._action(m, "Open folder with &sub-folders…", lambda: self._open_folder_dialog(recursive=True))
        samples = m.addMenu("Sample photographs")
        for name in SAMPLES:
            self._action(samples, name, lambda n=name: self.open_sample(n))
        self._action(m, "Compose a 2 × 2 &grid…", self._grid_dialog)
        m.addSeparator()
        self._action(m, "&Save session…", self._save_session_dialog, QKeySequence.StandardKey.Save)
        self._action(m, "Open sess&ion…", self._open_session_dialog, "Ctrl+Shift+O")
        self.recent_sessions_menu = m.addMenu("Recent sessions")
        m.addSeparator()
        self._action(m, "&Export figure (all classes)…", lambda: self._export_dialog("figure"), "Ctrl+E")
        self._action(m, "Export figure of the &selected class…", lambda: self._export_dialog("figure", True))
        self._action(m, "Export class &territory…", lambda: self._export_dialog("territory"))
        self._action(m, "Export raw maps (.&npz)…", lambda: self._export_dialog("npz"))
        compare_actions = [
            self._action(m, "Export the &comparison…", lambda: self._export_dialog("comparison")),
            self._action(m, "Export &report (PDF) of this image…", lambda: self._report_dialog("current")),
            self._action(m, "Export report of the comparison…", lambda: self._report_dialog("comparison")),
        ]
        del compare_actions[1]  # the report of this image needs no comparison
        for act in compare_actions:  # enabled only while there is a comparison to export
            act.setEnabled(False)
            self.session.pinned_changed.connect(lambda p, act=act: act.setEnabled(p is not None))
        m.addSeparator()
        self._action(m, "Clear the cac&he…", self.clear_cache,
                     tip="remove every cached prediction and explanation of the gallery")
        self.keep_pixels_action = self._action(
            m, "Keep image pixels in the cache", lambda: self.controller.cache.set_keep_pixels(
                self.keep_pixels_action.isChecked()),
            tip="off: cached explanations hold maps only, and images are read again from their files")
        self.keep_pixels_action.setCheckable(True)
        self.keep_pixels_action.setChecked(self.controller.cache.keep_pixels)
        m.addSeparator()
        self._action(m, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        m = mb.addMenu("&Run")
        self._action(m, "&Run", self.run, ["Ctrl+R", "F5"])
        self._action(m, "&Cancel", self.controller.cancel, "Esc")
        m = mb.addMenu("&View")
        self._action(m, "&Next class", lambda: self.step_class(1), "]")
        self._action(m, "&Previous class", lambda: self.step_class(-1), "[")
        self._action(m, "Next image of the gallery", lambda: self.step_image(1), "PgDown")
        self._action(m, "Previous image of the gallery", lambda: self.step_image(-1), "PgUp")
        self._action(m, "Toggle map &overlay", self.toggle_overlay, "O")
        self._action(m, "Toggle class &territory", self.toggle_territory, "T")
        self._action(m, "&Reset zoom", self.maps.reset_zoom, "0")
        m.addSeparator()
        self._action(m, "&Pin for comparison", self.controller.comparison.pin, "P",
                     "keep these maps; the next image is explained with the same class set and shown beside them")
        self._action(m, "&Unpin", self.controller.comparison.unpin, "Shift+P")
        m.addSeparator()
        for dock in (self.setup_dock, self.inspect_dock, self.notes_dock, self.gallery_dock, self.cohort_dock):
            m.addAction(dock.toggleViewAction())
        m = mb.addMenu("&Evaluate")
        self._action(m, "&Grid pointing game…", self._grid_game_dialog)
        m = mb.addMenu("&Help")
        self._action(m, "&Keyboard shortcuts", lambda: dialogs.show_shortcuts(self))
        self.recent = RecentList(self.settings, "recent_files", self.recent_menu, self.open_image, MAX_RECENT)
        self.session.image_changed.connect(self._image_read)
        self.recent_sessions_list = RecentList(self.settings, "recent_sessions", self.recent_sessions_menu,
                                               self.open_session, MAX_RECENT)

    def _build_status(self) -> None:
        # one line that shrinks with the window: elided, the whole text in its tooltip (was clipped)
        self.status_text = ElidedLabel("starting…")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(260)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.hide()
        sb = self.statusBar()
        sb.addWidget(self.status_text, 1)
        sb.addPermanentWidget(self.progress_bar)
        self.session.activity_changed.connect(self._on_activity)
        self.session.gallery_activity_changed.connect(
            lambda _a: self.status_text.setText(self._idle_status()) if not self.session.activity.busy else None)
        self.session.model_status_changed.connect(lambda t: self.status_text.setText(t)
                                                  if not self.session.activity.busy else None)

    def _restore_layout(self) -> None:
        geom = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geom is not None:
            self.restoreGeometry(geom)
        if state is not None:
            self.restoreState(state)

    # ------------------------------------------------------------------ start-up
    def start(self) -> None:
        """Load the model and the first image in the background (the window is already showing)."""
        if self.isVisible():
            self.repaint()  # the first frame is on screen before the loading work starts
        image, request, loaded = self._first
        # the keyboard starts on the maps, not in the first combo box of the Setup column, so the
        # one-key shortcuts work at once (and a click on a map brings the keyboard back there)
        self.maps.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.maps.setFocus()
        self.session.model_request = request
        if loaded is not None:
            self.controller.set_loaded(loaded)
        else:
            self.controller.load_model()
        opened = None if image is None else self.open_path(image)
        if opened in ("folder", None):
            self.session.image_request = ImageRequest(sample="chelsea")
        elif opened == "image" and self._compare_with is not None:
            self.compare_with(self._compare_with)

    def compare_with(self, path) -> None:
        """Once the current image is explained, pin it and explain ``path`` beside it."""
        second = Path(str(path)).expanduser()
        if not second.is_file():
            self.notify(f"{second.name or second}: no such image to compare with", "error")
            return
        c = self.controller
        c.autorun = True
        c.comparison.open_pair(None, lambda: self.open_image(second))

    # ------------------------------------------------------------------ user actions
    def notify(self, text: str, level: str = "info") -> None:
        self.notifications.notify(text, level)
        if level != "info":
            self.statusBar().showMessage(text, 8000)

    def run(self):
        """Explain the current image with the current settings (Ctrl+R)."""
        return self.controller.run()

    def open_path(self, path) -> str | None:
        """Open what ``path`` is: a ``.alens`` session, a folder (the gallery, class sub-folders
        included) or an image. Returns ``"session"``, ``"folder"`` or ``"image"``, or None (with
        one message in the notifications) for a path that is missing or not a file or folder
        (a FIFO, a device: never opened)."""
        from alens_gui.core.safeio import special_kind

        p = Path(str(path)).expanduser()
        kind = special_kind(p)
        if kind == "a folder":
            return "folder" if self.open_folder(p, recursive=True) is not None else None
        if kind == "missing":
            self.notify(f"{p.name or p}: no such file or folder", "error")
            return None
        if kind is not None:
            self.notify(f"{p.name or p}: is {kind}, not an image, a folder or a session; it was not opened", "error")
            return None
        if p.suffix.lower() == SESSION_SUFFIX:
            self.open_session(p)
            return "session"
        return "image" if self.open_image(p) else None

    def open_image(self, path) -> bool:
        """Open an image file (it is explained at once when the model is ready)."""
        p = Path(str(path)).expanduser()
        if not p.exists():
            self.notify(f"{p.name}: no such file", "error")
            return False
        self.session.image_request = ImageRequest(path=str(p.resolve()))
        return True  # listed under File > Recent once it is read (_image_read)

    def _image_read(self, image) -> None:
        """An image read for the request on screen: a file that could not be read is not listed."""
        path = self.session.image_request.path
        if image is not None and path:
            self.recent.add(path)

    def open_sample(self, name: str) -> None:
        self.session.image_request = ImageRequest(sample=name)

    def compose_grid(self, sources: Sequence[str]) -> None:
        """Explain a 2 x 2 grid of four images; the class set becomes the tiles' classes."""
        self.session.image_request = ImageRequest(tiles=tuple(sources))

    def step_class(self, step: int) -> None:
        expl = self.session.explanation
        if expl is not None:
            self.session.selected = (self.session.selected + step) % expl.k

    def step_image(self, step: int) -> None:
        row = self.gallery.step(step)
        if row is not None:
            self.controller.gallery.open_row(row)

    def open_folder(self, folder, recursive: bool = False):
        """Show a folder's images in the gallery (listing, then predictions, in the background)."""
        p = Path(str(folder)).expanduser()
        if not p.is_dir():
            self.notify(f"{p}: no such folder", "error")
            return None
        self.gallery_dock.show()
        self.gallery_dock.raise_()
        # a few rows in sight: the dock shared the bottom with the notifications at one row's height
        want = max(220, int(0.3 * self.height()))
        if self.gallery_dock.height() < want - 20:
            self.resizeDocks([self.gallery_dock], [want], Qt.Orientation.Vertical)
        return self.controller.gallery.open_folder(str(p.resolve()), recursive)

    def export_report(self, path, what: str = "current", rows: Sequence[int] = ()):
        if self._check_target(str(path), (".pdf",)):
            return self.controller.gallery.export_report(str(path), what, rows)
        return None

    def _open_folder_dialog(self, recursive: bool = False) -> None:
        folder = dialogs.open_folder(self, "Open a folder of images")
        if folder:
            self.open_folder(folder, recursive)

    def _report_dialog(self, what: str) -> None:
        rows = self.gallery.selected_rows() if what == "gallery" else ()
        if what == "gallery" and not rows:
            self.notify("select the images to report in the gallery first", "warning")
            return
        if what == "gallery":  # a report of gallery images is named after the folder, not the open image
            folder = Path(self.session.folder).name or "gallery"
            suggested = f"{dialogs.file_stem(folder)}-{len(rows)}-images-report.pdf"
        else:
            suggested = self.suggested_name("report", "pdf")
        path = dialogs.save_file(self, "Export report", "PDF (*.pdf)", "pdf", suggested)
        if path:
            self.export_report(path, what, rows)

    def toggle_overlay(self) -> None:
        v = self.session.view
        self.session.view = v.with_(overlay=not v.overlay)

    def toggle_territory(self) -> None:
        v = self.session.view
        self.session.view = v.with_(territory=not v.territory)

    def export_figure(self, path, indices: Sequence[int] | None = None):
        if self._check_target(str(path), (".png", ".svg", ".pdf")):
            return self.controller.files.export("figure", str(path), indices)
        return None

    def export_territory(self, path):
        if self._check_target(str(path), (".png", ".svg", ".pdf")):
            return self.controller.files.export("territory", str(path))
        return None

    def export_comparison(self, path):
        if self._check_target(str(path), (".png", ".svg", ".pdf")):
            return self.controller.files.export("comparison", str(path))
        return None

    def export_npz(self, path):
        if self._check_target(str(path), (".npz",)):
            return self.controller.files.export("npz", str(path))
        return None

    def save_session(self, path):
        if not str(path).endswith(".alens"):
            path = f"{path}.alens"
        if not self._check_target(str(path), (".alens",)):
            return None
        # listed once written / opened: a file that failed is not offered again as a recent session
        return self.controller.files.save_session(str(path), on_saved=self._remember_session)

    def open_session(self, path):
        return self.controller.files.open_session(str(path), on_opened=self._remember_session)

    def _remember_session(self, path: str) -> None:
        self.recent_sessions_list.add(str(Path(path).resolve()))

    def recent_files(self) -> list[str]:
        return self.recent.items()

    def recent_sessions(self) -> list[str]:
        return self.recent_sessions_list.items()

    # ------------------------------------------------------------------ dialogs
    def _open_dialog(self) -> None:
        path = dialogs.open_file(self, "Open image", dialogs.IMAGE_FILTER)
        if path:
            self.open_image(path)

    def _grid_dialog(self) -> None:
        dlg = dialogs.GridDialog(self)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.compose_grid(dlg.sources())

    def _save_session_dialog(self) -> None:
        path = dialogs.save_file(self, "Save session", dialogs.SESSION_FILTER, "alens",
                                 self.suggested_name("", "alens"))
        if path:
            self.save_session(path)

    def _open_session_dialog(self) -> None:
        path = dialogs.open_file(self, "Open session", dialogs.SESSION_FILTER + ";;All files (*)")
        if path:
            self.open_session(path)

    def suggested_name(self, what: str, suffix: str) -> str:
        """The file name a save dialog offers: the image, the method and what is saved."""
        s = self.session
        expl = s.explanation
        image = (expl.source.get("file") if expl is not None else None) or s.image_request.label or "explanation"
        parts = [dialogs.file_stem(str(image))]
        if expl is not None:
            parts.append(expl.method)
        if what:
            parts.append(what)
        return "-".join(parts) + "." + suffix

    def _export_dialog(self, kind: str, selected: bool = False) -> None:
        if self.session.explanation is None:
            self.notify("nothing to export yet: explain an image first", "warning")
            return
        if kind == "comparison" and self.session.pinned is None:  # (the menu item is disabled then too)
            self.notify("nothing to compare: pin an explanation (View → Pin) and open another image", "warning")
            return
        filt = "NumPy maps (*.npz)" if kind == "npz" else dialogs.FIGURE_FILTER
        suffix = "npz" if kind == "npz" else "png"
        path = dialogs.save_file(self, "Export", filt, suffix,
                                 self.suggested_name(kind if kind in ("territory", "comparison") else "", suffix))
        if not path:
            return
        if kind == "npz":
            self.export_npz(path)
        elif kind == "territory":
            self.export_territory(path)
        elif kind == "comparison":
            self.export_comparison(path)
        else:
            self.export_figure(path, [self.session.selected] if selected else None)

    def _grid_game_dialog(self) -> None:
        n, ok = QInputDialog.getInt(self, "Grid pointing game", "Number of 2 × 2 grids:", 8, 1, 500)
        if ok:
            self.controller.checks.run_grid_game(n)

    def _ask_run_code(self, what: str, where: str) -> bool:
        return dialogs.ask_run_code(self, what, where)

    def _ask_overwrite(self, path: str) -> bool:
        return dialogs.ask_overwrite(self, path)

    def clear_cache(self) -> bool:
        """Remove the cached predictions and explanations (and earlier versions' caches), once the
        user said yes to a question that names their size."""
        from alens_gui.core.resultcache import MB, clear_old_caches

        cache = self.controller.cache
        info = cache.info()
        old = f"\n\nAlso removed: the caches of earlier versions in {', '.join(map(str, info.old))}." if info.old \
            else ""
        question = (f"Remove every cached prediction and explanation from {cache.root}?\n\n"
                    f"{info.explanations} explanation(s) and {info.predictions} prediction(s), "
                    f"{info.size / MB:.1f} MB.{old}\n\nImages, sessions and exported files are not touched; "
                    "a folder is classified again when it is next opened.")
        if not self.confirm_clear_cache(question):
            self.notify("the cache was not cleared")
            return False
        n, size = cache.clear()
        for _folder, n_old, size_old in clear_old_caches():
            n, size = n + n_old, size + size_old
        g = self.session.gallery
        for i in range(len(g.rows)):
            g.update_prediction(i, None, False)
        self.notify(f"cache cleared: {n} file(s), {size / MB:.1f} MB removed")
        return True

    def _ask_clear_cache(self, question: str) -> bool:
        from PySide6.QtWidgets import QMessageBox

        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        answer = QMessageBox.question(self, "Clear the cache", question, buttons, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _check_target(self, path: str, suffixes: Sequence[str]) -> bool:
        if Path(path).suffix.lower() not in suffixes:
            self.notify(f"{Path(path).name}: choose a file ending in {', '.join(suffixes)}", "error")
            return False
        if Path(path).exists() and not self.confirm_overwrite(path):
            self.notify(f"not overwritten: {path}")
            return False
        return True

    # ------------------------------------------------------------------ status
    def _on_activity(self, a) -> None:
        busy = a.busy
        self.cancel_button.setEnabled(busy)
        self.progress_bar.setVisible(busy)
        if busy:
            if a.total > 0:
                self.progress_bar.setValue(int(1000 * min(1.0, a.done / a.total)))
            else:
                self.progress_bar.setValue(0)
            self.progress_bar.setFormat(f"{a.message[:40]} (%p%)" if a.message else "%p%")
            self.status_text.setText(a.label + "…")
        else:
            self.status_text.setText(self._idle_status())

    def _idle_status(self) -> str:
        g = self.session.gallery_activity
        if g.busy:  # the folder's work runs on while the analysis view is idle
            return f"gallery: {g.label}… {g.message}".rstrip()
        return "ready" if self.session.model is not None else self.session.model_status

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event):  # noqa: N802 - Qt naming
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):  # noqa: N802 - Qt naming
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0])

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event):  # noqa: N802 - Qt naming
        """Remember the layout, cancel running work and wait for the thread pool."""
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        self.controller.shutdown()
        super().closeEvent(event)
