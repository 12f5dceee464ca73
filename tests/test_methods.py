"""Base methods on the real default model: batching, captum agreement, hygiene."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alens_gui.core.errors import Cancelled, MethodError
from alens_gui.core.images import GRID_CLASSES
from alens_gui.core.methods import compute_base, get_method, list_methods
from alens_gui.core.progress import Progress

from .conftest import assert_maps_agree, hook_counts

FAST = {"ig": {"steps": 6, "batch_size": 3}, "smoothgrad": {"samples": 4, "batch_size": 2}}
CLASSES = [285, 281, 967]


def cnn_methods():
    # perturbation methods and LRP have their own hygiene tests (tests/test_methods_extra.py)
    return [m.name for m in list_methods() if "cnn" in m.architectures and m.family != "perturbation"
            and m.name != "lrp"]


def test_default_model_classifies_the_photographs(explainer, photos):
    assert int(np.argmax(explainer.predict(photos["chelsea"]))) == 285
    assert int(np.argmax(explainer.predict(photos["coffee"]))) == 967
    assert explainer.class_names[285] == "Egyptian cat"


@pytest.mark.parametrize("name", ["saliency", "ixg", "ig", "smoothgrad", "guided_backprop", "deeplift",
                                  "gradcam", "layercam", "guided_gradcam", "lrp"])
def test_batched_equals_one_class_at_a_time(explainer, chelsea_input, name):
    model, ctx = explainer.model, explainer.loaded.context()
    opts = FAST.get(name, {})
    batched = compute_base(model, chelsea_input, CLASSES, name, context=ctx, **opts)
    single = torch.cat([compute_base(model, chelsea_input, [c], name, context=ctx, **opts) for c in CLASSES])
    assert batched.shape[0] == 3 and batched.shape[-2:] == chelsea_input.shape[-2:]
    scale = single.abs().max()
    assert scale > 0
    torch.testing.assert_close(batched / scale, single / scale, atol=2e-4, rtol=1e-3)
    # different classes give different maps (the batching did not mix them up)
    assert not torch.allclose(batched[0], batched[2])


def test_ixg_matches_captum_on_the_default_model(explainer, chelsea_input):
    from captum.attr import InputXGradient

    ours = compute_base(explainer.model, chelsea_input, CLASSES, "ixg", context=explainer.loaded.context())
    ig = InputXGradient(explainer.model)
    theirs = torch.cat([ig.attribute(chelsea_input.clone(), target=c) for c in CLASSES])
    assert_maps_agree(ours, theirs, max_rel_l2=1e-3, min_corr=0.99999)


def test_ig_matches_captum_riemann_middle(explainer, chelsea_input):
    from captum.attr import IntegratedGradients

    ctx = explainer.loaded.context()
    ours = compute_base(explainer.model, chelsea_input, [285, 967], "ig", context=ctx, steps=8, batch_size=8)
    base = ctx.black.expand_as(chelsea_input)
    theirs = torch.cat([
        IntegratedGradients(explainer.model).attribute(chelsea_input, base, target=c, n_steps=8,
                                                       method="riemann_middle")
        for c in (285, 967)
    ])
    # Same alphas and step sizes; the path points differ in the last bit (captum builds them
    # in another order), which flips a few ReLU6 kinks: about 0.5 % relative L2 on torch 2.14/2.15.
    assert_maps_agree(ours, theirs, max_rel_l2=0.02, min_corr=0.999)


def _captum_on_smooth(name, model, x, classes):
    from captum import attr

    if name == "saliency":
        return torch.cat([attr.Saliency(model).attribute(x.clone(), target=c, abs=True) for c in classes])
    if name == "ixg":
        return torch.cat([attr.InputXGradient(model).attribute(x.clone(), target=c) for c in classes])
    if name == "ig":
        return torch.cat([attr.IntegratedGradients(model).attribute(x, torch.zeros_like(x), target=c, n_steps=10,
                                                                    method="riemann_middle") for c in classes])
    if name == "gradcam":
        m = attr.LayerGradCam(model, model[5])
        return torch.cat([m.attribute(x, target=c, relu_attributions=True) for c in classes])
    raise KeyError(name)


@pytest.mark.parametrize("name", ["saliency", "ixg", "ig", "gradcam"])
def test_methods_equal_captum_elementwise_on_a_smooth_model(smooth_cnn, name):
    """No kinks, so the two libraries agree to float32 rounding on any kernel."""
    model, x = smooth_cnn
    classes = [3, 7, 0]
    opts = {"ig": {"steps": 10, "batch_size": 10, "baseline": "zero"}, "gradcam": {"layer": "5"}}.get(name, {})
    if name == "gradcam":  # at the feature map's resolution (captum does not upsample)
        ours = get_method(name).fn(model, x, classes, Progress(), **opts)
    else:
        ours = compute_base(model, x, classes, name, **opts)
    theirs = _captum_on_smooth(name, model, x, classes)
    assert ours.shape == theirs.shape
    scale = theirs.abs().max()
    assert scale > 0
    torch.testing.assert_close(ours / scale, theirs / scale, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(ours[0], ours[1])  # the classes differ, so the check has teeth


@pytest.mark.parametrize("name", cnn_methods())
def test_hooks_removed_and_outputs_unchanged(explainer, chelsea_input, name):
    model = explainer.model
    with torch.no_grad():
        before = model(chelsea_input).clone()
    hooks_before = hook_counts(model)
    info = get_method(name)
    opts = {k: v for k, v in FAST.get(name, {}).items() if k in info.options}
    maps = compute_base(model, chelsea_input, [285, 967], name, context=explainer.loaded.context(), **opts)
    assert torch.isfinite(maps).all()
    assert hook_counts(model) == hooks_before
    assert not model.training
    with torch.no_grad():
        after = model(chelsea_input)
    torch.testing.assert_close(after, before, atol=0, rtol=0)


def test_hooks_removed_when_a_method_is_cancelled(explainer, chelsea_input):
    model = explainer.model
    hooks_before = hook_counts(model)
    progress = Progress()
    progress.cancel()
    for name in ("guided_backprop", "gradcam", "ig"):
        with pytest.raises(Cancelled):
            compute_base(model, chelsea_input, [285, 967], name, progress, explainer.loaded.context())
        assert hook_counts(model) == hooks_before


def test_cancel_midway_stops_between_backward_passes(explainer, chelsea_input):
    seen = []

    def cb(done, total, msg):
        seen.append(done)
        if done >= 2:
            progress.cancel()

    progress = Progress(cb)
    with pytest.raises(Cancelled):
        compute_base(explainer.model, chelsea_input, [285, 967, 1, 2, 3], "ixg", progress)
    assert max(seen) == 2


def test_unknown_method_and_bad_options():
    with pytest.raises(MethodError, match="unknown method"):
        get_method("magic")
    with pytest.raises(MethodError, match="no option"):
        get_method("ig").resolve_options({"stepz": 3})
    with pytest.raises(MethodError, match="must be one of"):
        get_method("ig").resolve_options({"baseline": "white"})
    with pytest.raises(MethodError, match=">= 1"):
        get_method("ig").resolve_options({"steps": 0})


def test_gradcam_finds_a_layer_and_accepts_override(explainer, chelsea_input):
    from alens_gui.core.methods.cam import find_cam_layer

    layer = find_cam_layer(explainer.model, chelsea_input)
    assert layer in dict(explainer.model.named_modules())
    a = compute_base(explainer.model, chelsea_input, GRID_CLASSES[:2], "gradcam", layer=layer)
    assert a.shape == (2, 1, 224, 224) and (a >= 0).all()
    with pytest.raises(MethodError, match="no layer named"):
        compute_base(explainer.model, chelsea_input, GRID_CLASSES[:2], "gradcam", layer="nope")


def test_guided_backprop_needs_relu():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.LazyLinear(3))
    model(torch.zeros(1, 3, 8, 8))
    with pytest.raises(MethodError, match="ReLU"):
        compute_base(model, torch.zeros(1, 3, 8, 8), [0, 1], "guided_backprop")


def test_ig_reports_running_estimates_and_streams_batches(explainer, chelsea_input):
    partials = []
    progress = Progress(on_partial=partials.append)
    ctx = explainer.loaded.context()
    final = compute_base(explainer.model, chelsea_input, [285, 967], "ig", progress, ctx, steps=6, batch_size=2)
    assert len(partials) == 2  # after batches 1 and 2 of 3; the last one is the result itself
    assert all(p.shape == final.shape and torch.isfinite(p).all() for p in partials)
    # the running estimate converges to the result: later estimates are closer
    err = [float((p - final).abs().mean()) for p in partials]
    assert err[1] < err[0]
    one_batch = compute_base(explainer.model, chelsea_input, [285, 967], "ig", None, ctx, steps=6, batch_size=6)
    # other batch sizes may run other convolution kernels: compare as maps, not elementwise
    assert_maps_agree(final, one_batch, max_rel_l2=0.02, min_corr=0.999)


def test_register_your_own_method(monkeypatch, explainer, chelsea_input):
    from alens_gui.core.methods import Option, register_method, registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # undone after the test
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))

    @register_method("negative_ixg", "−Input × Gradient", options={"factor": Option(-1.0, "scale")},
                     aliases=("nixg",))
    def negative_ixg(model, x, classes, progress, ctx=None, factor=-1.0):
        return factor * get_method("ixg").fn(model, x, classes, progress, ctx=ctx)

    assert get_method("NIXG").name == "negative_ixg" and "negative_ixg" in [m.name for m in list_methods()]
    ours = compute_base(explainer.model, chelsea_input, [285, 967], "nixg", factor=-2.0)
    ref = compute_base(explainer.model, chelsea_input, [285, 967], "ixg")
    torch.testing.assert_close(ours, -2.0 * ref)
    with pytest.raises(ValueError, match="registered twice"):
        register_method("ixg", "again")(negative_ixg)


def test_train_flags_are_restored_module_by_module(smooth_cnn):
    model, x = smooth_cnn
    model.train()
    model[0].eval()  # a user's own mix of modes
    try:
        maps = compute_base(model, x, [1, 2], "ixg")
        assert maps.shape == (2, 3, 64, 64)
        assert model.training and not model[0].training and model[2].training
    finally:
        model.eval()
