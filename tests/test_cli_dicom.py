"""``alens explain`` and ``Explainer.explain`` on DICOM, windows, frames, folders; no identifiers out."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from alens_gui.cli import main
from alens_gui.core.export import render_figure

FILES = Path(pydicom.__file__).parent / "data" / "test_files"
PHI = {"PatientName": "Doe^Jane", "PatientID": "PID-0042-XYZ", "PatientBirthDate": "19700101",
       "AccessionNumber": "ACC-998877", "InstitutionName": "St Example Hospital",
       "ReferringPhysicianName": "House^Gregory"}


def _npz(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _source(path: Path) -> dict:
    return json.loads(str(_npz(path)["meta"]))["source"]


def test_cli_window_modes(tmp_path):
    ct = FILES / "CT_small.dcm"
    shutil.copy(ct, tmp_path / "ct_default.dcm")
    shutil.copy(ct, tmp_path / "ct_manual.dcm")
    rc = main(["explain", str(tmp_path / "ct_default.dcm"), str(FILES / "MR_small.dcm"), "--top-k", "2",
               "--out", str(tmp_path / "o"), "--no-png"])
    assert rc == 0
    assert _source(tmp_path / "o" / "ct_default.npz")["window"]["mode"] == "auto"  # CT_small has no window
    mr = _npz(tmp_path / "o" / "MR_small.npz")
    assert str(mr["window_mode"]) == "dicom" and list(mr["window"]) == [600, 1600]
    rc = main(["explain", str(tmp_path / "ct_manual.dcm"), "--window=-600,1500", "--top-k", "2",
               "--out", str(tmp_path / "o"), "--no-png"])
    assert rc == 0
    z = _npz(tmp_path / "o" / "ct_manual.npz")
    assert list(z["window"]) == [-600, 1500] and str(z["window_mode"]) == "manual"
    src = json.loads(str(z["meta"]))["source"]
    assert src["modality"] == "CT" and src["units"] == "HU" and len(src["sha256"]) == 64
    assert src["file"] == "ct_manual.dcm"
    # a narrow lung window and the default show different images to the model
    assert np.abs(z["image"] - _npz(tmp_path / "o" / "ct_default.npz")["image"]).mean() > 0.05


def test_cli_bad_window_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["explain", str(FILES / "MR_small.dcm"), "--window", "bright", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "auto, full, dicom or CENTER,WIDTH" in capsys.readouterr().err


def test_cli_frame(tmp_path, capsys):
    two = FILES / "SC_rgb_rle_2frame.dcm"
    out = tmp_path / "o"
    assert main(["explain", str(two), "--frame", "1", "--top-k", "2", "--out", str(out), "--no-png"]) == 0
    assert main(["explain", str(two), "--top-k", "2", "--out", str(out), "--no-png"]) == 0
    f1, f0 = _npz(out / "SC_rgb_rle_2frame_frame1.npz"), _npz(out / "SC_rgb_rle_2frame.npz")
    src = json.loads(str(f1["meta"]))["source"]
    assert (src["frame"], src["n_frames"]) == (1, 2)
    np.testing.assert_allclose(f1["image"], 1.0 - f0["image"], atol=1e-5)  # frame 1 is the negative
    capsys.readouterr()
    assert main(["explain", str(two), "--frame", "2", "--out", str(out), "--no-png"]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("alens: error")]
    assert err == ["alens: error: SC_rgb_rle_2frame.dcm: no frame 2; the file has 2 frames (0 to 1)"]


def test_cli_corrupt_dicom_is_one_line(tmp_path, capsys):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes((FILES / "CT_small.dcm").read_bytes()[:20_000])
    rc = main(["explain", str(bad), str(FILES / "MR_small.dcm"), "--top-k", "2", "--out", str(tmp_path / "o"),
               "--no-png"])
    assert rc == 1 and (tmp_path / "o" / "MR_small.npz").is_file()  # the good file is still explained
    err = capsys.readouterr().err.splitlines()
    lines = [ln for ln in err if ln.startswith("alens: error")]
    assert len(lines) == 1 and "broken.dcm" in lines[0] and "truncated" in lines[0]
    assert "wrote 1 of 2 image(s)" in err[-1]


def test_cli_folder_recursive(tmp_path, capsys):
    from skimage import data

    src = tmp_path / "in"
    (src / "sub1").mkdir(parents=True)
    (src / "sub2").mkdir()
    Image.fromarray(data.chelsea()).save(src / "cat.png")
    shutil.copy(FILES / "MR_small.dcm", src / "sub1" / "scan.dcm")
    shutil.copy(FILES / "CT_small.dcm", src / "sub2" / "scan.dcm")  # the same name in another folder
    shutil.copy(FILES / "SC_rgb_rle.dcm", src / "sub2" / "IM0001")  # DICOM without a suffix
    (src / "notes.txt").write_text("ignored")
    out = src / "results"  # inside the input folder: figures from an earlier run must not be explained
    out.mkdir()
    Image.fromarray(data.coffee()).save(out / "earlier_figure.png")
    assert main(["explain", str(src), "--top-k", "2", "--out", str(out), "--no-png"]) == 0
    assert sorted(p.name for p in out.glob("*.npz")) == ["cat.npz"]
    assert "wrote 1 of 1 image(s)" in capsys.readouterr().err
    # the second run into the same folder replaces nothing unless told; --skip-existing adds the others
    assert main(["explain", str(src), "--recursive", "--top-k", "2", "--out", str(out), "--no-png"]) == 1
    assert "1 of 4 image(s) already have outputs" in capsys.readouterr().err
    assert main(["explain", str(src), "--recursive", "--top-k", "2", "--out", str(out), "--no-png",
                 "--skip-existing"]) == 0
    # images found in a folder are named by their path in it: sub-folders joined by "__"
    assert sorted(p.name for p in out.glob("*.npz")) == ["cat.npz", "sub1__scan.npz", "sub2__IM0001.npz",
                                                         "sub2__scan.npz"]
    assert _source(out / "sub1__scan.npz")["modality"] == "MR" and _source(out / "sub2__scan.npz")["modality"] == "CT"
    err = capsys.readouterr().err
    assert "wrote 3 of 4 image(s)" in err and "1 already there, kept" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["explain", str(empty), "--out", str(tmp_path / "o2")]) == 1
    assert "empty: no images in this folder (use --recursive for sub-folders)" in capsys.readouterr().err


def _write_phi(path: Path) -> Path:
    ds = pydicom.dcmread(FILES / "MR_small.dcm")
    for key, value in PHI.items():
        setattr(ds, key, value)
    ds.save_as(path)
    return path


def _texts_of(folder: Path) -> dict[str, bytes]:
    """Every written file's bytes, with the members of .npz archives decompressed."""
    out = {}
    for p in folder.rglob("*"):
        if p.is_file():
            out[p.name] = p.read_bytes()
            if p.suffix == ".npz":
                with zipfile.ZipFile(p) as z:
                    for member in z.namelist():
                        out[f"{p.name}:{member}"] = z.read(member)
    return out


