"""The Explanation object, the Python API and the grid property the paper claims."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alens_gui.core.errors import ClassSetError, LensError
from alens_gui.core.images import GRID_CLASSES, GRID_PHOTOS, tile_masks
from alens_gui.core.lens import VAR, LensParams

from .conftest import assert_maps_agree


@pytest.fixture(scope="module")
def grid_ixg(explainer, grid_image):
    return explainer.explain(grid_image, method="ixg", classes=list(GRID_CLASSES))


def tile_mass(maps: np.ndarray) -> float:
    """Mean over tiles of the share of positive mass that falls inside the class's own tile."""
    masks = tile_masks(maps.shape[-1])
    shares = []
    for i in range(4):
        pos = np.clip(maps[i], 0, None)
        total = pos.sum()
        shares.append(pos[masks[i]].sum() / total if total > 0 else 0.0)
    return float(np.mean(shares))


def test_grid_tiles_have_the_expected_classes(explainer, photos):
    for name, cls in zip(GRID_PHOTOS, GRID_CLASSES):
        assert int(np.argmax(explainer.predict(photos[name]))) == cls


def test_refined_ixg_puts_more_mass_in_the_correct_tile(grid_ixg):
    base, refined = tile_mass(grid_ixg.base), tile_mass(grid_ixg.refined)
    assert refined > base
    assert refined > 0.25  # better than a uniform map


def test_distribution_sums_to_one_everywhere(grid_ixg):
    s = grid_ixg.distribution.sum(axis=0)
    np.testing.assert_allclose(s, 1.0, atol=1e-5)
    assert grid_ixg.distribution.min() >= 0


def test_explanation_contents(grid_ixg, explainer):
    e = grid_ixg
    assert e.k == 4 and list(e.classes) == list(GRID_CLASSES)
    assert e.class_names[0] == "Egyptian cat"
    assert e.image.shape == (224, 224, 3)
    assert e.base.shape == e.refined.shape == e.distribution.shape == (4, 224, 224)
    assert e.raw.shape == (4, 3, 224, 224)
    assert np.all((e.probs > 0) & (e.probs < 1))
    assert len(e.top5) == 5 and e.top5[0][2] >= e.top5[-1][2]
    assert "Input × Gradient" in e.caption()
    d = e.distribution_at(10, 200)
    np.testing.assert_allclose(d, e.distribution[:, 10, 200], rtol=1e-6)
    assert abs(d.sum() - 1) < 1e-5
    with pytest.raises(LensError, match="outside"):
        e.distribution_at(224, 0)


def test_relens_needs_no_model_call(explainer, grid_ixg, monkeypatch):
    calls = []
    original = explainer.model.forward
    monkeypatch.setattr(explainer.model, "forward", lambda *a, **k: calls.append(1) or original(*a, **k))
    var = grid_ixg.relens(VAR)
    tau = grid_ixg.relens(tau=0.3)
    sub = grid_ixg.relens(classes=[967, 285])
    assert calls == []
    assert var.lens == VAR and tau.lens.tau == 0.3
    assert np.count_nonzero(tau.refined) < np.count_nonzero(grid_ixg.refined)
    np.testing.assert_array_equal(var.base, grid_ixg.base)
    assert list(sub.classes) == [967, 285] and sub.class_names == ["espresso", "Egyptian cat"]
    np.testing.assert_allclose(sub.distribution.sum(0), 1.0, atol=1e-5)
    with pytest.raises(ClassSetError):
        grid_ixg.relens(classes=[285])
    with pytest.raises(ClassSetError, match="not in"):
        grid_ixg.relens(classes=[285, 1])


def test_class_set_strategies(explainer, photos):
    e = explainer.explain(photos["chelsea"], method="saliency", top_k=2, with_lowest=True)
    probs = explainer.predict(photos["chelsea"])
    assert list(e.classes[:2]) == [285, int(np.argsort(-probs)[1])]
    assert e.classes[2] == int(np.argmin(probs))
    bw = explainer.explain(photos["chelsea"], method="saliency", best_vs_worst=True)
    assert bw.k == 2 and bw.classes[0] == 285
    named = explainer.explain(photos["chelsea"], method="saliency", classes="Egyptian cat, espresso")
    assert list(named.classes) == [285, 967]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"classes": [285]}, "K >= 2"),
        ({"classes": [285, 1000]}, "out of range"),
        ({"classes": [285, -1]}, "out of range"),
        ({"classes": [285, 285]}, "more than once"),
        ({"top_k": 1}, "k >= 2"),
        ({"top_k": 3, "classes": [1, 2]}, "choose one"),
    ],
)
def test_bad_class_sets(explainer, photos, kwargs, message):
    with pytest.raises(ClassSetError, match=message):
        explainer.explain(photos["chelsea"], method="ixg", **kwargs)


def test_cancelled_run_raises_and_leaves_model_usable(explainer, photos):
    from alens_gui.core.errors import Cancelled
    from alens_gui.core.progress import Progress

    p = Progress()
    p.cancel()
    with pytest.raises(Cancelled, match="cancelled"):
        explainer.explain(photos["chelsea"], method="ig", progress=p)
    assert int(np.argmax(explainer.predict(photos["chelsea"]))) == 285


def test_npz_roundtrip(tmp_path, grid_ixg):
    path = grid_ixg.to_npz(tmp_path / "g.npz")
    with np.load(path) as z:
        for key in ("classes", "probs", "base", "distribution", "refined"):
            np.testing.assert_allclose(z[key], getattr(grid_ixg, key))
    assert [p.name for p in tmp_path.iterdir()] == ["g.npz"]  # no temp file left


