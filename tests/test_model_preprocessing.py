"""The ``model`` input policy: each model's own resize, crop and interpolation, as its library defines it.

The reference is the library's own transform on the same photograph: timm's
``create_transform(**resolve_model_data_config(model))`` and torchvision's
``weights.transforms()``. Our pipeline resizes floats with torch (PIL's bicubic kernel when
antialiased), theirs resizes uint8 images; the inputs agree to uint8 rounding (mean |difference|
below 0.01 in normalised units, about 1/255 in pixel units), while a stretch is off by 0.25-0.9.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alens_gui.core.geometry import Geometry, InputTransform
from alens_gui.core.models import LoadedModel, load_model, torchvision_preprocessing

PHOTOS = ("chelsea", "coffee", "astronaut")


@pytest.fixture(scope="module")
def timm_folder(tmp_path_factory):
    """A timm local-dir: folder (config.json + model.safetensors) of a random-weight ConvNeXt,
    written by timm's own save_for_hf: its config carries crop_pct 0.875, bicubic, ImageNet mean/std."""
    import timm
    from timm.models import save_for_hf

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("timm_convnext")
    save_for_hf(timm.create_model("convnext_atto", pretrained=False), str(folder), safe_serialization=True)
    return folder


def _uint8(name):
    from skimage import data

    return getattr(data, name)()


def test_timm_model_policy_matches_timms_own_transform(timm_folder):
    import timm
    from PIL import Image

    loaded = load_model(f"local-dir:{timm_folder}", device="cpu")
    assert loaded.resize == "model"
    t = loaded.own_transform
    assert (t.mode, t.scale, t.size, t.interpolation) == ("cover", (256, 256), (224, 224), "bicubic")
    reference = timm.data.create_transform(**timm.data.resolve_model_data_config(loaded.model))
    for name in PHOTOS:
        img = _uint8(name)
        ref = reference(Image.fromarray(img))[None]
        ours = loaded.fit(img)[2]
        assert float((ours - ref).abs().mean()) < 0.01, name
        loaded.resize = "stretch"
        try:
            stretched = loaded.fit(img)[2]
        finally:
            loaded.resize = "model"
        assert float((stretched - ref).abs().mean()) > 0.2, name  # the old policy was visibly different


@pytest.mark.parametrize("weights", ["ResNet50_Weights.IMAGENET1K_V2", "EfficientNet_B3_Weights.IMAGENET1K_V1"])
def test_torchvision_model_policy_matches_the_weights_transforms(weights):
    import torchvision.models as tvm

    enum, member = weights.split(".")
    w = getattr(getattr(tvm, enum), member)  # the recipe only: no weights are downloaded
    pre = torchvision_preprocessing(w)
    loaded = LoadedModel(torch.nn.Identity(), "t", ["a", "b"], input_size=pre["input_size"], mean=pre["mean"],
                         std=pre["std"], transform=pre["transform"])
    for name in PHOTOS[:2]:
        img = _uint8(name)
        ref = w.transforms()(torch.from_numpy(img).permute(2, 0, 1))[None]
        assert float((loaded.fit(img)[2] - ref).abs().mean()) < 0.01, (weights, name)


def test_the_default_model_keeps_its_stretch(explainer, photos):
    """SPEC section 4: the weights package has no data config; its "own" preprocessing is the
    224 x 224 stretch with mean/std 0.5 that gives class 285 for chelsea and 967 for coffee."""
    lm = explainer.loaded  # shared: other tests set its policy for a while, so ask for "model" here
    assert load_model("default", device="cpu").resize == "model"
    assert lm.transform is None and lm.own_transform.is_stretch
    assert Geometry.fit((300, 451), (224, 224), "model", transform=lm.transform) == \
        Geometry.fit((300, 451), (224, 224), "stretch")
    assert int(np.argmax(explainer.predict(photos["chelsea"]))) == 285
    assert int(np.argmax(explainer.predict(photos["coffee"]))) == 967


def test_random_weights_and_state_dicts_have_no_preprocessing_of_their_own():
    assert load_model("timm:resnet18", pretrained=False, device="cpu").transform is None
    assert load_model("torchvision:resnet18", pretrained=False, device="cpu").transform is None


def test_model_geometry_crops_like_the_transform_and_maps_come_back(timm_folder):
    t = InputTransform((224, 224), "cover", (256, 256), "bicubic")
    g = Geometry.fit((300, 450), (224, 224), "model", transform=t)
    assert g.policy == "model" and g.resized_hw == (256, 384)
    # the crop is the central 224/256 of the short side, centred: rows 19..281, columns 94..356
    y0, x0, y1, x1 = g.box
    assert abs((y1 - y0) - 300 * 224 / 256) <= 1 and abs((x1 - x0) - 300 * 224 / 256) <= 1
    assert abs((y0 + y1) / 2 - 150) <= 1 and abs((x0 + x1) / 2 - 225) <= 1
    ramp = np.tile(np.arange(224, dtype=np.float32), (1, 224, 1))
    out = g.to_display(ramp)[0]
    assert np.isnan(out[:, :x0 - 1]).all() and np.isnan(out[: y0 - 1]).all() and np.isfinite(out[y0:y1, x0:x1]).all()
    row = out[150, x0:x1]
    assert np.all(np.diff(row) >= -1e-4) and row[-1] - row[0] > 200  # left to right stays left to right
    assert Geometry.from_dict(g.as_dict()) == g
    # a plain bilinear stretch is recorded as the stretch policy (files and captions unchanged)
    s = Geometry.fit((300, 450), (224, 224), "model", transform=InputTransform.stretch((224, 224)))
    assert s == Geometry.fit((300, 450), (224, 224), "stretch") and "resized_hw" not in s.as_dict()


def test_squash_and_input_size_override():
    t = InputTransform((224, 224), "exact", (248, 248), "bicubic")
    g = Geometry.fit((300, 450), (224, 224), "model", transform=t)
    assert g.resized_hw == (248, 248)  # aspect not kept, then the centre crop
    assert t.at_size((112, 112)).scale == (124, 124)  # --input-size keeps the crop ratio
    with pytest.raises(ValueError):
        InputTransform((224, 224), "cover", (200, 200))


def test_explanations_under_the_model_policy_are_nan_outside_the_crop(timm_folder, photos):
    from alens_gui.core.api import Explainer

    ex = Explainer(load_model(f"local-dir:{timm_folder}", device="cpu"))
    e = ex.explain(photos["coffee"], "gradcam", top_k=2)
    assert e.geometry.policy == "model"
    y0, x0, y1, x1 = e.geometry.box
    assert x0 > 0 and np.isnan(e.refined[:, :, : x0 - 1]).all() and np.isfinite(e.refined[:, y0:y1, x0:x1]).all()
    assert "model" in e.caption()
