"""Seeded evaluation inputs: 2 x 2 grids and two-image left/right composites.

Two sources of images:

* the photographs scikit-image ships (no download): chelsea, coffee, rocket, astronaut,
  stereo_motorcycle and camera, whose top-1 classes on the default model are six
  different ImageNet classes. Each tile is a seeded random crop (60-100 % of each side)
  of one photograph, flipped left-right with probability 1/2, and its class is the
  model's top-1 on *that tile alone* (SPEC section 3). A grid is kept only when its
  four tiles have four different classes.
* a user folder in ImageNet-val layout (one sub-folder of images per class). Folder
  names are mapped to the model's labels by class index (``285``), by name
  (``Egyptian cat``, ``egyptian_cat``, ``Egyptian-cat``: case, ``_`` and ``-`` ignored), or
  by WordNet id (``n02124075``, ImageNet's own layout) for models with an ImageNet label set
  (their ``synsets``, from timm's offline tables). Tile classes are the folder labels (the
  ground truth).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import AlensError, ImageReadError
from ..folders import list_images
from ..images import read_image, tile_masks, to_float_rgb

#: The scikit-image photographs used when no folder is given.
PHOTOGRAPHS = ("chelsea", "coffee", "rocket", "astronaut", "stereo_motorcycle", "camera")
MAX_TRIES = 200


class EvaluationDataError(AlensError):
    """The evaluation images cannot be built (folder layout, labels, too few classes)."""


@dataclass(frozen=True)
class Sample:
    """One evaluation input: an S x S image, its class set and the class regions.

    Attributes
    ----------
    image : (S, S, 3) float32 in [0, 1]
    classes : list of int
        One class per region (4 for a grid, 2 for a composite), all different.
    names : list of str
    regions : (K, S, S) bool
        Region of each class (its tile or its half).
    sources : list of str
        Where each region's picture came from (photograph name or file path).
    """

    image: np.ndarray
    classes: list[int]
    names: list[str]
    regions: np.ndarray
    sources: list[str] = field(default_factory=list)


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    if t.shape[-2:] != (h, w):
        t = F.interpolate(t, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return np.ascontiguousarray(t[0].permute(1, 2, 0).clamp(0, 1).numpy())


def _augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop of 60-100 % of each side, flipped left-right with probability 1/2."""
    h, w = img.shape[:2]
    ch = max(8, int(round(h * rng.uniform(0.6, 1.0))))
    cw = max(8, int(round(w * rng.uniform(0.6, 1.0))))
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    out = img[top:top + ch, left:left + cw]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return out


