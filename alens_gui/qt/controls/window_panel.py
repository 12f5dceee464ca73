"""Window/level for images above 8 bits (16-bit PNG/TIFF, float TIFF, DICOM) and the frame of a multi-frame file.

As in ImageJ and 3D Slicer: the histogram of the image's native values with the window
drawn on it as a band you can drag, the window's centre and width, and presets (``auto``:
the 0.5-99.5 percentiles, ``full``: the data type's range, ``dicom``: the file's own
window). The window changes what the model sees, so the maps are marked stale until the
next run; re-windowing never reads the file again.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from ..session import ImageRequest, Session
from ._util import combo, differs, set_combo_data

MODES = (("the image's default", "default"), ("auto (0.5-99.5 %)", "auto"), ("full range", "full"),
         ("DICOM tags", "dicom"), ("custom", "custom"))
#: Common CT windows in Hounsfield units (centre, width), offered for CT scans.
CT_PRESETS = {"ct-lung": ("CT lung", -600.0, 1500.0), "ct-mediastinum": ("CT mediastinum", 50.0, 350.0),
              "ct-bone": ("CT bone", 400.0, 1800.0), "ct-brain": ("CT brain", 40.0, 80.0)}
HIST_SAMPLES = 262_144  # the histogram reads at most this many values: it stays instant for any image


def _window_mode(window) -> str:
    if isinstance(window, str) and window in ("default", "auto", "full", "dicom"):
        return window
    if isinstance(window, tuple) and len(window) == 2:
        for key, (_name, c, w) in CT_PRESETS.items():
            if (float(window[0]), float(window[1])) == (c, w):
                return key
    return "custom"


def _set_within(control, lo, hi, value) -> None:
    """Give a spin box or slider a new range and value without it ever holding a value other than
    its old one or ``value`` (a narrower range set first would clamp the old value and send that)."""
    control.setRange(min(lo, control.minimum()), max(hi, control.maximum()))
    if control.value() != value:
        control.setValue(value)
    control.setRange(lo, hi)


class WindowPanel(QWidget):
    """Binds ``session.window`` and the frame.

    ``default`` is the image's own default: the DICOM tags for DICOM files, the full range
    for 8-bit data, ``auto`` for everything else (16-bit and float images).
    """

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        items = list(MODES) + [(f"{name} (C {c:g}, W {w:g})", key) for key, (name, c, w) in CT_PRESETS.items()]
        self.mode = combo(items, "how native values map to the brightness the model sees; the CT presets are "
                                 "windows in Hounsfield units, offered for CT scans")
        self.center = QDoubleSpinBox()
        self.width_ = QDoubleSpinBox()
        for w in (self.center, self.width_):
            w.setRange(-1e9, 1e9)
            w.setDecimals(2)
            w.setKeyboardTracking(False)
            # the range of +-1e9 made each box 130 px wide at least and clipped the column; the
            # range follows the image (see _on_image), the minimum width a number's
            w.setMinimumWidth(70)
        self.width_.setMinimum(1e-6)
        self.hist = pg.PlotWidget()
        self.hist.setBackground("w")
        self.hist.setMenuEnabled(False)
        self.hist.setMouseEnabled(x=False, y=False)
        self.hist.hideButtons()
        self.hist.getAxis("left").setStyle(showValues=False)
        self.hist.setFixedHeight(90)
        self.curve = pg.PlotCurveItem(fillLevel=0, brush=(120, 120, 120, 120), pen="k")
        self.hist.addItem(self.curve)
        self.region = pg.LinearRegionItem(brush=(255, 200, 0, 60))
        self.region.setZValue(10)
        self.hist.addItem(self.region)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.info.setStyleSheet("color: #555; font-size: 11px;")
        self.frame = QSlider(Qt.Orientation.Horizontal)
        self.frame_label = QLabel("")
        self.frame_row = QWidget()
        fr = QHBoxLayout(self.frame_row)
        fr.setContentsMargins(0, 0, 0, 0)
        fr.addWidget(QLabel("frame"))
        fr.addWidget(self.frame, 1)
        fr.addWidget(self.frame_label)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("window", self.mode)
        row = QHBoxLayout()
        row.addWidget(QLabel("centre"))
        row.addWidget(self.center, 1)
        row.addWidget(QLabel("width"))
        row.addWidget(self.width_, 1)
        self.frame.setMinimumWidth(40)
        # one frame per drag: the frame is read (and explained) where the slider is let go; while
        # dragging, the label follows the handle
        self.frame.setTracking(False)
        self.frame.sliderMoved.connect(self._frame_label)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.addLayout(form)
        lay.addLayout(row)
        lay.addWidget(self.hist)
        lay.addWidget(self.info)
        lay.addWidget(self.frame_row)
        self.mode.currentIndexChanged.connect(self._mode_chosen)
        # no signal blocker: a control writes the window only when it shows something else than the
        # window on screen (the image's), so setting the controls from the session writes nothing back
        self.center.valueChanged.connect(lambda x: self._push_custom(x, self.width_.value())
                                         if self._differs(self.center, x, "center") else None)
        self.width_.valueChanged.connect(lambda x: self._push_custom(self.center.value(), x)
                                         if self._differs(self.width_, x, "width") else None)
        self.region.sigRegionChangeFinished.connect(self._region_moved)
        self.frame.valueChanged.connect(self._frame_chosen)
        session.image_changed.connect(self._on_image)
        session.window_changed.connect(self._on_window)
        self._on_image(session.image)
        self._on_window(session.window)

    # -- widgets -> session ---------------------------------------------------------------
    def _shown_window(self):
        """The window of the image on screen (None before an image with one is read)."""
        return getattr(self.session.image, "window", None)

    def _differs(self, spin, value: float, what: str) -> bool:
        w = self._shown_window()
        return w is not None and differs(spin, value, float(getattr(w, what)))

    def _mode_chosen(self, _i: int) -> None:
        mode = self.mode.currentData()
        if mode == _window_mode(self.session.window):
            return  # the session already holds a window of this kind (this was the session's echo)
        if mode in CT_PRESETS:
            _name, c, w = CT_PRESETS[mode]
            self.session.window = (c, w)
        elif mode == "custom":
            self._push_custom(self.center.value(), self.width_.value())
        else:
            self.session.window = mode

    def _push_custom(self, center: float, width: float) -> None:
        if width > 0:
            self.session.window = (round(float(center), 6), round(float(width), 6))

    def _region_moved(self) -> None:
        lo, hi = self.region.getRegion()
        w = self._shown_window()
        if w is None or np.allclose((lo, hi), (w.lo, w.hi), rtol=1e-9, atol=1e-9 * max(1.0, float(w.width))):
            return  # the band shows the window on screen: it was set from the session, not dragged
        if hi > lo:
            self._push_custom((lo + hi) / 2.0, hi - lo)

    def _frame_chosen(self, value: int) -> None:
        req = self.session.image_request
        if req.path and value != req.frame:
            self.session.image_request = ImageRequest(path=req.path, frame=int(value))

    def _offer(self, image) -> None:
        """Only what applies to this image is offered: the file's own window where it has one,
        the CT presets for CT scans (the others stay listed, greyed, with the reason)."""
        info = getattr(image, "info", {}) or {}
        has_file_window = bool(getattr(image, "dicom_windows", ()))
        is_ct = str(info.get("modality", "")).upper() == "CT"
        model = self.mode.model()
        for i in range(self.mode.count()):
            key = self.mode.itemData(i)
            if key == "dicom":
                ok, why = has_file_window, "this image has no window in its file"
            elif key in CT_PRESETS:
                ok, why = is_ct, "for CT scans (values in Hounsfield units)"
            else:
                continue
            item = model.item(i)
            item.setEnabled(ok)
            item.setToolTip("" if ok else why)

    # -- session -> widgets ---------------------------------------------------------------
    def _on_window(self, window) -> None:
        set_combo_data(self.mode, _window_mode(window))  # its change signal finds this window: no write

    def _on_image(self, image) -> None:
        has = image is not None and hasattr(image, "raw")
        self.setEnabled(has)
        if not has:
            return
        self._offer(image)
        raw = np.asarray(image.raw)
        step = max(1, int(np.sqrt(raw.shape[0] * raw.shape[1] * (raw.shape[2] if raw.ndim == 3 else 1) / HIST_SAMPLES)))
        sample = raw[::step, ::step].reshape(-1)
        if sample.dtype.kind == "f":
            sample = sample[np.isfinite(sample)]
        lo_hi = (float(sample.min()), float(sample.max())) if sample.size else (0.0, 1.0)
        if lo_hi[1] <= lo_hi[0]:
            lo_hi = (lo_hi[0] - 0.5, lo_hi[0] + 0.5)
        counts, edges = np.histogram(sample, bins=128, range=lo_hi)
        self.curve.setData(edges, np.log1p(counts), stepMode="center")
        w = image.window
        view_lo, view_hi = min(lo_hi[0], w.lo), max(lo_hi[1], w.hi)
        pad = 0.02 * (view_hi - view_lo)
        self.hist.setXRange(view_lo - pad, view_hi + pad, padding=0)
        span = max(lo_hi[1] - lo_hi[0], float(w.width), 1e-6)
        # the controls show the image's window; each finds the window on screen and writes nothing
        _set_within(self.center, min(lo_hi[0], w.lo) - 4 * span, max(lo_hi[1], w.hi) + 4 * span, float(w.center))
        _set_within(self.width_, 1e-6, 10 * span, float(w.width))
        self.region.setRegion((w.lo, w.hi))
        self.info.setText(f"{html.escape(image.describe())}<br>window: {html.escape(w.describe())}")
        many = image.n_frames > 1
        self.frame_row.setVisible(many)
        if many:
            _set_within(self.frame, 0, image.n_frames - 1, image.frame)  # the request's frame: no write
            self._frame_label(image.frame)

    def _frame_label(self, frame: int) -> None:
        """Frames are numbered from 0, as in the info line, the caption and ``alens --frame``."""
        n = self.frame.maximum() + 1
        self.frame_label.setText(f"{int(frame)} of 0–{n - 1}")