def test_no_identifiers_leave_by_default(tmp_path, explainer):
    scan = _write_phi(tmp_path / "case7.dcm")
    out = tmp_path / "o"
    assert main(["explain", str(scan), "--top-k", "2", "--out", str(out)]) == 0
    texts = _texts_of(out)
    assert any(name.endswith(".png") for name in texts) and "case7.npz:meta.npy" in texts
    needles = [v.encode() for v in PHI.values()] + [b"Doe", b"House", b"St Example"]
    for name, blob in texts.items():
        for needle in needles:
            assert needle not in blob, (name, needle)
    expl = explainer.explain(scan, "ixg", top_k=2)
    for fmt in ("svg", "pdf"):
        render_figure(expl, out / f"fig.{fmt}")
    caption = expl.caption()
    assert "DICOM window C 600 W 1600" in caption
    assert all(v not in caption and v not in json.dumps(expl.source) for v in PHI.values())
    assert all(v.encode() not in (out / f"fig.{fmt}").read_bytes() for v in PHI.values() for fmt in ("svg", "pdf"))


def test_identifiers_on_request(tmp_path, explainer):
    scan = _write_phi(tmp_path / "case7.dcm")
    out = tmp_path / "o"
    assert main(["explain", str(scan), "--top-k", "2", "--out", str(out), "--no-png", "--include-identifiers"]) == 0
    ids = _source(out / "case7.npz")["identifiers"]
    assert ids["PatientName"] == "Doe^Jane" and ids["PatientID"] == "PID-0042-XYZ"
    expl = explainer.explain(scan, "ixg", top_k=2, include_identifiers=True)
    assert expl.source["identifiers"]["AccessionNumber"] == "ACC-998877"
    assert expl.relens(tau=0.05).source == expl.source  # re-lensing keeps the provenance


def test_api_window_and_frame(explainer):
    two = FILES / "SC_rgb_rle_2frame.dcm"
    e1 = explainer.explain(two, "ixg", top_k=2, frame=1)
    assert e1.source["frame"] == 1 and "frame 1 of 0-1" in e1.caption()
    mr = explainer.explain(FILES / "MR_small.dcm", "ixg", top_k=2, window="full")
    assert mr.source["window"]["mode"] == "full" and mr.source["window"]["lo"] == -32768
    narrow = explainer.explain(FILES / "MR_small.dcm", "ixg", top_k=2, window=(600, 200))
    assert narrow.source["window"]["width"] == 200
    assert np.abs(narrow.image - mr.image).mean() > 0.1
    plain = explainer.explain(np.zeros((32, 32, 3), np.float32) + 0.5, "ixg", top_k=2)
    assert plain.source["format"] == "array" and "window" not in plain.caption()
