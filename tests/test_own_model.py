"""A clinician's own model, end to end: train a tiny CNN on four texture grades, save a state dict,
labels and presets, then explain and report composed images with ``alens`` as the README shows.

The model and the data come from ``examples/grades`` (the README's walk-through runs the same
script). Each test image has one grade's texture in its left half and another's in its right
half; the lens must put each grade's positive mass on its own half, at least as well as the
base maps do, and focus each half's mass on the grade that is there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alens_gui.cli import main

GRADES = Path(__file__).resolve().parents[1] / "examples" / "grades"
GRADENET = f"{GRADES / 'gradenet.py'}:GradeNet"
CLASSES = "grade 1, grade 2, grade 3, grade 4"


@pytest.fixture(scope="module")
def grades(tmp_path_factory):
    """Train once per module (a few seconds): the example's own script writes every file."""
    spec = importlib.util.spec_from_file_location("make_grades", GRADES / "make_grades.py")
    mg = importlib.util.module_from_spec(spec)
    sys.modules["make_grades"] = mg
    spec.loader.exec_module(mg)
    files = mg.write_all(tmp_path_factory.mktemp("grades"), seed=0, log=lambda *_: None)
    pngs = sorted(files["images"].glob("*.png"))
    assert [p.stem for p in pngs] == ["left1_right3", "left2_right4", "left3_right1", "left4_right2"]
    return mg, files, pngs


def sides(stem: str) -> tuple[int, int]:
    """The 0-based grades of the left and the right half, from ``left1_right3``."""
    m = re.fullmatch(r"left(\d)_right(\d)", stem)
    return int(m[1]) - 1, int(m[2]) - 1


def half_fraction(maps: np.ndarray, grade: int, left: bool) -> float:
    """The share of ``grade``'s positive mass that lies in the left (or right) half."""
    pos = np.clip(np.nan_to_num(maps[grade]), 0, None)
    w = pos.shape[-1] // 2
    return float((pos[:, :w] if left else pos[:, w:]).sum() / max(pos.sum(), 1e-12))


def focus(maps: np.ndarray, grade: int, left: bool) -> float:
    """Of all classes' positive mass in one half, the share of the grade whose texture is there."""
    pos = np.clip(np.nan_to_num(maps), 0, None)
    w = pos.shape[-1] // 2
    part = pos[:, :, :w] if left else pos[:, :, w:]
    return float(part[grade].sum() / max(part.sum(), 1e-12))


def test_the_model_learned_the_grades(grades):
    from alens_gui.core.api import Explainer
    from alens_gui.core.models import load_model

    mg, files, _ = grades
    ex = Explainer(load_model(str(files["checkpoint"]), arch=GRADENET, labels=files["labels"]))
    # the model declares its own input (64 x 64, mean/std 0.5): no flags needed
    assert ex.loaded.input_size == (64, 64) and ex.loaded.mean == (0.5, 0.5, 0.5)
    assert ex.class_names == ["grade 1", "grade 2", "grade 3", "grade 4"]
    rng = np.random.default_rng(123)
    hits = [int(np.argmax(ex.predict(mg.to_rgb(mg.texture(g, 64, 64, rng))))) == g for g in range(4) for _ in range(10)]
    assert np.mean(hits) >= 0.9


def test_lens_puts_each_grade_where_its_texture_is(grades, tmp_path):
    _, files, pngs = grades
    rc = main(["explain", *map(str, pngs), "--model", str(files["checkpoint"]), "--arch", GRADENET,
               "--labels", str(files["labels"]), "--classes", CLASSES, "--method", "gradcam",
               "--out", str(tmp_path), "--no-png"])
    assert rc == 0
    base_focus, lens_focus = [], []
    for png in pngs:
        left, right = sides(png.stem)
        with np.load(tmp_path / f"{png.stem}.npz") as z:
            assert list(z["classes"]) == [0, 1, 2, 3] and list(z["class_names"])[2] == "grade 3"
            base, refined = z["base"], z["refined"]
        for grade, on_left in ((left, True), (right, False)):
            lensed = half_fraction(refined, grade, on_left)
            assert lensed >= 0.85, (png.stem, grade, lensed)
            assert lensed >= half_fraction(base, grade, on_left) - 0.01, (png.stem, grade)
            base_focus.append(focus(base, grade, on_left))
            lens_focus.append(focus(refined, grade, on_left))
    # per half, the lens gives the grade that is there a larger share of all classes' mass
    assert np.mean(lens_focus) > np.mean(base_focus) + 0.02, (np.mean(base_focus), np.mean(lens_focus))


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) is not installed")
def test_report_of_own_model_with_a_class_preset(grades, tmp_path):
    _, files, pngs = grades
    out = tmp_path / "grades.pdf"
    rc = main(["report", *map(str, pngs), "--model", str(files["checkpoint"]), "--arch", GRADENET,
               "--labels", str(files["labels"]), "--class-preset", "grades 1-4", "--class-presets",
               str(files["presets"]), "--method", "gradcam", "--out", str(out)])
    assert rc == 0
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    pages = text.split("\f")[:-1]
    assert len(pages) == 1 + len(pngs)
    sha = hashlib.sha256(files["checkpoint"].read_bytes()).hexdigest()
    assert re.search(rf"Checkpoint SHA-256\s+{sha}", pages[0])
    assert re.search(r"Architecture\s+gradenet\.py:GradeNet", pages[0])
    assert re.search(r"Labels file\s+grades\.txt", pages[0])
    assert re.search(r"Model input\s+64 x 64, mean 0\.5, std 0\.5", pages[0])
    assert "preset 'grades 1-4': grade 1, grade 2, grade 3, grade 4" in pages[0]
    for png, page in zip(pngs, pages[1:]):
        assert png.name in page and all(f"grade {g} (p " in page for g in range(1, 5))


