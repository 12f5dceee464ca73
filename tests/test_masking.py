"""Masks, fills and the before/after probability experiment (Qt-free core)."""

from __future__ import annotations

import numpy as np
import pytest

from alens_gui.core.images import GRID_CLASSES
from alens_gui.core.masking import (
    FILLS,
    MaskError,
    apply_mask,
    brush_mask,
    fill_image,
    probability_shift,
    rectangle_mask,
    top_fraction_mask,
)


def test_rectangle_mask_any_corner_order_and_clipping():
    a = rectangle_mask((100, 80), 10, 20, 30, 50)
    b = rectangle_mask((100, 80), 30, 50, 10, 20)
    np.testing.assert_array_equal(a, b)
    assert a.sum() == 20 * 30 and a[10, 20] and a[29, 49] and not a[30, 50]
    c = rectangle_mask((100, 80), -20, -20, 5.5, 500)
    assert c.sum() == 6 * 80  # clipped to the image; a partial pixel counts
    assert rectangle_mask((100, 80), 3.2, 4.7, 3.2, 4.7).sum() == 1  # a click selects one pixel


def test_brush_mask_is_continuous_along_a_fast_stroke():
    m = brush_mask((64, 200), [(30, 5), (30, 190)], radius=3)
    assert m[30, 5:191].all()  # points 185 px apart, still one line
    assert m[28, 100] and m[32, 100] and not m[34, 100]
    with pytest.raises(MaskError):
        brush_mask((10, 10), [(1, 1)], radius=0)


def test_top_fraction_mask_selects_exactly_the_top_positive_pixels(rng):
    a = rng.normal(size=(40, 50))
    m = top_fraction_mask(a, 0.1)
    assert m.sum() == 200
    assert a[m].min() >= a[~m].max()
    # only positive pixels are evidence: a map with 30 positive pixels gives at most 30
    b = -np.abs(a)
    b.flat[:30] = 1.0 + np.arange(30)
    assert top_fraction_mask(b, 0.5).sum() == 30
    assert not top_fraction_mask(-np.abs(a) - 1, 0.5).any()
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(MaskError):
            top_fraction_mask(a, bad)
    with pytest.raises(MaskError):
        top_fraction_mask(np.zeros((2, 3, 4)), 0.1)


def test_fills(photos):
    img = photos["astronaut"][:128, :96]
    assert not fill_image(img, "black").any()
    mean = fill_image(img, "mean")
    np.testing.assert_allclose(mean[5, 7], img.reshape(-1, 3).mean(axis=0), rtol=1e-5)
    n1, n2 = fill_image(img, "noise", seed=3), fill_image(img, "noise", seed=3)
    np.testing.assert_array_equal(n1, n2)
    assert 0 <= n1.min() and n1.max() <= 1 and not np.array_equal(n1, fill_image(img, "noise", seed=4))
    blur = fill_image(img, "blur")
    assert blur.shape == img.shape
    # blurring removes high frequencies: neighbouring pixels differ much less
    assert np.abs(np.diff(blur, axis=1)).mean() < 0.5 * np.abs(np.diff(img, axis=1)).mean()
    with pytest.raises(MaskError):
        fill_image(img, "paint")


def test_apply_mask_changes_only_masked_pixels(photos):
    img = photos["coffee"][:64, :64]
    m = rectangle_mask((64, 64), 10, 10, 30, 40)
    for fill in FILLS:
        out = apply_mask(img, m, fill)
        np.testing.assert_array_equal(out[~m], img[~m])
        assert not np.allclose(out[m], img[m])
    with pytest.raises(MaskError):
        apply_mask(img, np.zeros((5, 5), bool))


def test_masking_one_tile_of_the_grid_moves_probability_to_the_others(explainer, grid_image):
    expl = explainer.explain(grid_image, "gradcam", classes=list(GRID_CLASSES))
    mask = top_fraction_mask(expl.refined[0], 0.2)  # the top of the cat's refined map
    r = probability_shift(explainer.loaded, expl.image, mask, expl.classes, "blur")
    np.testing.assert_allclose(r.before, expl.probs, rtol=1e-4)
    assert r.fraction == pytest.approx(0.2, abs=0.01)
    assert r.change[0] < -0.05  # the cat loses most of its probability ...
    assert (r.change[1:] > 0).all()  # ... and every other tile's class gains
    # the masked region is (mostly) the cat's tile
    assert mask[:112, :112].sum() > 0.9 * mask.sum()
    # nothing masked: nothing changes
    none = probability_shift(explainer.loaded, expl.image, np.zeros(expl.shape, bool), expl.classes)
    np.testing.assert_allclose(none.after, none.before, rtol=1e-6)
    with pytest.raises(MaskError):
        probability_shift(explainer.loaded, expl.image, mask, expl.classes, "glitter")
