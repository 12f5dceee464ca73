"""CAM methods on channels-last models (Swin), ConvNeXt and ViTs: the map lands where the evidence is.

Random weights give no meaning, but they can carry a planted gradient: the classifier head is
replaced by one that reads a single cell of the last feature map, (row 1, column 5) of 7 x 7.
The class logits then depend on that cell alone, so LayerCAM (gradient x activation per cell)
can be non-zero only there; a layout mix-up (channels taken for the width, rows for columns)
puts it elsewhere or breaks the shape.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from alens_gui.core.errors import MethodError
from alens_gui.core.methods.base import compute_base
from alens_gui.core.methods.cam import feature_layout, find_cam_layer
from alens_gui.core.methods.vit import model_architecture

ROW, COL = 1, 5  # the planted cell of a 7 x 7 map (asymmetric: a transposed map misses it)


def _small(name: str, **kw) -> nn.Module:
    import timm

    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=5, **kw).eval()


def _swin():
    return _small("swin_tiny_patch4_window7_224", depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), embed_dim=32)


def _convnext():
    return _small("convnext_atto")


def _plant(model: nn.Module, read) -> nn.Module:
    """Replace the head by logits that read one cell of the final features (``read(features)``)."""
    torch.manual_seed(1)
    head = nn.Linear(model.num_features, 5)
    model.add_module("planted_head", head)
    model.forward_head = lambda f, pre_logits=False: head(read(f))
    return model


@pytest.fixture(scope="module")
def image():
    torch.manual_seed(2)
    return torch.randn(1, 3, 224, 224)


def _cell_mass(maps: torch.Tensor) -> np.ndarray:
    """Share of each map's mass inside the planted cell (32 x 32 pixels at stride 32), with the
    bilinear upsampling's spill into the neighbouring half cells."""
    m = maps[:, 0].clamp(min=0).numpy()
    y0, x0 = ROW * 32 - 16, COL * 32 - 16
    inside = m[:, max(0, y0):y0 + 64, max(0, x0):x0 + 64].sum(axis=(1, 2))
    return inside / np.maximum(m.sum(axis=(1, 2)), 1e-12)


def test_swin_is_a_transformer_and_convnext_a_cnn():
    assert model_architecture(_swin()) == "vit"  # WindowAttention: one rule for all attention modules
    assert model_architecture(_convnext()) == "cnn"
    from alens_gui.core.models import _architecture_kind

    assert _architecture_kind(_swin()) == "vit"  # the loader uses the same rule


def test_swin_cam_layer_is_channels_last_and_the_map_has_the_input_shape(image):
    model = _swin()
    name = find_cam_layer(model, image)
    assert name == "norm"
    out = {}
    h = dict(model.named_modules())[name].register_forward_hook(lambda _m, _i, o: out.setdefault("a", o))
    with torch.no_grad():
        model(image)
    h.remove()
    assert tuple(out["a"].shape) == (1, 7, 7, 32 * 8)
    assert feature_layout(model, name, out["a"].shape, (224, 224)) == "NHWC"
    maps = compute_base(model, image, [0, 1], "gradcam")
    assert maps.shape == (2, 1, 224, 224)  # was (2, 1, 7, 768) upsampled: the channel axis taken for width


