"""One colour scale: lookup tables, limits that ignore zeros, the overlay rule, the territory colours."""

from __future__ import annotations

import numpy as np
import pytest

from alens_gui.core.colors import LUT_SIZE, ColorScale, backdrop, composite, lut, overlay, robust_limit


@pytest.mark.parametrize("signed", [True, False])
def test_zero_is_fully_transparent_and_alpha_grows_with_magnitude(signed):
    t = lut(signed)
    assert t.shape == (LUT_SIZE, 4) and t.dtype == np.uint8
    scale = ColorScale()
    rgba = scale.rgba(np.array([[0.0, np.nan, 0.5, 1.0, 2.0]]), 1.0, signed)
    assert rgba[0, 0, 3] == 0 and rgba[0, 1, 3] == 0
    assert 0 < rgba[0, 2, 3] < rgba[0, 3, 3] == rgba[0, 4, 3] == 255  # beyond the limit saturates


def test_signed_maps_are_red_above_and_blue_below_zero():
    rgba = ColorScale().rgba(np.array([[-1.0, 1.0]]), 1.0, True)
    neg, pos = rgba[0, 0, :3].astype(int), rgba[0, 1, :3].astype(int)
    assert pos[0] > pos[2] + 50 and neg[2] > neg[0] + 50


def test_gamma_below_one_lifts_faint_values():
    faint = np.array([[0.1]])
    a_lin = ColorScale(gamma=1.0).rgba(faint, 1.0, False)[0, 0, 3]
    a_low = ColorScale(gamma=0.5).rgba(faint, 1.0, False)[0, 0, 3]
    assert a_low > a_lin


def test_limits_ignore_the_zeros_of_a_refined_map(rng):
    refined = np.zeros((3, 100, 100))
    refined[:, :5, :5] = rng.uniform(0.5, 1.0, (3, 5, 5))  # the class wins 0.25 % of the pixels
    base = rng.normal(0, 1, (3, 100, 100))
    assert float(np.percentile(np.abs(refined), 99.5)) == 0.0  # a plain percentile would wash it out
    blim, rlim = ColorScale(scope="row").limits(base, refined)
    assert np.all(rlim >= 0.95) and np.all(blim == blim[0])
    blim, rlim = ColorScale(scope="all").limits(base, refined)
    assert np.all(blim == rlim)
    blim, rlim = ColorScale(scope="class").limits(base * np.array([1, 10, 100])[:, None, None], refined)
    assert blim[2] > blim[1] > blim[0]
    assert robust_limit(np.zeros(4)) == 1.0


def test_overlay_never_darkens_the_image_where_the_map_is_zero(photos):
    img = photos["chelsea"]
    amap = np.zeros(img.shape[:2])
    amap[100:150, 100:150] = 1.0
    out = overlay(img, amap, 1.0, signed=True, opacity=0.9)
    np.testing.assert_allclose(out[:100], backdrop(img)[:100], atol=1e-6)
    assert not np.allclose(out[100:150, 100:150], backdrop(img)[100:150, 100:150])
    # composite with a transparent layer is the identity
    np.testing.assert_allclose(composite(img, np.zeros(img.shape[:2] + (4,), np.uint8), 1.0), img, atol=1e-6)


def test_colour_scale_checks_its_settings():
    with pytest.raises(ValueError, match="scope"):
        ColorScale(scope="nope")
    with pytest.raises(ValueError, match="percentile"):
        ColorScale(percentile=10)
    with pytest.raises(ValueError, match="gamma"):
        ColorScale(gamma=0)


def test_a_class_keeps_its_colour_from_one_class_set_to_the_next():
    from alens_gui.core.colors import class_colors, territory_rgba

    first = class_colors([285, 281, 282])       # Egyptian cat first
    second = class_colors([281, 282, 285, 723])  # the cat third, a new class added
    assert first[0] == second[2] and first[1] == second[0] and first[2] == second[1]
    many = class_colors(list(range(0, 200, 10)))  # twenty classes whose index ends in 0: still all distinct
    assert len(set(many)) == 20
    # the territory paints each class in that colour
    labels = np.array([[0, 1], [2, -1]])
    rgba = territory_rgba(labels, np.ones((2, 2)), classes=[281, 282, 285])
    cols = class_colors([281, 282, 285])
    assert tuple(rgba[0, 0, :3]) == cols[0] and tuple(rgba[1, 0, :3]) == cols[2] and rgba[1, 1, 3] == 0
