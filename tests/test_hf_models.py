"""Models people bring from Hugging Face: ``hf:DIR`` (transformers) and timm's ``local-dir:`` / ``hf-hub:``.

The folders are made here the way their owners make them (``save_pretrained``, timm's
``save_for_hf``), with random weights: a ViT with hidden size 32, 2 layers, 64 x 64 input,
four named classes and a multi-label head. Nothing touches the network.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the hf extra (pip install 'alens-gui[hf]') is not installed")

from alens_gui.core.api import Explainer  # noqa: E402
from alens_gui.core.errors import CodeRefused, ModelLoadError  # noqa: E402
from alens_gui.core.hf import preprocessing_from_processor  # noqa: E402
from alens_gui.core.models import code_needed, load_model  # noqa: E402

NAMES = ["effusion", "nodule", "pneumothorax", "cardiomegaly"]


def uint8(name: str) -> np.ndarray:
    """A photograph as the image processors take it (uint8; they rescale by 1/255 themselves)."""
    from skimage import data

    return getattr(data, name)()


def save_vit(folder: Path, multi_label: bool = True, seed: int = 0) -> Path:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    cfg = ViTConfig(image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, num_labels=4, id2label=dict(enumerate(NAMES)),
                    label2id={n: i for i, n in enumerate(NAMES)},
                    problem_type="multi_label_classification" if multi_label else "single_label_classification")
    torch.manual_seed(seed)
    model = ViTForImageClassification(cfg).eval()
    with torch.no_grad():  # a head with some spread, so that classes differ
        model.classifier.weight.normal_(0, 2.0)
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 64, "width": 64}, image_mean=[0.5, 0.5, 0.5],
                      image_std=[0.5, 0.5, 0.5]).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    return save_vit(tmp_path_factory.mktemp("hf_vit"))


@pytest.fixture(scope="module")
def hf_explainer(vit_dir):
    return Explainer.from_spec(f"hf:{vit_dir}", device="cpu")


def test_the_folder_brings_names_preprocessing_and_multi_label_output(hf_explainer, vit_dir, photos):
    lm = hf_explainer.loaded
    assert lm.class_names == NAMES and lm.output == "sigmoid" and lm.architecture == "vit"
    assert lm.input_size == (64, 64) and lm.mean == pytest.approx((0.5,) * 3) and lm.std == pytest.approx((0.5,) * 3)
    assert lm.model.hf.config._attn_implementation == "eager"  # the attention methods read the weights
    assert lm.provenance["checkpoint"] == "model.safetensors" and lm.provenance["output"] == "sigmoid"
    # the probabilities are the sigmoid of transformers' own logits for its own processor's input
    from transformers import AutoImageProcessor

    proc = AutoImageProcessor.from_pretrained(vit_dir)
    pixel = proc(images=uint8("chelsea"), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ref = torch.sigmoid(lm.model.hf(pixel_values=pixel).logits)[0].numpy()
    ours = hf_explainer.predict(uint8("chelsea"))
    np.testing.assert_allclose(ours, ref, atol=2e-3)
    assert abs(float(ours.sum()) - 1.0) > 0.05  # a sigmoid per class, not a distribution


@pytest.mark.parametrize("method", ["gradcam", "grad_rollout", "transformer_lrp", "inflow", "ixg"])
def test_every_family_explains_the_hf_vit(hf_explainer, photos, method):
    e = hf_explainer.explain(photos["coffee"], method, top_k=3)
    assert e.refined.shape == (3, *photos["coffee"].shape[:2])
    assert list(e.class_names) == [NAMES[c] for c in e.classes]
    assert np.isfinite(e.base).all() and np.abs(e.base).sum() > 0
    assert e.output == "sigmoid"
    np.testing.assert_allclose(e.distribution.sum(axis=0), 1.0, atol=1e-5)  # the lens is unchanged
    assert hf_explainer.loaded.model.hf.config._attn_implementation == "eager"  # restored after the capture


def test_captured_attention_is_transformers_own(hf_explainer):
    """The weights our capture reads are those transformers returns with output_attentions."""
    from alens_gui.core.methods.vit import attention_maps, vit_info

    model = hf_explainer.loaded.model
    info = vit_info(model)
    assert info is not None and info.kind == "hf" and info.num_prefix == 1 and info.patch_size == (16, 16)
    x = torch.randn(1, 3, 64, 64)
    ours = attention_maps(model, info, x)
    with torch.no_grad():
        out = model.hf(pixel_values=x, output_attentions=True)
        theirs = torch.stack([a[0] for a in out.attentions])
        plain = model(x)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(out.logits, plain)


def test_processor_configs_become_the_model_policy():
    from transformers import ConvNextImageProcessor, DeiTImageProcessor

    from alens_gui.core.models import LoadedModel

    for proc in (ConvNextImageProcessor(size={"shortest_edge": 224}, crop_pct=0.875),
                 DeiTImageProcessor(size={"height": 256, "width": 256}, crop_size={"height": 224, "width": 224})):
        pre = preprocessing_from_processor(proc.to_dict())
        lm = LoadedModel(torch.nn.Identity(), "p", ["a", "b"], input_size=pre["input_size"], mean=pre["mean"],
                         std=pre["std"], transform=pre["transform"])
        for name in ("chelsea", "coffee"):
            ref = proc(images=uint8(name), return_tensors="pt")["pixel_values"]
            ours = lm.fit(uint8(name))[2]
            assert ours.shape == ref.shape and float((ours - ref).abs().mean()) < 0.02, (type(proc).__name__, name)


def test_the_cli_explains_an_hf_folder(vit_dir, tmp_path):
    from skimage import data
    from skimage.io import imsave

    img = tmp_path / "cat.png"
    imsave(img, data.chelsea())
    r = subprocess.run([sys.executable, "-m", "alens_gui.cli", "-v", "explain", str(img), "--model", f"hf:{vit_dir}",
                        "--method", "grad_rollout", "--top-k", "2", "--out", str(tmp_path / "o"), "--no-png"],
                       capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "sigmoid per class" in r.stderr  # -v says what was loaded
    with np.load(tmp_path / "o" / "cat.npz") as z:
        assert set(z["class_names"].tolist()) <= set(NAMES)
        assert json.loads(str(z["meta"]))["output"] == "sigmoid"


def test_a_folder_with_its_own_code_is_refused_and_runs_nothing(vit_dir, tmp_path):
    evil = tmp_path / "evil"
    shutil.copytree(vit_dir, evil)
    marker = tmp_path / "ran"
    (evil / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    cfg = json.loads((evil / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "modeling_evil.EvilConfig",
                       "AutoModelForImageClassification": "modeling_evil.EvilModel"}
    (evil / "config.json").write_text(json.dumps(cfg))
    assert "auto_map (modeling_evil.EvilModel)" in code_needed(f"hf:{evil}")
    assert code_needed(f"hf:{vit_dir}") is None
    with pytest.raises(CodeRefused):
        load_model(f"hf:{evil}", allow_code=False)
    with pytest.raises(ModelLoadError, match="--trust-remote-code"):
        load_model(f"hf:{evil}")
    assert not marker.exists()


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_bin_weights_are_read_without_running_code(vit_dir, tmp_path, photos):
    from safetensors.torch import load_file

    plain = save_vit(tmp_path / "bin")  # older transformers wrote pytorch_model.bin: the same state dict
    torch.save(load_file(plain / "model.safetensors"), plain / "pytorch_model.bin")
    (plain / "model.safetensors").unlink()
    a = Explainer.from_spec(f"hf:{plain}", device="cpu").predict(photos["chelsea"])
    b = Explainer.from_spec(f"hf:{vit_dir}", device="cpu").predict(photos["chelsea"])
    np.testing.assert_allclose(a, b, atol=1e-6)  # the same seed: the same model either way
    marker = tmp_path / "ran"
    with open(plain / "pytorch_model.bin", "wb") as f:
        pickle.dump({"classifier.weight": _Evil(marker)}, f, protocol=2)
    with pytest.raises(ModelLoadError):
        load_model(f"hf:{plain}")
    assert not marker.exists()


def test_bad_folders_get_one_clear_message(tmp_path, vit_dir):
    with pytest.raises(ModelLoadError, match="no such folder"):
        load_model(f"hf:{tmp_path / 'missing'}")
    deep = tmp_path / "deep"
    shutil.copytree(vit_dir, deep)
    (deep / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelLoadError, match="config.json"):
        load_model(f"hf:{deep}")
    empty = tmp_path / "noweights"
    shutil.copytree(vit_dir, empty)
    (empty / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no weights"):
        load_model(f"hf:{empty}")


# -- timm folders and the Hugging Face cache -------------------------------------------------
@pytest.fixture(scope="module")
def timm_dir(tmp_path_factory):
    import timm
    from timm.models import save_for_hf

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("timm_vit")
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=2, num_classes=11821)
    save_for_hf(model, str(folder), safe_serialization=True)
    return folder


def test_timm_local_dir_folder_through_api_and_cli(timm_dir, tmp_path, photos):
    ex = Explainer.from_spec(f"timm:local-dir:{timm_dir}", device="cpu")
    lm = ex.loaded
    assert lm.name == f"timm:local-dir:{timm_dir.name}" and lm.architecture == "vit"
    assert lm.num_classes == 11821 and lm.synsets[:2] == ["n00005787", "n00006484"]  # ImageNet-12k, offline
    assert lm.class_names[2] == "person" and lm.own_transform.interpolation == "bicubic"
    e = ex.explain(photos["chelsea"], "gradcam", top_k=2)
    assert e.geometry.policy == "model" and np.isfinite(e.refined[:, 150, 225]).all()
    from skimage.io import imsave

    img = tmp_path / "cat.png"
    imsave(img, uint8("chelsea"))
    r = subprocess.run([sys.executable, "-m", "alens_gui.cli", "explain", str(img), "--model",
                        f"local-dir:{timm_dir}", "--method", "ixg", "--out", str(tmp_path / "o"), "--no-png"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert code_needed(f"timm:local-dir:{timm_dir}") is None


def test_timm_hf_hub_names_load_offline_from_the_cache(timm_dir, tmp_path, monkeypatch):
    import huggingface_hub.constants as hub

    snap = tmp_path / "hub" / "models--someone--tiny-vit" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    for f in timm_dir.iterdir():
        shutil.copy(f, snap / f.name)
    (tmp_path / "hub" / "models--someone--tiny-vit" / "refs").mkdir()
    (tmp_path / "hub" / "models--someone--tiny-vit" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    lm = load_model("timm:hf-hub:someone/tiny-vit", device="cpu")
    assert lm.num_classes == 11821 and lm.provenance["weights"] == "pretrained"
    with pytest.raises(ModelLoadError, match="not in the Hugging Face cache"):
        load_model("hf-hub:someone/not-cached")
