"""How an image of any shape meets a model's fixed input, and how maps find their way back.

A classifier sees a fixed ``(mh, mw)`` input; users bring a 451 x 300 photograph or a
900 x 300 panorama. :class:`Geometry` records one *input policy* and the three frames
involved, so that everything a user sees, gets back from the API and exports is in the
image's own aspect:

``source``  the image as read (any size);
``display`` the same picture at a sensible screen resolution, aspect kept (long side
            between the model's input size and :data:`DISPLAY_MAX`);
``model``   the model's input.

Policies (``RESIZE_POLICIES``):

``model``       (default) the model's own preprocessing, an :class:`InputTransform`: the
                resize, centre crop and interpolation its weights were evaluated with (timm's
                data config, torchvision's ``weights.transforms()``, a Hugging Face image
                processor). A model without one (the default EfficientNet-Lite0, a state
                dict) declares a stretch to its input size, which gives exactly ``stretch``.
                Display pixels outside the model's crop are NaN, as for ``center-crop``.
``stretch``     the whole display image is resized to the model input; the
                maps are resized back, so every display pixel has a value.
``center-crop`` the display image is scaled so that its short side fills the input and the
                centre is cropped; maps cover the crop only, and display pixels outside
                the crop are **NaN** in ``Explanation.base/distribution/refined`` (views and
                exports draw them transparent).
``pad``         the display image is scaled so that its long side fits and the rest of the
                input is padded with the model's mean colour (zero after normalisation);
                the padded part of the maps is cut away, so every display pixel has a value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .errors import ImageReadError

RESIZE_POLICIES = ("model", "stretch", "center-crop", "pad")
#: Long side of the display image at most (larger photographs are shown downsampled).
DISPLAY_MAX = 640
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


def _resize(arr: np.ndarray, hw: tuple[int, int], antialias: bool = True, mode: str = "bilinear") -> np.ndarray:
    """Resize of (..., H, W) float arrays (antialiased when shrinking, except ``nearest``)."""
    import torch
    import torch.nn.functional as F

    a = np.asarray(arr, dtype=np.float32)
    if tuple(a.shape[-2:]) == tuple(hw):
        return a.copy()
    lead = a.shape[:-2]
    t = torch.from_numpy(np.ascontiguousarray(a)).reshape(1, -1, *a.shape[-2:])
    size = tuple(int(v) for v in hw)
    if mode == "nearest":
        t = F.interpolate(t, size=size, mode="nearest-exact")
    else:
        # torch's antialiased bicubic uses PIL's kernel (a = -0.5), as torchvision and timm do on tensors
        t = F.interpolate(t, size=size, mode=mode, antialias=antialias, align_corners=False)
    return t.reshape(*lead, *t.shape[-2:]).numpy()


def resize_image(image: np.ndarray, hw: tuple[int, int], interpolation: str = "bilinear") -> np.ndarray:
    """An (H, W, 3) float image resized to ``hw``, clipped to [0, 1]."""
    out = _resize(np.moveaxis(np.asarray(image, dtype=np.float32), -1, 0), hw, mode=interpolation)
    return np.ascontiguousarray(np.clip(np.moveaxis(out, 0, -1), 0.0, 1.0), dtype=np.float32)


@dataclass(frozen=True)
class InputTransform:
    """A model's own resize and centre crop, as the library its weights come from defines it.

    The image is first scaled to ``scale`` (``mode="cover"``: keeping its aspect, just large
    enough to cover ``scale``, i.e. torchvision's ``Resize(int)`` on the short side for a square
    ``scale``; ``mode="exact"``: to exactly ``scale``, aspect not kept), then the central
    ``size`` is cropped. ``mode="exact"`` with ``scale == size`` is a plain stretch.

    Attributes
    ----------
    size : (int, int)
        The model input (height, width).
    mode : {"cover", "exact"}
    scale : (int, int)
        The size scaled to before the crop (>= ``size``).
    interpolation : {"bilinear", "bicubic", "nearest"}
    source : str
        Where the transform came from, for captions and reports (e.g. ``"timm data config"``).
    """

    size: tuple[int, int]
    mode: str = "exact"
    scale: tuple[int, int] | None = None
    interpolation: str = "bilinear"
    source: str = ""

    def __post_init__(self) -> None:
        size = (int(self.size[0]), int(self.size[1]))
        scale = size if self.scale is None else (int(self.scale[0]), int(self.scale[1]))
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "scale", scale)
        if self.mode not in ("cover", "exact"):
            raise ValueError(f"InputTransform mode must be cover or exact; got {self.mode!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}; got {self.interpolation!r}")
        if min(size) < 1 or scale[0] < size[0] or scale[1] < size[1]:
            raise ValueError(f"an input transform scales to at least its crop; got scale {scale}, crop {size}")

    @classmethod
    def stretch(cls, size, source: str = "") -> InputTransform:
        """A plain bilinear stretch to ``size`` (models that declare no preprocessing)."""
        return cls(tuple(size), "exact", tuple(size), "bilinear", source)

    @property
    def is_stretch(self) -> bool:
        return self.mode == "exact" and self.scale == self.size

    def at_size(self, size) -> InputTransform:
        """The same transform for another input size (the scale keeps its ratio to the crop)."""
        size = (int(size[0]), int(size[1]))
        if size == self.size:
            return self
        scale = tuple(max(n, int(n * s / c)) for n, s, c in zip(size, self.scale, self.size))
        return InputTransform(size, self.mode, scale, self.interpolation, self.source)

    def resized_hw(self, hw) -> tuple[int, int]:
        """The size an ``hw`` image is scaled to before the crop."""
        h, w = int(hw[0]), int(hw[1])
        if self.mode == "exact":
            return self.scale
        if self.scale[0] == self.scale[1]:  # torchvision's Resize(int): the short side exactly, the long truncated
            s = self.scale[0]
            return (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
        ratio = min(h / self.scale[0], w / self.scale[1])  # timm's ResizeKeepRatio
        return max(self.scale[0], round(h / ratio)), max(self.scale[1], round(w / ratio))

    def describe(self) -> str:
        """``"resize the short side to 256 (bicubic), centre crop 224 x 224"`` and the like."""
        h, w = self.size
        if self.is_stretch:
            text = f"stretch to {h} x {w} ({self.interpolation})"
        elif self.mode == "exact":
            text = f"resize to {self.scale[0]} x {self.scale[1]} ({self.interpolation}), centre crop {h} x {w}"
        elif self.scale[0] == self.scale[1]:
            text = f"resize the short side to {self.scale[0]} ({self.interpolation}), centre crop {h} x {w}"
        else:
            text = f"resize to cover {self.scale[0]} x {self.scale[1]} ({self.interpolation}), centre crop {h} x {w}"
        return text + (f"; {self.source}" if self.source else "")

    def as_dict(self) -> dict:
        return {"size": list(self.size), "mode": self.mode, "scale": list(self.scale),
                "interpolation": self.interpolation, "source": self.source}


def display_size(source_hw: tuple[int, int], model_hw: tuple[int, int], display_max: int = DISPLAY_MAX) -> tuple[int, int]:
    """The display size for a source image: aspect kept, long side in [max(model), display_max]."""
    h, w = (int(v) for v in source_hw)
    if h < 1 or w < 1:
        raise ImageReadError(f"the image is empty ({h} x {w})")
    long_side = max(h, w)
    target = min(max(long_side, max(model_hw)), max(display_max, max(model_hw)))
    scale = target / long_side
    return max(1, round(h * scale)), max(1, round(w * scale))


@dataclass(frozen=True)
class Geometry:
    """One image's frames (source, display, model) under one input policy.

    Attributes
    ----------
    policy : {"model", "stretch", "center-crop", "pad"}
        ``model`` only when the model's transform is not a plain bilinear stretch (which
        is recorded as ``stretch``).
    source_hw, display_hw, model_hw : (int, int)
    box : (y0, x0, y1, x1)
        The part of the display image that holds maps (integer display pixels): the
        whole image for ``stretch`` and ``pad``, the crop for ``center-crop`` and for a
        ``model`` transform that crops.
    content : (y0, x0, y1, x1)
        The part of the model input that holds image content (model pixels): all of
        it except for ``pad``.
    resized_hw : (int, int) or None
        ``model`` only: the size the display image is scaled to before the model's crop.
    interpolation : str
        ``model`` only: how the display image is scaled (``bilinear`` otherwise).
    """

    policy: str
    source_hw: tuple[int, int]
    display_hw: tuple[int, int]
    model_hw: tuple[int, int]
    box: tuple[int, int, int, int]
    content: tuple[int, int, int, int]
    resized_hw: tuple[int, int] | None = None
    interpolation: str = "bilinear"

    @classmethod
    def fit(
        cls, source_hw, model_hw, policy: str = "stretch", display_max: int = DISPLAY_MAX,
        transform: InputTransform | None = None,
    ) -> Geometry:
        """The geometry of a ``source_hw`` image for a ``model_hw`` input under ``policy``.

        ``transform`` is the model's own preprocessing for ``policy="model"`` (without one,
        ``model`` is a stretch).
        """
        if policy not in RESIZE_POLICIES:
            raise ImageReadError(f"input policy must be one of {', '.join(RESIZE_POLICIES)}; got {policy!r}")
        source_hw = (int(source_hw[0]), int(source_hw[1]))
        model_hw = (int(model_hw[0]), int(model_hw[1]))
        if policy == "model":
            transform = (transform or InputTransform.stretch(model_hw)).at_size(model_hw)
            if transform.is_stretch and transform.interpolation == "bilinear":
                policy = "stretch"  # the very same pixels: recorded as the plain policy
        h, w = display_size(source_hw, model_hw, display_max)
        mh, mw = model_hw
        box = (0, 0, h, w)
        content = (0, 0, mh, mw)
        if policy == "model":
            rh, rw = transform.resized_hw((h, w))
            top, left = int(round((rh - mh) / 2.0)), int(round((rw - mw) / 2.0))  # torchvision's CenterCrop
            sy, sx = h / rh, w / rw
            y0, x0 = min(h - 1, round(top * sy)), min(w - 1, round(left * sx))
            box = (y0, x0, max(y0 + 1, min(h, round((top + mh) * sy))), max(x0 + 1, min(w, round((left + mw) * sx))))
            return cls(policy, source_hw, (h, w), model_hw, box, content, (rh, rw), transform.interpolation)
        if policy == "center-crop":
            scale = max(mh / h, mw / w)  # display -> model
            ch, cw = min(h, round(mh / scale)), min(w, round(mw / scale))
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            box = (y0, x0, y0 + ch, x0 + cw)
        elif policy == "pad":
            scale = min(mh / h, mw / w)
            ch, cw = max(1, min(mh, round(h * scale))), max(1, min(mw, round(w * scale)))
            y0, x0 = (mh - ch) // 2, (mw - cw) // 2
            content = (y0, x0, y0 + ch, x0 + cw)
        return cls(policy, source_hw, (h, w), model_hw, box, content)

    @classmethod
    def identity(cls, hw) -> Geometry:
        """Maps and image already share one frame (e.g. a composed grid at the model's size)."""
        hw = (int(hw[0]), int(hw[1]))
        return cls("stretch", hw, hw, hw, (0, 0, *hw), (0, 0, *hw))

    # -- images ---------------------------------------------------------------------
    def display_image(self, image: np.ndarray) -> np.ndarray:
        """The source image at display size."""
        return resize_image(image, self.display_hw)

    def model_image(self, display: np.ndarray, fill=(0.5, 0.5, 0.5)) -> np.ndarray:
        """What the model sees of a display-sized image: (mh, mw, 3) in [0, 1].

        ``fill`` is the padding colour for ``pad`` (the model's mean, so it is zero after
        normalisation).
        """
        img = np.asarray(display, dtype=np.float32)
        if img.shape[:2] != self.display_hw:
            img = resize_image(img, self.display_hw)
        if self.policy == "model":
            rh, rw = self.resized_hw
            mh, mw = self.model_hw
            top, left = int(round((rh - mh) / 2.0)), int(round((rw - mw) / 2.0))
            return np.ascontiguousarray(resize_image(img, (rh, rw), self.interpolation)[top:top + mh, left:left + mw])
        if self.policy == "center-crop":
            y0, x0, y1, x1 = self.box
            return resize_image(img[y0:y1, x0:x1], self.model_hw)
        if self.policy == "pad":
            y0, x0, y1, x1 = self.content
            out = np.empty((*self.model_hw, 3), dtype=np.float32)
            out[...] = np.asarray(fill, dtype=np.float32)[:3]
            out[y0:y1, x0:x1] = resize_image(img, (y1 - y0, x1 - x0))
            return out
        return resize_image(img, self.model_hw)

    # -- maps -------------------------------------------------------------------------
    @property
    def is_identity(self) -> bool:
        return self.display_hw == self.model_hw and self.policy != "pad" and self.box == (0, 0, *self.display_hw)

    def box_maps(self, maps: np.ndarray) -> np.ndarray:
        """Model-frame maps (..., mh, mw) resampled to the display box (..., bh, bw)."""
        a = np.asarray(maps, dtype=np.float32)
        if tuple(a.shape[-2:]) != self.model_hw:
            raise ImageReadError(f"maps of size {a.shape[-2:]} do not match the model input {self.model_hw}")
        if self.policy == "pad":
            y0, x0, y1, x1 = self.content
            a = a[..., y0:y1, x0:x1]
        y0, x0, y1, x1 = self.box
        return _resize(a, (y1 - y0, x1 - x0), antialias=False)

    def embed(self, boxed: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """Maps on the display box placed into full display frames (``fill`` outside the box)."""
        a = np.asarray(boxed)
        if self.box == (0, 0, *self.display_hw):
            return a
        out = np.full(a.shape[:-2] + self.display_hw, fill, dtype=a.dtype)
        y0, x0, y1, x1 = self.box
        out[..., y0:y1, x0:x1] = a
        return out

    def to_display(self, maps: np.ndarray) -> np.ndarray:
        """Model-frame maps in the display frame (NaN outside the crop for ``center-crop``)."""
        return self.embed(self.box_maps(maps))

    def valid(self) -> np.ndarray:
        """(h, w) bool: display pixels that carry map values."""
        m = np.zeros(self.display_hw, dtype=bool)
        y0, x0, y1, x1 = self.box
        m[y0:y1, x0:x1] = True
        return m

    def as_dict(self) -> dict:
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        if self.policy != "model":  # files of the plain policies stay as they were
            out.pop("resized_hw")
            out.pop("interpolation")
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Geometry:
        resized = d.get("resized_hw")
        return cls(
            str(d["policy"]), tuple(d["source_hw"]), tuple(d["display_hw"]), tuple(d["model_hw"]),
            tuple(d["box"]), tuple(d["content"]), tuple(resized) if resized else None,
            str(d.get("interpolation", "bilinear")),
        )
