"""Multi-label models (a sigmoid per class) and ImageNet label sets by WordNet id.

A multi-label classifier (the usual clinical form: findings on a chest X-ray) says for each
class on its own how likely it is present, so its probabilities do not sum to 1. The
probabilities, top-k, the masking shifts, reports and the gallery's right/wrong follow the
output rule; the lens is unchanged (it compares the attribution maps across classes).
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from alens_gui.core.api import Explainer
from alens_gui.core.classsets import label_to_class, prediction_is_right
from alens_gui.core.errors import ModelLoadError
from alens_gui.core.models import imagenet_label_set, load_model


@pytest.fixture(scope="module")
def sigmoid_explainer(explainer):
    """The default model read as if it were multi-label (the same module, another output rule)."""
    return Explainer(dataclasses.replace(explainer.loaded, output="sigmoid"))


def test_probabilities_are_a_sigmoid_per_class(sigmoid_explainer, explainer, photos):
    lm = sigmoid_explainer.loaded
    _, x = lm.preprocess(photos["chelsea"])
    with torch.no_grad():
        logits = lm.model(x)[0]
    p = sigmoid_explainer.predict(photos["chelsea"])
    np.testing.assert_allclose(p, torch.sigmoid(logits).numpy(), rtol=1e-5, atol=1e-6)
    assert p.sum() > 2.0  # no distribution: many classes sit near 0.5 or above
    soft = explainer.predict(photos["chelsea"])
    np.testing.assert_allclose(soft.sum(), 1.0, atol=1e-4)
    # the ranking is that of the logits either way; the values are not
    assert list(np.argsort(-p)[:3]) == list(np.argsort(-soft)[:3])


def test_explanations_masking_and_files_follow_the_output(sigmoid_explainer, photos, tmp_path):
    from alens_gui.core.explanation import Explanation
    from alens_gui.core.masking import probability_shift

    e = sigmoid_explainer.explain(photos["chelsea"], "gradcam", top_k=3)
    probs = sigmoid_explainer.predict(photos["chelsea"])
    np.testing.assert_allclose(e.probs, probs[e.classes], rtol=1e-4)
    assert e.output == "sigmoid" and "sigmoid" in e.caption()
    np.testing.assert_allclose(e.distribution.sum(axis=0), 1.0, atol=1e-5)  # the lens: over the class set, as ever
    mask = np.zeros(e.image.shape[:2], bool)
    mask[50:200, 100:300] = True
    r = probability_shift(sigmoid_explainer.loaded, e.image, mask, e.classes, geometry=e.geometry)
    np.testing.assert_allclose(r.before, e.probs, rtol=1e-4)
    assert np.all((r.after >= 0) & (r.after <= 1)) and not np.allclose(r.after, r.before)
    back = Explanation.from_arrays(dict(np.load(e.to_npz(tmp_path / "e.npz")), raw=e.raw))
    assert back.output == "sigmoid"
    with np.load(tmp_path / "e.npz") as z:
        assert json.loads(str(z["meta"]))["output"] == "sigmoid"


def test_a_report_says_how_probabilities_were_made(sigmoid_explainer, photos, tmp_path):
    import shutil

    from alens_gui.core.report import ReportSettings, write_report

    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) is not installed: apt-get install poppler-utils")
    e = sigmoid_explainer.explain(photos["coffee"], "gradcam", top_k=2)
    out = write_report(tmp_path / "r.pdf", [e], ReportSettings.for_explainer(sigmoid_explainer))
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert "sigmoid per class (multi-label)" in text and "probability (sigmoid per class)" in text
    assert "stretch to 224 x 224" in text  # the input policy in words


def test_own_model_declares_multi_label(tmp_path, photos):
    (tmp_path / "net.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Findings(nn.Module):
            problem_type = "multi_label_classification"
            input_size = (32, 32)

            def __init__(self, num_classes=3):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 3, padding=1)
                self.fc = nn.Linear(4, num_classes)

            def forward(self, x):
                return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))
    """))
    import importlib.util

    spec = importlib.util.spec_from_file_location("net_for_test", tmp_path / "net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.save(mod.Findings().state_dict(), tmp_path / "w.pt")
    lm = load_model(str(tmp_path / "w.pt"), arch=f"{tmp_path / 'net.py'}:Findings", device="cpu")
    assert lm.output == "sigmoid"
    assert load_model(str(tmp_path / "w.pt"), arch=f"{tmp_path / 'net.py'}:Findings", output="softmax").output == \
        "softmax"  # the caller's word wins
    with pytest.raises(ModelLoadError, match="output must be"):
        load_model("default", output="probit")


def test_right_and_wrong():
    top5 = [[4, "e", 0.95], [1, "b", 0.8], [0, "a", 0.6], [3, "d", 0.3], [2, "c", 0.2]]
    assert prediction_is_right(4, 4, top5, "softmax") is True
    assert prediction_is_right(1, 4, top5, "softmax") is False
    assert prediction_is_right(1, 4, top5, "sigmoid") is True  # present at 0.8 though not the top class
    assert prediction_is_right(3, 4, top5, "sigmoid") is False
    assert prediction_is_right(7, 4, top5, "sigmoid") is False  # below the fifth (0.2): below 0.5
    assert prediction_is_right(7, 4, [[4, "e", 0.9]] * 5, "sigmoid") is None  # cannot tell
    assert prediction_is_right(None, 4, top5) is None


def test_labels_name_classes_by_index_name_or_wordnet_id(explainer):
    names, synsets = explainer.class_names, explainer.loaded.synsets
    assert label_to_class("285", names) == 285
    assert label_to_class("Egyptian_cat", names) == 285
    assert label_to_class("n02124075", names, synsets) == 285
    assert label_to_class("n02124075", names) is None
    assert label_to_class("no such thing", names, synsets) is None


def test_imagenet_label_sets_come_from_timms_offline_tables(explainer):
    names, ids = imagenet_label_set(1000)
    assert names == explainer.class_names and ids[285] == "n02124075"
    for n in (11221, 11821, 21841, 21843):
        names, ids = imagenet_label_set(n)
        assert len(names) == len(ids) == n and len(set(names)) == n  # shared lemmas carry their id
        assert not any(re.fullmatch(r"class \d+", nm) for nm in names)  # not our "class i" placeholders
    assert imagenet_label_set(12) is None
    lm = load_model("timm:resnet18", pretrained=False, device="cpu")
    assert lm.synsets is not None and lm.class_names[285] == "Egyptian cat"


def test_wordnet_folders_map_to_classes(explainer, tmp_path):
    from PIL import Image

    from alens_gui.core.evaluation import map_folder_classes
    from alens_gui.core.evaluation.data import EvaluationDataError

    for wnid in ("n02124075", "n07920052"):  # Egyptian cat, espresso
        (tmp_path / wnid).mkdir()
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / wnid / "a.png")
    mapping = map_folder_classes(tmp_path, explainer.class_names, explainer.loaded.synsets)
    assert sorted(mapping) == [285, 967]
    with pytest.raises(EvaluationDataError, match="WordNet id"):
        map_folder_classes(tmp_path, explainer.class_names)


def test_cli_output_and_logging_options(tmp_path):
    from skimage import data
    from skimage.io import imsave

    img = tmp_path / "cat.png"
    imsave(img, data.chelsea())
    r = subprocess.run([sys.executable, "-m", "alens_gui.cli", "explain", str(img), "--output", "sigmoid", "-v",
                        "--method", "ixg", "--top-k", "2", "--out", str(tmp_path / "o"), "--no-png"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "alens: INFO: loaded EfficientNet-Lite0" in r.stderr and "sigmoid per class" in r.stderr
    with np.load(tmp_path / "o" / "cat.npz") as z:
        assert float(z["probs"].sum()) > 1.0 and json.loads(str(z["meta"]))["output"] == "sigmoid"
    q = subprocess.run([sys.executable, "-m", "alens_gui.cli", "--quiet", "explain", str(img), "--method", "ixg",
                        "--out", str(tmp_path / "q"), "--no-png"], capture_output=True, text=True, timeout=300)
    assert q.returncode == 0 and "INFO" not in q.stderr