def test_torchscript_needs_no_arch_and_gives_the_same_maps(grades, tmp_path, capsys):
    from alens_gui.core.api import Explainer
    from alens_gui.core.models import load_model

    _, files, pngs = grades
    common = ["--labels", str(files["labels"]), "--class-preset", "grades 1-4", "--class-presets",
              str(files["presets"]), "--out", str(tmp_path), "--no-png"]
    rc = main(["explain", str(pngs[0]), "--model", str(files["torchscript"]), "--torchscript", "--input-size", "64",
               "--mean", "0.5", "--std", "0.5", "--method", "ixg", *common])
    assert rc == 0
    ref = Explainer(load_model(str(files["checkpoint"]), arch=GRADENET, labels=files["labels"]))
    expected = ref.explain(pngs[0], "ixg", classes=[0, 1, 2, 3])
    with np.load(tmp_path / f"{pngs[0].stem}.npz") as z:
        np.testing.assert_allclose(z["probs"], expected.probs, rtol=1e-4, atol=1e-6)
        err = np.linalg.norm(z["refined"] - expected.refined) / np.linalg.norm(expected.refined)
        assert err < 1e-4
    # Grad-CAM hooks layers, which a TorchScript model has not: one clear line (--overwrite: the same
    # output name as the run above, which would otherwise be refused before any model work)
    rc = main(["explain", str(pngs[0]), "--model", str(files["torchscript"]), "--torchscript", "--input-size", "64",
               "--method", "gradcam", "--overwrite", *common])
    assert rc == 1
    assert "TorchScript model" in capsys.readouterr().err


def test_dicom_copies_are_windowed_and_localised(grades, tmp_path):
    """12-bit DICOM copies with a VOI window in the tags: read through it, they are the PNGs' pictures."""
    _, files, pngs = grades
    dcms = [p.with_suffix(".dcm") for p in pngs]
    model = ["--model", str(files["checkpoint"]), "--arch", GRADENET, "--labels", str(files["labels"]),
             "--classes", CLASSES, "--method", "gradcam", "--no-png"]
    assert main(["explain", *map(str, dcms), *model, "--out", str(tmp_path)]) == 0
    assert main(["explain", str(pngs[0]), *model, "--out", str(tmp_path / "png")]) == 0
    for dcm in dcms:
        left, right = sides(dcm.stem)
        with np.load(tmp_path / f"{dcm.stem}.npz") as z:
            refined, image, meta = z["refined"], z["image"], json.loads(str(z["meta"]))
        window = meta["source"]["window"]
        assert window["mode"] == "dicom" and (window["center"], window["width"]) == (1600, 1600)
        assert "DOE" not in json.dumps(meta) and "4711" not in json.dumps(meta)
        if dcm.stem == pngs[0].stem:  # the windowed 12-bit values are the 8-bit PNG's picture
            with np.load(tmp_path / "png" / f"{pngs[0].stem}.npz") as z:
                assert np.abs(image - z["image"]).max() < 0.01
        assert half_fraction(refined, left, True) >= 0.85 and half_fraction(refined, right, False) >= 0.85


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) is not installed")
def test_dicom_identifiers_stay_out_of_the_report_unless_asked(grades, tmp_path):
    mg, files, pngs = grades
    dcm = str(pngs[0].with_suffix(".dcm"))
    model = ["--model", str(files["checkpoint"]), "--arch", GRADENET, "--labels", str(files["labels"]),
             "--classes", CLASSES, "--method", "gradcam"]
    values = [v for v in mg.IDENTIFIERS.values()] + ["DOE", "JANE", "4711", "ALENSTEST"]
    plain = tmp_path / "plain.pdf"
    assert main(["report", dcm, *model, "--out", str(plain)]) == 0
    text = subprocess.run(["pdftotext", str(plain), "-"], capture_output=True, text=True, check=True).stdout
    data = plain.read_bytes()
    assert "DICOM" in text and "window" in text  # the page does describe the file and its window
    for v in values:
        assert v not in text and v.encode() not in data
    asked = tmp_path / "asked.pdf"
    assert main(["report", dcm, *model, "--include-identifiers", "--out", str(asked)]) == 0
    text = subprocess.run(["pdftotext", str(asked), "-"], capture_output=True, text=True, check=True).stdout
    assert mg.IDENTIFIERS["PatientID"] in text
