"""ViT methods, perturbation methods and LRP: every method on the default CNN and on ViTs.

ViTs are built with random weights and a fixed seed (no model hub here): they prove
shapes, finiteness, token handling and model hygiene, not the quality of the maps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from alens_gui.core.errors import Cancelled, MethodError
from alens_gui.core.methods import compute_base, get_method, list_methods
from alens_gui.core.progress import Progress

from .conftest import hook_counts

PAPER_METHODS = {
    "saliency", "ixg", "ig", "smoothgrad", "guided_backprop", "deeplift", "gradcam", "layercam",
    "guided_gradcam", "lrp",
    "occlusion", "feature_ablation", "kernel_shap", "lime", "shapley_sampling",
    "rollout", "grad_rollout", "tattn", "biattn", "inflow", "transformer_lrp",
}
# Small settings so that every method runs in about a second on a shared CPU.
FAST = {
    "ig": {"steps": 4, "batch_size": 4},
    "smoothgrad": {"samples": 3, "batch_size": 3},
    "tattn": {"steps": 3, "batch_size": 3},
    "biattn": {"steps": 3, "batch_size": 3, "start_layer": 0},
    "occlusion": {"window": 24, "stride": 24, "batch_size": 64},
    "feature_ablation": {"segments": 12, "batch_size": 64},
    "shapley_sampling": {"segments": 8, "samples": 1, "batch_size": 64},
    "kernel_shap": {"segments": 12, "samples": 24, "batch_size": 64},
    "lime": {"segments": 12, "samples": 24, "batch_size": 64},
}


def methods_for(arch: str) -> list[str]:
    return [m.name for m in list_methods() if arch in m.architectures]


def fast_options(name: str, size: int) -> dict:
    opts = dict(FAST.get(name, {}))
    if name == "occlusion":  # a window that fits the image, few windows
        opts["window"] = opts["stride"] = size // 4
    return opts


def model_state(model: nn.Module) -> tuple:
    """Hooks, train flag, timm fused-attention flags and patched forwards: all must be restored."""
    fused = tuple(getattr(m, "fused_attn", None) for m in model.modules())
    patched = tuple("forward" in vars(m) for m in model.modules())
    return hook_counts(model), model.training, fused, patched


# ---------------------------------------------------------------------------------
# ViT fixtures (random weights, fixed seed)
# ---------------------------------------------------------------------------------
def _photo_input(photos, h: int, w: int) -> torch.Tensor:
    img = torch.from_numpy(np.ascontiguousarray(photos["chelsea"], dtype=np.float32)).permute(2, 0, 1)[None]
    img = F.interpolate(img, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return (img - 0.5) / 0.5


def _build_vit(kind: str) -> nn.Module:
    import timm
    import torchvision
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    if kind == "vit_tiny":
        return timm.create_model("vit_tiny_patch16_224", pretrained=False)
    if kind == "timm_reg4_p8_nonsquare":
        return VisionTransformer(img_size=64, patch_size=8, embed_dim=64, depth=3, num_heads=4, reg_tokens=4,
                                 num_classes=10, dynamic_img_size=True)
    if kind == "timm_gap_p14":
        return VisionTransformer(img_size=56, patch_size=14, embed_dim=48, depth=2, num_heads=3, reg_tokens=2,
                                 class_token=False, global_pool="avg", num_classes=8)
    if kind == "torchvision":
        return torchvision.models.VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=2,
                                                    hidden_dim=32, mlp_dim=64, num_classes=10)
    raise KeyError(kind)


VIT_INPUTS = {  # (height, width, classes)
    "vit_tiny": (224, 224, [285, 281]),
    "timm_reg4_p8_nonsquare": (56, 88, [1, 7]),  # 7 x 11 patches, 1 class + 4 register tokens
    "timm_gap_p14": (56, 56, [0, 5]),  # no class token, 2 register tokens
    "torchvision": (64, 64, [2, 3]),
}


@pytest.fixture(scope="module")
def vits(photos):
    out = {}
    for kind, (h, w, classes) in VIT_INPUTS.items():
        out[kind] = (_build_vit(kind).eval(), _photo_input(photos, h, w), classes)
    return out


# ---------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------
def test_registry_lists_the_papers_methods_with_architectures():
    infos = {m.name: m for m in list_methods()}
    assert PAPER_METHODS <= set(infos)
    assert len(infos) >= 21
    for info in infos.values():
        assert info.architectures and set(info.architectures) <= {"cnn", "vit"}
        assert not set(info.aliases) & set(infos), f"alias of {info.name} shadows a method name"
    assert sum(i.family == "perturbation" for i in infos.values()) == 5
    assert {n for n, i in infos.items() if i.architectures == ("vit",)} == {
        "rollout", "grad_rollout", "tattn", "biattn", "inflow", "transformer_lrp"}
    for name in ("saliency", "ixg", "ig", "smoothgrad", "gradcam", "occlusion", "lime"):
        assert "vit" in infos[name].architectures
    assert get_method("T-Attn").name == "tattn" and get_method("kernelshap").name == "kernel_shap"


# ---------------------------------------------------------------------------------
# Every method on the default CNN
# ---------------------------------------------------------------------------------
def new_cnn_methods() -> list[str]:
    # The gradient and CAM methods get the same checks in tests/test_methods.py
    # (test_hooks_removed_and_outputs_unchanged); here: LRP and the perturbation methods.
    names = [m.name for m in list_methods() if "cnn" in m.architectures and (m.family == "perturbation" or m.name == "lrp")]
    assert len(names) == 6
    return names


@pytest.mark.parametrize("name", new_cnn_methods())
def test_every_cnn_method_on_the_default_model(explainer, chelsea_input, name):
    model, ctx = explainer.model, explainer.loaded.context()
    with torch.no_grad():
        before = model(chelsea_input).clone()
    state = model_state(model)
    maps = compute_base(model, chelsea_input, [285, 967], name, context=ctx, **fast_options(name, 224))
    assert maps.shape[0] == 2 and maps.shape[-2:] == chelsea_input.shape[-2:]
    assert torch.isfinite(maps).all()
    assert maps.abs().sum() > 0
    assert model_state(model) == state
    with torch.no_grad():
        after = model(chelsea_input)
    torch.testing.assert_close(after, before, atol=0, rtol=0)


@pytest.mark.parametrize("name", sorted(set(methods_for("vit")) - set(methods_for("cnn"))))
def test_vit_only_methods_refuse_a_cnn(explainer, chelsea_input, name):
    with pytest.raises(MethodError, match="does not support CNNs"):
        compute_base(explainer.model, chelsea_input, [285, 967], name)


# ---------------------------------------------------------------------------------
# Every ViT method on four ViTs
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(VIT_INPUTS))
@pytest.mark.parametrize("name", methods_for("vit"))
def test_every_vit_method_on_vits(vits, kind, name):
    model, x, classes = vits[kind]
    with torch.no_grad():
        before = model(x).clone()
    state = model_state(model)
    maps = compute_base(model, x, classes, name, **fast_options(name, min(x.shape[-2:])))
    assert maps.shape[0] == len(classes) and maps.shape[-2:] == x.shape[-2:]
    assert torch.isfinite(maps).all()
    if name == "rollout":  # attention is a distribution: rollout mass is positive
        assert maps.min() >= 0 and maps.sum() > 0
    assert model_state(model) == state
    with torch.no_grad():
        after = model(x)
    torch.testing.assert_close(after, before, atol=0, rtol=0)


@pytest.mark.parametrize("name", ["deeplift", "guided_backprop", "guided_gradcam", "lrp"])
def test_cnn_only_methods_refuse_a_vit(vits, name):
    model, x, classes = vits["timm_reg4_p8_nonsquare"]
    with pytest.raises(MethodError, match="does not support Vision Transformers"):
        compute_base(model, x, classes, name)


def test_biattn_follows_chen_et_al_one_class_at_a_time(vits):
    # Written out for one class at a time, from the paper's head-wise definition, and
    # compared with the batched method: head weights mean |A_h^T dy/dA_h| (normalised per
    # block), R <- R + A R from start_layer, feedback = positive mean gradient of the last
    # attention along 0 -> x (both ends), head mean; the class token's row of feedback * R.
    import copy

    from alens_gui.core.methods.vit import capture_attention, vit_info

    model, x, classes = vits["timm_reg4_p8_nonsquare"]
    model = copy.deepcopy(model)
    with torch.no_grad():  # random weights give almost uniform attention, where A and A^T agree: sharpen it
        for blk in model.blocks:
            blk.attn.qkv.weight.mul_(4.0)
    info = vit_info(model)
    steps, start = 3, 1
    got = get_method("biattn").fn(model, x, classes, Progress(), steps=steps, batch_size=2, start_layer=start)
    for k, c in enumerate(classes):
        with capture_attention(info) as store:
            out = model(x.clone().requires_grad_(True))
            attns = [a[0] for a in store]
            grads = torch.autograd.grad(out[0, c], list(store))
            rel = torch.eye(attns[0].shape[-1])
            for layer in range(start, len(attns)):
                a, g = attns[layer].detach(), grads[layer][0]
                w = torch.stack([(a[h].T @ g[h]).abs().mean() for h in range(a.shape[0])])
                fused = (w[:, None, None] * a).sum(0) / w.sum()
                rel = rel + fused @ rel
            feedback = 0
            for alpha in torch.linspace(0, 1, steps):
                store.clear()
                out = model((alpha * x).requires_grad_(True))
                feedback = feedback + torch.autograd.grad(out[0, c], store[-1])[0][0] / steps
        expected = (feedback.clamp(min=0).mean(0) * rel)[0, 5:].reshape(7, 11)
        torch.testing.assert_close(got[k, 0], expected, rtol=1e-4, atol=1e-7)


def test_vit_gradcam_uses_the_last_block_and_the_patch_grid(vits):
    from alens_gui.core.methods.cam import find_cam_layer
    from alens_gui.core.methods.vit import tokens_to_grid

    model, x, classes = vits["timm_reg4_p8_nonsquare"]
    assert find_cam_layer(model, x) == "blocks.2.norm1"
    tv, xt, _ = vits["torchvision"]
    assert find_cam_layer(tv, xt) == "encoder.layers.encoder_layer_1.ln_1"
    # token n lands at patch (r, c) with n = prefix + r * w + c on the 7 x 11 grid
    tokens = torch.arange(5 + 77, dtype=torch.float32)[:, None].expand(-1, 3)
    grid = tokens_to_grid(model, x, tokens)
    assert grid.shape == (3, 7, 11)
    assert grid[0, 2, 3] == 5 + 2 * 11 + 3 and grid[2, 6, 10] == 5 + 76
    vt, xv, cv = vits["vit_tiny"]
    maps = compute_base(vt, xv, cv, "gradcam")
    assert maps.shape == (2, 1, 224, 224) and maps.sum() > 0  # gradients reach the patch tokens


def _force_identity_attention(model):
    handles = []
    for blk in model.blocks:
        blk.attn.fused_attn = False
        handles.append(blk.attn.attn_drop.register_forward_hook(
            lambda _m, _i, out: torch.eye(out.shape[-1]).expand_as(out).clone()))
    return handles


def test_rollout_of_identity_attention_is_concentrated_on_the_queried_patches(photos):
    model = _build_vit("timm_reg4_p8_nonsquare").eval()
    x = _photo_input(photos, 56, 88)  # 7 x 11 patches
    fn = get_method("rollout").fn
    queried = [(2, 3), (5, 9)]
    query = ";".join(f"{r},{c}" for r, c in queried)

    def mass_on_queried(maps):
        m = maps[0, 0]
        return float(sum(m[r, c] for r, c in queried) / m.sum())

    free = fn(model, x, [1, 7], Progress(), query=query)
    assert free.shape == (2, 1, 7, 11)
    assert mass_on_queried(free) < 0.5  # random attention spreads the mass
    handles = _force_identity_attention(model)
    try:
        maps = fn(model, x, [1, 7], Progress(), query=query)
        assert mass_on_queried(maps) > 0.999
        torch.testing.assert_close(maps[0, 0, 2, 3], maps[0, 0, 5, 9])
        # The class token only attends to itself: nothing reaches the patches.
        assert fn(model, x, [1, 7], Progress(), query="cls").abs().max() < 1e-6
        # At input resolution the peak lies inside a queried 8 x 8 patch.
        up = compute_base(model, x, [1, 7], "rollout", query=query)[0, 0]
        r, c = divmod(int(up.argmax()), up.shape[-1])
        assert (r // 8, c // 8) in queried
    finally:
        for h in handles:
            h.remove()
    with pytest.raises(MethodError, match="outside"):
        fn(model, x, [1, 7], Progress(), query="7,0")


def test_vit_explanation_through_the_api(photos):
    from alens_gui.core.api import Explainer

    torch.manual_seed(0)
    ex = Explainer.from_spec("timm:vit_tiny_patch16_224", pretrained=False, device="cpu")
    assert ex.loaded.architecture == "vit"
    out = ex.explain(photos["coffee"], method="transformer_lrp", top_k=3)
    assert out.raw.shape[-2:] == (224, 224)  # the model's frame
    assert out.refined.shape == (3, 400, 600) and np.isfinite(out.refined).all()  # the photograph's
    np.testing.assert_allclose(out.distribution.sum(axis=0), 1.0, atol=1e-4)


# ---------------------------------------------------------------------------------
# Perturbation methods on a model that only looks at one region
# ---------------------------------------------------------------------------------
REGION = (slice(20, 50), slice(40, 76))


class RegionModel(nn.Module):
    """Logits depend only on the mean of one image region (and a constant)."""

    def forward(self, x):
        s = x[:, :, REGION[0], REGION[1]].mean(dim=(1, 2, 3))
        return torch.stack([s, -2.0 * s, torch.ones_like(s)], dim=1)


TOY_OPTIONS = {
    "occlusion": {},
    "feature_ablation": {"segments": 25},
    "shapley_sampling": {"segments": 25, "samples": 3},
    "kernel_shap": {"segments": 25, "samples": 300},
    "lime": {"segments": 25, "samples": 300},
}


@pytest.mark.parametrize("name", list(TOY_OPTIONS))
def test_perturbation_mass_lies_in_the_region_the_model_reads(photos, name):
    from alens_gui.core.methods.perturbation import superpixels

    x = _photo_input(photos, 96, 96)
    maps = compute_base(RegionModel(), x, [0, 1], name, **TOY_OPTIONS[name])[:, 0]
    assert maps.shape == (2, 96, 96) and torch.isfinite(maps).all()
    inside = torch.zeros(96, 96, dtype=torch.bool)
    inside[REGION] = True
    if name == "occlusion":  # windows overlapping the region: the region grown by the window size
        support = F.max_pool2d(inside[None, None].float(), 29, stride=1, padding=14)[0, 0] > 0
    else:  # superpixels that touch the region
        seg = superpixels(x, TOY_OPTIONS[name]["segments"])
        support = torch.isin(seg, seg[inside].unique())
        assert support.float().mean() < 0.7  # the support is a real restriction
    for k in range(2):
        mass = maps[k].abs()
        assert mass[support].sum() / mass.sum() > (0.9 if name == "lime" else 0.999)
        assert mass[inside].mean() > 3 * mass[~support].mean()
    # class 1 = -2 x class 0: same map, scaled (classes share the forward passes, not the maps)
    assert torch.corrcoef(torch.stack([maps[0].flatten(), maps[1].flatten()]))[0, 1] < -0.99
    assert maps[0][inside].sum() > 0 > maps[1][inside].sum()


class CountingModel(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


@pytest.mark.parametrize("name", list(TOY_OPTIONS))
def test_k_classes_cost_the_same_model_calls_as_one(photos, name):
    x = _photo_input(photos, 64, 64)
    model = CountingModel(RegionModel())
    opts = dict(TOY_OPTIONS[name], batch_size=16)
    compute_base(model, x, [0], name, **opts)
    one = model.calls
    model.calls = 0
    compute_base(model, x, [0, 1, 2], name, **opts)
    assert model.calls == one > 1


def test_perturbation_progress_and_cancel_between_batches(photos):
    x = _photo_input(photos, 64, 64)
    model = CountingModel(RegionModel())
    seen = []
    progress = Progress(lambda done, total, msg: seen.append((done, total)))
    compute_base(model, x, [0, 1], "occlusion", progress, window=8, stride=4, batch_size=10)
    assert seen[-1][0] == seen[-1][1] == progress.total > 10  # 1 + 15 x 15 windows in batches of 10

    model.calls = 0

    def cancel_after_two(done, total, msg):
        if done >= 2:
            progress2.cancel()

    progress2 = Progress(cancel_after_two)
    with pytest.raises(Cancelled):
        compute_base(model, x, [0, 1], "shapley_sampling", progress2, samples=20, segments=16, batch_size=8)
    assert model.calls == 2  # stopped right after the second batch of 40


# ---------------------------------------------------------------------------------
# LRP
# ---------------------------------------------------------------------------------
class SmallVGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2),
        )
        self.classifier = nn.Linear(64, 5, bias=False)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def test_lrp_conserves_relevance_on_a_vgg_style_cnn(photos):
    torch.manual_seed(0)
    model = SmallVGG().eval()
    x = _photo_input(photos, 32, 32)
    with torch.no_grad():
        logits = model(x)[0]
    state = model_state(model)
    maps = compute_base(model, x, [0, 3], "lrp")
    assert maps.shape == (2, 3, 32, 32) and torch.isfinite(maps).all()
    # no biases, epsilon rule: the relevance of the input sums to the class logit
    torch.testing.assert_close(maps.sum(dim=(1, 2, 3)), logits[[0, 3]], rtol=1e-3, atol=1e-5)
    assert model_state(model) == state
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
    assert not any(hasattr(m, "rule") for m in model.modules())


class BiasedVGG(nn.Module):
    """Biases, batch norm in eval mode, max pooling, dropout: every layer captum's LRP has a rule for."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Linear(64, 20), nn.ReLU(), nn.Dropout(), nn.Linear(20, 5))
        with torch.no_grad():  # batch-norm statistics that are not the identity
            bn = self.features[1]
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.normal_()
            bn.bias.normal_()

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def test_lrp_matches_captums_epsilon_rule_where_captum_applies(photos):
    from captum.attr import LRP

    torch.manual_seed(0)
    model = BiasedVGG().eval()
    x = _photo_input(photos, 32, 32)
    ours = compute_base(model, x, [0, 3], "lrp")
    theirs = torch.cat([LRP(model).attribute(x.clone().requires_grad_(True), target=c).detach() for c in [0, 3]])
    assert ((ours - theirs).norm() / theirs.norm()).item() < 1e-4


