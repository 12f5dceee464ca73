"""Results kept on disk, so that reopening a folder of images is instant.

Two kinds of entry, both keyed by the image file's identity (absolute path, size and
modification time; no hashing, so a key costs one ``stat``) and by everything that
changes the result:

* a **prediction** (the model's top class and probability, and its top-5) per image,
  model, input policy and intensity window;
* an **explanation** (the method's maps and what re-lensing needs: class set, names,
  probabilities, lens, geometry, provenance) per image, model, policy, window, method with
  options, and class-set request.

Predictions live in one small JSON index, so a table of 1,000 images fills from one
read; explanations are one compressed ``.npz`` each.

It is a cache, and it may hold data derived from patient images, so:

* it lives in the platform's cache folder (:func:`default_cache_dir`; ``ALENS_CACHE_DIR``
  overrides), in folders only the user can open (0700) and files only the user can read (0600);
* it is bounded: a size cap (:data:`DEFAULT_MAX_MB`; ``ALENS_CACHE_MAX_MB`` or
  :meth:`ResultCache.set_limit`, 0 turns it off) enforced by removing the least recently
  used explanations, and at most :data:`MAX_PREDICTIONS` predictions;
* it keeps **no image pixels** unless asked (:meth:`ResultCache.set_keep_pixels`): an
  explanation read back gets its image by reading the file again (the key says it has not
  changed); patient identifiers are never kept, and entries made from DICOM files are marked
  (``dicom``) and counted by :meth:`ResultCache.info`;
* everything read back is bounded (:mod:`~alens_gui.core.safeio`): a damaged, tampered or
  oversized entry or index is treated as missing (and a damaged entry removed);
* ``alens cache info|clear|limit|pixels`` and the window's *File → Clear the cache…* manage it.

Writes are atomic. Entries are never exported as they are: exports and reports draw the
:class:`~alens_gui.core.explanation.Explanation` read back, with the image re-read from its file.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .explanation import Explanation
from .outputs import atomic_write

INDEX = "predictions.json"
ENTRIES = "explanations"
SETTINGS = "settings.json"
#: Overrides where the cache lives.
CACHE_DIR_ENV = "ALENS_CACHE_DIR"
#: Overrides the size cap, in MB (0 turns the cache off).
MAX_MB_ENV = "ALENS_CACHE_MAX_MB"
#: The size cap when neither the environment nor ``alens cache limit`` sets one.
DEFAULT_MAX_MB = 300
#: Predictions kept in the index (the oldest go first); ~300 bytes each.
MAX_PREDICTIONS = 20_000
#: Largest index read (a larger one is treated as missing).
MAX_INDEX_BYTES = 16 * 1024 * 1024
#: Largest expanded entry read, whatever memory is free.
MAX_ENTRY_BYTES = 1024**3
#: Largest display frame (pixels) an entry may declare (a 16k x 16k image).
MAX_DISPLAY_PIXELS = 16384 * 16384
#: A temporary file this old is left over from a crash and removed.
STALE_PART_S = 3600
MB = 1_000_000


def default_cache_dir() -> Path:
    """Where the cache lives: ``$ALENS_CACHE_DIR``, else ``results`` in the platform's cache
    folder for this program (``~/.cache/alens-gui/results`` on Linux,
    ``~/Library/Caches/alens-gui/results`` on macOS, ``%LOCALAPPDATA%\\alens-gui\\Cache\\results``
    on Windows)."""
    env = os.environ.get(CACHE_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("alens-gui", appauthor=False)) / "results"


def old_cache_dirs() -> list[Path]:
    """Folders where earlier versions kept this cache (in the config folder, or straight in the
    cache folder), that still hold some of its files. Nothing is moved from them:
    ``alens cache clear --old`` removes them."""
    from .classsets import default_presets_path

    candidates = [default_presets_path().parent / "cache", Path.home() / ".cache" / "alens-gui"]
    try:
        here = default_cache_dir().resolve()
    except OSError:
        here = None
    out = []
    for d in candidates:
        try:
            if d.resolve() == here:
                continue
        except OSError:
            continue
        if (d / INDEX).is_file() or (d / ENTRIES).is_dir():
            out.append(d)
    return out


def file_identity(path: str | os.PathLike) -> str | None:
    """``path|size|mtime_ns`` of a file, or None when it cannot be read."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:
        return None
    return f"{p}|{st.st_size}|{st.st_mtime_ns}"


