"""Class-set strategies (SPEC section 1): predefined, top-k (+ lowest), best-vs-worst, named presets."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ClassSetError


def validate_classes(classes: Sequence[int], num_classes: int, *, min_k: int = 2) -> list[int]:
    """Check a user's class list: integers, in range, no duplicates, at least ``min_k``."""
    try:
        out = [int(c) for c in classes]
    except (TypeError, ValueError):
        raise ClassSetError(f"classes must be integers, got {list(classes)!r}") from None
    if any(float(c) != int(c) for c in classes if isinstance(c, float)):
        raise ClassSetError(f"classes must be integers, got {list(classes)!r}")
    bad = [c for c in out if not 0 <= c < num_classes]
    if bad:
        raise ClassSetError(
            f"class {bad[0]} is out of range: this model has classes 0..{num_classes - 1}"
        )
    dup = sorted({c for c in out if out.count(c) > 1})
    if dup:
        raise ClassSetError(f"class {dup[0]} appears more than once in the class set")
    if len(out) < min_k:
        raise ClassSetError(
            f"the lens compares classes, so it needs at least {min_k} (K >= {min_k}); got K = {len(out)}"
        )
    return out


def parse_classes(text: str, class_names: Sequence[str] | None = None) -> list[int]:
    """Parse ``"285,967"`` or ``"tabby, espresso"`` (names matched case-insensitively)."""
    items = [s.strip() for s in text.replace(";", ",").split(",") if s.strip()]
    if not items:
        raise ClassSetError("no classes given")
    out = []
    lookup = {n.lower(): i for i, n in enumerate(class_names or [])}
    for item in items:
        if item.lstrip("-").isdigit():
            out.append(int(item))
        elif item.lower() in lookup:
            out.append(lookup[item.lower()])
        else:
            raise ClassSetError(f"unknown class {item!r}: give class indices or exact class names")
    return out


def top_k(probs, k: int, with_lowest: bool = False) -> list[int]:
    """The ``k`` most probable classes, optionally plus the least probable one."""
    p = np.asarray(probs).reshape(-1)
    if k < 1:
        raise ClassSetError(f"top-k needs k >= 1; got {k}")
    if k + int(with_lowest) < 2:
        raise ClassSetError("top-k needs k >= 2 (or k = 1 with the lowest class) so that K >= 2")
    if k + int(with_lowest) > p.size:
        raise ClassSetError(f"the model has only {p.size} classes; cannot take {k} of them")
    order = np.argsort(-p, kind="stable")
    out = [int(c) for c in order[:k]]
    if with_lowest:
        out.append(int(order[-1]))
    return out


def best_vs_worst(probs) -> list[int]:
    """``{argmax, argmin}`` of the model's output."""
    p = np.asarray(probs).reshape(-1)
    if p.size < 2:
        raise ClassSetError("best-vs-worst needs a model with at least two classes")
    order = np.argsort(-p, kind="stable")  # same tie-breaking as top_k
    return [int(order[0]), int(order[-1])]


# -- named class sets ("presets") ---------------------------------------------------
#: The file the GUI keeps its named class sets in, inside its config folder.
PRESETS_FILE = "class_presets.json"
#: Largest class-presets file read (a thousand presets of a hundred classes take under 1 MB).
MAX_PRESETS_BYTES = 4 * 1024 * 1024
#: The names the GUI registers with Qt, which decide its config folder.
APP_ORG, APP_NAME = "alens", "Attribution Lens Studio"


def default_presets_path() -> Path:
    """Where the GUI keeps its named class sets, found without Qt.

    The same folder as Qt's ``QStandardPaths.AppConfigLocation`` for this program:
    ``$XDG_CONFIG_HOME`` (default ``~/.config``) on Linux, ``~/Library/Preferences`` on
    macOS, ``%LOCALAPPDATA%`` on Windows, each followed by ``alens/Attribution Lens Studio``.
    """
    if sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Preferences"
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME", "")
        root = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".config"
    return root / APP_ORG / APP_NAME / PRESETS_FILE