def test_captum_adapter_matches_our_lens(explainer, chelsea_input, smooth_cnn):
    from captum.attr import InputXGradient

    from alens_gui.core.captum_adapter import LensedAttribution
    from alens_gui.core.lens import refine
    from alens_gui.core.methods import compute_base

    # elementwise where the model is smooth ...
    model, x = smooth_cnn
    for batched in (True, False):
        out = LensedAttribution(InputXGradient(model), batched=batched).attribute(x, [3, 7, 0])
        ours = refine(compute_base(model, x, [3, 7, 0], "ixg"))
        scale = ours.base.abs().max()
        torch.testing.assert_close(out.base / scale, ours.base / scale, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(out.distribution, ours.distribution, atol=1e-4, rtol=1e-3)
    # ... and as maps on the default model, where the batched input may run other kernels
    out = LensedAttribution(InputXGradient(explainer.model)).attribute(chelsea_input, [285, 967])
    ours = refine(compute_base(explainer.model, chelsea_input, [285, 967], "ixg"))
    assert_maps_agree(out.base, ours.base, max_rel_l2=1e-3, min_corr=0.99999)
    assert_maps_agree(out.refined, ours.refined, max_rel_l2=0.02, min_corr=0.999)
    np.testing.assert_allclose(out.distribution.sum(0).numpy(), 1.0, atol=1e-5)


def test_lens_params_are_recorded(explainer, photos):
    p = LensParams(temperatures=(0.5,), tau=0.05, normalize="joint-maxabs", softmax_input="abs")
    e = explainer.explain(photos["coffee"], method="gradcam", top_k=2, lens=p)
    assert e.lens == p and e.method == "gradcam"
    assert e.refined.shape == (2, 400, 600)  # coffee's own shape


def test_explain_hands_out_partial_explanations(explainer, photos):
    seen = []
    e = explainer.explain(photos["coffee"], method="smoothgrad", top_k=2, samples=4, batch_size=2,
                          on_partial=seen.append)
    assert len(seen) == 1 and seen[0].k == 2 and list(seen[0].classes) == list(e.classes)
    np.testing.assert_allclose(seen[0].distribution.sum(0), 1.0, atol=1e-5)
    assert not np.allclose(seen[0].base, e.base)  # an estimate from half the samples


class _CountingForward:
    """Counts the model's forward passes (and whether gradients were on) through a forward pre-hook."""

    def __init__(self, model):
        self.calls: list[bool] = []
        self.handle = model.register_forward_pre_hook(lambda _m, _i: self.calls.append(torch.is_grad_enabled()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.mark.parametrize("method", ["ixg", "saliency", "guided_backprop", "gradcam", "layercam"])
@pytest.mark.parametrize("request_kind", [{"top_k": 3}, {"classes": list(GRID_CLASSES)}, {"best_vs_worst": True}])
def test_one_forward_pass_end_to_end(explainer, photos, method, request_kind):
    """The class set comes from the logits of the method's own forward pass; the classes are
    reported before the K backward passes run on that graph."""
    from alens_gui.core.methods.cam import find_cam_layer
    from alens_gui.core.progress import Progress

    find_cam_layer(explainer.model, explainer.loaded.fit(photos["chelsea"])[2])  # the layer search is cached
    events = []
    progress = Progress(lambda done, total, msg: events.append(("backward", done, total)))
    with _CountingForward(explainer.model) as fwd:
        e = explainer.explain(photos["chelsea"], method=method, progress=progress,
                              on_classes=lambda p: events.append(("classes", list(p.classes), p.probs)), **request_kind)
    assert fwd.calls == [True]  # one forward pass, with gradients
    assert events[0][0] == "classes" and events[0][1] == list(e.classes)
    assert [ev[1] for ev in events[1:]] == list(range(1, e.k + 1)) and events[-1][2] == e.k
    probs = explainer.predict(photos["chelsea"])  # a separate, gradient-free classification agrees
    np.testing.assert_allclose(events[0][2], probs, atol=1e-5)
    np.testing.assert_allclose(e.probs, probs[e.classes], atol=1e-5)
    if "top_k" in request_kind:
        assert list(e.classes) == list(np.argsort(-probs)[:3])


def test_other_methods_classify_once_before_they_start(explainer, photos):
    """IG runs the model on its path, never at the image: one plain forward pass picks the classes."""
    seen = []
    with _CountingForward(explainer.model) as fwd:
        e = explainer.explain(photos["chelsea"], method="ig", top_k=2, steps=6, batch_size=3,
                              on_classes=lambda p: seen.append(len(fwd.calls)))
    assert fwd.calls == [False, True, True]  # the class set, then two batches of three steps
    assert seen == [1] and e.k == 2


def test_one_forward_and_two_calls_give_the_same_explanation(explainer, photos):
    one = explainer.explain(photos["coffee"], method="ixg", top_k=2)
    prepared = explainer.prepare(photos["coffee"], top_k=2)
    two = explainer.explain_prepared(prepared, "ixg")
    assert list(one.classes) == list(two.classes) == prepared.classes
    np.testing.assert_allclose(one.probs, two.probs, atol=1e-6)
    assert_maps_agree(one.base, two.base, max_rel_l2=1e-3, min_corr=0.99999)


def test_a_bad_class_request_fails_before_the_model_runs(explainer, photos):
    with _CountingForward(explainer.model) as fwd, pytest.raises(ClassSetError, match="k >= 2"):
        explainer.explain(photos["chelsea"], method="ixg", top_k=1)
    assert fwd.calls == []
