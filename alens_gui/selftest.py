"""``alens-gui --self-test``: prove an installation works end to end, offscreen, in a few seconds.

Each step is a small function that takes the shared :class:`SelfTest` state, does one thing a
user would do (load the model, explain a photograph, re-lens, mask, render, save) with the real
model and a real photograph, checks the result and returns a one-line summary. The runner prints
one line per step and stops at the first failure, naming it (exit status 1), so a bundle with a
missing file, library, Qt plugin or decoder fails here rather than in a user's hands.

It needs no display and no network: ``QT_QPA_PLATFORM`` is set to ``offscreen`` before Qt loads.
Run it as ``alens-gui --self-test`` (also inside the desktop bundle) or ``python -m alens_gui.selftest``.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

SAMPLE = "chelsea"
METHODS = ("ixg", "gradcam")
K = 3


class SelfTestError(Exception):
    """A step's result is wrong (as opposed to an exception from the code it drives)."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SelfTestError(message)


@dataclass
class SelfTest:
    """What the steps hand on to each other; ``folder`` is where files are written."""

    folder: Path
    explainer: object = None
    image: np.ndarray | None = None
    explanations: dict = field(default_factory=dict)
    mask: np.ndarray | None = None


def _first(state: SelfTest):
    check(bool(state.explanations), "no explanation to work on (the explain step did not run)")
    return state.explanations[METHODS[0]]


# --------------------------------------------------------------------------------------------
# The steps, in order. Each returns a short summary for its line.
# --------------------------------------------------------------------------------------------
def step_model(state: SelfTest) -> str:
    """Load the default model (the bundled EfficientNet-Lite0 weights, the ImageNet names)."""
    from alens_gui.core.api import Explainer

    ex = Explainer.default()
    names = ex.class_names
    check(len(names) == 1000, f"expected the 1000 ImageNet class names, got {len(names)}")
    state.explainer = ex
    return f"{ex.loaded.name} on {ex.loaded.device_label()}, {len(names)} class names"


def step_samples(state: SelfTest) -> str:
    """Read every sample photograph (bundled with scikit-image; no download)."""
    from alens_gui.core.images import sample_images

    images = sample_images()
    missing = {"chelsea", "coffee", "rocket", "astronaut", "stereo_motorcycle", "cat"} - set(images)
    check(not missing, f"sample photographs missing: {', '.join(sorted(missing))}")
    for name, img in images.items():
        check(img.ndim == 3 and img.shape[-1] == 3 and 0 <= img.min() and img.max() <= 1,
              f"sample {name} is not an RGB image in [0, 1] (shape {img.shape})")
    state.image = images[SAMPLE]
    return f"{len(images)} photographs ({', '.join(images)})"


def step_explain(state: SelfTest) -> str:
    """Explain the cat photograph with two methods for the top-3 classes."""
    check(state.explainer is not None and state.image is not None, "needs the model and a photograph")
    ex = state.explainer
    parts = []
    for method in METHODS:
        expl = ex.explain(state.image, method=method, top_k=K)
        check(expl.k == K and expl.refined.shape == (K, *expl.shape), f"{method}: maps of shape {expl.refined.shape}")
        for name in ("base", "distribution", "refined"):
            check(bool(np.isfinite(getattr(expl, name)).all()), f"{method}: the {name} maps are not finite")
        check(bool(np.abs(expl.base).max() > 0), f"{method}: the base maps are all zero")
        total = expl.distribution.sum(axis=0)
        check(bool(np.allclose(total, 1.0, atol=1e-4)), f"{method}: the class distribution does not sum to 1")
        state.explanations[method] = expl
        parts.append(expl.method_label or method)
    top = state.explanations[METHODS[0]]
    check(any("cat" in n.lower() for n in top.class_names),
          f"the cat photograph's top-{K} classes have no cat in them: {top.class_names}")
    return f"{' and '.join(parts)}, top classes {', '.join(top.class_names)}"


def step_relens(state: SelfTest) -> str:
    """Re-lens the cached maps with the VAR preset and with a subset of the classes."""
    from alens_gui.core.lens import preset

    expl = _first(state)
    var = expl.relens(preset("var"))
    check(bool(np.array_equal(var.base, expl.base)), "re-lensing changed the base maps")
    check(not np.array_equal(var.refined, expl.refined), "the VAR lens gave the same refined maps as AL")
    pair = expl.relens(classes=[int(c) for c in expl.classes[:2]])
    check(pair.k == 2 and bool(np.allclose(pair.distribution.sum(axis=0), 1.0, atol=1e-4)),
          "the two-class re-lens has a distribution that does not sum to 1")
    return f"VAR lens and a {pair.k}-class subset from the cached maps"


