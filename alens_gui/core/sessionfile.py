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
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import AlensError
from .explanation import Explanation, atomic_write

FORMAT = "alens-session"
VERSION = 1
SUFFIX = ".alens"


class SessionFileError(AlensError):
    """A session file cannot be read (not a session, damaged, or from a newer version)."""


@dataclass
class SessionData:
    """What :func:`load_session` returns."""

    state: dict
    explanation: Explanation | None = None
    mask: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)


def file_sha256(path: str | os.PathLike) -> str | None:
    """SHA-256 of a file's bytes, or None when it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def save_session(
    path: str | os.PathLike,
    state: dict,
    explanation: Explanation | None = None,
    mask: np.ndarray | None = None,
) -> Path:
    """Write a session file atomically (a temporary file renamed into place)."""
    try:
        text = json.dumps({"format": FORMAT, "version": VERSION, "state": state}, indent=2, default=_jsonable)
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

    return atomic_write(path, write)


def load_session(path: str | os.PathLike) -> SessionData:
    """Read a session file; input files whose hash changed are listed in ``warnings``."""
    p = Path(path)
    if not p.is_file():
        raise SessionFileError(f"{p.name}: no such session file")
    try:
        with zipfile.ZipFile(p) as z:
            names = set(z.namelist())
            if "session.json" not in names:
                raise SessionFileError(f"{p.name}: not an Attribution Lens session (no session.json inside)")
            doc = json.loads(z.read("session.json").decode("utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise SessionFileError(f"{p.name}: not an Attribution Lens session file")
            version = doc.get("version")
            if not isinstance(version, int) or version < 1:
                raise SessionFileError(f"{p.name}: the session file has no valid format version")
            if version > VERSION:
                raise SessionFileError(
                    f"{p.name} was saved by a newer Attribution Lens Studio (session format {version}; "
                    f"this version reads format {VERSION} and older). Update the program to open it."
                )
            expl = None
            if "explanation.npz" in names:
                with np.load(io.BytesIO(z.read("explanation.npz")), allow_pickle=False) as arrays:
                    expl = Explanation.from_arrays(arrays)
            mask = None
            if "mask.npy" in names:
                mask = np.load(io.BytesIO(z.read("mask.npy")), allow_pickle=False).astype(bool)
    except SessionFileError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SessionFileError(f"{p.name}: not a session file, or it is damaged ({exc})") from exc
    except (KeyError, ValueError, TypeError, json.JSONDecodeError, AlensError) as exc:
        raise SessionFileError(f"{p.name}: the session file is damaged ({exc})") from exc
    state = doc.get("state") or {}
    if expl is not None and mask is not None and mask.shape != expl.shape:
        mask = None
    return SessionData(state=state, explanation=expl, mask=mask, warnings=check_inputs(state))


def check_inputs(state: dict) -> list[str]:
    """Warnings for input files that are missing or changed since the session was saved."""
    out = []
    for item in state.get("inputs") or []:
        path, saved = item.get("path"), item.get("sha256")
        if not path:
            continue
        now = file_sha256(path)
        if now is None:
            out.append(f"{Path(path).name}: the input file is no longer there (the saved maps are shown)")
        elif saved and now != saved:
            out.append(f"{Path(path).name}: the input file changed since the session was saved "
                       "(the saved maps are shown; run again to explain the file as it is now)")
    return out


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