def _digest(*parts) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _window_request(window):
    """The ``window=`` of ``load_image`` for a front end's window value (:func:`~.windowing.window_request`)."""
    from .windowing import window_request

    return window_request(window)


@dataclass
class CacheInfo:
    """What :meth:`ResultCache.info` reports."""

    root: Path
    size: int = 0
    explanations: int = 0
    dicom: int = 0
    with_pixels: int = 0
    predictions: int = 0
    max_bytes: int = DEFAULT_MAX_MB * MB
    limit_from: str = "default"
    keep_pixels: bool = False
    mode: int | None = None
    old: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report of ``alens cache info`` and ``alens doctor``, one fact a line."""
        cap = "off (nothing is stored)" if self.max_bytes <= 0 else f"{self.max_bytes / MB:.0f} MB"
        out = [f"folder: {self.root}",
               f"size: {self.size / MB:.1f} MB of {cap} (limit from {self.limit_from})",
               f"entries: {self.explanations} explanation(s) ({self.dicom} from DICOM files, "
               f"{self.with_pixels} with image pixels), {self.predictions} prediction(s)",
               "image pixels: " + ("kept (alens cache pixels off stops it)" if self.keep_pixels
                                   else "not kept (images are read again from their files)")]
        if self.mode is not None:
            private = self.mode & 0o077 == 0
            out.append(f"permissions: {self.mode:04o}" + ("" if private else
                       " (others can open this folder; the entries themselves are private, 0600)"))
        out += [f"note: {n}" for n in self.notes]
        out += [f"old cache of an earlier version: {d} ({_tree_size(d) / MB:.1f} MB; "
                f"`alens cache clear --old` removes it)" for d in self.old]
        return out


class ResultCache:
    """Predictions and explanations on disk under ``root`` (see the module docstring).

    Parameters
    ----------
    root : path, optional
        The cache folder (default :func:`default_cache_dir`).
    max_bytes : int, optional
        The size cap; default ``$ALENS_CACHE_MAX_MB``, else the cap saved with
        :meth:`set_limit`, else :data:`DEFAULT_MAX_MB` MB. 0 stores nothing.
    keep_pixels : bool, optional
        Keep the image in explanation entries; default the saved setting (off).
    """

    def __init__(self, root: str | os.PathLike | None = None, *, max_bytes: int | None = None,
                 keep_pixels: bool | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self._max_bytes = max_bytes
        self._keep_pixels = keep_pixels
        self._lock = threading.RLock()
        self._index: dict[str, dict] | None = None
        self._made = False
        self._settings_read: tuple | None = None

    # -- settings -------------------------------------------------------------------------
    def _settings(self) -> dict:
        from .safeio import read_json

        p = self.root / SETTINGS
        try:
            st = p.stat()
        except OSError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._settings_read is not None and self._settings_read[0] == stamp:
            return dict(self._settings_read[1])  # read once per change: every put asks for the cap
        try:
            data = read_json(p, max_bytes=64 * 1024, max_depth=4)
        except Exception:  # a damaged settings file is no settings
            data = {}
        data = data if isinstance(data, dict) else {}
        self._settings_read = (stamp, data)
        return dict(data)

    def _limit(self) -> tuple[int, str, list[str]]:
        notes = []
        if self._max_bytes is not None:
            return int(self._max_bytes), "the program", notes
        env = os.environ.get(MAX_MB_ENV, "").strip()
        if env:
            try:
                mb = float(env)
                if mb >= 0 and np.isfinite(mb):
                    return int(mb * MB), MAX_MB_ENV, notes
            except ValueError:
                pass
            notes.append(f"{MAX_MB_ENV}={env!r} is not a size in MB; ignored")
        mb = self._settings().get("max_mb")
        if isinstance(mb, (int, float)) and not isinstance(mb, bool) and 0 <= mb < 1e9:
            return int(mb * MB), "alens cache limit", notes
        return DEFAULT_MAX_MB * MB, "default", notes

    @property
    def max_bytes(self) -> int:
        """The size cap in bytes (0: the cache is off)."""
        return self._limit()[0]

    @property
    def keep_pixels(self) -> bool:
        """Whether explanation entries keep the image's pixels (off unless the user turned it on)."""
        if self._keep_pixels is not None:
            return bool(self._keep_pixels)
        return self._settings().get("keep_pixels") is True

    def _save_settings(self, **changes) -> None:
        data = self._settings()
        data.update(changes)
        self._ensure_dirs()
        text = json.dumps(data, indent=1).encode("utf-8")
        atomic_write(self.root / SETTINGS, lambda f: f.write(text), mode=0o600)

    def set_limit(self, mb: float) -> None:
        """Save the size cap (MB; 0 turns the cache off) and apply it now."""
        if not (mb >= 0 and np.isfinite(mb)):
            raise ValueError(f"the cache limit is a size in MB from 0; got {mb}")
        self._save_settings(max_mb=float(mb))
        self._max_bytes = None
        self.evict()

    def set_keep_pixels(self, keep: bool) -> None:
        """Save whether new explanation entries keep the image's pixels."""
        self._save_settings(keep_pixels=bool(keep))
        self._keep_pixels = None

    # -- folders --------------------------------------------------------------------------
    def _ensure_dirs(self) -> None:
        """Create the cache's folders, private (0700)."""
        if self._made and (self.root / ENTRIES).is_dir():
            return
        existed = self.root.is_dir()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        # our own folder (created now, or the default place) is made private; a folder the user
        # named in ALENS_CACHE_DIR that already existed keeps its mode (it may be shared, e.g. /tmp)
        if not existed or self._is_default_root():
            _chmod(self.root, 0o700)
        (self.root / ENTRIES).mkdir(exist_ok=True, mode=0o700)
        _chmod(self.root / ENTRIES, 0o700)
        self._made = True

    def _is_default_root(self) -> bool:
        if os.environ.get(CACHE_DIR_ENV, "").strip():
            return False
        try:
            return self.root.resolve() == default_cache_dir().resolve()
        except OSError:
            return False

    # -- keys ----------------------------------------------------------------------------
    @staticmethod
    def prediction_key(path, model_id: str, policy: str, window) -> str | None:
        ident = file_identity(path)
        return None if ident is None else _digest("prediction", ident, model_id, policy, _window_request(window))

    @staticmethod
    def explanation_key(path, model_id: str, settings) -> str | None:
        """The key of ``path``'s explanation by the model ``model_id`` under ``settings`` (a
        :class:`~.settings.RunSettings`: every front end builds one, so one run has one key);
        None for a file that cannot be identified (nothing is cached for it)."""
        ident = file_identity(path)
        return None if ident is None else _digest("explanation", ident, model_id, settings.key())

    # -- predictions ---------------------------------------------------------------------
    def _load_index(self) -> dict[str, dict]:
        if self._index is None:
            from .safeio import is_regular_file, read_json

            data = None
            p = self.root / INDEX
            if is_regular_file(p):
                try:
                    data = read_json(p, max_bytes=MAX_INDEX_BYTES, max_depth=8)
                except Exception:  # tampered, too large or too deep: an empty cache
                    data = None
            self._index = {k: v for k, v in data.items() if isinstance(k, str) and valid_prediction(v)} \
                if isinstance(data, dict) else {}
        return self._index

    def prediction(self, key: str | None) -> dict | None:
        """The cached prediction record (see :func:`prediction_record`), or None."""
        if key is None:
            return None
        with self._lock:
            rec = self._load_index().get(key)
        return rec if valid_prediction(rec) else None

    def put_prediction(self, key: str | None, record: dict, *, flush: bool = True) -> None:
        if key is None or self.max_bytes <= 0 or not valid_prediction(record):
            return
        with self._lock:
            index = self._load_index()
            index.pop(key, None)
            index[key] = record
            while len(index) > MAX_PREDICTIONS:  # the oldest first (dicts keep insertion order)
                index.pop(next(iter(index)))
        if flush:
            self.flush()

    def flush(self) -> bool:
        """Write the prediction index (atomically, 0600); False if it could not be written."""
        if self.max_bytes <= 0:
            return False
        with self._lock:
            text = json.dumps(self._load_index()).encode("utf-8")
        try:
            self._ensure_dirs()
            atomic_write(self.root / INDEX, lambda f: f.write(text), mode=0o600)
        except OSError:  # a cache that cannot be written is a cache that misses
            return False
        return True

    # -- explanations --------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        return self.root / ENTRIES / f"{key}.npz"

    def has_explanation(self, key: str | None) -> bool:
        return key is not None and self._path(key).is_file()

    def explanation(self, key: str | None, path: str | os.PathLike | None = None, window=None) -> Explanation | None:
        """The cached explanation, or None (missing, damaged, or its image cannot be read).

        Entries keep no pixels by default: the image is read again from ``path`` (the key's
        file, unchanged since) under ``window`` (the window request the key was made with).
        A damaged entry is removed.
        """
        from .safeio import is_regular_file, load_npz, memory_budget

        if key is None:
            return None
        entry = self._path(key)
        if not is_regular_file(entry):
            return None
        try:
            arrays = load_npz(entry, "cache entry", max_total=min(memory_budget(0.25), MAX_ENTRY_BYTES),
                              max_members=16)
            expl = _entry_explanation(arrays, path, window)
        except Exception:  # a damaged or tampered entry is a missing entry, and goes
            _unlink(entry)
            return None
        if expl is None:  # its image cannot be read now
            return None
        try:
            os.utime(entry)  # most recently used: the last to be evicted
        except OSError:
            pass
        return expl

    def put_explanation(self, key: str | None, expl: Explanation) -> bool:
        """Keep an explanation (no pixels unless :attr:`keep_pixels`); False if nothing was written."""
        if key is None or expl.partial or self.max_bytes <= 0:
            return False
        data = entry_bytes(expl, keep_pixels=self.keep_pixels)
        try:
            self._ensure_dirs()
            atomic_write(self._path(key), lambda f: f.write(data), mode=0o600)
        except OSError:
            return False
        self.evict()
        return True

    # -- size ------------------------------------------------------------------------------
    def _entries(self) -> list[tuple[float, int, Path]]:
        """``(mtime, size, path)`` of every file of explanations, stale temporary files removed."""
        out = []
        now = time.time()
        try:
            with os.scandir(self.root / ENTRIES) as it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    if e.name.endswith(".part"):
                        if now - st.st_mtime > STALE_PART_S:
                            _unlink(Path(e.path))
                        continue
                    out.append((st.st_mtime, st.st_size, Path(e.path)))
        except OSError:
            pass
        return out

    def size(self) -> int:
        """Bytes the cache takes on disk (entries and index)."""
        index = self.root / INDEX
        try:
            n = index.stat().st_size if index.is_file() else 0
        except OSError:
            n = 0
        return n + sum(s for _t, s, _p in self._entries())

    def evict(self) -> int:
        """Remove the least recently used explanations until the cache is within its cap
        (to 90 % of it, so that the next few writes do not each remove one). Returns the
        number removed."""
        cap = self.max_bytes
        with self._lock:
            entries = sorted(self._entries())
            index = self.root / INDEX
            try:
                total = (index.stat().st_size if index.is_file() else 0) + sum(s for _t, s, _p in entries)
            except OSError:
                total = sum(s for _t, s, _p in entries)
            if total <= cap:
                return 0
            target = int(cap * 0.9)
            removed = 0
            for _t, size, p in entries:
                if total <= target:
                    break
                if _unlink(p):
                    total -= size
                    removed += 1
            if cap <= 0:
                self.clear(entries=False)
            return removed

    def info(self) -> CacheInfo:
        """Where the cache is, what it holds, its cap (for ``alens cache info`` and the doctor)."""
        cap, source, notes = self._limit()
        out = CacheInfo(root=self.root, max_bytes=cap, limit_from=source, keep_pixels=self.keep_pixels,
                        notes=notes, old=old_cache_dirs())
        try:
            out.mode = stat.S_IMODE(self.root.stat().st_mode) if self.root.is_dir() else None
        except OSError:
            out.mode = None
        entries = self._entries()
        out.explanations = len(entries)
        out.size = self.size()
        for _t, _s, p in entries:
            flags = _entry_flags(p)
            out.dicom += flags.get("dicom", False)
            out.with_pixels += flags.get("image", False)
        with self._lock:
            self._index = None  # another process may have written it
            out.predictions = len(self._load_index())
        return out

    def clear(self, *, entries: bool = True) -> tuple[int, int]:
        """Remove every prediction and explanation (the settings stay). Returns ``(files, bytes)``.

        Only the cache's own files are removed (never a whole folder), so an ``ALENS_CACHE_DIR``
        pointing at a folder with other files in it loses nothing else.
        """
        with self._lock:
            n = size = 0
            for _t, s, p in (self._entries() if entries else []):
                if _unlink(p):
                    n, size = n + 1, size + s
            n2, s2 = _clear_known_files(self.root, keep_dirs=True)
            self._index = {}
            return n + n2, size + s2


