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
    session.view = ViewOptions(mode="refined", territory=False, opacity=0.8, scale=ColorScale(scope="row"))
    expl = synthetic()
    session.explanation = expl
    session.rendered = jobs.render(expl, session.view.scale)
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
    exported = panels(expl, session.view.scale, session.view.opacity)["refined"][cls]
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
