"""Loading a model named by someone else never runs code without an explicit yes (crafted files)."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from alens_gui.core.errors import CodeRefused, ModelLoadError
from alens_gui.core.models import code_needed, load_model, read_labels


class _Reader(nn.Module):
    """A TorchScript program whose forward has a side effect: it writes a file."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.fc = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.from_file(self.target, shared=True, size=4, dtype=torch.uint8)
        t.fill_(88)
        return self.fc(x.mean(dim=(2, 3))) + 0 * t.sum()  # used, so the graph keeps the write


@pytest.fixture
def crafted_script(tmp_path):
    """``looks_like_weights.pth``: a TorchScript zip whose forward overwrites ``victim.txt``."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"safe")
    scripted = torch.jit.script(_Reader(str(victim)))
    path = tmp_path / "looks_like_weights.pth"
    scripted.save(str(path))
    return path, victim


def test_torchscript_given_as_state_dict_is_refused_even_with_arch(crafted_script):
    path, victim = crafted_script
    for arch in (None, "torchvision:resnet18"):
        with pytest.raises(ModelLoadError, match="is a TorchScript program, not a state dict.*--torchscript"):
            load_model(str(path), arch=arch)
    assert victim.read_bytes() == b"safe"


def test_torchscript_on_purpose_loads_and_is_named_as_code(crafted_script):
    path, victim = crafted_script
    assert code_needed(str(path)) == "the TorchScript program in looks_like_weights.pth"
    with pytest.raises(CodeRefused, match="would run the TorchScript program"):
        load_model(str(path), torchscript=True, allow_code=False)
    assert victim.read_bytes() == b"safe"
    m = load_model(str(path), torchscript=True, labels=None)  # the user said so: it runs (a forward at load)
    assert m.num_classes == 4 and victim.read_bytes() == b"XXXX"


def test_state_dict_given_as_torchscript_is_refused(tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "w.pt")
    with pytest.raises(ModelLoadError, match="not a TorchScript file"):
        load_model(str(tmp_path / "w.pt"), torchscript=True)
    assert code_needed(str(tmp_path / "w.pt"), arch="torchvision:resnet18") is None


def test_architecture_code_is_refused_unless_allowed(tmp_path):
    flag = tmp_path / "ran"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(flag)!r}, 'w').write('ran')\nimport torch\nNet = lambda **k: torch.nn.Linear(2, 2)\n")
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "w.pt")
    for arch in (f"{evil}:Net", "os:abort", "subprocess:Popen"):
        assert code_needed(str(tmp_path / "w.pt"), arch=arch) is not None
        with pytest.raises(CodeRefused):
            load_model(str(tmp_path / "w.pt"), arch=arch, allow_code=False)
    assert not flag.exists()
    assert "evil.py" in code_needed(str(tmp_path / "w.pt"), arch=f"{evil}:Net")
    # library architectures and names run no code of anyone else's
    for spec, arch in (("default", None), ("timm:resnet18", None), ("torchvision:vgg11", None),
                       (str(tmp_path / "w.pt"), "timm:resnet18"), (str(tmp_path / "w.pt"), "resnet18")):
        assert code_needed(spec, arch=arch) is None


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_special_files_as_checkpoints_and_labels_never_block(tmp_path, special):
    path = special
    if special == "fifo":
        path = str(tmp_path / "pipe.pt")
        os.mkfifo(path)
    with pytest.raises(ModelLoadError, match="is a (FIFO|device)"):
        load_model(path, arch="resnet18")
    with pytest.raises(ModelLoadError, match="is a (FIFO|device)"):
        read_labels(path)


def test_deep_or_huge_labels_json_is_one_error(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelLoadError, match="labels file deep.json: .*nested deeper"):
        read_labels(deep)
    bad = tmp_path / "bad.json"
    bad.write_text('{"0": "a", "1": ')
    with pytest.raises(ModelLoadError, match="labels file bad.json: .*not valid JSON"):
        read_labels(bad)