@pytest.mark.parametrize("make, read", [
    (_swin, lambda f: f[:, ROW, COL, :]),  # NHWC features
    (_convnext, lambda f: f[:, :, ROW, COL]),  # NCHW features
], ids=["swin", "convnext"])
def test_a_planted_gradient_appears_where_it_was_planted(make, read, image):
    model = _plant(make(), read)
    maps = compute_base(model, image, [0, 1, 2, 3, 4], "layercam")
    assert maps.shape == (5, 1, 224, 224)
    lit = maps.flatten(1).amax(dim=1) > 0
    assert lit.sum() >= 2, "at least some classes must light up the planted cell"
    share = _cell_mass(maps[lit])
    assert (share > 0.999).all(), share
    # the peak itself lies in the planted cell, not in the transposed one (row 5, column 1)
    for m in maps[lit, 0]:
        y, x = divmod(int(m.argmax()), 224)
        assert (y // 32, x // 32) == (ROW, COL)


def test_gradcam_on_channels_last_equals_the_definition(image):
    """Grad-CAM = ReLU(sum_c mean(dy/dA_c) A_c) computed by hand in the NHWC layout."""
    model = _swin()
    classes = [0, 3]
    got = compute_base(model, image, classes, "gradcam")
    store = {}
    h = model.norm.register_forward_hook(lambda _m, _i, o: store.setdefault("a", o))
    logits = model(image)
    h.remove()
    a = store["a"]  # (1, 7, 7, C)
    want = []
    for c in classes:
        (g,) = torch.autograd.grad(logits[0, c], a, retain_graph=True)
        w = g[0].mean(dim=(0, 1))  # per channel
        want.append(torch.relu((a[0] * w).sum(dim=-1)).detach())
    want = torch.nn.functional.interpolate(torch.stack(want)[:, None], size=(224, 224), mode="bilinear",
                                           align_corners=False)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_vit_token_grid_orientation():
    """A timm ViT: tokens are reshaped row by row onto the patch grid (class token dropped)."""
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(img_size=112, patch_size=16, embed_dim=32, depth=2, num_heads=2, num_classes=5).eval()
    prefix = model.num_prefix_tokens
    model = _plant(model, lambda f: f[:, prefix + ROW * 7 + COL])
    assert model.global_pool  # the planted head replaces the class-token pooling
    x = torch.randn(1, 3, 112, 112)
    maps = compute_base(model, x, [0, 1, 2, 3, 4], "layercam", layer="blocks.1")
    lit = maps.flatten(1).amax(dim=1) > 0
    assert lit.sum() >= 2
    for m in maps[lit, 0]:
        y, x_ = divmod(int(m.argmax()), 112)
        assert (y // 16, x_ // 16) == (ROW, COL)


def test_a_layer_that_is_no_feature_map_is_refused_with_the_option_named(image):
    model = _swin()
    with pytest.raises(MethodError, match="-O layer="):
        compute_base(model, image, [0, 1], "gradcam", layer="head.fc")  # (1, 5): not a map
    with pytest.raises(MethodError, match="-O layer="):
        compute_base(model, image, [0, 1], "gradcam", layer="no.such.layer")


def test_feature_layout_rules():
    m = nn.Module()
    assert feature_layout(m, "x", (1, 512, 7, 7), (224, 224)) == "NCHW"
    assert feature_layout(m, "x", (1, 7, 7, 768), (224, 224)) == "NHWC"
    assert feature_layout(m, "x", (1, 56, 56, 40), (224, 224)) == "NHWC"  # ConvNeXt's insides: 56 x 40 fits no stride
    assert feature_layout(m, "x", (1, 300, 7, 900), (224, 224)) is None
    # both layouts fit (channels = a spatial size): PyTorch's channels-first unless the model says otherwise
    assert feature_layout(m, "x", (1, 14, 14, 14), (224, 224)) == "NCHW"
    m.output_fmt = "NHWC"
    assert feature_layout(m, "x", (1, 14, 14, 14), (224, 224)) == "NHWC"
    # (14, 14, 16): a 14 x 16 grid fits stride 14-15 as well; timm's feature_info width decides
    plain = nn.Module()
    assert feature_layout(plain, "x", (1, 14, 14, 16), (224, 224)) == "NCHW"
    plain.feature_info = [{"module": "x", "num_chs": 16, "reduction": 16}]
    assert feature_layout(plain, "x", (1, 14, 14, 16), (224, 224)) == "NHWC"
    assert feature_layout(plain, "y", (1, 14, 14, 16), (224, 224)) == "NCHW"  # another layer: not declared