def clear_old_caches() -> list[tuple[Path, int, int]]:
    """Remove the caches of earlier versions (:func:`old_cache_dirs`): ``(folder, files, bytes)`` each."""
    out = []
    for d in old_cache_dirs():
        n, size = _clear_known_files(d, keep_dirs=False)
        out.append((d, n, size))
    return out


# -- entries ------------------------------------------------------------------------------------
def entry_bytes(expl: Explanation, *, keep_pixels: bool = False) -> bytes:
    """The bytes of a cache entry: what re-lensing needs, no pixels unless asked, never identifiers.

    Members: ``classes``, ``class_names``, ``probs``, ``raw`` (the method's maps), ``meta``
    (JSON: lens, geometry, method, provenance without ``identifiers``), ``dicom`` (made from a
    DICOM file) and, with ``keep_pixels``, ``image``. ``base``, ``distribution`` and ``refined``
    are made again from ``raw`` when read.
    """
    import io

    source = {k: v for k, v in (expl.source or {}).items() if k != "identifiers"}
    arrays = {
        "classes": np.asarray(expl.classes, dtype=np.int64),
        "class_names": np.array([str(n) for n in expl.class_names]),
        "probs": np.asarray(expl.probs, dtype=np.float64),
        "raw": np.asarray(expl.raw, dtype=np.float32),
        "meta": np.array(expl.with_meta(source=source).meta_json()),
        "dicom": np.array(str(source.get("format", "")).upper() == "DICOM"),
    }
    if keep_pixels:
        arrays["image"] = np.asarray(expl.image, dtype=np.float32)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _entry_explanation(arrays: dict, path, window) -> Explanation | None:
    """An explanation from an entry's arrays, or None when its image cannot be read now.

    Raises (ValueError, KeyError, ...) when the entry is damaged or does not hold what an
    entry holds; the caller treats that as a missing entry.
    """
    from .errors import AlensError
    from .geometry import Geometry
    from .lensparams import LensParams
    from .safeio import loads_json

    text, names, classes = arrays["meta"], arrays["class_names"], np.asarray(arrays["classes"])
    if text.ndim != 0 or text.dtype.kind != "U" or names.ndim != 1 or names.dtype.kind != "U" \
            or classes.ndim != 1 or classes.dtype.kind not in "iu":
        raise ValueError("not a cache entry")
    meta = loads_json(str(text), "cache entry", max_bytes=1024 * 1024, max_depth=8)
    if not isinstance(meta, dict) or not isinstance(meta.get("geometry"), dict):
        raise ValueError("no geometry")
    geom = Geometry.from_dict(meta["geometry"])
    dh, dw = (int(v) for v in geom.display_hw)
    raw = np.asarray(arrays["raw"], dtype=np.float32)
    k = len(classes)
    if not (0 < dh and 0 < dw and dh * dw <= MAX_DISPLAY_PIXELS) or raw.ndim not in (3, 4) or raw.shape[0] != k \
            or len(names) != k or np.asarray(arrays["probs"]).shape != (k,) or k < 1:
        raise ValueError("inconsistent shapes")
    if "image" in arrays:
        image = np.asarray(arrays["image"], dtype=np.float32)
    else:
        if path is None:
            return None
        from .images import as_image, load_image

        source = meta.get("source") if isinstance(meta.get("source"), dict) else {}
        frame = source.get("frame")
        try:
            src = load_image(path, window=_window_request(window), frame=int(frame) if frame else None)
        except (AlensError, TypeError, ValueError):
            return None
        image = geom.display_image(as_image(src.pixels))
    if image.ndim != 3 or tuple(image.shape[:2]) != (dh, dw):
        raise ValueError("the image does not fit the geometry")
    lens = LensParams(**{k: tuple(v) if k == "temperatures" else v for k, v in meta["lens"].items()})
    return Explanation.from_raw(
        image, classes, [str(n) for n in arrays["class_names"]], np.asarray(arrays["probs"]), raw, lens,
        geometry=geom, method=str(meta.get("method", "")), method_label=str(meta.get("method_label", "")),
        method_options=dict(meta.get("method_options") or {}), model_name=str(meta.get("model_name", "")),
        top5=[tuple(t) for t in meta.get("top5") or []], source=dict(meta.get("source") or {}),
        partial=False,
    )


