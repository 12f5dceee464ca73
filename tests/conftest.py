"""Shared fixtures: the real default model and real photographs, loaded once."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
warnings.filterwarnings("ignore", message="Setting forward, backward hooks")


@pytest.fixture(autouse=True)
def collection_back_to_python():
    """A GUI turns Python's automatic garbage collection off and collects on its own thread
    (``qt.tasks.MainThreadCollector``); after each test, collect here and turn it back on."""
    yield
    import sys

    tasks = sys.modules.get("alens_gui.qt.tasks")
    if tasks is not None:
        tasks.MainThreadCollector.release()


@pytest.fixture(autouse=True)
def private_result_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own result cache (``ALENS_CACHE_DIR``), never the user's: windows,
    the CLI and child processes all read the variable."""
    monkeypatch.setenv("ALENS_CACHE_DIR", str(tmp_path_factory.mktemp("alens-cache")))
    monkeypatch.delenv("ALENS_CACHE_MAX_MB", raising=False)


@pytest.fixture(scope="session")
def explainer():
    from alens_gui.core.api import Explainer

    return Explainer.default(device="cpu")


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


#: Tests that compare devices run on the CPU and, where there is one, on a CUDA GPU.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not _cuda_available(),
                                                                reason="no CUDA GPU on this machine"))]


@pytest.fixture(scope="session", params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def explainer_on(explainer):
    """``explainer_on(device)``: the default model on that device (the CPU one is shared)."""
    from alens_gui.core.api import Explainer

    cache = {"cpu": explainer}

    def get(device: str):
        if device not in cache:
            cache[device] = Explainer.default(device=device)
        return cache[device]

    return get


@pytest.fixture(scope="session")
def photos():
    from alens_gui.core.images import sample_images

    return sample_images()


@pytest.fixture(scope="session")
def grid_image():
    from alens_gui.core.images import sample_grid

    return sample_grid()


@pytest.fixture(scope="session")
def chelsea_input(explainer, photos):
    return explainer.loaded.preprocess(photos["chelsea"])[1]


def hook_counts(model) -> tuple:
    """Numbers of forward/backward/pre hooks over all modules (to prove they are removed)."""
    f = b = p = 0
    for m in model.modules():
        f += len(m._forward_hooks)
        b += len(m._backward_hooks) + len(getattr(m, "_backward_pre_hooks", {}))
        p += len(m._forward_pre_hooks)
    return f, b, p


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---------------------------------------------------------------------------------
# Comparing maps with another library's (tests must survive another BLAS or kernel)
# ---------------------------------------------------------------------------------
def assert_maps_agree(ours, theirs, max_rel_l2: float = 0.02, min_corr: float = 0.999) -> None:
    """Per class (axis 0): relative L2 error and Pearson correlation, not elementwise.

    On the default model (ReLU6) a few activations sit on a kink; another convolution
    kernel can flip them and move single pixels by percent of the map maximum, while the
    map as a whole agrees to a fraction of a percent. Elementwise comparisons belong on
    :func:`smooth_cnn`.
    """
    import torch

    ours, theirs = torch.as_tensor(ours).detach().double(), torch.as_tensor(theirs).detach().double()
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    for k in range(ours.shape[0]):
        a, b = ours[k].flatten(), theirs[k].flatten()
        assert b.norm() > 0, f"class {k}: the reference map is all zero"
        rel = float((a - b).norm() / b.norm())
        corr = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
        assert rel < max_rel_l2 and corr > min_corr, f"class {k}: relative L2 error {rel:.2e}, correlation {corr:.6f}"


def build_smooth_cnn(num_classes: int = 10):
    """A small random-weight CNN whose activations (GELU, Softplus) have no kinks."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.GELU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.Softplus(),
        nn.Conv2d(16, 16, 3, padding=1), nn.GELU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes),
    )
    return model.eval()


@pytest.fixture(scope="session")
def smooth_cnn(photos):
    """``(model, x)``: a random-weight smooth CNN and chelsea at 64 x 64 in [-1, 1].

    Gradients of a smooth network are continuous in the input and the weights, so maps
    from two libraries agree elementwise up to float32 rounding on any BLAS or kernel.
    """
    import torch
    import torch.nn.functional as F

    img = torch.from_numpy(np.ascontiguousarray(photos["chelsea"], dtype=np.float32)).permute(2, 0, 1)[None]
    x = F.interpolate(img, size=(64, 64), mode="bilinear", antialias=True, align_corners=False) * 2 - 1
    return build_smooth_cnn(), x
