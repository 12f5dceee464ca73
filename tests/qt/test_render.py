"""What you see is what you export: a map view rendered offscreen against the exporter and a stored image.

The explanation is synthetic (blocks of known values), so the pixels are known exactly;
the views and the exporter must colour them the same way, and the view must keep
rendering as the stored reference image shows (pyqtgraph's image-testing approach).
Set ``ALENS_UPDATE_REFERENCE=1`` to rewrite the reference after an intended change.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF

from alens_gui.core.colors import ColorScale
from alens_gui.core.explanation import Explanation
from alens_gui.core.export import panels
from alens_gui.qt import jobs
from alens_gui.qt.session import Session, ViewOptions
from alens_gui.qt.views import MapsView

REFERENCE = Path(__file__).parent / "reference" / "refined_tile.png"
H, W = 60, 90


def synthetic() -> Explanation:
    """Two classes; class 0 wins the left third strongly, class 1 the right third; a tie in the middle."""
    img = np.dstack([np.linspace(0, 1, W)[None, :].repeat(H, 0)] * 3).astype(np.float32)
    raw = np.zeros((2, 1, H, W), dtype=np.float32)
    raw[0, 0, :, :30] = 2.0
    raw[1, 0, :, :30] = -1.0
    raw[0, 0, :, 60:] = -0.5
    raw[1, 0, :, 60:] = 1.0
    raw[0, 0, :20, :30] = 4.0  # a stronger block at the top left
    return Explanation.from_raw(img, [1, 2], ["one", "two"], [0.6, 0.4], raw, method="synthetic")


@pytest.fixture
def drawn(qtbot):
    session = Session()
    view = MapsView(session)
    qtbot.addWidget(view)
    view.setFixedSize(900, 700)
    view.show()
    session.view = ViewOptions(mode="refined", territory=False, opacity=0.8)
    session.color_scale = ColorScale(scope="row")
    expl = synthetic()
    session.explanation = expl
    session.rendered = jobs.render(expl, session.color_scale)
    qtbot.waitUntil(lambda: view.map_tiles("refined") and view.map_tiles("refined")[0].view.width() > 100)
    qtbot.wait(200)
    return session, view, expl


def grab(tile) -> np.ndarray:
    img = tile.view.grab().toImage().convertToFormat(tile.view.grab().toImage().Format.Format_RGB888)
    ptr = img.constBits()
    arr = np.frombuffer(ptr, dtype=np.uint8, count=img.sizeInBytes()).reshape(img.height(), img.bytesPerLine())
    return arr[:, : img.width() * 3].reshape(img.height(), img.width(), 3).copy()


def screen_xy(tile, y: float, x: float) -> tuple[int, int]:
    p = tile.view.mapFromScene(tile.vb.mapViewToScene(QPointF(x, y)))
    return int(p.y()), int(p.x())


@pytest.mark.parametrize("cls", [0, 1])
def test_view_and_export_colour_the_same_pixels_alike(drawn, cls):
    session, view, expl = drawn
    tile = view.map_tiles("refined")[cls]
    shot = grab(tile)
    exported = panels(expl, session.color_scale, session.view.opacity)["refined"][cls]
    for y, x in ((10, 15), (40, 15), (30, 45), (30, 75), (5, 88)):
        sy, sx = screen_xy(tile, y + 0.5, x + 0.5)
        on_screen = shot[sy, sx].astype(int)
        in_file = np.round(exported[y, x] * 255).astype(int)
        assert np.abs(on_screen - in_file).max() <= 4, (cls, (y, x), on_screen, in_file)
    # where the class loses, both show the grey image untouched
    sy, sx = screen_xy(tile, 30.5, (75.5 if cls == 0 else 15.5))
    gray = shot[sy, sx].astype(int)
    assert abs(gray[0] - gray[1]) <= 2 and abs(gray[1] - gray[2]) <= 2


def test_view_matches_the_stored_reference(drawn):
    _session, view, _expl = drawn
    tile = view.map_tiles("refined")[0]  # the view has a fixed size, so the tile has too
    shot = grab(tile)
    if os.environ.get("ALENS_UPDATE_REFERENCE") or not REFERENCE.exists():
        if not os.environ.get("ALENS_UPDATE_REFERENCE"):
            pytest.fail(f"no reference image {REFERENCE}; run with ALENS_UPDATE_REFERENCE=1 once to write it")
        REFERENCE.parent.mkdir(exist_ok=True)
        Image.fromarray(shot).save(REFERENCE)
    ref = np.asarray(Image.open(REFERENCE).convert("RGB")).astype(int)
    assert ref.shape == shot.shape, (ref.shape, shot.shape)
    diff = np.abs(ref - shot.astype(int))
    assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 12, (diff.mean(), np.percentile(diff, 99))


def striped() -> Explanation:
    """A map finer than any tile: in a block, columns alternate strong positive and weak negative
    (the cat's-eyes case of Guided Backprop / IG maps); the rest is zero."""
    h, w = 300, 450
    img = np.full((h, w, 3), 0.5, dtype=np.float32)
    raw = np.zeros((2, 1, h, w), dtype=np.float32)
    raw[0, 0, 60:240, 100:350:2] = 2.0
    raw[0, 0, 60:240, 101:350:2] = -0.5
    raw[1] = -raw[0]
    return Explanation.from_raw(img, [1, 2], ["one", "two"], [0.6, 0.4], raw, method="synthetic")


def test_a_map_drawn_smaller_than_its_data_says_the_same_at_every_size(qtbot):
    session = Session()
    view = MapsView(session)
    qtbot.addWidget(view)
    view.setFixedSize(700, 520)
    view.show()
    session.view = ViewOptions(mode="base", territory=False, opacity=1.0)
    session.color_scale = ColorScale(scope="row")
    expl = striped()
    session.explanation = expl
    session.rendered = jobs.render(expl, session.color_scale)
    qtbot.waitUntil(lambda: view.map_tiles("base") and view.map_tiles("base")[0].view.width() > 100)
    seen = []
    for size in ((700, 520), (685, 505), (640, 480), (600, 450), (560, 420), (480, 360)):
        view.setFixedSize(*size)
        qtbot.wait(100)
        for cls, sign in ((0, 1), (1, -1)):
            tile = view.map_tiles("base")[cls]
            assert tile.reduction() >= 2, "the tile must be smaller than the data for this test"
            shot = grab(tile).astype(int)
            y0, x0 = screen_xy(tile, 80, 120)
            y1, x1 = screen_xy(tile, 220, 330)
            region = shot[y0:y1, x0:x1]
            red_minus_blue = region[..., 0] - region[..., 2]
            # every screen pixel of the block is on the side of its mean (red for class 0), at every size
            assert (np.sign(red_minus_blue) == sign).all(), (size, cls, (np.sign(red_minus_blue) != sign).mean())
            seen.append(tile.reduction())
    assert len(set(seen)) >= 2  # the sizes covered more than one reduction


def test_a_comparison_on_screen_blits_the_arrays_the_export_composites(qtbot):
    from alens_gui.core.export import comparison_panels

    session = Session()
    current, pinned = MapsView(session), MapsView(session, role="pinned")
    for v in (current, pinned):
        qtbot.addWidget(v)
        v.setFixedSize(600, 500)
        v.show()
    session.view = ViewOptions(mode="both", territory=True, opacity=0.8)
    session.color_scale = ColorScale(scope="class")
    a, b = synthetic(), striped_small()
    session.explanation, session.pinned = b, a
    rb, ra = jobs.render_pair(b, a, session.color_scale)
    session.rendered, session.pinned_rendered = rb, ra
    qtbot.waitUntil(lambda: len(pinned.map_tiles("refined")) == 2 and len(current.map_tiles("refined")) == 2)
    pa, pb = comparison_panels(a, b, session.color_scale, session.view.opacity)
    for view, exported in ((pinned, pa["rendered"]), (current, pb["rendered"])):
        for kind in ("base", "refined"):
            for i, tile in enumerate(view.map_tiles(kind)):
                on_screen = tile.sources[1]
                np.testing.assert_array_equal(on_screen, getattr(exported, kind)[i])
        np.testing.assert_array_equal(view.tiles[("territory", -1)].sources[1], exported.territory)
        assert view.rendered.limits[0] == pytest.approx(exported.limits[0])


def striped_small() -> Explanation:
    """The synthetic explanation's image and maps, mirrored: another image of the same class set."""
    e = synthetic()
    return Explanation.from_raw(e.image[:, ::-1].copy(), [1, 2], ["one", "two"], [0.3, 0.7],
                                e.raw[..., ::-1].copy() * 3, method="synthetic")
