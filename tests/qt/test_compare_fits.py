"""A comparison fits a 1280 x 800 screen, and its two halves are laid out alike (issue 16, finding 2)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from .conftest import wait_idle
from .test_window import run


def _cell(view, key):
    idx = view.grid_layout.indexOf(view.tiles[key])
    return view.grid_layout.getItemPosition(idx)[:2]


@pytest.fixture
def two_photos(tmp_path, photos):
    out = []
    for name in ("chelsea", "coffee"):
        path = tmp_path / f"{name}.png"
        Image.fromarray((photos[name] * 255).round().astype(np.uint8)).save(path)
        out.append(path)
    return out


def test_two_paths_on_the_command_line_open_as_a_comparison(qtbot, explainer, tmp_path, two_photos):
    """``alens-gui A B``: A is explained and pinned, B explained beside it with A's class set."""
    from alens_gui.qt.app import build_parser
    from alens_gui.qt.window import MainWindow

    assert build_parser().parse_args([str(p) for p in two_photos]).path == [str(p) for p in two_photos]
    a, b = two_photos
    win = MainWindow(str(a), loaded=explainer.loaded, config_dir=tmp_path / "config", autorun=True, compare_with=str(b))
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    try:
        s = win.session
        qtbot.waitUntil(lambda: s.pinned is not None and s.explanation is not None and s.explanation is not s.pinned
                        and not s.explanation.partial, timeout=120_000)
        wait_idle(qtbot, win)
        assert s.pinned.source.get("file") == "chelsea.png" and s.explanation.source.get("file") == "coffee.png"
        assert list(s.pinned.classes) == list(s.explanation.classes)
        assert win.pinned_maps.isVisible() and win.width() <= 1280
    finally:
        win.close()


def test_a_comparison_fits_1280_by_800_with_both_halves_alike(make_window, qtbot):
    win = make_window(size=(1280, 800))
    s, c = win.session, win.controller
    run(qtbot, win, "gradcam")  # chelsea, the top 3 classes
    assert c.comparison.pin()
    c.autorun = True
    win.open_sample("coffee")
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: s.pinned_rendered is not None and s.rendered.explanation is s.explanation, timeout=60_000)
    qtbot.wait(200)
    hint = win.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 800, (hint.width(), hint.height())
    assert win.width() <= 1280 and win.height() <= 800, (win.width(), win.height())
    # the Inspect column is on the screen
    assert win.inspect_dock.isVisible() and win.inspect_dock.geometry().right() <= win.width()
    # one layout for both halves: class i's maps sit in the same cell on each side
    assert win.pinned_maps.columns == win.maps.columns
    for key in win.maps.tiles:
        assert key in win.pinned_maps.tiles
        assert _cell(win.pinned_maps, key) == _cell(win.maps, key), key
    # the maps stay readable
    for view in (win.pinned_maps, win.maps):
        for tile in view.map_tiles("refined"):
            assert tile.view.width() >= 60 and tile.view.height() >= 60, (tile.view.width(), tile.view.height())
    c.comparison.unpin()
    wait_idle(qtbot, win)
    assert win.width() <= 1280
