"""Results kept on disk, so that reopening a folder of images is instant.

Two kinds of entry, both keyed by the image file's identity (absolute path, size and
modification time; no hashing, so a key costs one ``stat``) and by everything that
changes the result:

* a **prediction** (the model's top class and probability, and its top-5) per image,
  model, input policy and intensity window;
* an **explanation** (the full :class:`~alens_gui.core.explanation.Explanation`, with its
  cached method output, so it re-lenses exactly) per image, model, policy, window,
  method with options, and class-set request.

Predictions live in one small JSON index, so a table of 1,000 images fills from one
read; explanations are one compressed ``.npz`` each. Writes are atomic; a damaged entry
is treated as missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from .explanation import Explanation, atomic_write

INDEX = "predictions.json"


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


class ResultCache:
    """Predictions and explanations on disk under ``root`` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._index: dict[str, dict] | None = None

    # -- keys ----------------------------------------------------------------------------
    @staticmethod
    def prediction_key(path, model_id: str, policy: str, window) -> str | None:
        ident = file_identity(path)
        return None if ident is None else _digest("prediction", ident, model_id, policy, window)

    @staticmethod
    def explanation_key(path, model_id: str, policy: str, window, method: str, options: dict, classes) -> str | None:
        ident = file_identity(path)
        return None if ident is None else _digest("explanation", ident, model_id, policy, window, method,
                                                   dict(options), classes)

    # -- predictions ---------------------------------------------------------------------
    def _load_index(self) -> dict[str, dict]:
        if self._index is None:
            try:
                data = json.loads((self.root / INDEX).read_text(encoding="utf-8"))
                self._index = data if isinstance(data, dict) else {}
            except (OSError, ValueError):
                self._index = {}
        return self._index

    def prediction(self, key: str | None) -> dict | None:
        if key is None:
            return None
        with self._lock:
            return self._load_index().get(key)

    def put_prediction(self, key: str | None, record: dict, *, flush: bool = True) -> None:
        if key is None:
            return
        with self._lock:
            self._load_index()[key] = record
        if flush:
            self.flush()

    def flush(self) -> None:
        """Write the prediction index (atomically)."""
        with self._lock:
            text = json.dumps(self._load_index()).encode("utf-8")
        atomic_write(self.root / INDEX, lambda f: f.write(text))

    # -- explanations --------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        return self.root / "explanations" / f"{key}.npz"

    def explanation(self, key: str | None) -> Explanation | None:
        if key is None or not self._path(key).exists():
            return None
        try:
            with np.load(self._path(key), allow_pickle=False) as arrays:
                return Explanation.from_arrays(arrays)
        except Exception:  # a damaged entry is a missing entry
            return None

    def has_explanation(self, key: str | None) -> bool:
        return key is not None and self._path(key).exists()

    def put_explanation(self, key: str | None, expl: Explanation) -> None:
        if key is None:
            return
        data = expl.npz_bytes()
        atomic_write(self._path(key), lambda f: f.write(data))


def prediction_record(probs, class_names) -> dict:
    """What a gallery shows for one image: the top-1 class and probability, and the top-5."""
    probs = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-probs)[:5]
    top = int(order[0])
    return {"top1": top, "name": class_names[top], "p": float(probs[top]),
            "top5": [[int(c), class_names[int(c)], float(probs[c])] for c in order]}

