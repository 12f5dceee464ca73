"""Comparing two images: pin one, open another, see both with one class set, lens and colour scale."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import wait_idle
from .test_window import run


def test_pin_then_compare_with_another_image(make_window, qtbot, tmp_path):
    win = make_window()
    s, c = win.session, win.controller
    first = run(qtbot, win, "gradcam")  # chelsea
    assert c.comparison.pin()
    assert s.class_request.kind == "picked" and list(s.class_request.classes) == list(first.classes)
    assert win.pinned_maps.isVisible() and win.compare_view.isVisible()
    c.autorun = True
    win.open_sample("coffee")
    wait_idle(qtbot, win)
    second = s.explanation
    assert second is not first and list(second.classes) == list(first.classes)  # the same class set
    assert second.shape == (400, 600) and s.pinned.shape == (300, 451)
    # one colour scale: both panes use the same limits
    qtbot.waitUntil(lambda: s.pinned_rendered is not None and s.rendered.explanation is second, timeout=30_000)
    wait_idle(qtbot, win)
    for la, lb in zip(s.rendered.limits, s.pinned_rendered.limits):
        np.testing.assert_allclose(la, lb)
    # the differences of the probabilities are shown
    np.testing.assert_allclose(win.compare_view.differences, second.probs - first.probs)
    assert "difference" in win.compare_view.text.text()
    # the hover is linked at the same relative position, and both distributions are read out
    s.hover = (200, 300)  # the middle of coffee (400 x 600)
    pinned_tile = win.pinned_maps.map_tiles("refined")[0]
    xs, ys = pinned_tile.cross.getData()
    assert xs[2] == pytest.approx(225 + 0.5, abs=1.5) and ys[0] == pytest.approx(150 + 0.5, abs=1.5)
    np.testing.assert_allclose(win.distribution.pinned_values, first.distribution_at(150, 225), atol=1e-6)
    np.testing.assert_allclose(win.distribution.values, second.distribution_at(200, 300), atol=1e-6)
    # a lens change applies to both
    win.lens_panel.tau.setValue(0.1)
    wait_idle(qtbot, win)
    assert s.pinned.lens.tau == pytest.approx(0.1) and s.explanation.lens.tau == pytest.approx(0.1)
    # the comparison is exported as one figure
    assert win.export_comparison(tmp_path / "cmp.png") is not None
    wait_idle(qtbot, win)
    from PIL import Image

    with Image.open(tmp_path / "cmp.png") as im:
        assert im.size[0] > 1500 and im.size[1] > 1000
    c.comparison.unpin()
    wait_idle(qtbot, win)
    assert not win.pinned_maps.isVisible() and s.pinned is None


def test_a_grid_opened_while_pinned_keeps_the_pinned_class_set(make_window, qtbot):
    """A 2 x 2 grid usually brings its tiles' classes; beside a pinned grid it must not reorder them."""
    from alens_gui.core.images import GRID_PHOTOS
    from alens_gui.qt.session import ImageRequest

    win = make_window()
    s, c = win.session, win.controller
    c.autorun = True
    s.method = "gradcam"
    s.image_request = ImageRequest(tiles=GRID_PHOTOS)
    wait_idle(qtbot, win)
    first = s.explanation
    assert first is not None and s.class_request.kind == "tiles"
    assert c.comparison.pin()
    moved = tuple(reversed(GRID_PHOTOS))
    s.image_request = ImageRequest(tiles=moved)
    wait_idle(qtbot, win)
    second = s.explanation
    assert second is not first and s.image_request.tiles == moved
    assert list(second.classes) == list(first.classes)  # the pinned order, not the new tiles' order
    np.testing.assert_allclose(win.compare_view.differences, second.probs - first.probs)
    # the cat's class holds more of the bottom-right tile, where the cat now is, than it did before
    h, w = second.shape
    cat = list(second.classes).index(285)
    (won_first, _), (won_second, _) = first.territory(), second.territory()
    now = (won_second[h // 2:, w // 2:] == cat).mean()
    before = (won_first[h // 2:, w // 2:] == cat).mean()
    assert now > before + 0.2, (now, before)
