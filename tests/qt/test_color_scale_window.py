"""The colour scale is a session field of its own: a new scale re-renders the maps' colours and
leaves their layout alone; a new view (mode, overlay, opacity, territory) re-lays out and never
re-renders. Real window, real default model, a real photograph."""

from __future__ import annotations

import numpy as np

from .conftest import wait_idle


def test_a_colour_scale_change_recolours_without_relayout_and_a_view_change_renders_nothing(make_window, qtbot):
    win = make_window()
    s, maps = win.session, win.maps
    wait_idle(qtbot, win)
    s.method = "gradcam"
    assert win.run() is not None
    wait_idle(qtbot, win)
    assert not win.notifications.errors(), win.notifications.errors()
    views, scales, started, laid = [], [], [], []
    s.view_changed.connect(views.append)
    s.color_scale_changed.connect(scales.append)
    win.controller.runner.started.connect(lambda slot, _label: started.append(slot))
    maps.tilesChanged.connect(lambda: laid.append(1))
    tiles, first = dict(maps.tiles), s.rendered
    shown = maps.map_tiles("refined")[0].sources[1]

    win.view_panel.gamma.setValue(0.5)  # the user's contrast: the colour scale alone
    wait_idle(qtbot, win)
    assert [sc.gamma for sc in scales] == [0.5] and views == [] and started == ["render"]
    r = s.rendered
    assert r is not first and r.scale == s.color_scale and r.explanation is first.explanation
    assert laid == [] and list(maps.tiles) == list(tiles) and all(maps.tiles[k] is t for k, t in tiles.items())
    tile = maps.map_tiles("refined")[0]
    assert tile.sources[1] is r.refined[0] and not np.array_equal(tile.sources[1], shown)  # recoloured

    started.clear()
    win.view_panel.opacity.setValue(30)  # opacity and the maps shown: the view alone, nothing rendered
    s.view = s.view.with_(mode="refined", territory=False)
    wait_idle(qtbot, win)
    assert len(views) == 2 and len(scales) == 1 and started == [] and s.rendered is r
    assert laid and ("base", 0) not in maps.tiles and maps.map_tiles("refined")[0].sources[1] is r.refined[0]
