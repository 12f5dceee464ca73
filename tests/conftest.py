"""Shared fixtures: the real default model and real photographs, loaded once."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
warnings.filterwarnings("ignore", message="Setting forward, backward hooks")

GRID_NAMES = ("chelsea", "coffee", "rocket", "stereo_motorcycle")
GRID_CLASSES = (285, 967, 540, 665)  # the default model's top-1 on each tile alone


@pytest.fixture(scope="session")
def explainer():
    from alens_gui.core.api import Explainer

    return Explainer.default(device="cpu")


@pytest.fixture(scope="session")
def photos():
    from alens_gui.core.images import sample_images

    return sample_images()


@pytest.fixture(scope="session")
def grid_image(photos):
    from alens_gui.core.images import compose_grid

    return compose_grid([photos[n] for n in GRID_NAMES])


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