def load_class_presets(path: str | os.PathLike | None = None) -> dict[str, list]:
    """Named class sets from a JSON file ``{"name": [class indices or names]}``.

    Parameters
    ----------
    path : path, optional
        The file; default the GUI's own store (:func:`default_presets_path`), so a set
        saved in the GUI is at hand on the command line.
    """
    from . import safeio

    p = Path(path) if path is not None else default_presets_path()
    kind = safeio.special_kind(p)
    if kind == "missing":
        where = "the GUI has saved none yet" if path is None else "no such file"
        raise ClassSetError(f"class presets {p.name}: {where} ({p})")
    # a presets file may come from someone else: size and nesting limits, regular files only
    data = safeio.read_json(p, f"class presets {p.name}", ClassSetError, max_bytes=MAX_PRESETS_BYTES,
                            what="presets file")
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(c, (int, str)) and not isinstance(c, bool) for c in v)
        for v in data.values()
    ):
        raise ClassSetError(f'class presets {p.name}: expected {{"name": [classes, ...]}} with indices or names')
    return {str(k): list(v) for k, v in data.items()}


def class_preset(
    name: str, class_names: Sequence[str], path: str | os.PathLike | None = None
) -> list[int]:
    """The classes of the preset called ``name`` (exact, else case-insensitive match).

    Entries may be class indices or class names (matched case-insensitively).
    """
    presets = load_class_presets(path)
    if name in presets:
        items = presets[name]
    else:
        folded = {k.casefold(): v for k, v in presets.items()}
        if name.casefold() not in folded:
            known = ", ".join(repr(k) for k in sorted(presets)) or "none"
            raise ClassSetError(f"no class preset named {name!r} (saved presets: {known})")
        items = folded[name.casefold()]
    lookup = {n.lower(): i for i, n in enumerate(class_names)}
    out = []
    for item in items:
        if isinstance(item, int):
            out.append(item)
        elif item.strip().lower() in lookup:
            out.append(lookup[item.strip().lower()])
        else:
            raise ClassSetError(f"class preset {name!r}: this model has no class named {item!r}")
    return validate_classes(out, len(class_names))


# -- true labels ----------------------------------------------------------------------
def _label_key(text: str) -> str:
    return " ".join(text.replace("_", " ").replace("-", " ").lower().split())


def label_to_class(label: str | None, class_names: Sequence[str],
                   synsets: Sequence[str] | None = None) -> int | None:
    """The class a folder's true label names, or ``None``.

    A label is a class index (``285``), a class name (``Egyptian cat``, ``egyptian_cat``:
    case, ``_`` and ``-`` ignored) or, for models with an ImageNet label set, a WordNet id
    (``n02124075``, ImageNet's own folder names).
    """
    if label is None:
        return None
    text = str(label).strip()
    if text.isdigit():
        idx = int(text)
        return idx if idx < len(class_names) else None
    if synsets and text in synsets:
        return list(synsets).index(text)
    key = _label_key(text)
    for i, name in enumerate(class_names):
        if _label_key(name) == key:
            return i
    return None


def prediction_is_right(label: int | None, top1: int | None, top5=None, output: str = "softmax") -> bool | None:
    """Whether a prediction gets the true class ``label`` right (``None``: cannot tell).

    Single-label (softmax) models are right when the true class is the top class.
    Multi-label (sigmoid) models are right when the true class's own probability is above
    0.5 (the finding is reported present), wherever it ranks; ``top5`` (``(class, name, p)``
    rows, largest first) holds that probability, and a class outside it is below 0.5 when
    the fifth is.
    """
    if label is None or top1 is None:
        return None
    if output != "sigmoid":
        return int(top1) == int(label)
    rows = list(top5 or [])
    for row in rows:
        if int(row[0]) == int(label):
            return float(row[2]) > 0.5
    if rows and float(rows[-1][2]) <= 0.5:
        return False
    return None
