"""The one result object every view, the CLI and the exporters read from."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import safeio
from .errors import AlensError, ClassSetError, LensError
from .geometry import Geometry
from .lens import AL, LensParams, refine
from .lensparams import TIE_MARGIN
from .outputs import atomic_write


def reduce_channels_np(raw: np.ndarray, reduce: str) -> np.ndarray:
    """(K, C, H, W) maps reduced over channels as the lens's ``reduce`` option says."""
    if raw.ndim != 4 or reduce == "none":
        return raw
    if reduce == "abs-sum":
        return np.abs(raw).sum(axis=1)
    return raw.sum(axis=1)


@dataclass(frozen=True)
class Explanation:
    """Base maps, per-pixel class distribution and refined maps for one image.

    Everything a user sees is in the image's own aspect (the *display* frame of
    :mod:`~alens_gui.core.geometry`); only ``raw`` stays in the model's input frame.

    Attributes
    ----------
    image : (H, W, 3) float32 in [0, 1]
        The image at display resolution, aspect kept.
    classes : (K,) int
        The class set, in order.
    class_names : list of str
        Names of ``classes``.
    probs : (K,) float
        The model's probability of each class: a softmax over *all* classes, or, for a
        multi-label model (``output == "sigmoid"``), each class's own sigmoid.
    raw : (K, C, h, w) float32
        The method's maps in the model's input frame, before channel reduction (cached;
        re-lensing starts here).
    base, distribution, refined : (K, H, W) float32
        Reduced base maps, per-pixel class distribution, refined (lensed) maps, in the
        display frame. With the ``center-crop`` input policy, pixels outside the crop the
        model saw are NaN in all three.
    lens : LensParams
        The lens parameters that produced ``distribution`` and ``refined``.
    method, method_label, method_options, model_name
        Provenance, shown in captions and exported files.
    top5 : list of (class, name, probability)
        The model's own top-5 for the image.
    geometry : Geometry
        How the display frame maps onto the model's input.
    source : dict
        Where the image came from (:meth:`~alens_gui.core.images.ImageInput.provenance`):
        file name, sha256, format, frame, the intensity window used (a dict, see
        :meth:`~alens_gui.core.windowing.Window.to_dict`), DICOM modality ...; never patient
        identifiers unless the user asked for them.
    partial : bool
        A running estimate (IG, SmoothGrad part-way), not a finished result.
    output : {"softmax", "sigmoid"}
        How the model's logits became ``probs`` and ``top5``.
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
    geometry: Geometry | None = None
    source: dict = field(default_factory=dict)
    partial: bool = False
    output: str = "softmax"

    @classmethod
    def from_raw(
        cls, image, classes, class_names, probs, raw, lens: LensParams = AL, *,
        geometry: Geometry | None = None, **meta,
    ) -> Explanation:
        """Build an explanation by lensing cached method output (no model involved).

        ``raw`` is in the model's frame; ``image`` in the display frame described by
        ``geometry`` (default: both frames are one, as for a composed grid).
        """
        raw = np.asarray(raw, dtype=np.float32)
        if raw.ndim == 3:
            raw = raw[:, None]
        image = np.asarray(image, dtype=np.float32)
        if geometry is None:
            geometry = Geometry.identity(raw.shape[-2:])
            if tuple(image.shape[:2]) != tuple(raw.shape[-2:]):
                raise LensError(
                    f"the maps are {raw.shape[-2]} x {raw.shape[-1]} but the image is "
                    f"{image.shape[0]} x {image.shape[1]}: pass the geometry that relates them"
                )
        base_box = geometry.box_maps(reduce_channels_np(raw, lens.reduce))
        return cls._lensed(image, classes, class_names, probs, raw, base_box, lens, geometry, meta)

    @classmethod
    def _lensed(cls, image, classes, class_names, probs, raw, base_box, lens, geometry, meta) -> Explanation:
        out = refine(base_box, lens)
        return cls(
            image=image,
            classes=np.asarray(classes, dtype=np.int64),
            class_names=list(class_names),
            probs=np.asarray(probs, dtype=np.float64),
            raw=raw,
            base=geometry.embed(np.asarray(out.base, dtype=np.float32)),
            distribution=geometry.embed(np.asarray(out.distribution, dtype=np.float32)),
            refined=geometry.embed(np.asarray(out.refined, dtype=np.float32)),
            lens=lens,
            geometry=geometry,
            **meta,
        )

    def _meta(self) -> dict:
        return dict(method=self.method, method_label=self.method_label, method_options=dict(self.method_options),
                    model_name=self.model_name, top5=list(self.top5), source=dict(self.source), partial=self.partial,
                    output=self.output)

    @property
    def k(self) -> int:
        return int(len(self.classes))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.base.shape[-2:])

    @property
    def signed(self) -> bool:
        """Whether the method's maps have negative values (they get the diverging colour map)."""
        from .colors import is_signed

        return is_signed(self.base)

    def _box(self, maps: np.ndarray) -> np.ndarray:
        y0, x0, y1, x1 = self.geometry.box
        return maps[..., y0:y1, x0:x1]

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
        if lens.reduce == self.lens.reduce:  # the display-frame base maps are already there
            base_box = self._box(self.base[idx])
        else:
            base_box = self.geometry.box_maps(reduce_channels_np(self.raw[idx], lens.reduce))
        return Explanation._lensed(
            self.image, self.classes[idx], [self.class_names[i] for i in idx], self.probs[idx],
            self.raw[idx], base_box, lens, self.geometry, self._meta(),
        )

    def model_frame(self, params: LensParams | None = None) -> dict[str, np.ndarray]:
        """Base, distribution and refined maps in the model's input frame (what the model saw).

        The display-frame maps (``base``, ``distribution``, ``refined``) are what a user sees;
        evaluators that draw their own inputs at the model's size (grids, pointing games,
        Quantus) want the maps on the model's pixels instead: the lens is run on ``raw``
        reduced over channels, with this explanation's lens parameters or ``params``.

        Returns
        -------
        dict with ``base``, ``distribution``, ``refined`` : (K, h, w) float32 arrays at the
        model's input size (padding included for the ``pad`` policy).
        """
        lens = params or self.lens
        out = refine(reduce_channels_np(self.raw, lens.reduce), lens)
        return {"base": np.asarray(out.base, dtype=np.float32),
                "distribution": np.asarray(out.distribution, dtype=np.float32),
                "refined": np.asarray(out.refined, dtype=np.float32)}

    def distribution_at(self, y: int, x: int, radius: float = 0) -> np.ndarray:
        """The class distribution (K,) at pixel (row ``y``, column ``x``); sums to 1.

        With ``radius`` > 0 the distribution is averaged over the disc of that radius
        (pixels of the image only): gradient maps are noisy from pixel to pixel, and a
        neighbourhood says more than one pixel. Outside the part of the image the model
        saw (``center-crop``) every entry is NaN.
        """
        h, w = self.shape
        if not (0 <= y < h and 0 <= x < w):
            raise LensError(f"pixel ({y}, {x}) is outside the {h} x {w} map")
        dist = self.distribution if self.distribution.ndim == 3 else self.distribution.mean(axis=1)
        if radius <= 0:
            return np.asarray(dist[:, y, x], dtype=np.float64)
        r = float(radius)
        y0, y1 = max(0, int(np.floor(y - r))), min(h, int(np.ceil(y + r)) + 1)
        x0, x1 = max(0, int(np.floor(x - r))), min(w, int(np.ceil(x + r)) + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        disc = (yy - y) ** 2 + (xx - x) ** 2 <= r * r
        patch = np.asarray(dist[:, y0:y1, x0:x1], dtype=np.float64)[:, disc]
        patch = patch[:, np.isfinite(patch).all(axis=0)]
        if patch.shape[1] == 0:
            return np.full(self.k, np.nan)
        return patch.mean(axis=1)

    def territory(self) -> tuple[np.ndarray, np.ndarray]:
        """The class-territory view: which class wins each pixel, and by how much.

        Returns
        -------
        labels : (H, W) int
            Position in the class set of the class with the largest S at each pixel; -1
            where no class is above chance (``S_max <= 1/K + tau``) and outside the crop.
        strength : (H, W) float in [0, 1]
            The winner's margin above chance, ``(S_max - (1/K + tau)) / (1 - (1/K + tau))``.
        """
        dist = self.distribution if self.distribution.ndim == 3 else self.distribution.mean(axis=1)
        finite = np.isfinite(dist).all(axis=0)
        d = np.where(finite, dist, 0.0)
        best = d.argmax(axis=0)
        smax = d.max(axis=0)
        chance = 1.0 / self.k + self.lens.tau
        won = finite & (smax > chance + TIE_MARGIN)
        labels = np.where(won, best, -1).astype(np.int64)
        span = max(1.0 - chance, 1e-12)
        strength = np.where(won, np.clip((smax - chance) / span, 0.0, 1.0), 0.0)
        return labels, strength

    def caption(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.method_options.items() if k != "layer" or v)
        method = (self.method_label or self.method) + (" (partial estimate)" if self.partial else "")
        parts = [f"{method}{' (' + opts + ')' if opts else ''}", f"lens {self.lens.describe()}",
                 f"model {self.model_name}"]
        if self.geometry is not None and self.geometry.policy != "stretch":
            parts.append(f"input {self.geometry.policy}")
        if self.output == "sigmoid":
            parts.append("probabilities: sigmoid per class")
        parts.extend(self.source_caption())
        return "; ".join(parts)

    def source_caption(self) -> list[str]:
        """Caption parts for the input: ``frame 3 of 0-9`` for multi-frame files and the window
        (``DICOM window C 40 W 400 (-160 to 240)``) for DICOM and data above 8 bits. Never
        names the patient."""
        src = self.source or {}
        parts = []
        if int(src.get("n_frames", 1) or 1) > 1:
            parts.append(f"frame {src.get('frame', 0)} of 0-{int(src['n_frames']) - 1}")
        win = src.get("window")
        if isinstance(win, dict) and src.get("windowed", True):
            parts.append(win.get("text") or f"window C {win['center']:g} W {win['width']:g}")
        elif isinstance(win, str) and win:
            parts.append(f"window {win}")
        return parts

    def with_meta(self, **changes) -> Explanation:
        return replace(self, **changes)

    # -- files ----------------------------------------------------------------------
    def meta_json(self) -> str:
        """The provenance of this explanation as JSON (no arrays)."""
        return json.dumps({
            "method": self.method, "method_label": self.method_label, "method_options": self.method_options,
            "model_name": self.model_name, "lens": self.lens.as_dict(), "top5": [list(t) for t in self.top5],
            "geometry": self.geometry.as_dict() if self.geometry is not None else None,
            "source": self.source, "partial": self.partial, "output": self.output,
        }, default=str)

    def to_arrays(self, *, with_raw: bool = True) -> dict[str, np.ndarray]:
        """The arrays of this explanation (``raw`` too, for :meth:`from_arrays`)."""
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
            "meta": np.array(self.meta_json()),
        }
        win = self.source.get("window")
        if isinstance(win, dict):  # also as plain arrays, for readers that do not parse ``meta``
            arrays["window"] = np.array([win["center"], win["width"]], dtype=np.float64)
            arrays["window_mode"] = np.array(win.get("mode", ""))
        if with_raw:
            arrays["raw"] = self.raw
        return arrays

    @classmethod
    def from_arrays(cls, arrays) -> Explanation:
        """Rebuild an explanation written by :meth:`to_arrays` (re-lensed from ``raw``)."""
        meta = safeio.loads_json(str(arrays["meta"]), "the explanation's meta", what="meta JSON")
        if not isinstance(meta, dict):
            raise AlensError("the explanation's meta JSON is not an object")
        geom = meta.get("geometry")
        lens = LensParams(**{k: tuple(v) if k == "temperatures" else v for k, v in meta["lens"].items()})
        return cls.from_raw(
            np.asarray(arrays["image"]), np.asarray(arrays["classes"]), [str(n) for n in arrays["class_names"]],
            np.asarray(arrays["probs"]), np.asarray(arrays["raw"]), lens,
            geometry=Geometry.from_dict(geom) if geom else None,
            method=meta.get("method", ""), method_label=meta.get("method_label", ""),
            method_options=dict(meta.get("method_options") or {}), model_name=meta.get("model_name", ""),
            top5=[tuple(t) for t in meta.get("top5") or []], source=dict(meta.get("source") or {}),
            partial=bool(meta.get("partial", False)),
            output="sigmoid" if meta.get("output") == "sigmoid" else "softmax",
        )

    def to_npz(self, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
        """Write the maps to ``path`` atomically (a temp file renamed into place).

        With ``overwrite=False`` an existing ``path`` is never replaced (:class:`FileExistsError`,
        also when another process creates it while this one writes; see :func:`atomic_write`).

        Arrays: ``classes``, ``class_names``, ``probs``, ``base``, ``distribution``,
        ``refined`` and ``image`` in the display frame (NaN outside a center-crop), the lens
        parameters, ``meta`` (JSON: method, options, model, geometry, source) and, for input
        read through an intensity window, ``window`` (centre, width) and ``window_mode``.
        """
        arrays = self.to_arrays(with_raw=False)
        return atomic_write(path, lambda f: write_npz(f, arrays), overwrite=overwrite)

    def npz_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, **self.to_arrays())
        return buf.getvalue()


