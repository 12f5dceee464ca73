"""Model loading: the offline default, checkpoints, labels, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alens_gui.core.errors import ModelLoadError
from alens_gui.core.models import load_model, read_labels


def test_default_model_metadata(explainer):
    m = explainer.loaded
    assert m.num_classes == 1000 and m.input_size == (224, 224)
    assert m.mean == (0.5, 0.5, 0.5) and m.std == (0.5, 0.5, 0.5)  # inputs in [-1, 1]
    assert m.device.type == "cpu" and m.device_label() == "CPU"
    display, x = m.preprocess(np.ones((50, 80, 3), np.float32))
    assert display.shape == (224, 224, 3) and x.shape == (1, 3, 224, 224)
    assert torch.allclose(x, torch.ones_like(x))


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory):
    """A 5-class resnet18 state dict (random weights) as .pt and .safetensors, + labels."""
    import torchvision
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=5).eval()
    torch.save(net.state_dict(), d / "net.pt")
    torch.save({"state_dict": net.state_dict(), "epoch": 3}, d / "wrapped.pth")
    save_file(net.state_dict(), str(d / "net.safetensors"))
    (d / "labels.txt").write_text("\n".join(["grade 0", "grade 1", "grade 2", "grade 3", "grade 4"]))
    (d / "labels.json").write_text(json.dumps({str(i): f"g{i}" for i in range(5)}))
    (d / "three.txt").write_text("a\nb\nc\n")
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        ref = net(x)
    return d, net, x, ref


@pytest.mark.parametrize("name", ["net.pt", "wrapped.pth", "net.safetensors"])
def test_state_dict_checkpoints(small_ckpt, name):
    d, _, x, ref = small_ckpt
    m = load_model(str(d / name), arch="torchvision:resnet18", labels=d / "labels.txt", device="cpu")
    assert m.class_names[4] == "grade 4" and m.num_classes == 5
    with torch.no_grad():
        torch.testing.assert_close(m.model(x), ref)


def test_json_labels_and_no_labels(small_ckpt):
    d = small_ckpt[0]
    assert load_model(str(d / "net.pt"), arch="resnet18", labels=d / "labels.json").class_names[1] == "g1"
    assert load_model(str(d / "net.pt"), arch="resnet18").class_names == [f"class {i}" for i in range(5)]


def test_torchscript(small_ckpt):
    d, net, x, ref = small_ckpt
    torch.jit.trace(net, x).save(str(d / "scripted.pt"))
    m = load_model(str(d / "scripted.pt"), labels=d / "labels.txt", torchscript=True)
    with torch.no_grad():
        torch.testing.assert_close(m.model(x), ref)
    assert m.name == "scripted.pt (TorchScript)"


def test_user_checkpoint_explains(small_ckpt):
    from alens_gui.core.api import Explainer
    from alens_gui.core.images import sample_image

    d = small_ckpt[0]
    ex = Explainer(load_model(str(d / "net.pt"), arch="resnet18", labels=d / "labels.txt"))
    e = ex.explain(sample_image("coffee"), method="gradcam", classes=[1, 3])
    assert e.class_names == ["grade 1", "grade 3"] and np.isfinite(e.refined).all()


@pytest.mark.parametrize(
    "setup, kwargs, message",
    [
        (None, {"arch": "torchvision:resnet34"}, "does not fit architecture"),
        (None, {}, "--arch"),
        (None, {"arch": "resnet18", "labels": "three.txt"}, "3 class names but the model has 5 outputs"),
        (None, {"arch": "nonexistent_net_x"}, "unknown architecture"),
        (lambda p: p.write_bytes(b"not a checkpoint"), {"arch": "resnet18"}, "weights_only"),
        (lambda p: p.write_bytes(b""), {"arch": "resnet18"}, "empty"),
        (lambda p: torch.save([1, 2, 3], p), {"arch": "resnet18"}, "state dict"),
    ],
    ids=["wrong-arch", "missing-arch", "labels-mismatch", "unknown-arch", "garbage", "empty", "not-a-dict"],
)
def test_bad_checkpoints(small_ckpt, tmp_path, setup, kwargs, message):
    d = small_ckpt[0]
    path = d / "net.pt"
    if setup is not None:
        path = tmp_path / "bad.pt"
        setup(path)
    if "labels" in kwargs:
        kwargs = dict(kwargs, labels=d / kwargs["labels"])
    with pytest.raises(ModelLoadError, match=message):
        load_model(str(path), **kwargs)


def test_pickled_object_is_refused_without_running_it(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("import sys; sys.exit('pwned')",))

    p = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "evil": Evil()}, p)
    with pytest.raises(ModelLoadError, match="weights_only"):
        load_model(str(p), arch="resnet18")


def test_unknown_specs_and_offline_names():
    with pytest.raises(ModelLoadError, match="unknown model"):
        load_model("no/such/file.pt")
    with pytest.raises(ModelLoadError, match="torchvision has no model"):
        load_model("torchvision:resnet9000", pretrained=False)
    with pytest.raises(ModelLoadError, match="timm has no model"):
        load_model("timm:not_a_model", pretrained=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU, so asking for one cannot fail")
def test_asking_for_cuda_without_a_gpu_says_so():
    with pytest.raises(ModelLoadError, match="no CUDA GPU is available"):
        load_model("default", device="cuda")


def test_unknown_device_names():
    with pytest.raises(ModelLoadError, match="unknown device 'gpu0'"):
        load_model("default", device="gpu0")


def test_random_weight_models_load_offline():
    m = load_model("timm:resnet18", pretrained=False)
    assert m.num_classes == 1000 and m.class_names[285] == "Egyptian cat"
    tv = load_model("torchvision:resnet18", pretrained=False)
    assert tv.num_classes == 1000


def test_labels_file_errors(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        read_labels(tmp_path / "bad.json")
    (tmp_path / "one.txt").write_text("only\n")
    with pytest.raises(ModelLoadError, match="at least two"):
        read_labels(tmp_path / "one.txt")
    with pytest.raises(ModelLoadError, match="no such file"):
        read_labels(tmp_path / "missing.txt")


def test_offline_pretrained_weights_give_a_plain_message(monkeypatch, tmp_path):
    """With no network and nothing cached, asking for pretrained weights says what to do."""
    import urllib.error

    import torch.hub

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    for spec in ("torchvision:resnet18", "timm:resnet18"):
        with pytest.raises(ModelLoadError, match="--no-pretrained") as exc:
            load_model(spec)
        assert spec in str(exc.value)
