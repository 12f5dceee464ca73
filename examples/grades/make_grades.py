"""A clinician's own model, end to end, on synthetic data: ``python examples/grades/make_grades.py OUT``.

Four "grades" are oriented stripe textures of four densities (periods of 3, 5, 8 and 13
pixels, random angle, phase, contrast and noise), standing in for e.g. tissue patterns
of increasing severity. The script

1. trains :class:`gradenet.GradeNet` on 64 x 64 images of single grades (seconds on a CPU),
2. writes ``OUT/grades.pt`` (a plain ``state_dict``), ``OUT/grades.txt`` (class names, one a
   line), ``OUT/gradenet_scripted.pt`` (the same network as TorchScript: no ``--arch``
   needed) and ``OUT/class_presets.json`` (a named class set "grades 1-4"),
3. writes test images in ``OUT/images``: each 64 x 64 with the left half of one grade and
   the right half of another (``left2_right4.png``), as 8-bit PNG and as 12-bit DICOM
   Secondary Capture files (``.dcm``, with a VOI window in the tags and made-up patient
   identifiers, so that reading, windowing and identifier protection are exercised).

Then explain and report them with ``alens`` (see the README, "Using your own model").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

PERIODS = (3.0, 5.0, 8.0, 13.0)
NAMES = tuple(f"grade {g}" for g in range(1, len(PERIODS) + 1))
SIZE = 64
#: The stored 12-bit values of a texture span [LOW, HIGH]; the DICOM window maps them to [0, 1].
LOW, HIGH = 800.0, 2400.0
#: The made-up identifiers written into the DICOM test files (never real people).
IDENTIFIERS = {"PatientName": "DOE^JANE^ALENSTEST", "PatientID": "ALENS-4711-TEST",
               "PatientBirthDate": "19700101", "InstitutionName": "Alens Test Hospital"}
#: Pairs (left grade, right grade), 0-based, of the composed test images.
TEST_PAIRS = ((0, 2), (2, 0), (1, 3), (3, 1))


def texture(grade: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A grade's texture as floats in [0, 1]: stripes of the grade's period at a random angle."""
    period = PERIODS[grade] * rng.uniform(0.9, 1.1)
    angle = rng.uniform(0.0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    wave = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + rng.uniform(0, 2 * np.pi))
    img = rng.uniform(0.35, 0.65) + rng.uniform(0.15, 0.3) * wave + rng.normal(0.0, 0.05, (h, w))
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def composite(left: int, right: int, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """A ``size`` x ``size`` image: grade ``left`` in the left half, grade ``right`` in the right half."""
    half = size // 2
    return np.concatenate([texture(left, size, half, rng), texture(right, size, size - half, rng)], axis=1)


def to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=-1)


def _gradenet():
    """The architecture class from gradenet.py beside this script (as ``--arch`` loads it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gradenet", Path(__file__).resolve().with_name("gradenet.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.GradeNet


def train(seed: int = 0, per_grade: int = 80, max_epochs: int = 12, log=print):
    """Train a GradeNet on single-grade images until it is right on 98 % of them; returns the model."""
    import torch
    from torch import nn

    GradeNet = _gradenet()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = np.stack([to_rgb(texture(g, SIZE, SIZE, rng)) for g in range(len(PERIODS)) for _ in range(per_grade)])
    y = torch.from_numpy(np.repeat(np.arange(len(PERIODS)), per_grade))
    x = torch.from_numpy((x.transpose(0, 3, 1, 2) - 0.5) / 0.5)  # GradeNet.mean / std
    model = GradeNet(num_classes=len(PERIODS))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a net this small trains faster on one thread than on a busy pool
    try:
        for epoch in range(max_epochs):
            model.train()
            for idx in torch.randperm(len(y)).split(32):
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                acc = float((model(x).argmax(1) == y).float().mean())
            log(f"epoch {epoch + 1}: training accuracy {acc:.3f}")
            if acc >= 0.98:
                break
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def write_dicom(path: Path, gray: np.ndarray, identifiers: dict | None = None) -> Path:
    """A minimal Secondary Capture DICOM: 12-bit values in 16 bits, MONOCHROME2, a VOI window in the tags.

    ``gray`` in [0, 1] is stored as ``LOW + gray * (HIGH - LOW)``; the window (centre and width
    of that range) maps it back to [0, 1]. Read without the window, as plain 16-bit data, the
    image would be a dim, nearly black picture: the trained model would not see its grades.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    for key, value in (identifiers or {}).items():
        setattr(ds, key, value)
    ds.Rows, ds.Columns = gray.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter = (LOW + HIGH) / 2
    ds.WindowWidth = HIGH - LOW
    values = np.round(LOW + np.clip(gray, 0.0, 1.0) * (HIGH - LOW)).astype("<u2")
    ds.PixelData = values.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def write_test_images(folder: Path, seed: int = 1, dicom: bool = True) -> list[tuple[Path, int, int]]:
    """Composed test images as PNG (and DICOM): ``[(png path, left grade, right grade), ...]``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for left, right in TEST_PAIRS:
        gray = composite(left, right, rng)
        stem = f"left{left + 1}_right{right + 1}"
        png = folder / f"{stem}.png"
        Image.fromarray(np.round(gray * 255).astype(np.uint8)).save(png)
        if dicom:
            write_dicom(folder / f"{stem}.dcm", gray, IDENTIFIERS)
        out.append((png, left, right))
    return out


def write_all(out: Path, seed: int = 0, log=print) -> dict[str, Path]:
    """Train and write every file the walk-through uses; returns their paths by role."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = train(seed, log=log)
    log(f"trained in {time.perf_counter() - t0:.1f} s")
    files = {"checkpoint": out / "grades.pt", "labels": out / "grades.txt",
             "torchscript": out / "gradenet_scripted.pt", "presets": out / "class_presets.json",
             "images": out / "images"}
    torch.save(model.state_dict(), files["checkpoint"])
    files["labels"].write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    with warnings.catch_warnings():  # torch 2.10+ marks TorchScript deprecated; its files still load
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(model).save(str(files["torchscript"]))
    files["presets"].write_text(json.dumps({"grades 1-4": list(NAMES), "grades 1 and 3": [0, 2]}, indent=2))
    write_test_images(files["images"])
    return files


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder for the model, labels, presets and test images")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    files = write_all(args.out, args.seed)
    for role, path in files.items():
        print(f"{role:12s} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