class TinyResNet(nn.Module):
    """Two residual ReLU blocks with biases: additions written in forward, as in ResNet and EfficientNet."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)  # one module used several times, as torchvision's blocks do
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        h = self.relu(self.stem(x))
        h = self.relu(h + self.conv1(h))
        h = self.relu(h + self.conv2(h))
        return self.head(h.mean(dim=(2, 3)))


def test_lrp_on_a_relu_network_with_additions_is_input_x_gradient(photos):
    # Ancona et al. 2018: the epsilon rule (epsilon -> 0) on a ReLU network equals input x
    # gradient, residual additions included (each summand gets its share of the relevance).
    torch.manual_seed(0)
    model = TinyResNet().eval()
    x = _photo_input(photos, 24, 24)
    lrp_maps = compute_base(model, x, [0, 2], "lrp")
    ixg_maps = compute_base(model, x, [0, 2], "ixg")
    assert ((lrp_maps - ixg_maps).norm() / ixg_maps.norm()).item() < 1e-5
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))


def test_lrp_passes_relevance_through_a_saturated_relu6():
    # y_c = v_c * relu6(2 x + 1) + u_c at x = 5: z = 11 saturates, so the gradient is 0, but
    # LRP's relevance ratio at the activation is relu6(z) / z = 6 / 11: R_x = x * 2 * (6 / 11) * v_c.
    model = nn.Sequential(nn.Flatten(), nn.Linear(1, 1), nn.ReLU6(), nn.Linear(1, 2)).eval()
    with torch.no_grad():
        model[1].weight.fill_(2.0)
        model[1].bias.fill_(1.0)
        model[3].weight.copy_(torch.tensor([[3.0], [-0.5]]))
        model[3].bias.fill_(0.25)
    x = torch.full((1, 1, 1, 1), 5.0)
    maps = compute_base(model, x, [0, 1], "lrp")
    expected = torch.tensor([5 * 2 * 6 / 11 * 3.0, 5 * 2 * 6 / 11 * -0.5])
    torch.testing.assert_close(maps.flatten(), expected)
    assert compute_base(model, x, [0, 1], "ixg").abs().max() == 0  # the plain gradient sees nothing


def test_lrp_on_the_default_model_differs_from_ixg_where_relu6_saturates(explainer, chelsea_input):
    ctx = explainer.loaded.context()
    lrp_maps = compute_base(explainer.model, chelsea_input, [285, 281], "lrp", context=ctx).sum(1)
    ixg_maps = compute_base(explainer.model, chelsea_input, [285, 281], "ixg", context=ctx).sum(1)
    corr = np.corrcoef(lrp_maps.flatten().numpy(), ixg_maps.flatten().numpy())[0, 1]
    assert 0.3 < corr < 0.99  # related (same linear paths) but not the same map


def test_lrp_names_the_unsupported_layer():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.SiLU(), nn.AdaptiveAvgPool2d(1))
    with pytest.raises(MethodError, match=r"'1' \(SiLU\)"):
        compute_base(model, torch.zeros(1, 3, 8, 8), [0, 1], "lrp")


def test_grid_pointing_game_runs_on_vit_methods():
    """The grid game on ViT methods scores exactly what the API's maps give on the same grid."""
    from alens_gui.core.api import Explainer
    from alens_gui.core.evaluation import localisation_batch, make_grids
    from alens_gui.core.evaluation.grid import run_grid_game

    torch.manual_seed(0)
    ex = Explainer.from_spec("timm:vit_tiny_patch16_224", pretrained=False, device="cpu")
    grids = make_grids(ex.loaded, 1, seed=0)
    results = run_grid_game(ex, methods="grad_rollout,transformer_lrp", grids=grids)
    assert results["_meta"]["protocol"] == "grid"
    g = grids[0]
    for name in ("grad_rollout", "transformer_lrp"):
        base, al = results[name]["base"], results[name]["al"]
        assert base["n"] == al["n"] == 4  # four tiles, four classes
        e = ex.explain(g.image, method=name, classes=g.classes)
        for key, maps in (("base", e.base), ("al", e.refined)):
            expected = np.mean([r["ra"] for r in localisation_batch(maps, g.regions)])
            assert results[name][key]["ra"] == pytest.approx(expected, abs=1e-5)
