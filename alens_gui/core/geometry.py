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

``stretch``     (default) the whole display image is resized to the model input; the
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

RESIZE_POLICIES = ("stretch", "center-crop", "pad")
#: Long side of the display image at most (larger photographs are shown downsampled).
DISPLAY_MAX = 640


def _resize(arr: np.ndarray, hw: tuple[int, int], antialias: bool = True) -> np.ndarray:
    """Bilinear resize of (..., H, W) float arrays (antialiased when shrinking)."""
    import torch
    import torch.nn.functional as F

    a = np.asarray(arr, dtype=np.float32)
    if tuple(a.shape[-2:]) == tuple(hw):
        return a.copy()
    lead = a.shape[:-2]
    t = torch.from_numpy(np.ascontiguousarray(a)).reshape(1, -1, *a.shape[-2:])
    t = F.interpolate(t, size=tuple(int(v) for v in hw), mode="bilinear", antialias=antialias, align_corners=False)
    return t.reshape(*lead, *t.shape[-2:]).numpy()


def resize_image(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """An (H, W, 3) float image resized to ``hw``, clipped to [0, 1]."""
    out = _resize(np.moveaxis(np.asarray(image, dtype=np.float32), -1, 0), hw)
    return np.ascontiguousarray(np.clip(np.moveaxis(out, 0, -1), 0.0, 1.0), dtype=np.float32)


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
    policy : {"stretch", "center-crop", "pad"}
    source_hw, display_hw, model_hw : (int, int)
    box : (y0, x0, y1, x1)
        The part of the display image that holds maps (integer display pixels): the
        whole image for ``stretch`` and ``pad``, the crop for ``center-crop``.
    content : (y0, x0, y1, x1)
        The part of the model input that holds image content (model pixels): all of
        it except for ``pad``.
    """

    policy: str
    source_hw: tuple[int, int]
    display_hw: tuple[int, int]
    model_hw: tuple[int, int]
    box: tuple[int, int, int, int]
    content: tuple[int, int, int, int]

    @classmethod
    def fit(
        cls, source_hw, model_hw, policy: str = "stretch", display_max: int = DISPLAY_MAX
    ) -> Geometry:
        """The geometry of a ``source_hw`` image for a ``model_hw`` input under ``policy``."""
        if policy not in RESIZE_POLICIES:
            raise ImageReadError(f"input policy must be one of {', '.join(RESIZE_POLICIES)}; got {policy!r}")
        source_hw = (int(source_hw[0]), int(source_hw[1]))
        model_hw = (int(model_hw[0]), int(model_hw[1]))
        h, w = display_size(source_hw, model_hw, display_max)
        mh, mw = model_hw
        box = (0, 0, h, w)
        content = (0, 0, mh, mw)
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
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> Geometry:
        return cls(
            str(d["policy"]), tuple(d["source_hw"]), tuple(d["display_hw"]), tuple(d["model_hw"]),
            tuple(d["box"]), tuple(d["content"]),
        )
