"""RunSettings / ClassSet: one value for what a run is made of (round trips, validation, keys, the API)."""

from __future__ import annotations

import numpy as np
import pytest

from alens_gui.core.errors import ClassSetError
from alens_gui.core.lensparams import VAR, LensParams
from alens_gui.core.settings import ClassSet, RunSettings, SettingsError


def test_class_set_resolves_per_image_and_describes():
    probs = np.array([0.1, 0.5, 0.04, 0.3, 0.06])
    assert ClassSet.top(2).resolve(probs) == [1, 3]
    assert ClassSet.top(2, with_lowest=True).resolve(probs) == [1, 3, 2]
    assert ClassSet.best_vs_worst().resolve(probs) == [1, 2]
    assert ClassSet.picked([4, 0]).resolve(probs) == [4, 0]
    assert ClassSet.parse("b, d", ["a", "b", "c", "d", "e"]).classes == (1, 3)
    assert ClassSet.picked([1, 3], label="grades").describe(["a", "b", "c", "d"]) == "preset 'grades': b, d"
    assert ClassSet.top(3, True).describe() == "top-3 + lowest" and ClassSet.top(3, True).size() == 4
    with pytest.raises(ClassSetError, match="out of range"):
        ClassSet.picked([1, 9]).resolve(probs)
    with pytest.raises(ClassSetError, match="K >= 2"):
        ClassSet.picked([1])
    with pytest.raises(ClassSetError, match="more than once"):
        ClassSet.picked([1, 1])
    with pytest.raises(ClassSetError, match="start at 0"):
        ClassSet.picked([-1, 2])
    with pytest.raises(ClassSetError, match="only 5 classes"):
        ClassSet.top(6).check(5)


def test_run_settings_round_trip_and_key():
    s = RunSettings("ig", {"steps": 16, "baseline": "blurred"}, ClassSet.picked([285, 967], "mine"), VAR,
                    window="40,400", frame=2, resize="pad")
    back = RunSettings.from_json(s.to_json())
    assert back == s and back.key() == s.key()
    assert s.with_(lens=LensParams(tau=0.05)).key() != s.key()
    # a default given explicitly keys the same as one left out
    assert RunSettings("ig", {"steps": 50}).key() == RunSettings("ig").key()
    assert "ig (baseline=blurred, steps=16)" in s.describe()


@pytest.mark.parametrize("doc, match", [
    ([], "must be an object"),
    ({"method": 3}, "short text"),
    ({"method": "nosuch"}, "unknown method|no method"),
    ({"method": "ig", "options": {"nosuch": 1}}, "no option"),
    ({"method": "ig", "options": {"steps": -4}}, "steps"),
    ({"classes": {"kind": "topk", "k": True}}, "integer"),
    ({"classes": {"kind": "picked", "classes": [1]}}, "K >= 2"),
    ({"classes": {"kind": "picked", "classes": "1,2"}}, "list"),
    ({"classes": {"kind": "what"}}, "one of"),
    ({"lens": {"temperatures": [0]}}, "positive"),
    ({"lens": {"temperatures": "abc"}}, "list"),
    ({"lens": {"tau": "x"}}, "number"),
    ({"lens": {"evil": 1}}, "unknown lens field"),
    ({"window": "sideways"}, "window"),
    ({"frame": -1}, "frame"),
    ({"resize": "zoom"}, "input policy"),
])
def test_run_settings_from_json_refuses_with_one_error(doc, match):
    with pytest.raises(SettingsError, match=match):
        RunSettings.from_json(doc)


def test_explain_with_settings_equals_keywords(explainer):
    from alens_gui.core.images import sample_image

    img = sample_image("chelsea")
    s = RunSettings("ixg", classes=ClassSet.top(2), lens=VAR)
    a = explainer.explain(img, s)
    b = explainer.explain(img, "ixg", top_k=2, lens=VAR)
    assert list(a.classes) == list(b.classes) and a.classes[0] == 285
    np.testing.assert_allclose(a.refined, b.refined, rtol=1e-5, atol=1e-7)
    with pytest.raises(ClassSetError, match="not both"):
        explainer.explain(img, s, top_k=3)
    before = explainer.loaded.resize  # (the shared model's, whatever the tests before left it)
    pad = explainer.explain(img, s.with_(resize="pad"))
    assert pad.geometry.policy == "pad" and explainer.loaded.resize == before != "pad"  # a copy was fitted


def test_a_progress_says_its_status_line_and_keeps_it_for_later_progress():
    from alens_gui.core.errors import Cancelled
    from alens_gui.core.progress import Progress

    lines, ticks = [], []
    p = Progress(lambda d, t, m: ticks.append((d, t, m)), on_status=lines.append)
    p.add_total(2)
    p.status("reading chelsea…")
    p.advance(1)
    p.advance(1, "read")
    assert lines == ["reading chelsea…"] and ticks == [(1, 2, "reading chelsea…"), (2, 2, "read")]
    p.cancel()
    with pytest.raises(Cancelled):
        p.status("too late")