def _entry_flags(path: Path) -> dict:
    """Which of ``dicom`` and ``image`` an entry holds, reading only the zip's directory and one flag."""
    import zipfile

    from .safeio import load_npy

    out = {}
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            out["image"] = "image.npy" in names
            if "dicom.npy" in names and z.getinfo("dicom.npy").file_size < 4096:
                with z.open("dicom.npy") as f:
                    arr = load_npy(f.read(4096), "flag", max_bytes=64)
                out["dicom"] = bool(arr.reshape(-1)[0]) if arr.size else False
    except Exception:  # a damaged entry is reported as holding neither
        pass
    return out


# -- predictions --------------------------------------------------------------------------------
def prediction_record(probs, class_names) -> dict:
    """What a gallery shows for one image: the top-1 class and probability, and the top-5."""
    probs = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-probs)[:5]
    top = int(order[0])
    return {"top1": top, "name": class_names[top], "p": float(probs[top]),
            "top5": [[int(c), class_names[int(c)], float(probs[c])] for c in order]}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def valid_prediction(rec) -> bool:
    """Whether ``rec`` has the shape :func:`prediction_record` gives (a tampered index has others)."""
    if not isinstance(rec, dict):
        return False
    if not (isinstance(rec.get("top1"), int) and not isinstance(rec.get("top1"), bool) and rec["top1"] >= 0
            and isinstance(rec.get("name"), str) and len(rec["name"]) < 1000 and _number(rec.get("p"))):
        return False
    top5 = rec.get("top5")
    if top5 is None:
        return True
    return isinstance(top5, list) and len(top5) <= 5 and all(
        isinstance(t, list) and len(t) == 3 and isinstance(t[0], int) and not isinstance(t[0], bool)
        and isinstance(t[1], str) and len(t[1]) < 1000 and _number(t[2]) for t in top5)