#: An array is deflated when a sample of it shrinks below this share of its size; else stored.
DEFLATE_WORTH = 0.8


def _sample_bytes(arr: np.ndarray, pieces: int = 8, size: int = 8192) -> bytes:
    """Up to ``pieces`` runs of ``size`` bytes spread over an array's data (for a compressibility probe)."""
    if arr.dtype == object or not arr.nbytes:
        return b""
    raw = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
    if raw.size <= pieces * size:
        return raw.tobytes()
    step = raw.size // pieces
    return b"".join(raw[i * step:i * step + size].tobytes() for i in range(pieces))


def write_npz(f, arrays: dict[str, np.ndarray]) -> None:
    """An ``.npz`` (what :func:`numpy.load` reads) with each array deflated only where it pays.

    ``np.savez_compressed`` deflates every array at level 6: for float maps that costs more
    than computing them (~0.4 s for one 640-pixel image's maps) and saves ~10 %, since
    gradient maps are noise to a compressor. Here 64 kB of each array (8 pieces spread over
    it) are tried at level 1: arrays that compress (refined maps, mostly zero; the image) are deflated at
    level 1, the others (base maps, distributions) stored: ~5x faster, files ~10 % larger.
    """
    import zipfile
    import zlib

    with zipfile.ZipFile(f, "w", allowZip64=True) as zf:
        for key, value in arrays.items():
            arr = np.asanyarray(value)
            sample = _sample_bytes(arr)
            deflate = len(sample) < 4096 or len(zlib.compress(sample, 1)) < DEFLATE_WORTH * len(sample)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            if hasattr(info, "compress_level"):  # public from Python 3.13
                info.compress_level = 1
            else:
                info._compresslevel = 1
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)
