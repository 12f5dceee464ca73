"""Maps and a colour scale become colour images here, once, for every consumer.

:func:`render` turns an explanation's maps into RGBA images (the overlay rule lives in
the alpha channel) over a grey backdrop; the window's views blit exactly these arrays and
the exporters (figures, reports) composite exactly these arrays, so what is on screen is
what is exported. :func:`render_pair` does the same for two explanations shown side by
side under one colour scale (a comparison): both get the same limits.

:func:`area_average` is how a view draws a map smaller than its data: each screen pixel
shows the mean of the data pixels it covers (premultiplied by their opacity, so the result
is the full-size composite averaged), never a sample of one of them, so what a map says
does not change with the size it is drawn at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .colors import ColorScale, backdrop, territory_rgba

__all__ = ["Rendered", "render", "render_pair", "area_average", "composite_rgb"]


@dataclass(frozen=True)
class Rendered:
    """The colour images of one explanation under one colour scale.

    ``base``/``refined``: K RGBA uint8 images (alpha carries the overlay rule);
    ``territory``: RGBA uint8; ``backdrop``: the grey RGB image (uint8) under the maps;
    ``limits``: ((K,), (K,)) colour limits; ``signed``; ``scale``; ``explanation``: the
    explanation these were made from.
    """

    explanation: object
    scale: ColorScale
    base: list
    refined: list
    territory: np.ndarray
    backdrop: np.ndarray
    limits: tuple
    signed: bool

    def composited(self, kind: str, i: int = -1, opacity: float = 1.0) -> np.ndarray:
        """One panel as float RGB in [0, 1]: the RGBA image ``kind`` (``base``, ``refined``,
        ``territory``) over the backdrop at ``opacity`` (the territory is always opaque)."""
        if kind == "territory":
            rgba, opacity = self.territory, 1.0
        else:
            rgba = (self.base if kind == "base" else self.refined)[i]
        return composite_rgb(self.backdrop, rgba, opacity)


_BACKDROP: list = [None, None]  # (image, its backdrop): consecutive renders of one image share it


def _backdrop_for(image: np.ndarray) -> np.ndarray:
    """The grey backdrop as uint8 (so views blit it without converting), made once per image."""
    img, bd = _BACKDROP
    if img is not image:
        bd = np.round(backdrop(image) * 255).astype(np.uint8)
        _BACKDROP[:] = [image, bd]
    return bd


def composite_rgb(under_u8: np.ndarray, rgba: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """``rgba`` (uint8) over ``under_u8`` (uint8 RGB) at ``opacity``: float RGB in [0, 1].

    This is the compositing a screen does (source-over) with both images as stored.
    """
    a = rgba[..., 3:4].astype(np.float32) / 255.0 * float(opacity)
    c = rgba[..., :3].astype(np.float32) / 255.0
    under = np.asarray(under_u8, dtype=np.float32) / 255.0
    return np.clip(under * (1.0 - a) + c * a, 0.0, 1.0)


def render(expl, scale: ColorScale | None = None, limits=None, signed: bool | None = None) -> Rendered:
    """Colour images of every map of ``expl`` (NumPy only; runs in a worker).

    ``limits`` and ``signed`` are given when several explanations share one colour scale
    (see :func:`render_pair`).
    """
    scale = scale or ColorScale()
    signed = expl.signed if signed is None else bool(signed)
    blim, rlim = scale.limits(expl.base, expl.refined) if limits is None else limits
    labels, strength = expl.territory()
    return Rendered(
        explanation=expl,
        scale=scale,
        base=[scale.rgba(expl.base[i], blim[i], signed) for i in range(expl.k)],
        refined=[scale.rgba(expl.refined[i], rlim[i], signed) for i in range(expl.k)],
        territory=territory_rgba(labels, strength, expl.classes),
        backdrop=_backdrop_for(expl.image),
        limits=(np.asarray(blim, dtype=np.float64), np.asarray(rlim, dtype=np.float64)),
        signed=signed,
    )


def render_pair(a, b, scale: ColorScale | None = None) -> tuple[Rendered, Rendered]:
    """Two explanations of one class set under one colour scale: the same limits and sign rule.

    The limits follow the scale's scope over the maps of both (class by class for
    ``scope="class"``), so the same colour means the same value in each.
    """
    scale = scale or ColorScale()
    if a.k != b.k:
        raise ValueError(f"explanations shown together need class sets of one size; got {a.k} and {b.k}")
    signed = bool(a.signed or b.signed)
    la, lb = scale.joint_limits([(a.base, a.refined), (b.base, b.refined)])
    return render(a, scale, la, signed), render(b, scale, lb, signed)


def area_average(rgba: np.ndarray, factor: int) -> np.ndarray:
    """``rgba`` (H, W, C uint8) shrunk by an integer ``factor``: each output pixel is the mean
    of a ``factor`` x ``factor`` block (edge blocks of what is there).

    With 4 channels the colour is averaged premultiplied by alpha, so compositing the result
    equals averaging the full-size composite: a fine pattern of red and blue pixels is drawn
    as their mix at every size, never as whichever of them a sampling grid happens to hit.
    """
    f = int(factor)
    a = np.asarray(rgba)
    if f <= 1:
        return a
    h, w, c = a.shape
    hh, ww = -(-h // f), -(-w // f)
    x = a.astype(np.float32)
    if c == 4:
        x[..., :3] *= x[..., 3:4] / 255.0
    pad = np.zeros((hh * f, ww * f, c), dtype=np.float32)
    pad[:h, :w] = x
    count = np.zeros((hh * f, ww * f, 1), dtype=np.float32)
    count[:h, :w] = 1.0
    s = pad.reshape(hh, f, ww, f, c).sum(axis=(1, 3))
    n = count.reshape(hh, f, ww, f, 1).sum(axis=(1, 3))
    m = s / n
    if c == 4:
        alpha = m[..., 3:4]
        m[..., :3] = np.where(alpha > 0, m[..., :3] * 255.0 / np.maximum(alpha, 1e-6), 0.0)
    return np.clip(np.round(m), 0, 255).astype(np.uint8)
