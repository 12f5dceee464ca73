"""The same results on every device: parametrised over the CPU and, where present, a CUDA GPU.

On the CPU these tests compare the CPU with itself through another path (a fresh copy of
the inputs, NumPy vs torch); on a GPU they compare it with the CPU. GPU convolutions may
use TF32 and other kernels, so maps are compared as maps (relative L2, correlation).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alens_gui.core.images import GRID_CLASSES
from alens_gui.core.lens import refine
from alens_gui.core.methods import compute_base

from .conftest import assert_maps_agree


def test_the_default_model_classifies_on_the_device(explainer_on, device, photos):
    ex = explainer_on(device)
    assert ex.loaded.device.type == device
    assert ex.loaded.device_label() == ("CPU" if device == "cpu" else f"GPU: {torch.cuda.get_device_name(0)}")
    _, x = ex.loaded.preprocess(photos["chelsea"])
    assert x.device.type == device
    probs = ex.predict(photos["chelsea"])
    assert int(np.argmax(probs)) == 285
    np.testing.assert_allclose(probs, explainer_on("cpu").predict(photos["chelsea"]), atol=2e-3)


@pytest.mark.parametrize("method, opts", [("ixg", {}), ("gradcam", {}), ("ig", {"steps": 8, "batch_size": 8}),
                                          ("guided_backprop", {})])
def test_methods_agree_with_the_cpu(explainer_on, device, chelsea_input, method, opts):
    cpu = explainer_on("cpu")
    ex = explainer_on(device)
    classes = [285, 967, 281]
    ref = compute_base(cpu.model, chelsea_input, classes, method, context=cpu.loaded.context(), **opts)
    maps = compute_base(ex.model, chelsea_input.clone().to(device), classes, method, context=ex.loaded.context(),
                        **opts)
    assert maps.device.type == device and maps.shape == ref.shape
    assert_maps_agree(maps.cpu(), ref, max_rel_l2=0.05, min_corr=0.995)


def test_the_lens_on_the_device_matches_the_cpu(device, rng):
    base = rng.normal(size=(10, 96, 96)).astype(np.float32)
    ref = refine(base)
    out = refine(torch.from_numpy(base).to(device))
    assert out.refined.device.type == device and out.distribution.dtype == torch.float32
    np.testing.assert_allclose(out.distribution.cpu().numpy(), ref.distribution, atol=1e-6)
    clear = np.abs(ref.distribution - 0.1) > 1e-5
    np.testing.assert_allclose(out.refined.cpu().numpy()[clear], ref.refined[clear], rtol=1e-5, atol=1e-6)
    ties = refine(torch.ones(5, 8, 8, device=device))
    assert not ties.refined.any()


def test_explain_on_the_device(explainer_on, device, grid_image):
    ex = explainer_on(device)
    e = ex.explain(grid_image, method="gradcam", classes=list(GRID_CLASSES))
    ref = explainer_on("cpu").explain(grid_image, method="gradcam", classes=list(GRID_CLASSES))
    assert list(e.classes) == list(GRID_CLASSES) and isinstance(e.refined, np.ndarray)
    np.testing.assert_allclose(e.probs, ref.probs, atol=2e-3)
    assert_maps_agree(e.base, ref.base, max_rel_l2=0.05, min_corr=0.995)