# -- files --------------------------------------------------------------------------------------
def _chmod(path: Path, mode: int) -> None:
    if sys.platform == "win32":  # permissions there are ACLs of the user's profile folder
        return
    try:
        os.chmod(path, mode)
    except OSError:
        pass


def _unlink(path: Path) -> bool:
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def _tree_size(d: Path) -> int:
    total = 0
    for p in (d / INDEX, *(_known_entries(d))):
        try:
            total += p.stat().st_size
        except OSError:
            pass
    return total


def _known_entries(d: Path) -> list[Path]:
    """The cache's own files in ``d/explanations``: ``<32 hex>.npz`` and their temporary files."""
    out = []
    try:
        with os.scandir(d / ENTRIES) as it:
            for e in it:
                name = e.name
                if e.is_file(follow_symlinks=False) and (
                        (name.endswith(".npz") and len(name) == 36 and all(c in "0123456789abcdef" for c in name[:32]))
                        or (name.startswith(".") and name.endswith(".part"))):
                    out.append(Path(e.path))
    except OSError:
        pass
    return out


def _clear_known_files(d: Path, *, keep_dirs: bool) -> tuple[int, int]:
    """Remove the cache files in ``d`` (index, entries, their temporary files); the folders too
    when ``keep_dirs`` is False and they are then empty."""
    n = size = 0
    targets = _known_entries(d) + [d / INDEX]
    try:
        targets += [Path(e.path) for e in os.scandir(d) if e.name.startswith(f".{INDEX}") and e.name.endswith(".part")]
    except OSError:
        pass
    for p in targets:
        try:
            s = p.stat(follow_symlinks=False).st_size if p.is_file() else None
        except OSError:
            s = None
        if s is not None and _unlink(p):
            n, size = n + 1, size + s
    if not keep_dirs:
        for folder in (d / ENTRIES, d):
            try:
                folder.rmdir()  # only when empty: other files in it stay
            except OSError:
                pass
    return n, size
