"""The one result object every view, the CLI and the exporters read from."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import ClassSetError, LensError
from .lens import AL, LensParams, refine


@dataclass(frozen=True)
class Explanation:
    """Base maps, per-pixel class distribution and refined maps for one image.

    Attributes
    ----------
    image : (H, W, 3) float32 in [0, 1]
        The image as the model saw it (resized to the model's input size).
    classes : (K,) int
        The class set, in order.
    class_names : list of str
        Names of ``classes``.
    probs : (K,) float
        The model's softmax probability of each class (softmax over *all* classes).
    raw : (K, C, H, W) float32
        The method's maps before channel reduction (cached; re-lensing starts here).
    base, distribution, refined : (K, H, W) float32
        Reduced base maps, per-pixel class distribution, refined (lensed) maps.
    lens : LensParams
        The lens parameters that produced ``distribution`` and ``refined``.
    method, method_label, method_options, model_name
        Provenance, shown in captions and exported files.
    top5 : list of (class, name, probability)
        The model's own top-5 for the image.
    """

    image: np.ndarray
    classes: np.ndarray
    class_names: list[str]
    probs: np.ndarray
    raw: np.ndarray
    base: np.ndarray
    distribution: np.ndarray
    refined: np.ndarray
    lens: LensParams = AL
    method: str = ""
    method_label: str = ""
    method_options: dict = field(default_factory=dict)
    model_name: str = ""
    top5: list = field(default_factory=list)

    @classmethod
    def from_raw(cls, image, classes, class_names, probs, raw, lens: LensParams = AL, **meta) -> Explanation:
        """Build an explanation by lensing cached method output (no model involved)."""
        raw = np.asarray(raw, dtype=np.float32)
        if raw.ndim == 3:
            raw = raw[:, None]
        out = refine(raw, lens)
        return cls(
            image=np.asarray(image, dtype=np.float32),
            classes=np.asarray(classes, dtype=np.int64),
            class_names=list(class_names),
            probs=np.asarray(probs, dtype=np.float64),
            raw=raw,
            base=np.asarray(out.base, dtype=np.float32),
            distribution=np.asarray(out.distribution, dtype=np.float32),
            refined=np.asarray(out.refined, dtype=np.float32),
            lens=lens,
            **meta,
        )

    @property
    def k(self) -> int:
        return int(len(self.classes))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.base.shape[-2:])

    def relens(self, params: LensParams | None = None, *, classes=None, **changes) -> Explanation:
        """A new explanation from the cached maps with other lens parameters.

        Parameters
        ----------
        params : LensParams, optional
            Replaces the current parameters; keyword ``changes`` (``tau=...``,
            ``temperatures=...``, ...) then override single fields.
        classes : sequence of int, optional
            A subset (or reordering) of the current class set, K >= 2.
        """
        lens = (params or self.lens).with_(**changes)
        idx = np.arange(self.k)
        if classes is not None:
            wanted = [int(c) for c in classes]
            missing = [c for c in wanted if c not in set(self.classes.tolist())]
            if missing:
                raise ClassSetError(f"class {missing[0]} is not in this explanation's class set")
            if len(set(wanted)) != len(wanted):
                raise ClassSetError("the class subset has duplicates")
            if len(wanted) < 2:
                raise ClassSetError("the lens needs at least two classes (K >= 2)")
            pos = {int(c): i for i, c in enumerate(self.classes)}
            idx = np.array([pos[c] for c in wanted])
        return Explanation.from_raw(
            self.image, self.classes[idx], [self.class_names[i] for i in idx], self.probs[idx],
            self.raw[idx], lens, method=self.method, method_label=self.method_label,
            method_options=dict(self.method_options), model_name=self.model_name, top5=list(self.top5),
        )

    def distribution_at(self, y: int, x: int) -> np.ndarray:
        """The class distribution (K,) at pixel (row ``y``, column ``x``); sums to 1."""
        h, w = self.shape
        if not (0 <= y < h and 0 <= x < w):
            raise LensError(f"pixel ({y}, {x}) is outside the {h} x {w} map")
        d = self.distribution[(slice(None),) + ((0,) if self.distribution.ndim == 4 else ()) + (y, x)]
        return np.asarray(d, dtype=np.float64)

    def caption(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.method_options.items() if k != "layer" or v)
        method = self.method_label or self.method
        return f"{method}{' (' + opts + ')' if opts else ''}; lens {self.lens.describe()}; model {self.model_name}"

    def with_meta(self, **changes) -> Explanation:
        return replace(self, **changes)

    def to_npz(self, path: str | os.PathLike) -> Path:
        """Write the maps to ``path`` atomically (a temp file renamed into place)."""
        arrays = {
            "classes": self.classes,
            "class_names": np.array(self.class_names),
            "probs": self.probs,
            "base": self.base,
            "distribution": self.distribution,
            "refined": self.refined,
            "image": self.image,
            "temperatures": np.array(self.lens.temperatures),
            "tau": np.array(self.lens.tau),
            "method": np.array(self.method),
        }
        return atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(fileobj)`` on a temporary file next to ``path``, then rename it.

    A crash or error never leaves a partial file at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
