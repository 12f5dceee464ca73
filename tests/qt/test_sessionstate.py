"""Session settings <-> session-file state: the two directions hold together (a round trip)."""

from __future__ import annotations

import json

import numpy as np

from alens_gui.core.colors import ColorScale
from alens_gui.core.lensparams import LensParams
from alens_gui.core.sessionfile import validate_state
from alens_gui.qt.session import ClassRequest, ImageRequest, Session, ViewOptions
from alens_gui.qt.sessionstate import mask_result_from_state, run_settings, settings_from_state, state_of


def test_settings_survive_a_round_trip_through_a_session_files_state(tmp_path):
    a = Session()
    a.image_request = ImageRequest(path=str(tmp_path / "scan.dcm"), frame=3)
    a.class_request = ClassRequest(kind="picked", classes=(285, 967, 1))
    a.method = "ig"
    a.options = {"steps": 32, "baseline": "blurred"}
    a.input_policy = "center-crop"
    a.window = (40.0, 400.0)
    a.view = ViewOptions(mode="refined", overlay=False, opacity=0.4, territory=False)
    a.color_scale = ColorScale(scope="class", percentile=98, gamma=0.7)
    a.hover_radius = 5
    a.fill = "mean"
    a.lens = LensParams(temperatures=(1.0, 0.3), tau=0.05)
    state = json.loads(json.dumps(state_of(a)))  # what a file holds: plain JSON
    assert "scale" not in state["view"] and state["color_scale"] == a.color_scale.as_dict()
    checked = validate_state(state)  # (what load_session hands on)
    assert (checked["view"], checked["color_scale"]) == (state["view"], state["color_scale"])
    fields, warnings = settings_from_state(checked)
    assert warnings == []
    b = Session()
    for name, value in fields.items():
        setattr(b, name, value)
    for name in ("image_request", "class_request", "method", "options", "input_policy", "window", "view",
                 "color_scale", "fill", "lens", "hover_radius"):
        assert getattr(b, name) == getattr(a, name), name
    assert json.loads(json.dumps(state_of(b))) == state
    # with maps in the file, the maps' own lens is shown: the settings leave the lens alone
    assert "lens" not in settings_from_state(state, has_maps=True)[0]


def test_a_session_state_from_before_keeps_its_colour_scale_in_the_view():
    """Files written before the colour scale had a field of its own stored it as ``view.scale``."""
    old = {"view": {"mode": "base", "overlay": True, "opacity": 0.5, "territory": False, "hover_radius": 3,
                    "scale": {"scope": "all", "percentile": 97.5, "gamma": 0.6}}}
    fields, warnings = settings_from_state(validate_state(old))
    assert warnings == []
    assert fields["view"] == ViewOptions(mode="base", overlay=True, opacity=0.5, territory=False)
    assert fields["color_scale"] == ColorScale(scope="all", percentile=97.5, gamma=0.6)
    assert fields["hover_radius"] == 3
    b = Session()
    b.update(**fields)
    new = state_of(b)  # written back in the new shape
    assert "scale" not in new["view"] and new["color_scale"] == {"scope": "all", "percentile": 97.5, "gamma": 0.6}
    # a state with neither leaves the session's colour scale alone
    assert "color_scale" not in settings_from_state(validate_state({"view": {"mode": "both"}}))[0]


def test_a_method_missing_here_is_a_warning_not_a_failure():
    fields, warnings = settings_from_state({"method": "no-such-method", "options": {"x": 1}})
    assert "method" not in fields and "options" not in fields
    assert len(warnings) == 1 and "no-such-method" in warnings[0]


def test_a_saved_masking_result_is_rebuilt_without_a_model():
    from alens_gui.core.explanation import Explanation

    img = np.random.default_rng(0).uniform(0, 1, (20, 30, 3)).astype(np.float32)
    e = Explanation.from_raw(img, [1, 2], ["a", "b"], [0.6, 0.4], np.zeros((2, 1, 20, 30), np.float32), method="x")
    mask = np.zeros((20, 30), bool)
    mask[:5, :5] = True
    r = mask_result_from_state({"classes": [1, 2], "before": [0.6, 0.4], "after": [0.5, 0.5], "fraction": 25 / 600,
                                "fill": "black"}, e, mask)
    assert r.masked_image[:5, :5].max() == 0 and np.allclose(r.masked_image[10:, 10:], img[10:, 10:])
    assert list(r.classes) == [1, 2] and r.fill == "black"
    assert mask_result_from_state(None, e, mask) is None


def test_the_session_run_is_one_run_settings_with_the_window_rule_applied_once():
    from alens_gui.core.resultcache import ResultCache
    from alens_gui.core.settings import ClassSet, RunSettings

    s = Session()
    s.class_request = ClassRequest(kind="picked", classes=(285, 967))
    s.input_policy = "pad"
    s.lens = LensParams(temperatures=(1.0, 0.3), tau=0.05)
    r = run_settings(s, "ig", {"steps": 8})
    assert (r.method, r.option_dict, r.classes, r.lens, r.resize) == ("ig", {"steps": 8}, ClassSet.picked([285, 967]),
                                                                      s.lens, "pad")
    assert s.window == "default" and r.window is None  # the menu's "default" is the file's own window
    s.window = (40.0, 400.0)
    s.class_request = ClassRequest(kind="topk", k=4, with_lowest=True)
    r = run_settings(s, "gradcam", {})
    assert r.window == "40,400" and r.classes == ClassSet.top(4, True)
    s.class_request = ClassRequest(kind="best_vs_worst")
    assert run_settings(s, "gradcam", {}).classes == ClassSet.best_vs_worst()
    # the gallery's "default" and a RunSettings' None name one cache entry
    assert ResultCache.explanation_key(__file__, "m", RunSettings("ig", window="default", resize="pad")) == \
        ResultCache.explanation_key(__file__, "m", RunSettings("ig", resize="pad"))
    assert ResultCache.prediction_key(__file__, "m", "pad", "default") == \
        ResultCache.prediction_key(__file__, "m", "pad", None) != ResultCache.prediction_key(__file__, "m", "pad", "auto")


def test_the_window_and_the_cli_make_one_run_settings_for_one_run():
    """The gallery's translation (a manual window is a tuple, options typed) and the CLI's ("C,W",
    options as text) give equal keys for the same run, and different keys for different runs."""
    from alens_gui.cli import build_parser, run_settings_from_args
    from alens_gui.core.models import imagenet_class_names

    names = imagenet_class_names()
    s = Session()
    s.window, s.class_request = (100.0, 200.0), ClassRequest(kind="topk", k=2, with_lowest=True)

    def cli(*argv):
        args = build_parser().parse_args(["cohort", ".", "--out", "x", *argv])
        return run_settings_from_args(args, names)

    gui = run_settings(s, "saliency", {"abs": False})
    same = cli("--method", "saliency", "-O", "abs=false", "--window", "100,200", "--top-k", "2", "--with-lowest")
    assert gui.key() == same.key()
    assert gui.key() != cli("--method", "saliency", "-O", "abs=true", "--window", "100,200", "--top-k", "2",
                            "--with-lowest").key()
    assert gui.key() != cli("--method", "saliency", "-O", "abs=false", "--window", "100,201", "--top-k", "2",
                            "--with-lowest").key()
    s.window = "default"
    assert run_settings(s, "saliency", {"abs": True}).key() == \
        cli("--method", "saliency", "--top-k", "2", "--with-lowest").key()