def _central_strip(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A vertical strip half as wide as it is high, near the centre (+-1/8 width), maybe flipped."""
    h, w = img.shape[:2]
    sw = max(1, min(w, h // 2))
    c = w // 2 + int(rng.integers(-(w // 8), w // 8 + 1))
    left = int(np.clip(c - sw // 2, 0, w - sw))
    out = img[:, left:left + sw]
    return out[:, ::-1] if rng.random() < 0.5 else out


def sample_photographs() -> dict[str, np.ndarray]:
    """The scikit-image photographs of :data:`PHOTOGRAPHS` as float RGB arrays."""
    from skimage import data

    out = {}
    for name in PHOTOGRAPHS:
        img = getattr(data, name)()
        if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
            img = img[0]
        out[name] = to_float_rgb(img)
    return out


def _normalise_name(s: str) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", s).lower().split())


def map_folder_classes(folder: str | os.PathLike, class_names: list[str],
                       synsets: list[str] | None = None) -> dict[int, list[Path]]:
    """Map the class sub-folders of an ImageNet-val style folder to the model's classes.

    ``synsets`` are the model's WordNet ids (``LoadedModel.synsets``), for folders named by them.

    Returns
    -------
    dict
        ``{class index: [image paths]}`` for every sub-folder with at least one image.

    Raises
    ------
    EvaluationDataError
        A missing folder, a sub-folder whose name matches no class (or is a WordNet id the
        model does not know), two folders for one class, or fewer than the needed classes.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise EvaluationDataError(f"{root}: no such folder")
    by_name: dict[str, int] = {}
    for i, n in enumerate(class_names):
        by_name.setdefault(_normalise_name(n), i)
    out: dict[int, list[Path]] = {}
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise EvaluationDataError(f"{root}: expected one sub-folder of images per class (ImageNet-val layout)")
    for d in subdirs:
        name = d.name
        if name.isdigit():
            idx = int(name)
            if idx >= len(class_names):
                raise EvaluationDataError(
                    f"folder {name!r}: class index out of range (the model has {len(class_names)} classes)"
                )
        elif re.fullmatch(r"n\d{8}", name):
            by_synset = {w: i for i, w in enumerate(synsets or [])}
            if name not in by_synset:
                raise EvaluationDataError(
                    f"folder {name!r} is a WordNet id that this model's classes do not include"
                    + ("" if synsets else " (its labels are not an ImageNet label set)")
                    + "; rename the folders to class indices (e.g. 285) or class names (e.g. Egyptian_cat)"
                )
            idx = by_synset[name]
        else:
            key = _normalise_name(name)
            if key not in by_name:
                raise EvaluationDataError(
                    f"folder {name!r} matches no class name of the model; use a class index or one of its "
                    "names (e.g. " + ", ".join(repr(n) for n in class_names[:2]) + ")"
                )
            idx = by_name[key]
        if idx in out:
            raise EvaluationDataError(f"folder {name!r}: a second folder for class {idx} ({class_names[idx]})")
        files = list_images(d)  # every image the program reads, DICOM without a suffix included
        if files:
            out[idx] = files
    return out


class ImageSource:
    """Seeded picture source for grids and composites (photographs or a folder).

    Parameters
    ----------
    loaded : LoadedModel
        The model that classifies tiles (photographs) and names classes.
    folder : path, optional
        An ImageNet-val style folder; when omitted, the scikit-image photographs.
    """

    def __init__(self, loaded, folder: str | os.PathLike | None = None) -> None:
        self.loaded = loaded
        self.folder = folder
        if folder is not None:
            self._classes = map_folder_classes(folder, loaded.class_names, getattr(loaded, "synsets", None))
            self._photos = None
        else:
            self._classes = None
            self._photos = sample_photographs()

    @property
    def num_sources(self) -> int:
        return len(self._classes) if self._classes is not None else len(self._photos)

    def _top1(self, img: np.ndarray) -> int:
        return int(np.argmax(self.loaded.predict(img)))

    def pick(
        self, k: int, tile_hw: tuple[int, int], rng: np.random.Generator, strip: bool = False,
    ) -> tuple[list, list[int], list[str]]:
        """``k`` pictures of ``k`` different classes, each resized to ``tile_hw``.

        ``strip``: cut a central vertical strip of the tile's aspect ratio first (for
        composites), instead of squeezing the whole picture.
        """
        cut = _central_strip if strip else (lambda img, _rng: img)
        if self.num_sources < k:
            what = "class folders with images" if self._classes is not None else "photographs"
            raise EvaluationDataError(f"need at least {k} {what}; found {self.num_sources}")
        h, w = tile_hw
        for _ in range(MAX_TRIES):
            if self._classes is not None:
                keys = sorted(self._classes)
                chosen = rng.choice(len(keys), size=k, replace=False)
                tiles, classes, sources = [], [], []
                for j in chosen:
                    files = self._classes[keys[j]]
                    path = files[int(rng.integers(len(files)))]
                    try:
                        img = read_image(path)
                    except ImageReadError as exc:
                        raise EvaluationDataError(f"evaluation folder: {exc}") from exc
                    tiles.append(_resize(cut(img, rng), h, w))
                    classes.append(int(keys[j]))
                    sources.append(str(path))
                return tiles, classes, sources
            names = list(self._photos)
            chosen = rng.choice(len(names), size=k, replace=False)
            if strip:
                tiles = [_resize(cut(self._photos[names[j]], rng), h, w) for j in chosen]
            else:
                tiles = [_resize(_augment(self._photos[names[j]], rng), h, w) for j in chosen]
            classes = [self._top1(t) for t in tiles]
            if len(set(classes)) == k:
                return tiles, classes, [names[j] for j in chosen]
        raise EvaluationDataError(f"could not find {k} tiles with {k} different top-1 classes in {MAX_TRIES} tries")


def _size(loaded) -> int:
    h, w = loaded.input_size
    return int(min(h, w))


def make_grids(loaded, n: int, seed: int = 0, folder=None, source: ImageSource | None = None) -> list[Sample]:
    """``n`` seeded 2 x 2 grids (S = the model's input size) with four different classes.

    Tile order is top-left, top-right, bottom-left, bottom-right, as
    :func:`~alens_gui.core.images.tile_masks`.
    """
    if n < 1:
        raise EvaluationDataError(f"the number of grids must be at least 1; got {n}")
    src = source or ImageSource(loaded, folder)
    s = _size(loaded)
    half = s // 2
    rng = np.random.default_rng(seed)
    masks = tile_masks(s)
    out = []
    for _ in range(n):
        tiles, classes, sources = src.pick(4, (half, half), rng)
        top = np.concatenate(tiles[:2], axis=1)
        bottom = np.concatenate(tiles[2:], axis=1)
        img = np.zeros((s, s, 3), dtype=np.float32)
        img[: 2 * half, : 2 * half] = np.concatenate([top, bottom], axis=0)
        out.append(Sample(img, classes, [loaded.class_names[c] for c in classes], masks.copy(), sources))
    return out


def make_composites(loaded, n: int, seed: int = 0, folder=None, source: ImageSource | None = None) -> list[Sample]:
    """``n`` seeded two-image composites: two pictures side by side (left / right halves).

    As in the first paper (section 4.2), each half is a central vertical strip of its
    picture (aspect 1:2, shifted by up to 1/8 of the width, flipped with probability 1/2)
    resized to S x S/2; the class of a half is the model's top-1 on the strip alone
    (photographs) or its folder label.
    """
    if n < 1:
        raise EvaluationDataError(f"the number of composites must be at least 1; got {n}")
    src = source or ImageSource(loaded, folder)
    s = _size(loaded)
    half = s // 2
    rng = np.random.default_rng(seed)
    regions = np.zeros((2, s, s), dtype=bool)
    regions[0, :, :half] = True
    regions[1, :, half:] = True
    out = []
    for _ in range(n):
        tiles, classes, sources = src.pick(2, (s, half), rng, strip=True)
        img = np.zeros((s, s, 3), dtype=np.float32)
        img[:, :half] = tiles[0]
        img[:, half:2 * half] = tiles[1]
        out.append(Sample(img, classes, [loaded.class_names[c] for c in classes], regions.copy(), sources))
    return out


#: The index file of a folder of pre-built grids (see :func:`read_grids`).
GRIDS_FILE = "grids.json"
MAX_GRIDS = 10_000
MAX_GRID_SIDE = 8
MAX_GRIDS_BYTES = 4 * 1024 * 1024


def _class_of(label, class_names: list[str], synsets: list[str] | None, where: str) -> int:
    """A class given by index (int or digits), by name (case, ``_`` and ``-`` ignored) or by WordNet id."""
    n = len(class_names)
    if isinstance(label, bool) or not isinstance(label, (int, str)):
        raise EvaluationDataError(f"{where}: a tile class must be a class index or a class name; got {label!r:.60}")
    if isinstance(label, str) and label.strip().isdigit():
        label = int(label.strip())
    if isinstance(label, int):
        if not 0 <= label < n:
            raise EvaluationDataError(f"{where}: class index {label} out of range (the model has {n} classes)")
        return label
    if re.fullmatch(r"n\d{8}", label.strip()):
        ids = {w: i for i, w in enumerate(synsets or [])}
        if label.strip() not in ids:
            raise EvaluationDataError(f"{where}: {label.strip()!r} is a WordNet id that this model's classes "
                                      "do not include")
        return ids[label.strip()]
    key = _normalise_name(label)
    for i, name in enumerate(class_names):
        if _normalise_name(name) == key:
            return i
    raise EvaluationDataError(f"{where}: {label[:60]!r} matches no class name of the model; use a class index "
                              "or one of its names (e.g. " + ", ".join(repr(c) for c in class_names[:2]) + ")")


def _int_field(entry: dict, key: str, where: str, default: int) -> int:
    v = entry.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_GRID_SIDE:
        raise EvaluationDataError(f"{where}: {key!r} must be a whole number from 1 to {MAX_GRID_SIDE}; got {v!r:.40}")
    return v


def cell_masks(size: int, rows: int, cols: int) -> np.ndarray:
    """Boolean masks (rows * cols, size, size) of a grid's cells, row by row (2 x 2: as ``tile_masks``)."""
    ys = [(i * size) // rows for i in range(rows + 1)]
    xs = [(j * size) // cols for j in range(cols + 1)]
    m = np.zeros((rows * cols, size, size), dtype=bool)
    for i in range(rows):
        for j in range(cols):
            m[i * cols + j, ys[i]:ys[i + 1], xs[j]:xs[j + 1]] = True
    return m


def read_grids(loaded, path: str | os.PathLike) -> list[Sample]:
    """Pre-built grids from a folder holding ``grids.json`` and the grid images (or from that file).

    The file (UTF-8 JSON, at most 4 MiB, read as untrusted input)::

        {"grids": [
            {"image": "grid0.png", "rows": 2, "cols": 2,
             "tiles": ["Egyptian cat", 504, "n04037443", "space shuttle"]},
            ...
        ]}

    ``image`` is a path relative to the file's folder (it may not leave it); ``rows`` and
    ``cols`` (1-8, default 2) split the image into equal cells, row by row; ``tiles`` gives
    one class per cell, by index, name or WordNet id, all different. Each image is resized
    to the model's square input size S x S and its cells become the class regions.

    Raises
    ------
    EvaluationDataError
        One line naming the file, the grid and the problem.
    """
    from .. import safeio

    p = Path(path).expanduser()
    index = p / GRIDS_FILE if p.is_dir() else p
    if not index.exists():
        raise EvaluationDataError(f"{p}: no {GRIDS_FILE} there (a grids folder holds {GRIDS_FILE} and the images)")
    data = safeio.read_json(index, str(index), EvaluationDataError, max_bytes=MAX_GRIDS_BYTES, max_depth=6,
                            what="grids file")
    entries = data.get("grids") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise EvaluationDataError(f"{index}: expected {{\"grids\": [{{\"image\": ..., \"tiles\": [...]}}, ...]}}")
    if len(entries) > MAX_GRIDS:
        raise EvaluationDataError(f"{index}: {len(entries)} grids, more than the {MAX_GRIDS} limit")
    root = index.parent.resolve()
    s = _size(loaded)
    out = []
    for gi, e in enumerate(entries):
        where = f"{index.name}, grid {gi + 1}"
        if not isinstance(e, dict) or not isinstance(e.get("image"), str) or not e["image"].strip():
            raise EvaluationDataError(f"{where}: each grid needs an \"image\" file name and \"tiles\"")
        rows, cols = _int_field(e, "rows", where, 2), _int_field(e, "cols", where, 2)
        tiles = e.get("tiles")
        if not isinstance(tiles, list) or len(tiles) != rows * cols:
            raise EvaluationDataError(f"{where}: \"tiles\" must list {rows * cols} classes ({rows} x {cols} cells)")
        classes = [_class_of(t, loaded.class_names, getattr(loaded, "synsets", None), where) for t in tiles]
        if len(set(classes)) != len(classes):
            raise EvaluationDataError(f"{where}: a class appears in two tiles; each tile needs its own class")
        try:
            img_path = (root / e["image"]).resolve()
        except (OSError, ValueError):
            img_path = None
        if img_path is None or not img_path.is_relative_to(root):
            raise EvaluationDataError(f"{where}: image {e['image'][:80]!r} is outside the grids folder")
        try:
            img = read_image(img_path)
        except ImageReadError as exc:
            raise EvaluationDataError(f"{where}: {safeio.one_line(exc)}") from None
        names = [loaded.class_names[c] for c in classes]
        out.append(Sample(_resize(img, s, s), classes, names, cell_masks(s, rows, cols),
                          [f"{e['image']} tile {t + 1}" for t in range(len(classes))]))
    return out
