"""Named class sets on the command line, and a user's own architecture file (``--arch FILE.py:NAME``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alens_gui.core.classsets import class_preset, default_presets_path, load_class_presets
from alens_gui.core.errors import ClassSetError, ModelLoadError
from alens_gui.core.models import load_model

NAMES = ["grade 1", "grade 2", "grade 3", "grade 4"]


def test_presets_by_index_or_name(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"grades 1-4": NAMES, "Outer": [0, 3], "mixed": [1, "GRADE 3"]}))
    assert class_preset("grades 1-4", NAMES, f) == [0, 1, 2, 3]
    assert class_preset("outer", NAMES, f) == [0, 3]  # case-insensitive when not exact
    assert class_preset("mixed", NAMES, f) == [1, 2]
    with pytest.raises(ClassSetError, match="no class preset named 'nope' .*'Outer'"):
        class_preset("nope", NAMES, f)
    f.write_text(json.dumps({"bad": ["grade 9"], "short": [1], "far": [0, 7]}))
    with pytest.raises(ClassSetError, match="no class named 'grade 9'"):
        class_preset("bad", NAMES, f)
    with pytest.raises(ClassSetError, match="K >= 2"):
        class_preset("short", NAMES, f)
    with pytest.raises(ClassSetError, match="out of range"):
        class_preset("far", NAMES, f)


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),  # the wording every JSON reader shares (core.safeio); was "invalid JSON"
    ('["a"]', "expected"),
    ('{"x": [true, false]}', "expected"),
    ('{"x": "grade 1"}', "expected"),
])
def test_bad_preset_files(tmp_path, text, message):
    f = tmp_path / "p.json"
    f.write_text(text)
    with pytest.raises(ClassSetError, match=message):
        load_class_presets(f)
    with pytest.raises(ClassSetError, match="no such file"):
        load_class_presets(tmp_path / "none.json")


def test_preset_files_from_someone_else_are_read_within_limits(tmp_path):
    import os

    from .crafted import finishes

    deep = tmp_path / "deep.json"
    deep.write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")  # was a RecursionError
    with pytest.raises(ClassSetError, match="^class presets deep.json: the presets file is nested deeper than 64"):
        load_class_presets(deep)
    big = tmp_path / "big.json"
    big.write_text('{"x": [' + "1, " * 2_000_000 + "1]}")
    with pytest.raises(ClassSetError, match="big.json: the presets file is 5.7 MiB, more than the 4.0 MiB limit"):
        load_class_presets(big)
    os.mkfifo(tmp_path / "pipe.json")
    with pytest.raises(ClassSetError, match=r"pipe.json: is a FIFO \(named pipe\), not a file that can be read"):
        finishes(lambda: load_class_presets(tmp_path / "pipe.json"))


def test_default_store_is_the_guis(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr("sys.platform", "linux")
    assert default_presets_path() == tmp_path / "alens" / "Attribution Lens Studio" / "class_presets.json"
    with pytest.raises(ClassSetError, match="the GUI has saved none yet"):
        load_class_presets()
    default_presets_path().parent.mkdir(parents=True)
    default_presets_path().write_text(json.dumps({"pair": [2, 0]}))  # as the GUI's PresetStore writes it
    assert class_preset("pair", NAMES) == [2, 0]


ARCH = '''
import torch
from torch import nn

class Tiny(nn.Module):
    input_size = (32, 48)
    mean = (0.1, 0.2, 0.3)
    std = (0.5, 0.5, 0.5)

    def __init__(self, num_classes=3):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

def build():
    return Tiny(num_classes=5)

def not_a_model(num_classes=2):
    return "model"

BROKEN = 1
'''


@pytest.fixture
def arch_file(tmp_path):
    f = tmp_path / "tinyarch.py"
    f.write_text(ARCH)
    ns: dict = {}
    exec(ARCH, ns)
    torch.manual_seed(0)
    net = ns["Tiny"](num_classes=4).eval()
    torch.save(net.state_dict(), tmp_path / "tiny.pt")
    (tmp_path / "labels.txt").write_text("\n".join(NAMES))
    return f, net


def test_architecture_from_a_python_file(arch_file, tmp_path):
    f, net = arch_file
    m = load_model(str(tmp_path / "tiny.pt"), arch=f"{f}:Tiny", labels=tmp_path / "labels.txt", device="cpu")
    assert m.num_classes == 4 and m.class_names == NAMES  # num_classes inferred from the state dict
    assert m.input_size == (32, 48) and m.mean == (0.1, 0.2, 0.3)  # the model's declared preprocessing
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(m.model(x), net(x))
    assert m.name == "tiny.pt (tinyarch.py:Tiny)"
    prov = m.provenance
    assert prov["checkpoint"] == "tiny.pt" and prov["arch"] == "tinyarch.py:Tiny"
    import hashlib

    assert prov["checkpoint_sha256"] == hashlib.sha256((tmp_path / "tiny.pt").read_bytes()).hexdigest()
    assert prov["arch_sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert str(tmp_path) not in json.dumps(prov)  # file names only, never folders
    # explicit options win over the declared ones
    m = load_model(str(tmp_path / "tiny.pt"), arch=f"{f}:Tiny", input_size=(40, 40), std=(1.0, 1.0, 1.0))
    assert m.input_size == (40, 40) and m.std == (1.0, 1.0, 1.0) and m.mean == (0.1, 0.2, 0.3)


@pytest.mark.parametrize("arch, message", [
    ("{dir}/missing.py:Tiny", "missing.py: no such file"),
    ("{dir}/tinyarch.py:Nope", "has no class or function named 'Nope'"),
    ("{dir}/tinyarch.py:BROKEN", "has no class or function named 'BROKEN'"),
    ("{dir}/tinyarch.py:not_a_model", "returned a str, not a torch.nn.Module"),
    ("{dir}/tinyarch.py:build", "does not fit architecture"),  # 5 outputs built, checkpoint has 4
    ("no_such_module_xyz:Net", "could not be imported: ModuleNotFoundError"),
    ("{dir}/tinyarch.py:1x", "expected FILE.py:NAME"),
])
def test_architecture_file_errors(arch_file, tmp_path, arch, message):
    with pytest.raises(ModelLoadError, match=message):
        load_model(str(tmp_path / "tiny.pt"), arch=arch.format(dir=tmp_path))


def test_architecture_file_that_fails_to_run(tmp_path):
    (tmp_path / "bad.py").write_text("raise RuntimeError('no GPU here')\n")
    torch.save({"w": torch.zeros(2, 2)}, tmp_path / "c.pt")
    with pytest.raises(ModelLoadError, match=r"bad\.py could not be run: RuntimeError: no GPU here"):
        load_model(str(tmp_path / "c.pt"), arch=f"{tmp_path / 'bad.py'}:Net")


def test_architecture_from_an_importable_module(tmp_path, monkeypatch, arch_file):
    monkeypatch.syspath_prepend(str(tmp_path))
    m = load_model(str(tmp_path / "tiny.pt"), arch="tinyarch:Tiny")
    assert m.num_classes == 4 and m.provenance["arch"] == "tinyarch:Tiny"


def test_declared_preprocessing_is_checked(tmp_path):
    from alens_gui.core.models import declared_preprocessing

    class M(torch.nn.Module):
        input_size = (64,)

    with pytest.raises(ModelLoadError, match="input_size attribute"):
        declared_preprocessing(M())
    M.input_size, M.std = (8, 8), (0.0, 1.0, 1.0)
    with pytest.raises(ModelLoadError, match="std attribute"):
        declared_preprocessing(M())
    del M.std
    assert declared_preprocessing(M()) == {"input_size": (8, 8)}


def test_cli_model_input_options(tmp_path, capsys):
    from alens_gui.cli import main

    img = tmp_path / "img.png"
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(img)
    for bad in (["--input-size", "0"], ["--mean", "1,2"], ["--input-size", "a"]):
        with pytest.raises(SystemExit):
            main(["explain", str(img), "--out", str(tmp_path / "o"), *bad])
        assert "expected" in capsys.readouterr().err
