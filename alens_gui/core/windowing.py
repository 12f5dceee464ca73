"""Intensity windows: how native pixel values (12-bit X-ray counts, CT Hounsfield units,
float microscopy intensities) become the [0, 1] brightness a model and a screen see.

A :class:`Window` maps values at or below ``lo`` to 0 and at or above ``hi`` to 1.
Four ways to choose one (``window=`` in the API, ``--window`` in the CLI):

``auto``
    the 0.5 and 99.5 percentiles of the image's own values (the default above 8 bits);
``full``
    the range the data type can hold (0..255, 0..65535, the DICOM *Bits Stored* range;
    [0, 1] for float data already in [0, 1], otherwise the data's min..max);
``dicom``
    the file's first VOI window (*Window Center/Width*, or the *VOI LUT Sequence*);
``C,W``
    an explicit centre and width in the image's native units, e.g. ``40,400``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .errors import WindowError

MODES = ("auto", "full", "dicom")
#: The percentiles of the ``auto`` window.
AUTO_PERCENTILES = (0.5, 99.5)
#: Above this many values, the ``auto`` percentiles come from an even subsample (speed).
_PERCENTILE_SAMPLE = 2_000_000
FUNCTIONS = ("linear_exact", "linear", "sigmoid", "lut")


@dataclass(frozen=True)
class VoiLut:
    """A DICOM VOI LUT (``VOILUTSequence`` item): ``values[v - first]`` for native value ``v``."""

    first: float
    values: np.ndarray = field(repr=False)
    bits: int = 16

    def __post_init__(self) -> None:
        # the table comes from a file: a depth like 65535 bits would make ``top`` overflow
        if not 1 <= int(self.bits) <= 32:
            raise WindowError(f"a VOI LUT has 1 to 32 bits per entry; got {self.bits}")
        v = np.asarray(self.values)
        if v.ndim != 1 or v.size == 0 or v.dtype.kind not in "uif" or not np.isfinite(v).all():
            raise WindowError("a VOI LUT needs a non-empty table of finite numbers")
        if not np.isfinite(self.first):
            raise WindowError(f"a VOI LUT needs a finite first value; got {self.first}")

    @property
    def top(self) -> float:
        # LUT Descriptor bit depths are often wrong in real files; never let a value exceed 1.
        return float(max(2 ** self.bits - 1, int(self.values.max(initial=0)), 1))


@dataclass(frozen=True)
class Window:
    """An intensity window in the image's native units.

    Attributes
    ----------
    center, width : float
        The window's centre and width (``lo = center - width / 2``, ``hi = center + width / 2``).
    mode : str
        What chose it: ``auto``, ``full``, ``dicom`` or ``manual``.
    function : str
        ``linear_exact`` (lo -> 0, hi -> 1), ``linear`` and ``sigmoid`` (the DICOM VOI LUT
        functions of PS3.3 C.11.2.1.2) or ``lut`` (a VOI LUT sequence).
    label : str
        Free text, e.g. the DICOM window explanation (``BONE``) or why a fallback was used.
    lut : VoiLut, optional
        The lookup table when ``function == "lut"``.
    """

    center: float
    width: float
    mode: str = "manual"
    function: str = "linear_exact"
    label: str = ""
    lut: VoiLut | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.center) and np.isfinite(self.width)) or self.width <= 0:
            raise WindowError(f"a window needs a finite centre and a width > 0; got {self.center:g}, {self.width:g}")
        if self.function not in FUNCTIONS:
            raise WindowError(f"unknown window function {self.function!r}")
        if self.function == "lut" and self.lut is None:
            raise WindowError("a 'lut' window needs its lookup table")

    @classmethod
    def from_range(cls, lo: float, hi: float, mode: str = "manual", label: str = "") -> Window:
        """The window that maps ``lo`` to 0 and ``hi`` to 1 (a flat range gets width 1)."""
        lo, hi = float(lo), float(hi)
        if hi <= lo:
            hi = lo + 1.0
        return cls((lo + hi) / 2.0, hi - lo, mode, "linear_exact", label)

    @property
    def lo(self) -> float:
        return self.center - self.width / 2.0

    @property
    def hi(self) -> float:
        return self.center + self.width / 2.0

    def with_(self, **changes) -> Window:
        return replace(self, **changes)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Map native values to float32 brightness in [0, 1] (same shape)."""
        v = np.asarray(values)
        # float32 holds every 8/16-bit value exactly and halves the memory of a large photograph;
        # 32/64-bit data keeps float64 so that narrow windows on large values stay exact
        precise = v.dtype.itemsize > 4 or (v.dtype.kind in "ui" and v.dtype.itemsize > 2)
        x = v.astype(np.float64 if precise else np.float32, copy=True)
        c, w = self.center, self.width
        if self.function == "lut":
            lut = self.lut
            # as pydicom's apply_voi: the input's offset into the table, truncated, clipped to it
            idx = np.clip(np.floor(x - lut.first), 0, len(lut.values) - 1).astype(np.intp)
            out = lut.values[idx].astype(np.float64) / lut.top
        elif self.function == "sigmoid":
            out = 1.0 / (1.0 + np.exp(np.clip(-4.0 * (x - c) / w, -60, 60)))
        else:
            if self.function == "linear":
                # PS3.3 C.11.2.1.2.1: the centre is offset by half a unit and the width by one
                c, w = c - 0.5, max(w - 1.0, 1e-12)
            out = x  # a fresh copy: work in place, a large image has no room for temporaries
            out -= c
            out /= w
            out += 0.5
        np.clip(out, 0.0, 1.0, out=out)
        return out.astype(np.float32, copy=False)

    def describe(self) -> str:
        """One line for captions and reports, e.g. ``dicom window C 40 W 400 (BONE)``."""
        what = {"auto": "auto window", "full": "full-range window", "dicom": "DICOM window",
                "manual": "window"}.get(self.mode, f"{self.mode} window")
        if self.function == "lut":
            text = f"{what}: VOI LUT, {len(self.lut.values)} entries from {self.lut.first:g}"
        else:
            text = f"{what} C {_num(self.center)} W {_num(self.width)} ({_num(self.lo)} to {_num(self.hi)})"
            if self.function == "sigmoid":
                text += ", sigmoid"
        if self.mode == "auto":
            text += f", {AUTO_PERCENTILES[0]:g}-{AUTO_PERCENTILES[1]:g} percentile"
        return text + (f", {self.label}" if self.label else "")

    def to_dict(self) -> dict:
        """A JSON-safe record (npz, session, report)."""
        d = {"mode": self.mode, "center": float(self.center), "width": float(self.width),
             "lo": float(self.lo), "hi": float(self.hi), "function": self.function, "text": self.describe()}
        if self.label:
            d["label"] = self.label
        if self.lut is not None:
            d["lut"] = {"first": float(self.lut.first), "entries": int(len(self.lut.values)), "bits": int(self.lut.bits)}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Window:
        """Inverse of :meth:`to_dict` (a LUT window comes back as its linear span)."""
        function = d.get("function", "linear_exact")
        if function == "lut":
            function = "linear_exact"
        return cls(float(d["center"]), float(d["width"]), d.get("mode", "manual"), function, d.get("label", ""))