def step_mask(state: SelfTest) -> str:
    """Mask the top 20% of the first class's refined map and run the model again."""
    from alens_gui.core.masking import probability_shift, top_fraction_mask

    expl = _first(state)
    mask = top_fraction_mask(expl.refined[0], 0.2)
    check(bool(mask.any()), "the top-20% mask is empty")
    res = probability_shift(state.explainer.loaded, expl.image, mask, expl.classes, "blur")
    state.mask = mask
    check(bool(np.allclose(res.before, expl.probs, rtol=1e-3, atol=1e-5)),
          "the unmasked probabilities differ from the explanation's")
    check(bool(np.isfinite(res.after).all()), "the masked probabilities are not finite")
    return (f"{res.fraction:.0%} blurred: p({expl.class_names[0]}) "
            f"{res.before[0]:.3f} -> {res.after[0]:.3f}")


def step_qt(state: SelfTest) -> str:
    """Start Qt offscreen, import every window module, render a map with a pyqtgraph ImageItem."""
    import importlib
    import pkgutil

    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QIcon, QImage, QPainter
    from PySide6.QtWidgets import QGraphicsScene

    import alens_gui.qt as qt_pkg
    from alens_gui._resources import resource_path
    from alens_gui.qt.appinfo import make_app

    app = make_app([sys.argv[0]])
    for mod in pkgutil.iter_modules(qt_pkg.__path__):
        importlib.import_module(f"alens_gui.qt.{mod.name}")
    import pyqtgraph as pg

    icon = QIcon(str(resource_path("icon.png")))
    check(not icon.isNull(), "the window icon (resources/icon.png) could not be loaded")

    amap = _first(state).refined[0].astype(np.float32)
    lo, hi = float(amap.min()), float(amap.max())
    check(hi > lo, "the refined map is constant")
    h, w = amap.shape
    item = pg.ImageItem(amap, axisOrder="row-major", levels=(lo, hi))
    scene = QGraphicsScene()
    scene.addItem(item)
    qimg = QImage(w, h, QImage.Format.Format_RGB32)
    qimg.fill(0)
    painter = QPainter(qimg)
    scene.render(painter, QRectF(0, 0, w, h), item.boundingRect())
    painter.end()
    ptr = qimg.constBits()
    rgb = np.frombuffer(ptr, np.uint8, count=qimg.sizeInBytes()).reshape(h, qimg.bytesPerLine() // 4, 4)[:, :w, :3]
    grey = rgb.astype(np.float64).mean(axis=-1)
    expected = (amap - lo) / (hi - lo)
    r = float(np.corrcoef(grey.ravel(), expected.ravel())[0, 1])
    check(r > 0.99, f"the rendered map does not match the data (correlation {r:.3f})")
    return f"{app.platformName()} platform, Qt {pg.Qt.QtCore.qVersion()}, pyqtgraph {pg.__version__}, render r = {r:.4f}"


def step_window(state: SelfTest) -> str:
    """Open the real main window offscreen, let its start-up work (the model) finish, draw it."""
    from PySide6.QtCore import QThreadPool, qInstallMessageHandler

    from alens_gui.qt.appinfo import make_app
    from alens_gui.qt.window import MainWindow

    app = make_app([sys.argv[0]])
    pool = QThreadPool.globalInstance()

    def model_ready(win) -> bool:
        session = getattr(win, "session", None)
        return not hasattr(session, "model") or session.model is not None

    def quiet(mode, context, message):  # the offscreen platform's one harmless complaint
        if "propagateSizeHints" not in message:
            sys.stderr.write(message + "\n")

    previous = qInstallMessageHandler(quiet)
    with tempfile.TemporaryDirectory(prefix="alens-selftest-config-") as cfg:
        win = MainWindow(config_dir=cfg, autorun=False)
        try:
            win.resize(1200, 800)
            win.show()
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 300:
                app.processEvents()
                if time.perf_counter() - t0 > 0.5 and pool.activeThreadCount() == 0 and model_ready(win):
                    break
                time.sleep(0.01)
            check(pool.activeThreadCount() == 0 and model_ready(win),
                  "the window did not load its model within 300 s")
            for _ in range(10):
                app.processEvents()
            image = win.grab().toImage()
            title = win.windowTitle()
        finally:
            win.close()
            pool.waitForDone(60_000)
            app.processEvents()
            qInstallMessageHandler(previous)
    check(not image.isNull() and image.width() >= 600, "the window could not be drawn")
    grey = np.array([[image.pixelColor(x, y).value() for x in range(0, image.width(), 7)]
                     for y in range(0, image.height(), 7)], dtype=np.float64)
    check(float(grey.std()) > 5, "the drawn window is blank")
    return f"{title!r}, {image.width()} x {image.height()} px"


def step_png(state: SelfTest) -> str:
    """Write the annotated figure of the first explanation as PNG and read it back."""
    from alens_gui.core.export import render_figure
    from alens_gui.core.images import read_image

    path = render_figure(_first(state), state.folder / f"{SAMPLE}-{METHODS[0]}.png")
    check(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG file")
    img = read_image(path)
    check(img.shape[0] > 200 and img.shape[1] > 200 and float(img.std()) > 0.05, f"{path.name} looks empty")
    return f"{path.name}, {img.shape[1]} x {img.shape[0]} px, {path.stat().st_size // 1024} KiB"


def step_session(state: SelfTest) -> str:
    """Save a session file (``.alens``: state, maps, mask), reopen it and re-lens what it holds."""
    from alens_gui.core.lens import preset
    from alens_gui.core.sessionfile import load_session, save_session

    expl = _first(state)
    saved_state = {"image": f"sample:{SAMPLE}", "method": METHODS[0], "classes": [int(c) for c in expl.classes]}
    path = save_session(state.folder / f"{SAMPLE}-{METHODS[0]}.alens", saved_state, expl, state.mask)
    data = load_session(path)
    back = data.explanation
    check(back is not None, "the session file holds no explanation")
    check(data.state.get("classes") == saved_state["classes"], "the saved state differs")
    check(bool(np.array_equal(back.refined, expl.refined)), "the saved refined maps differ")
    check(list(back.class_names) == list(expl.class_names), "the saved class names differ")
    if state.mask is not None:
        check(data.mask is not None and bool(np.array_equal(data.mask, state.mask)), "the saved mask differs")
    var = back.relens(preset("var"))
    check(bool(np.allclose(var.refined, expl.relens(preset("var")).refined, atol=1e-6)),
          "the reopened session re-lenses differently")
    return f"{path.name}, {path.stat().st_size // 1024} KiB, reopened and re-lensed identically"


def step_dicom(state: SelfTest) -> str:
    """Round-trip a photograph through DICOM with each pylibjpeg decoder (RLE, JPEG 2000, JPEG)."""
    from PIL import Image
    from pydicom import dcmread, uid
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.pixels import pixel_array

    check(state.image is not None, "needs a photograph")
    rgb = np.ascontiguousarray((state.image[:96, :128] * 255).round().astype(np.uint8))

    def dataset(pixels: bytes, syntax, photometric: str) -> Dataset:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = uid.SecondaryCaptureImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = uid.generate_uid()
        ds.file_meta.TransferSyntaxUID = syntax
        ds.SOPClassUID = uid.SecondaryCaptureImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.Rows, ds.Columns = rgb.shape[:2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, photometric, 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = pixels
        return ds

    def reread(ds: Dataset) -> np.ndarray:
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        buf.seek(0)
        return pixel_array(dcmread(buf), decoding_plugin="pylibjpeg")

    done = []
    for syntax in (uid.RLELossless, uid.JPEG2000Lossless):
        ds = dataset(rgb.tobytes(), uid.ExplicitVRLittleEndian, "RGB")
        ds.compress(syntax, encoding_plugin="pylibjpeg")
        check(bool(np.array_equal(reread(ds), rgb)), f"{syntax.name}: the decoded pixels differ")
        done.append(syntax.name)
    jpeg = io.BytesIO()
    Image.fromarray(rgb).save(jpeg, "JPEG", quality=95)
    ds = dataset(encapsulate([jpeg.getvalue()]), uid.JPEGBaseline8Bit, "YBR_FULL_422")
    ds["PixelData"].VR = "OB"
    err = float(np.abs(reread(ds).astype(np.float64) - rgb).mean())
    check(err < 4.0, f"JPEG Baseline: decoded pixels are off by {err:.1f} grey levels on average")
    done.append(uid.JPEGBaseline8Bit.name)
    return "; ".join(done)


#: Libraries CUDA's optional parts open that come with the GPU driver or a cluster's RDMA/MPI stack,
#: never with the program: a library that fails to load for want of one of these is fine.
SYSTEM_CUDA_DEPS = ("libcuda.so", "libmlx5.so", "libibverbs.so", "librdmacm.so", "libmpi.so", "libpmix.so",
                    "liboshmem.so", "libfabric.so", "libucs.so", "libucp.so")


def step_cuda(state: SelfTest) -> str:
    """Every CUDA library of this torch build loads (a GPU, if any, ran the explain step)."""
    import re

    import torch

    from alens_gui.qt.platform_check import load_library

    if torch.version.cuda is None:
        return f"CPU build of torch {torch.__version__}: no CUDA libraries to check"
    site = Path(torch.__file__).resolve().parent.parent
    libs = sorted((site / "nvidia").glob("*/lib/*.so*")) + sorted((site / "torch" / "lib").glob("*.so*"))
    check(bool(libs), f"no CUDA libraries beside torch in {site}")
    failed = []
    for lib in libs:
        try:
            load_library(str(lib))
        except OSError as exc:
            missing = re.findall(r"([\w.+-]+\.so[\w.]*): cannot open shared object file", str(exc))
            if not (missing and all(m.startswith(SYSTEM_CUDA_DEPS) for m in missing)):
                failed.append(f"{lib.name} ({exc})")
    check(not failed, "CUDA libraries that do not load: " + "; ".join(failed))
    if torch.cuda.is_available():
        device = state.explainer.loaded.device if state.explainer is not None else None
        check(device is not None and device.type == "cuda", "a GPU is here but the model did not run on it")
        return f"CUDA {torch.version.cuda}: {len(libs)} libraries load; explained on {torch.cuda.get_device_name(0)}"
    return f"CUDA {torch.version.cuda}: {len(libs)} libraries load (no GPU here, so the steps ran on the CPU)"


STEPS: list[tuple[str, Callable[[SelfTest], str]]] = [
    ("model", step_model),
    ("samples", step_samples),
    ("explain", step_explain),
    ("relens", step_relens),
    ("mask", step_mask),
    ("qt", step_qt),
    ("window", step_window),
    ("png", step_png),
    ("session", step_session),
    ("dicom", step_dicom),
    ("cuda", step_cuda),
]


def _utf8_locale() -> None:
    # Qt wants a UTF-8 locale and complains on stderr without one (e.g. under `env -i`)
    import locale

    try:
        codeset = locale.nl_langinfo(locale.CODESET)  # the C library's, whatever Python's UTF-8 mode says
    except (AttributeError, ValueError):  # pragma: no cover - not on Windows
        return
    if "utf" not in codeset.lower():
        os.environ["LC_ALL"] = "C.UTF-8"


def run(
    steps: Sequence[tuple[str, Callable[[SelfTest], str]]] = STEPS,
    folder: str | os.PathLike | None = None,
    out: TextIO | None = None,
) -> int:
    """Run ``steps`` in order, one line each; 0 when all pass, else 1 after the failing step.

    Parameters
    ----------
    steps : sequence of (name, function)
    folder : path, optional
        Where files are written; default a temporary folder, removed afterwards.
    out : text stream, optional
        Where the lines go (default stdout); a failing step's traceback goes to stderr.
    """
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    _utf8_locale()
    out = out or sys.stdout
    width = max((len(name) for name, _ in steps), default=0)
    frozen = "desktop bundle" if getattr(sys, "frozen", False) else f"Python {sys.version.split()[0]}"
    print(f"alens-gui self-test ({frozen}, {sys.executable})", file=out, flush=True)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="alens-selftest-") as tmp:
        state = SelfTest(Path(folder) if folder is not None else Path(tmp))
        state.folder.mkdir(parents=True, exist_ok=True)
        for name, fn in steps:
            t0 = time.perf_counter()
            try:
                summary = fn(state)
            except Exception as exc:  # every failure becomes the failing step's line
                dt = time.perf_counter() - t0
                print(f"FAIL {name:<{width}} {dt:6.1f} s  {type(exc).__name__}: {exc}", file=out, flush=True)
                traceback.print_exc(file=sys.stderr)
                print(f"self-test FAILED at step '{name}'", file=out, flush=True)
                return 1
            dt = time.perf_counter() - t0
            print(f"ok   {name:<{width}} {dt:6.1f} s  {summary}", file=out, flush=True)
    print(f"self-test passed: {len(steps)} steps in {time.perf_counter() - t_all:.1f} s", file=out, flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m alens_gui.selftest [--keep DIR]``."""
    import argparse

    p = argparse.ArgumentParser(prog="alens-gui --self-test", description=__doc__.splitlines()[0])
    p.add_argument("--keep", metavar="DIR", help="write the files to DIR and keep them")
    args = p.parse_args(argv)
    return run(folder=args.keep)


if __name__ == "__main__":
    raise SystemExit(main())
