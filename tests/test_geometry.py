"""Maps in the image's own shape: input policies, alignment with the user's image, NaN outside a crop."""

from __future__ import annotations

import numpy as np
import pytest

from alens_gui.core.geometry import DISPLAY_MAX, Geometry, display_size


def test_display_size_keeps_the_aspect_within_bounds():
    assert display_size((300, 451), (224, 224)) == (300, 451)  # a small photograph stays as it is
    assert display_size((300, 900), (224, 224)) == (213, 640)  # a panorama is shown at most 640 wide
    assert display_size((3000, 4000), (224, 224)) == (480, DISPLAY_MAX)
    assert display_size((32, 48), (224, 224)) == (149, 224)  # a tiny image is enlarged to the model's size


@pytest.mark.parametrize("policy", ["stretch", "center-crop", "pad"])
def test_maps_come_back_in_the_display_frame(policy):
    g = Geometry.fit((300, 900), (224, 224), policy)
    ramp = np.tile(np.arange(224, dtype=np.float32), (2, 224, 1))  # value = model column
    out = g.to_display(ramp)
    assert out.shape == (2, *g.display_hw)
    finite = np.isfinite(out[0])
    if policy == "center-crop":
        y0, x0, y1, x1 = g.box
        assert (x1 - x0) == (y1 - y0) == g.display_hw[0]  # the model saw the central square
        assert finite[:, x0:x1].all() and not finite[:, :x0].any() and not finite[:, x1:].any()
    else:
        assert finite.all()
    # left to right in the model is left to right on the user's image
    row = out[0, out.shape[1] // 2]
    row = row[np.isfinite(row)]
    assert np.all(np.diff(row) >= -1e-4) and row[-1] - row[0] > 150


def test_pad_puts_the_image_in_the_middle_of_the_input():
    g = Geometry.fit((300, 900), (224, 224), "pad")
    display = np.ones((*g.display_hw, 3), dtype=np.float32)
    x = g.model_image(display, fill=(0.5, 0.5, 0.5))
    y0, x0, y1, x1 = g.content
    assert (y1 - y0, x1 - x0) == (75, 224)
    np.testing.assert_allclose(x[y0:y1, x0:x1], 1.0, atol=1e-5)
    np.testing.assert_allclose(x[:y0], 0.5, atol=1e-6)
    np.testing.assert_allclose(x[y1:], 0.5, atol=1e-6)


def test_geometry_round_trips_through_a_dict():
    g = Geometry.fit((123, 456), (224, 224), "center-crop")
    assert Geometry.from_dict(g.as_dict()) == g


@pytest.fixture(scope="module")
def panorama(photos):
    """Cat on the left, espresso on the right: a 2:1 picture the model must see whole."""
    from alens_gui.core.geometry import resize_image

    cat = resize_image(photos["chelsea"][:, 40:340], (300, 300))
    cup = resize_image(photos["coffee"][:, 100:500], (300, 300))
    return np.concatenate([cat, cup], axis=1)


@pytest.mark.parametrize("policy", ["stretch", "pad"])
def test_maps_line_up_with_the_users_image(explainer, panorama, policy):
    explainer.loaded.resize = policy
    try:
        e = explainer.explain(panorama, method="gradcam", classes=[285, 967])
    finally:
        explainer.loaded.resize = "stretch"
    assert e.image.shape == (300, 600, 3) and e.refined.shape == (2, 300, 600)
    half = e.shape[1] // 2
    pos = np.clip(np.nan_to_num(e.refined), 0, None)
    cat_left = pos[0, :, :half].sum() / pos[0].sum()
    cup_right = pos[1, :, half:].sum() / pos[1].sum()
    assert cat_left > 0.8 and cup_right > 0.8, (cat_left, cup_right)


def test_center_crop_explains_only_the_crop(explainer, panorama):
    explainer.loaded.resize = "center-crop"
    try:
        e = explainer.explain(panorama, method="gradcam", top_k=2)
    finally:
        explainer.loaded.resize = "stretch"
    y0, x0, y1, x1 = e.geometry.box
    assert (x0, x1) == (150, 450)
    assert np.isnan(e.refined[:, :, :x0]).all() and np.isfinite(e.refined[:, :, x0:x1]).all()
    assert np.isnan(e.distribution_at(10, 10)).all()
    np.testing.assert_allclose(e.distribution_at(150, 300).sum(), 1.0, atol=1e-5)
    relensed = e.relens(tau=0.1)
    assert np.isnan(relensed.refined[:, :, :x0]).all()
