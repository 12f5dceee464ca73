"""What the README says of our LRP: on ReLU networks the epsilon rule (epsilon -> 0) *is* Input x Gradient."""

from __future__ import annotations

import torch

from alens_gui.core.methods.base import compute_base


def test_lrp_equals_input_times_gradient_on_relu_networks_and_not_on_relu6(explainer, photos):
    import torchvision

    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(num_classes=10).eval()  # ReLU, residual additions
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(compute_base(resnet, x, [0, 1], "lrp"), compute_base(resnet, x, [0, 1], "ixg"))
    # the default EfficientNet-Lite0 saturates at 6 (ReLU6): there the two differ
    lm = explainer.loaded
    _, xd = lm.preprocess(photos["chelsea"])
    lrp = compute_base(lm.model, xd, [285, 967], "lrp", context=lm.context())
    ixg = compute_base(lm.model, xd, [285, 967], "ixg", context=lm.context())
    assert not torch.allclose(lrp, ixg, rtol=1e-3, atol=1e-6)
