"""Session files (``.alens``): what a user set and saw, restorable without running the model.

A session file is a zip archive holding

``session.json``     the format name and version, and the front end's state as plain JSON:
                     input paths with their SHA-256, the model spec with its checkpoint
                     hash, method and options, lens, class set, view options, ...;
``explanation.npz``  the explanation's arrays, including the cached method output
                     (``raw``), so the maps re-lens exactly as before;
``mask.npy``         the mask, when one was drawn.

Patient identifiers are never written: the explanation's ``source`` carries none unless
the user asked for them when the image was read.

Reading a session is reading data someone else made
---------------------------------------------------
:func:`load_session` never imports, calls or loads code, and never raises anything but
:class:`SessionFileError` (one line). It reads only a regular file (never a FIFO or a
device); only stored or deflated members, each with a size limit checked before it is
expanded; ``session.json`` with size and depth limits, and every field checked for its type
and range (:func:`validate_state`); the arrays with their declared shapes checked against
the explanation's own geometry before reading, and the total (read and re-lensed) against
the memory available. Input files are hashed only when they are regular files, with a size
limit, so an input path of ``/dev/zero`` or a FIFO is reported, not read.

The model a session names is only described here (``state["model"]``); whether loading it
would run code is for the caller to ask (``alens_gui.core.models.code_needed``) before it
loads anything.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import safeio
from .errors import AlensError

FORMAT = "alens-session"
VERSION = 1
SUFFIX = ".alens"

#: Largest ``session.json`` read (a real one is a few KiB).
MAX_STATE_BYTES = 4 * safeio.MiB
#: Most members a session file may have (it writes three).
MAX_MEMBERS = 16
#: Largest side of the display image and of the model input an explanation may declare.
MAX_SIDE = 4096
#: Largest side of the source image an explanation may declare (metadata only, never allocated).
MAX_SOURCE_SIDE = 1_000_000
#: Most classes in a saved class set.
MAX_CLASSES = 4096
#: Longest path, name or other string field.
MAX_STR = 4096
#: The view modes of the window (``alens_gui.qt.session.VIEW_MODES``; a test keeps them equal).
VIEW_MODES = ("both", "refined", "base")
#: Intensity windows by name; otherwise a window is ``[centre, width]``.
WINDOW_NAMES = ("default", "auto", "full", "dicom")
CLASS_REQUEST_KINDS = ("topk", "best_vs_worst", "picked", "tiles")


class SessionFileError(AlensError):
    """A session file cannot be read (not a session, damaged, too large, or from a newer version)."""


@dataclass
class SessionData:
    """What :func:`load_session` returns: the checked state, the explanation, the mask and
    warnings (inputs changed or missing, a mask that did not fit)."""

    state: dict
    explanation: Any = None
    mask: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)


# -- writing ------------------------------------------------------------------------------------
def save_session(
    path: str | os.PathLike,
    state: dict,
    explanation=None,
    mask: np.ndarray | None = None,
) -> Path:
    """Write a session file atomically (a temporary file renamed into place)."""
    from .outputs import atomic_write

    try:
        text = json.dumps({"format": FORMAT, "version": VERSION, "state": state}, indent=2, default=_jsonable,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SessionFileError(f"the session state cannot be saved: {exc}") from exc

    def write(f) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("session.json", text)
            if explanation is not None:
                z.writestr("explanation.npz", explanation.npz_bytes())
            if mask is not None and np.asarray(mask).any():
                buf = io.BytesIO()
                np.save(buf, np.asarray(mask, dtype=bool), allow_pickle=False)
                z.writestr("mask.npy", buf.getvalue())

    try:
        return atomic_write(path, write)
    except OSError as exc:
        raise SessionFileError(f"{Path(path).name}: cannot be written ({exc.strerror or exc})") from exc


# -- reading ------------------------------------------------------------------------------------
def load_session(path: str | os.PathLike, *, budget: int | None = None) -> SessionData:
    """Read a session file as data (see the module docstring); input files whose hash changed
    are listed in ``warnings``.

    Parameters
    ----------
    path : path
    budget : int, optional
        Bytes the explanation may take once read and re-lensed (default: half of the memory
        available now, :func:`~.safeio.memory_budget`).

    Raises
    ------
    SessionFileError
        For anything wrong with the file, as one line naming the file and the problem.
    """
    name = one_line(Path(path).name)
    budget = safeio.memory_budget(0.5) if budget is None else int(budget)
    try:
        state, expl, mask, warnings = _load(path, name, budget)
    except SessionFileError as exc:
        text = one_line(str(exc))  # (field names come from the file: a key may hold a line break)
        if text == str(exc):
            raise
        raise SessionFileError(text) from exc
    return SessionData(state=state, explanation=expl, mask=mask,
                       warnings=[one_line(w) for w in warnings + check_inputs(state)])


def _load(path, name: str, budget: int):
    try:
        with safeio.open_regular(path, name, SessionFileError) as f:
            return _read(f, name, budget)
    except SessionFileError:
        raise
    except MemoryError as exc:
        raise SessionFileError(f"{name}: the session is too large to open in the memory available") from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise SessionFileError(f"{name}: not a session file, or it is damaged ({_first_line(exc)})") from exc
    except Exception as exc:  # anything else a crafted archive provokes is damage, said in one line
        raise SessionFileError(f"{name}: the session file is damaged ({_first_line(exc)})") from exc


def _read(f, name: str, budget: int):
    with zipfile.ZipFile(f) as z:
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS:
            raise SessionFileError(f"{name}: {len(infos)} members, not an Attribution Lens session")
        members = {i.filename: i for i in infos}
        if "session.json" not in members:
            raise SessionFileError(f"{name}: not an Attribution Lens session (no session.json inside)")
        text = safeio.read_zip_member(z, members["session.json"], MAX_STATE_BYTES, name, SessionFileError,
                                      "session.json")
        doc = safeio.loads_json(text, name, SessionFileError, max_bytes=MAX_STATE_BYTES, what="session.json")
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise SessionFileError(f"{name}: not an Attribution Lens session file")
        version = doc.get("version")
        if type(version) is not int or version < 1:  # (True is an int to Python, not a version)
            raise SessionFileError(f"{name}: the session file has no valid format version")
        if version > VERSION:
            raise SessionFileError(
                f"{name} was saved by a newer Attribution Lens Studio (session format {version}; "
                f"this version reads format {VERSION} and older). Update the program to open it."
            )
        state = validate_state({} if doc.get("state") is None else doc["state"], name)
        warnings: list[str] = []
        expl = None
        if "explanation.npz" in members:
            data = safeio.read_zip_member(z, members["explanation.npz"], budget, name, SessionFileError,
                                          "explanation.npz")
            expl = read_explanation(data, f"{name} (explanation.npz)", budget)
            del data
        mask = None
        if "mask.npy" in members:
            if expl is None:
                warnings.append(f"{name}: the saved mask was left out (the session holds no maps)")
            else:
                h, w = expl.shape
                raw = safeio.read_zip_member(z, members["mask.npy"], h * w + 4096, name, SessionFileError,
                                             "mask.npy")
                mask = safeio.load_npy(raw, f"{name} (mask.npy)", SessionFileError, max_bytes=h * w)
                if mask.dtype != np.bool_ or mask.shape != (h, w):
                    warnings.append(f"{name}: the saved mask ({'x'.join(map(str, mask.shape))} {mask.dtype}) does "
                                    f"not fit the {h} x {w} maps and was left out")
                    mask = None
    return state, expl, mask, warnings


def check_inputs(state: dict) -> list[str]:
    """Warnings for input files that are missing, not regular files or changed since the
    session was saved. Only regular files are hashed (with a size limit), so this never blocks."""
    out = []
    for item in state.get("inputs") or []:
        path, saved = item.get("path"), item.get("sha256")
        if not path:
            continue
        label = Path(path).name or path
        kind = safeio.special_kind(path)
        if kind in ("missing", "a broken symbolic link"):
            out.append(f"{label}: the input file is no longer there (the saved maps are shown)")
            continue
        if kind is not None:
            out.append(f"{label}: the input is {kind}, not a file; it was not read (the saved maps are shown)")
            continue
        now = safeio.sha256_file(path)
        if now is None:
            out.append(f"{label}: the input file could not be read or is too large to check "
                       "(the saved maps are shown)")
        elif saved and now != saved:
            out.append(f"{label}: the input file changed since the session was saved "
                       "(the saved maps are shown; run again to explain the file as it is now)")
    return out


# -- the explanation ------------------------------------------------------------------------------
_SMALL = ("meta", "classes", "class_names", "probs")
_ARRAYS = _SMALL + ("image", "raw")


def read_explanation(data: bytes, name: str, budget: int):
    """An :class:`~.explanation.Explanation` from the bytes of a session's ``explanation.npz``.

    Every array's declared shape is read first (npy headers only) and checked against the
    others (K classes, K names, K probabilities, an H x W x 3 image, K x C x h x w maps);
    then the small arrays and the provenance (``meta``, with the geometry that relates image
    and maps) are read and checked; then the memory the re-lensed maps will take is checked
    against ``budget``; only then are the image and the maps read, each with its declared
    size as the limit.
    """
    heads = safeio.npz_headers(data, name, SessionFileError)
    for key in _ARRAYS:
        if key not in heads:
            raise SessionFileError(f"{name}: the array {key!r} is missing")
    shape = {key: heads[key][0] for key in _ARRAYS}
    kinds = {key: heads[key][1].kind for key in _ARRAYS}
    if len(shape["classes"]) != 1 or kinds["classes"] not in "iu":
        raise SessionFileError(f"{name}: the class set is not a list of class indices")
    k = shape["classes"][0]
    if not 2 <= k <= MAX_CLASSES:
        raise SessionFileError(f"{name}: the class set has {k} classes (2 to {MAX_CLASSES} are possible)")
    for key, what in (("class_names", "class names"), ("probs", "probabilities")):
        if shape[key] != (k,):
            raise SessionFileError(f"{name}: {'x'.join(map(str, shape[key])) or 'no list of'} {what} "
                                   f"for {k} classes")
    image_shape, raw_shape = shape["image"], shape["raw"]
    if len(image_shape) != 3 or image_shape[2] != 3 or kinds["image"] != "f":
        raise SessionFileError(f"{name}: the image is not an H x W x 3 float array")
    if len(raw_shape) != 4 or raw_shape[0] != k or not 1 <= raw_shape[1] <= 3 or kinds["raw"] != "f":
        raise SessionFileError(f"{name}: the method's maps are not {k} x C x h x w floats "
                               f"({'x'.join(map(str, raw_shape))})")
    if max(image_shape[:2]) > MAX_SIDE or max(raw_shape[2:]) > MAX_SIDE:
        raise SessionFileError(f"{name}: the image or the maps are larger than {MAX_SIDE} pixels on a side")

    small = safeio.load_npz(data, name, SessionFileError, max_total=64 * safeio.MiB, only=_SMALL)
    meta_arr = small["meta"]
    if meta_arr.shape != () or meta_arr.dtype.kind != "U":
        raise SessionFileError(f"{name}: 'meta' is not a JSON text")
    meta = safeio.loads_json(str(meta_arr), name, SessionFileError, max_bytes=MAX_STATE_BYTES, what="provenance")
    v = _Check(f"{name}: meta")
    meta = v.obj(meta, "")
    classes, names, probs = _class_arrays(small, name)
    lens = v.lens(meta.get("lens"), "lens")
    if meta.get("geometry") is not None:
        geometry = v.geometry(meta["geometry"], "geometry")
    else:  # image and maps share one frame (a composed grid)
        from .geometry import Geometry

        geometry = Geometry.identity(raw_shape[2:])
    info = dict(
        method=v.text(meta.get("method", ""), "method", 128),
        method_label=v.text(meta.get("method_label", ""), "method_label", 256),
        method_options=v.scalars(meta.get("method_options", {}), "method_options"),
        model_name=v.text(meta.get("model_name", ""), "model_name", 1024),
        top5=v.top5(meta.get("top5", []), "top5"),
        source=v.source(meta.get("source", {}), "source"),
        partial=v.flag(meta.get("partial", False), "partial"),
    )
    if tuple(image_shape[:2]) != tuple(geometry.display_hw):
        raise SessionFileError(f"{name}: the image is {image_shape[0]} x {image_shape[1]} but its geometry says "
                               f"{geometry.display_hw[0]} x {geometry.display_hw[1]}")
    if tuple(raw_shape[2:]) != tuple(geometry.model_hw):
        raise SessionFileError(f"{name}: the maps are {raw_shape[2]} x {raw_shape[3]} but the model input was "
                               f"{geometry.model_hw[0]} x {geometry.model_hw[1]}")
    (h, w), (mh, mw) = geometry.display_hw, geometry.model_hw
    _check_memory(name, k, raw_shape[1], h, w, mh, mw, len(lens.temperatures), budget)

    image = safeio.load_npz(data, name, SessionFileError, only=("image",),
                            max_total=safeio.declared_nbytes(*heads["image"]))["image"]
    raw = safeio.load_npz(data, name, SessionFileError, only=("raw",),
                          max_total=safeio.declared_nbytes(*heads["raw"]))["raw"]
    if image.shape != image_shape or raw.shape != raw_shape:  # (a member named twice: the other one)
        raise SessionFileError(f"{name}: the arrays do not match their headers")
    if not np.isfinite(image).all() or image.min() < -1e-3 or image.max() > 1 + 1e-3:
        raise SessionFileError(f"{name}: the image has values outside [0, 1]")
    if not np.isfinite(raw).all():
        raise SessionFileError(f"{name}: the method's maps hold NaN or infinite values")
    from .explanation import Explanation

    try:
        return Explanation.from_raw(np.clip(image, 0.0, 1.0), classes, names, probs, raw, lens, geometry=geometry,
                                    **info)
    except (AlensError, ValueError, TypeError) as exc:
        raise SessionFileError(f"{name}: the maps cannot be re-lensed ({_first_line(exc)})") from exc


def _class_arrays(small: dict, name: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    classes, names, probs = small["classes"], small["class_names"], small["probs"]
    k = len(classes)
    if classes.min() < 0 or classes.max() >= 2**31 or len(np.unique(classes)) != k:
        raise SessionFileError(f"{name}: the class set has negative, huge or repeated class indices")
    if names.dtype.kind != "U":
        raise SessionFileError(f"{name}: the class names are not texts")
    if names.dtype.itemsize > 4 * 1024:
        raise SessionFileError(f"{name}: a class name is longer than 1024 characters")
    if probs.dtype.kind != "f" or not np.isfinite(probs).all() or probs.min() < 0 or probs.max() > 1 + 1e-6:
        raise SessionFileError(f"{name}: the probabilities are not numbers between 0 and 1")
    return classes.astype(np.int64), [_clean_text(str(n)) for n in names], probs.astype(np.float64)


def _check_memory(name: str, k: int, c: int, h: int, w: int, mh: int, mw: int, temps: int, budget: int) -> None:
    # What re-lensing takes at most: the method's maps and their reduction in the model frame,
    # and in the display frame the base, distribution and refined maps (each also embedded),
    # one softmax per temperature, and the image.
    need = 4 * k * c * (3 * mh * mw + (8 + 2 * temps) * h * w) + 8 * h * w * 3
    if need > budget:
        raise SessionFileError(f"{name}: the maps would take {safeio.fmt_bytes(need)} of memory, more than the "
                               f"{safeio.fmt_bytes(budget)} this session may use")


# -- the state --------------------------------------------------------------------------------------
def validate_state(state: Any, name: str = "session.json") -> dict:
    """The front end's state from ``session.json``, every known field checked for type and
    range (a problem is one :class:`SessionFileError` line naming the field).

    Fields that are absent stay absent (the window keeps its own value); fields this version
    does not know are kept as they are (they are plain JSON, already size- and depth-limited).
    """
    v = _Check(f"{name}: session.json state")
    state = v.obj(state, "")
    out = dict(state)
    checks = {
        "inputs": v.inputs, "image_request": v.image_request, "model": v.model,
        "method": lambda x, w: v.text(x, w, 128, empty=False), "options": v.scalars,
        "input_policy": lambda x, w: v.choice(x, w, _policies()), "window": v.window,
        "class_request": v.class_request, "lens": lambda x, w: v.lens(x, w).as_dict(), "view": v.view,
        "color_scale": v.color_scale,
        "selected": lambda x, w: v.whole(x, w, 0, MAX_CLASSES), "fill": lambda x, w: v.choice(x, w, _fills()),
        "mask_result": lambda x, w: None if x is None else v.mask_result(x, w),
    }
    for key, check in checks.items():
        if key in state:
            out[key] = check(state[key], key)
    return out


def _policies() -> tuple[str, ...]:
    from .geometry import RESIZE_POLICIES

    return RESIZE_POLICIES


def _fills() -> tuple[str, ...]:
    return ("blur", "mean", "black", "noise")  # masking.FILLS (masking imports torch; a test keeps them equal)


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters written as escapes (``\\n``):
    a message that quotes a file's contents stays one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _clean_text(text: str) -> str:
    """Control characters (other than tab) out of a text that is shown."""
    return "".join(ch if ch == "\t" or ch.isprintable() else " " for ch in text)


class _Check:
    """Checks one JSON value after another; each failure is one line naming the field."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def fail(self, where: str, what: str):
        raise SessionFileError(f"{self.prefix}{' ' + where if where else ''}: {what}")

    # -- plain types ----------------------------------------------------------------------
    def obj(self, x, where: str) -> dict:
        if not isinstance(x, dict):
            self.fail(where, f"expected an object, got {_kind(x)}")
        return x

    def seq(self, x, where: str, max_len: int) -> list:
        if not isinstance(x, list):
            self.fail(where, f"expected a list, got {_kind(x)}")
        if len(x) > max_len:
            self.fail(where, f"has {len(x)} entries, more than {max_len}")
        return x

    def text(self, x, where: str, max_len: int = MAX_STR, empty: bool = True) -> str:
        if not isinstance(x, str):
            self.fail(where, f"expected a text, got {_kind(x)}")
        if len(x) > max_len:
            self.fail(where, f"is longer than {max_len} characters")
        if "\x00" in x:
            self.fail(where, "holds a NUL character")
        if not empty and not x.strip():
            self.fail(where, "is empty")
        return x

    def flag(self, x, where: str) -> bool:
        if not isinstance(x, bool):
            self.fail(where, f"expected true or false, got {_kind(x)}")
        return x

    def whole(self, x, where: str, lo: int, hi: int) -> int:
        if type(x) is not int:
            self.fail(where, f"expected a whole number, got {_kind(x)}")
        if not lo <= x <= hi:
            self.fail(where, f"must be between {lo} and {hi}; got {x}")
        return x

    def number(self, x, where: str, lo: float, hi: float) -> float:
        if type(x) not in (int, float) or not math.isfinite(x):
            self.fail(where, f"expected a number, got {_kind(x)}")
        if not lo <= x <= hi:
            self.fail(where, f"must be between {lo:g} and {hi:g}; got {x:g}")
        return float(x)

    def choice(self, x, where: str, choices) -> str:
        if not isinstance(x, str) or x not in choices:
            self.fail(where, f"must be one of {', '.join(choices)}; got {_short(x)}")
        return x

    def path(self, x, where: str) -> str:
        return self.text(x, where, MAX_STR)

    def scalars(self, x, where: str, max_len: int = 64) -> dict:
        """An object of plain values (text, number, true/false, null), e.g. a method's options."""
        x = self.obj(x, where)
        if len(x) > max_len:
            self.fail(where, f"has {len(x)} entries, more than {max_len}")
        for key, value in x.items():
            self.text(key, f"{where} key", 128)
            if isinstance(value, str):
                self.text(value, f"{where}.{key}")
            elif isinstance(value, float) and not math.isfinite(value):
                self.fail(f"{where}.{key}", "is not a finite number")
            elif value is not None and not isinstance(value, (bool, int, float)):
                self.fail(f"{where}.{key}", f"expected a plain value, got {_kind(value)}")
        return dict(x)

    # -- fields of the state ------------------------------------------------------------------
    def inputs(self, x, where: str) -> list:
        out = []
        for i, item in enumerate(self.seq(x, where, 16)):
            at = f"{where}[{i}]"
            item = self.obj(item, at)
            path = self.path(item.get("path", ""), f"{at}.path")
            sha = item.get("sha256")
            if sha is not None:
                sha = self.text(sha, f"{at}.sha256", 64)
                if len(sha) != 64 or any(ch not in "0123456789abcdef" for ch in sha):
                    self.fail(f"{at}.sha256", "is not a SHA-256 in hex")
            out.append({"path": path, "sha256": sha})
        return out

    def image_request(self, x, where: str) -> dict:
        x = self.obj(x, where)
        tiles = [self.path(t, f"{where}.tiles[{i}]") for i, t in enumerate(self.seq(x.get("tiles", []),
                                                                                      f"{where}.tiles", 4))]
        if tiles and len(tiles) != 4:
            self.fail(f"{where}.tiles", f"a grid has 4 tiles, not {len(tiles)}")
        return {"path": self.path(x.get("path", ""), f"{where}.path"),
                "sample": self.text(x.get("sample", ""), f"{where}.sample", 64),
                "tiles": tiles, "frame": self.whole(x.get("frame", 0), f"{where}.frame", 0, 1_000_000)}

    def model(self, x, where: str) -> dict:
        x = self.obj(x, where)
        device = self.text(x.get("device", "auto"), f"{where}.device", 32)
        ck = x.get("checkpoint_sha256")
        return {"spec": self.text(x.get("spec", "default"), f"{where}.spec", MAX_STR) or "default",
                "arch": self.text(x.get("arch", ""), f"{where}.arch", MAX_STR),
                "labels": self.path(x.get("labels", ""), f"{where}.labels"),
                "device": device or "auto",
                "torchscript": self.flag(x.get("torchscript", False), f"{where}.torchscript"),
                "output": self.choice(x.get("output", "") or "", f"{where}.output", ("", "softmax", "sigmoid")),
                "checkpoint_sha256": None if ck is None else self.text(ck, f"{where}.checkpoint_sha256", 64),
                "name": None if x.get("name") is None else self.text(x["name"], f"{where}.name", 1024)}

    def window(self, x, where: str):
        if isinstance(x, str):
            return self.choice(x, where, WINDOW_NAMES)
        pair = self.seq(x, where, 2)
        if len(pair) != 2:
            self.fail(where, "expected a name or [centre, width]")
        centre = self.number(pair[0], f"{where} centre", -1e12, 1e12)
        width = self.number(pair[1], f"{where} width", 0.0, 1e12)
        if width <= 0:
            self.fail(f"{where} width", "must be positive")
        return [centre, width]

    def class_request(self, x, where: str) -> dict:
        x = self.obj(x, where)
        classes = [self.whole(c, f"{where}.classes[{i}]", 0, 2**31 - 1)
                   for i, c in enumerate(self.seq(x.get("classes", []), f"{where}.classes", MAX_CLASSES))]
        if len(set(classes)) != len(classes):
            self.fail(f"{where}.classes", "has repeated classes")
        return {"kind": self.choice(x.get("kind", "topk"), f"{where}.kind", CLASS_REQUEST_KINDS),
                "k": self.whole(x.get("k", 3), f"{where}.k", 1, MAX_CLASSES),
                "with_lowest": self.flag(x.get("with_lowest", False), f"{where}.with_lowest"),
                "classes": classes}

    def lens(self, x, where: str):
        from .lensparams import LensParams

        x = self.obj(x, where)
        temps = self.seq(x.get("temperatures", [1.0, 0.2, 0.01]), f"{where}.temperatures", 16)
        fields = {"temperatures": tuple(self.number(t, f"{where}.temperatures", 1e-9, 1e9) for t in temps),
                  "tau": self.number(x.get("tau", 0.0), f"{where}.tau", -1.0, 1.0)}
        for key in ("normalize", "softmax_input", "reduce"):
            if key in x:
                fields[key] = self.text(x[key], f"{where}.{key}", 32)
        try:
            return LensParams(**fields)
        except AlensError as exc:
            self.fail(where, str(exc))

    def color_scale(self, x, where: str) -> dict:
        from .colors import SCOPES, ColorScale

        scale = self.obj(x, where)
        try:
            cs = ColorScale(scope=self.choice(scale.get("scope", "row"), f"{where}.scope", SCOPES),
                            percentile=self.number(scale.get("percentile", 99.5), f"{where}.percentile", 50, 100),
                            gamma=self.number(scale.get("gamma", 1.0), f"{where}.gamma", 0.05, 20))
        except ValueError as exc:
            self.fail(where, str(exc))
        return cs.as_dict()

    def view(self, x, where: str) -> dict:
        x = self.obj(x, where)
        out = {"mode": self.choice(x.get("mode", "both"), f"{where}.mode", VIEW_MODES),
               "overlay": self.flag(x.get("overlay", True), f"{where}.overlay"),
               "opacity": self.number(x.get("opacity", 0.75), f"{where}.opacity", 0.0, 1.0),
               "territory": self.flag(x.get("territory", True), f"{where}.territory"),
               "hover_radius": self.whole(x.get("hover_radius", 0), f"{where}.hover_radius", 0, 50)}
        if "scale" in x:  # files written before the colour scale was a state field of its own
            out["scale"] = self.color_scale(x["scale"], f"{where}.scale")
        return out

    def mask_result(self, x, where: str) -> dict:
        x = self.obj(x, where)
        classes = [self.whole(c, f"{where}.classes", 0, 2**31 - 1)
                   for c in self.seq(x.get("classes"), f"{where}.classes", MAX_CLASSES)]
        before = [self.number(p, f"{where}.before", 0.0, 1.0) for p in self.seq(x.get("before"), f"{where}.before",
                                                                                MAX_CLASSES)]
        after = [self.number(p, f"{where}.after", 0.0, 1.0) for p in self.seq(x.get("after"), f"{where}.after",
                                                                             MAX_CLASSES)]
        if not (len(classes) == len(before) == len(after)):
            self.fail(where, f"{len(classes)} classes, {len(before)} and {len(after)} probabilities")
        return {"classes": classes, "before": before, "after": after,
                "fraction": self.number(x.get("fraction"), f"{where}.fraction", 0.0, 1.0),
                "fill": self.choice(x.get("fill"), f"{where}.fill", _fills())}

    # -- fields of the explanation's provenance --------------------------------------------------
    def geometry(self, x, where: str):
        from .geometry import RESIZE_POLICIES, Geometry

        x = self.obj(x, where)

        def hw(key: str, hi: int) -> tuple[int, int]:
            pair = self.seq(x.get(key), f"{where}.{key}", 2)
            if len(pair) != 2:
                self.fail(f"{where}.{key}", "expected [height, width]")
            return (self.whole(pair[0], f"{where}.{key}", 1, hi), self.whole(pair[1], f"{where}.{key}", 1, hi))

        def box(key: str, frame: tuple[int, int]) -> tuple[int, int, int, int]:
            b = self.seq(x.get(key), f"{where}.{key}", 4)
            if len(b) != 4:
                self.fail(f"{where}.{key}", "expected [y0, x0, y1, x1]")
            y0, x0, y1, x1 = (self.whole(v, f"{where}.{key}", 0, MAX_SIDE) for v in b)
            if not (y0 < y1 <= frame[0] and x0 < x1 <= frame[1]):
                self.fail(f"{where}.{key}", f"{[y0, x0, y1, x1]} is not a box inside {frame[0]} x {frame[1]}")
            return y0, x0, y1, x1

        policy = self.choice(x.get("policy"), f"{where}.policy", RESIZE_POLICIES)
        display, model = hw("display_hw", MAX_SIDE), hw("model_hw", MAX_SIDE)
        return Geometry(policy, hw("source_hw", MAX_SOURCE_SIDE), display, model, box("box", display),
                        box("content", model))

    def top5(self, x, where: str) -> list:
        out = []
        for i, t in enumerate(self.seq(x, where, 10)):
            t = self.seq(t, f"{where}[{i}]", 3)
            if len(t) != 3:
                self.fail(f"{where}[{i}]", "expected [class, name, probability]")
            out.append((self.whole(t[0], f"{where}[{i}]", 0, 2**31 - 1),
                        _clean_text(self.text(t[1], f"{where}[{i}]", 1024)),
                        self.number(t[2], f"{where}[{i}]", 0.0, 1.0)))
        return out

    def source(self, x, where: str) -> dict:
        """Where the image came from: plain values, one level of objects (the window, identifiers)."""
        x = self.obj(x, where)
        if len(x) > 128:
            self.fail(where, f"has {len(x)} entries, more than 128")
        out = {}
        for key, value in x.items():
            at = f"{where}.{self.text(key, f'{where} key', 128)}"
            if isinstance(value, dict):
                value = self.scalars(value, at)
            elif isinstance(value, list):
                value = [self.scalars({"v": v}, at)["v"] for v in self.seq(value, at, 256)]
            else:
                value = self.scalars({"v": value}, at)["v"]
            out[key] = value
        if "frame" in out:
            self.whole(out["frame"], f"{where}.frame", 0, 1_000_000)
        if "n_frames" in out:
            self.whole(out["n_frames"], f"{where}.n_frames", 1, 1_000_000)
        win = out.get("window")
        if isinstance(win, dict) and not isinstance(win.get("text"), str):
            self.number(win.get("center"), f"{where}.window.center", -1e12, 1e12)
            self.number(win.get("width"), f"{where}.window.width", -1e12, 1e12)
        if isinstance(out.get("file"), str):
            out["file"] = _clean_text(out["file"])
        return out


def _kind(x) -> str:
    return {dict: "an object", list: "a list", str: "a text", bool: "true/false", int: "a number",
            float: "a number", type(None): "null"}.get(type(x), type(x).__name__)


def _short(x) -> str:
    text = repr(x) if isinstance(x, str) else _kind(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _shape(a: np.ndarray) -> str:
    return f"{'x'.join(map(str, a.shape)) or 'scalar'} {a.dtype}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0][:200] if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _jsonable(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
