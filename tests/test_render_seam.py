"""One render for screen and file: the comparison export composites the arrays the views blit,
every map panel carries its own colour bar, and shrinking a map averages it."""

from __future__ import annotations

import numpy as np
import pytest

from alens_gui.core.colors import ColorScale
from alens_gui.core.explanation import Explanation
from alens_gui.core.export import comparison_figure, comparison_panels, render_comparison
from alens_gui.core.render import area_average, composite_rgb, render_pair

H, W = 48, 64


def synthetic(seed: int, strength: float, image: np.ndarray | None = None) -> Explanation:
    """Two classes of smooth random maps; the base maps are much larger than the refined ones,
    so a base panel with the refined panel's bar (or the other way round) is caught."""
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 1, (H, W, 3)).astype(np.float32) if image is None else image
    raw = rng.normal(0, 1, (2, 1, H, W)).astype(np.float32) * strength
    raw[0, 0, : H // 2] += 3 * strength
    return Explanation.from_raw(img, [1, 2], ["one", "two"], [0.7, 0.3], raw, method="synthetic")


@pytest.fixture(scope="module")
def pair():
    a, b = synthetic(0, 1.0), synthetic(1, 2.5)
    assert not np.allclose(a.base, a.refined)  # the lens changed the maps, so the two limits differ
    return a, b


def test_comparison_export_gives_every_map_its_own_bar_with_the_shared_limit(pair):
    a, b = pair
    scale = ColorScale(scope="row")
    ra, rb = render_pair(a, b, scale)  # what the window's two map views blit
    assert not np.allclose(ra.limits[0], ra.limits[1])
    fig = comparison_figure(a, b, scale=scale, opacity=0.75)
    checked = {"base": 0, "refined": 0}
    for ax in fig.axes:
        images = ax.get_images()
        title = ax.get_title()
        if not images or not ("base" in title or "Attribution Lens" in title):
            continue
        kind = "base" if title.endswith("base") else "refined"
        side, r = (ra, "pinned") if title.startswith("pinned") else (rb, "current")
        i = 0 if ": one " in title else 1
        # the panel is the composite of the very array the view blits
        np.testing.assert_array_equal(images[0].get_array(), side.composited(kind, i, 0.75), err_msg=title)
        bars = [child for child in ax.child_axes if child.collections or child.images]
        assert len(bars) == 1, f"{r} {kind} {i}: {len(bars)} colour bars"
        lo, hi = bars[0].get_ylim()
        lim = side.limits[0 if kind == "base" else 1][i]
        assert (lo, hi) == pytest.approx(scale.levels(lim, side.signed)), (r, kind, i)
        checked[kind] += 1
    assert checked == {"base": 4, "refined": 4}
    # one colour scale: the same limits on both sides
    np.testing.assert_array_equal(ra.limits[0], rb.limits[0])
    np.testing.assert_array_equal(ra.limits[1], rb.limits[1])


def test_comparison_panels_and_the_figure_file_come_from_one_render(pair, tmp_path):
    a, b = pair
    pa, pb = comparison_panels(a, b, ColorScale(scope="class"), 0.6)
    ra, rb = render_pair(a, b, ColorScale(scope="class"))
    for got, want in ((pa["rendered"], ra), (pb["rendered"], rb)):
        for i in range(2):
            np.testing.assert_array_equal(got.refined[i], want.refined[i])
            np.testing.assert_array_equal(got.base[i], want.base[i])
    out = render_comparison(a, b, tmp_path / "cmp.pdf")
    assert out.read_bytes().startswith(b"%PDF")


def test_area_average_of_a_map_is_the_average_of_its_composite():
    # over an even backdrop the averaged map composites to the averaged composite exactly
    # (over a busy one, to first order: the views draw backdrop and map as two layers)
    a = synthetic(2, 1.0, image=np.full((H, W, 3), 0.4, np.float32))
    r = render_pair(a, a)[0]
    full = composite_rgb(r.backdrop, r.refined[0], 1.0)
    for f in (2, 3, 5):
        small = composite_rgb(area_average(r.backdrop, f), area_average(r.refined[0], f), 1.0)
        hh, ww = H // f, W // f  # whole blocks only
        want = full[: hh * f, : ww * f].reshape(hh, f, ww, f, 3).mean(axis=(1, 3))
        assert np.abs(small[:hh, :ww] - want).max() < 2.5 / 255, f


def test_area_average_keeps_a_fine_pattern_as_its_mix():
    rgba = np.zeros((4, 6, 4), dtype=np.uint8)
    rgba[:, ::2] = (200, 0, 0, 255)   # opaque red columns
    rgba[:, 1::2] = (0, 0, 200, 0)    # transparent columns: their colour must not count
    out = area_average(rgba, 2)
    assert out.shape == (2, 3, 4)
    assert (out[..., 0] == 200).all() and (out[..., 2] == 0).all() and (np.abs(out[..., 3].astype(int) - 128) <= 1).all()


def test_the_all_classes_figure_shows_the_photograph_once(monkeypatch, tmp_path):
    from matplotlib.figure import Figure

    from alens_gui.core.export import render_figure

    seen = []
    real = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (seen.append(self), real(self, *a, **k))[1])
    e = synthetic(3, 1.0)
    render_figure(e, tmp_path / "all.png", show_territory=True)
    fig = seen[-1]
    photos = [ax for ax in fig.axes for im in ax.get_images() if np.array_equal(im.get_array(), e.image)]
    assert len(photos) == 1
    maps = [ax for ax in fig.axes if ax.get_images() and ax.get_title() in ("synthetic: base", "Attribution Lens")]
    assert len(maps) == 2 * e.k and all(len(ax.child_axes) == 1 for ax in maps)  # each with its colour bar