def _num(v: float) -> str:
    """A window value as a person writes it: ``32770``, ``-600``, ``0.25``, ``1234.5`` (never ``3.277e+04``)."""
    v = float(v)
    if abs(v) < 1e12 and v == round(v):
        return str(int(round(v)))
    return f"{v:.4g}" if abs(v) < 1e3 else f"{v:.1f}"


def window_request(window):
    """The ``window=`` that :func:`~alens_gui.core.images.load_image` takes for a front end's
    window value: ``None``, ``""`` and the window menu's ``"default"`` all mean the file's own
    default (``None``). The one place this rule lives (the window, its jobs, the cache keys)."""
    return None if window is None or (isinstance(window, str) and window in ("", "default")) else window


def parse_window(spec) -> str | Window | None:
    """Check a window request: ``None``, ``"auto"``, ``"full"``, ``"dicom"``, ``"C,W"``,
    a ``(center, width)`` pair or a :class:`Window`.

    Returns the mode name, a :class:`Window` (``mode="manual"``) or ``None``.

    Raises
    ------
    WindowError
        Anything else, with a one-line message.
    """
    if spec is None or isinstance(spec, Window):
        return spec
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text in MODES:
            return text
        parts = [p for p in text.replace(";", ",").replace("/", ",").split(",") if p.strip()]
        if len(parts) == 2:
            try:
                center, width = float(parts[0]), float(parts[1])
            except ValueError:
                pass
            else:
                return Window(center, width, "manual")
        raise WindowError(f"a window is auto, full, dicom or CENTER,WIDTH (e.g. 40,400); got {spec!r}")
    if isinstance(spec, Sequence) and len(spec) == 2:
        return Window(float(spec[0]), float(spec[1]), "manual")
    raise WindowError(f"a window is auto, full, dicom, CENTER,WIDTH or a Window; got {spec!r}")


