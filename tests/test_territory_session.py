"""The class-territory view, the neighbourhood hover read-out, figures, and session files."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from alens_gui.core.explanation import Explanation
from alens_gui.core.images import tile_masks
from alens_gui.core.sessionfile import SessionFileError, load_session, save_session


def test_territory_marks_ties_as_no_winner():
    same = np.ones((3, 1, 20, 20), dtype=np.float32)
    e = Explanation.from_raw(np.zeros((20, 20, 3)), [1, 2, 3], ["a", "b", "c"], [0.3, 0.3, 0.3], same)
    labels, strength = e.territory()
    assert (labels == -1).all() and (strength == 0).all()


def test_territory_is_the_winning_class_with_its_margin(rng):
    raw = rng.normal(0, 1, (4, 1, 30, 30)).astype(np.float32)
    e = Explanation.from_raw(np.zeros((30, 30, 3)), [1, 2, 3, 4], list("abcd"), [0.25] * 4, raw)
    labels, strength = e.territory()
    won = labels >= 0
    assert won.any()
    np.testing.assert_array_equal(labels[won], e.distribution.argmax(0)[won])
    smax = e.distribution.max(0)
    assert np.all(smax[won] > 0.25) and np.all(smax[~won] <= 0.25 + 1e-6)
    np.testing.assert_allclose(strength[won], (smax[won] - 0.25) / 0.75, atol=1e-6)
    assert strength.min() >= 0 and strength.max() <= 1


def test_territory_on_the_grid_gives_each_tile_to_its_class(explainer, grid_image):
    from alens_gui.core.images import GRID_CLASSES

    e = explainer.explain(grid_image, method="gradcam", classes=list(GRID_CLASSES))
    labels, _ = e.territory()
    tiles = tile_masks(224)
    hits = [float((labels[tiles[i]] == i).mean()) for i in range(4)]
    assert np.mean(hits) > 0.5, hits


def test_hover_over_a_neighbourhood(explainer, photos):
    e = explainer.explain(photos["chelsea"], method="ixg", top_k=3)
    y, x, r = 150, 200, 4
    d0 = e.distribution_at(y, x)
    np.testing.assert_allclose(d0, e.distribution[:, y, x])
    d = e.distribution_at(y, x, radius=r)
    yy, xx = np.mgrid[0:e.shape[0], 0:e.shape[1]]
    disc = (yy - y) ** 2 + (xx - x) ** 2 <= r * r
    np.testing.assert_allclose(d, e.distribution[:, disc].mean(axis=1), rtol=1e-5)
    assert d.sum() == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(d, d0)  # IxG is noisy: the neighbourhood differs from the pixel


def test_figure_with_territory_is_written(explainer, photos, tmp_path):
    from alens_gui.core.export import render_figure, render_territory

    e = explainer.explain(photos["coffee"], method="gradcam", top_k=3)
    out = render_figure(e, tmp_path / "all.png", show_territory=True)
    im = Image.open(out)
    assert im.size[0] > 800 and im.size[1] > 1000
    t = render_territory(e, tmp_path / "t.svg")
    assert "class territory" in t.read_text()


def test_session_file_round_trip(explainer, photos, tmp_path):
    img = tmp_path / "coffee.png"
    Image.fromarray((photos["coffee"] * 255).astype(np.uint8)).save(img)
    e = explainer.explain(str(img), method="gradcam", top_k=3).relens(tau=0.05)
    mask = np.zeros(e.shape, bool)
    mask[10:50, 20:80] = True
    from alens_gui.core.safeio import sha256_file as file_sha256

    state = {"inputs": [{"path": str(img), "sha256": file_sha256(img)}], "method": "gradcam"}
    path = save_session(tmp_path / "s.alens", state, e, mask)
    data = load_session(path)
    assert data.warnings == [] and data.state["method"] == "gradcam"
    r = data.explanation
    assert r.lens == e.lens and r.geometry == e.geometry and r.source["file"] == "coffee.png"
    np.testing.assert_array_equal(r.classes, e.classes)
    np.testing.assert_allclose(r.refined, e.refined, atol=1e-6)
    np.testing.assert_array_equal(data.mask, mask)
    # the input changed since: the session still opens, with a warning naming the file
    Image.fromarray((photos["chelsea"] * 255).astype(np.uint8)).save(img)
    assert any("coffee.png" in w and "changed" in w for w in load_session(path).warnings)


def test_bad_session_files_get_clear_messages(tmp_path):
    newer = tmp_path / "newer.alens"
    with zipfile.ZipFile(newer, "w") as z:
        z.writestr("session.json", json.dumps({"format": "alens-session", "version": 99, "state": {}}))
    with pytest.raises(SessionFileError, match="newer Attribution Lens Studio .*format 99"):
        load_session(newer)
    junk = tmp_path / "junk.alens"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(SessionFileError, match="junk.alens: not a session file"):
        load_session(junk)
    other = tmp_path / "other.alens"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    other.write_bytes(buf.getvalue())
    with pytest.raises(SessionFileError, match="no session.json"):
        load_session(other)