def auto_window(values: np.ndarray, percentiles: tuple[float, float] = AUTO_PERCENTILES) -> Window:
    """The ``auto`` window: the given percentiles of the finite values."""
    v = np.asarray(values).reshape(-1)
    if v.size > _PERCENTILE_SAMPLE:
        v = v[:: v.size // _PERCENTILE_SAMPLE + 1]
    if v.dtype.kind == "f":
        v = v[np.isfinite(v)]
    if v.size == 0:
        return Window.from_range(0.0, 1.0, "auto")
    lo, hi = np.percentile(v, percentiles)
    if hi <= lo:  # a near-constant image: fall back to its extremes, then to a unit width
        lo, hi = float(v.min()), float(v.max())
    return Window.from_range(lo, hi, "auto")


def is_low_depth(values: np.ndarray) -> bool:
    """Whether data is already display-ready: bool, 8-bit integers, integers within 0..255,
    or floats within [0, 1]. Such data gets the ``full`` window by default, everything else ``auto``."""
    a = np.asarray(values)
    if a.dtype == bool:
        return True
    if a.size == 0:
        return True
    if a.dtype.kind in "ui":
        return a.dtype.itemsize == 1 or (int(a.min()) >= 0 and int(a.max()) <= 255)
    if a.dtype.kind == "f":
        finite = a[np.isfinite(a)] if not np.isfinite(a).all() else a
        return finite.size == 0 or (float(finite.min()) >= 0.0 and float(finite.max()) <= 1.0)
    return False


def dtype_range(values: np.ndarray) -> tuple[float, float]:
    """The ``full`` range of a non-DICOM array: the integer type's range (0..255 for integers
    that fit in 8 bits), [0, 1] for floats within it, otherwise the float data's min..max."""
    a = np.asarray(values)
    if a.dtype == bool:
        return 0.0, 1.0
    if a.dtype.kind in "ui":
        if a.dtype.itemsize > 1 and a.size and int(a.min()) >= 0 and int(a.max()) <= 255:
            return 0.0, 255.0
        info = np.iinfo(a.dtype)
        return float(info.min), float(info.max)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return lo, hi


def resolve_window(
    spec,
    values: np.ndarray,
    *,
    full_range: tuple[float, float],
    dicom_windows: Sequence[Window] = (),
    default: str = "auto",
    fallback: str = "auto",
) -> Window:
    """Turn a window request into a concrete :class:`Window` for these values.

    Parameters
    ----------
    spec
        Anything :func:`parse_window` accepts; ``None`` means ``default``.
    values : ndarray
        The native data (for ``auto``).
    full_range : (lo, hi)
        The range ``full`` maps to [0, 1].
    dicom_windows : sequence of Window
        The file's own windows; ``dicom`` takes the first.
    default : str
        The mode used for ``None``.
    fallback : str
        The mode used when ``dicom`` is asked for but the file has no window (``auto`` or
        ``full``); the returned window's label says so.
    """
    req = parse_window(spec)
    if req is None:
        req = default
    if isinstance(req, Window):
        return req
    if req == "dicom":
        if dicom_windows:
            return dicom_windows[0]
        win = resolve_window(fallback, values, full_range=full_range)
        return win.with_(label="no window in the file, " + ("auto" if fallback == "auto" else "full range") + " used")
    if req == "full":
        return Window.from_range(*full_range, mode="full")
    return auto_window(values)
