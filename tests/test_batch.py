"""The batch engine (core/batch.py): the maps equal the per-image path, per method family; order,
failures, cancel and writing behind; ``alens explain DIR`` through it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from alens_gui.core.batch import BATCHED_METHODS, BatchEngine, choose_batch_size, explain_batch, prepare_image
from alens_gui.core.errors import Cancelled
from alens_gui.core.progress import Progress
from alens_gui.core.settings import ClassSet, RunSettings

#: Photographs of different sizes and contents (each its own top-3).
NAMES = ("chelsea", "coffee", "rocket", "astronaut", "cat")


@pytest.fixture
def one_thread():
    """One torch thread: a kernel then sums in the same order whatever the batch size, so the maps
    compare to float rounding; with more threads other kernels for other batch sizes flip a few
    ReLU6 kinks, which the lens's low temperatures magnify near ties (measured: up to 3 % relative
    L2 on SmoothGrad's refined maps with 2 threads, 1e-6 with one)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def images(photos):
    return [photos[n] for n in NAMES]


def _close(batched, single, what):
    """Maps agree to float rounding of batched kernels (relative to the map's scale, BLAS-robust)."""
    assert list(batched.classes) == list(single.classes), what
    np.testing.assert_allclose(batched.probs, single.probs, rtol=1e-4, atol=1e-6, err_msg=what)
    # Elementwise, but for a few pixels in a thousand: where a ReLU6 sits on its kink a batched
    # kernel's rounding can flip it (conftest.assert_maps_agree explains; another BLAS may sum in
    # another order), and the lens's low temperatures and threshold turn a near-tie of the maps
    # either way; the maps as a whole agree.
    for field in ("raw", "base", "distribution", "refined"):
        a, b = getattr(batched, field), getattr(single, field)
        assert a.shape == b.shape, (what, field)
        assert (np.isnan(a) == np.isnan(b)).all(), (what, field)
        a, b = np.nan_to_num(a), np.nan_to_num(b)
        scale = 1.0 if field == "distribution" else (float(np.abs(b).max()) or 1.0)
        off = np.abs(a - b) > 2e-3 * scale
        assert off.mean() < 5e-3, f"{what} {field}: {off.sum()} of {off.size} values differ"
        rel = float(np.sqrt(((a - b) ** 2).sum() / max((b ** 2).sum(), 1e-30)))
        assert rel < 1e-2, f"{what} {field}: relative L2 difference {rel:.2e}"


@pytest.mark.parametrize("method, options", [
    ("ixg", {}),                                        # gradient family
    ("guided_backprop", {}),
    ("gradcam", {}),                                    # CAM family
    ("guided_gradcam", {}),
    ("ig", {"steps": 6, "batch_size": 4}),              # sampled: steps of several images share passes
    ("smoothgrad", {"samples": 5, "batch_size": 3}),
])
def test_batched_maps_equal_the_per_image_path(explainer, images, method, options, one_thread):
    settings = RunSettings(method, options, ClassSet.top(3))
    # 5 images in batches of 2: full batches and a last one of one image
    results = list(BatchEngine(explainer.loaded, settings, batch_size=2).run(images))
    assert [r.index for r in results] == list(range(len(images)))
    classes = set()
    for r, img in zip(results, images):
        assert r.error is None and r.ok, r.error
        single = explainer.explain(img, settings)
        _close(r.explanation, single, f"{method} {NAMES[r.index]}")
        assert r.explanation.method == single.method and r.explanation.top5[0][0] == single.top5[0][0]
        classes.add(tuple(r.explanation.classes))
    assert len(classes) > 1  # each image had its own class set inside a batch
    assert method in BATCHED_METHODS


def test_unbatched_method_runs_image_by_image_with_a_note(explainer, images):
    settings = RunSettings("deeplift", {}, ClassSet.top(2))
    engine = BatchEngine(explainer.loaded, settings, batch_size=2)
    assert not engine.batched and "not batched" in engine.note
    results = list(engine.run(images[:2]))
    for r, img in zip(results, images[:2]):
        _close(r.explanation, explainer.explain(img, settings), "deeplift")


def test_picked_classes_and_explain_batch_function(explainer, images):
    """The per-batch function (shared with Ray) on a picked class set."""
    settings = RunSettings("ixg", {}, ClassSet.picked([285, 967, 812]))
    preps = [prepare_image(explainer.loaded, settings, img, i) for i, img in enumerate(images[:3])]
    out = explain_batch(explainer.loaded, settings, preps)
    for (_prep, expl, err), img in zip(out, images[:3]):
        assert err is None and list(expl.classes) == [285, 967, 812]
        _close(expl, explainer.explain(img, settings), "picked")


def test_failures_are_one_line_and_the_run_goes_on_in_order(explainer, images, tmp_path):
    good = tmp_path / "chelsea.png"
    Image.fromarray((images[0] * 255).astype(np.uint8)).save(good)
    broken = tmp_path / "broken.png"
    broken.write_text("this is not a picture")
    inputs = [good, broken, images[1], tmp_path / "missing.jpg", images[2]]
    results = list(BatchEngine(explainer.loaded, RunSettings("ixg"), batch_size=2).run(inputs))
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert [r.ok for r in results] == [True, False, True, False, True]
    assert "broken.png" in results[1].error and "\n" not in results[1].error
    assert "missing.jpg" in results[3].error
    assert results[0].name == "chelsea.png" and results[2].name == "image 2"


def test_progress_counts_images_and_cancel_keeps_what_was_computed(explainer, images):
    seen = []
    progress = Progress(lambda done, total, msg: seen.append((done, total, msg)))
    results = list(BatchEngine(explainer.loaded, RunSettings("gradcam"), batch_size=2).run(images[:3], progress))
    assert [s[:2] for s in seen] == [(1.0, 3.0), (2.0, 3.0), (3.0, 3.0)] and len(results) == 3

    finished = []
    progress = Progress()

    def finish(result):
        finished.append((result.index, threading.current_thread().name))
        progress.cancel()  # as a user would, while the next batch is computed

    engine = BatchEngine(explainer.loaded, RunSettings("gradcam"), batch_size=1)
    got = []
    with pytest.raises(Cancelled):
        for r in engine.run(images * 3, progress, finish=finish):
            got.append(r.index)
    # the run stopped within a batch or two, and what was computed was still finished (written),
    # on the writer thread, not the caller's
    assert finished and len(finished) <= 3 and [i for i, _ in finished] == list(range(len(finished)))
    assert set(got) <= {i for i, _ in finished}
    assert all(name.startswith("alens-write") for _, name in finished)


def test_batch_size_choice(explainer):
    loaded = explainer.loaded
    assert choose_batch_size(loaded, RunSettings("ixg"), 5) == 5
    auto = choose_batch_size(loaded, RunSettings("ixg"), "auto")
    assert 1 <= auto <= 8
    # more classes per image never gives a larger batch
    assert choose_batch_size(loaded, RunSettings("ixg", classes=ClassSet.top(50)), "auto") <= auto
    with pytest.raises(Exception, match="batch size"):
        choose_batch_size(loaded, RunSettings("ixg"), 0)


def test_npz_is_fast_format_and_reads_back(explainer, images, tmp_path):
    from alens_gui.core import safeio

    expl = explainer.explain(images[2], "ixg")
    path = expl.to_npz(tmp_path / "r.npz")
    with np.load(path) as z:
        for key, value in expl.to_arrays(with_raw=False).items():
            if value.dtype.kind == "f":
                np.testing.assert_array_equal(z[key], value)
            else:
                assert (z[key] == value).all(), key
    arrays = safeio.load_npz(path, "r.npz", max_total=1 << 30)
    np.testing.assert_array_equal(arrays["refined"], expl.refined)


def test_cli_explain_folder_equals_per_image_and_resumes(explainer, photos, tmp_path, capsys):
    from alens_gui.cli import main

    src = tmp_path / "in"
    src.mkdir()
    for n in ("chelsea", "coffee", "astronaut"):
        Image.fromarray(photos[n] if photos[n].dtype == np.uint8 else (photos[n] * 255).astype(np.uint8)).save(
            src / f"{n}.png")
    out = tmp_path / "out"
    rc = main(["explain", str(src), "--method", "gradcam", "--top-k", "3", "--no-png", "--batch-size", "2",
               "--out", str(out)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "2 image(s) per batch" in err and "wrote 3 of 3 image(s)" in err
    for n in ("chelsea", "coffee", "astronaut"):
        single = explainer.explain(src / f"{n}.png", "gradcam", top_k=3)
        with np.load(out / f"{n}.npz") as z:
            assert list(z["classes"]) == list(single.classes)
            np.testing.assert_allclose(z["refined"], single.refined, atol=2e-4 * float(np.abs(single.refined).max()))
    # a resumed run computes nothing that is on disk
    (out / "coffee.npz").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    rc = main(["explain", str(src), "--method", "gradcam", "--top-k", "3", "--no-png", "--skip-existing",
               "--out", str(out)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "skipping 2 image(s)" in err and "wrote 1 of 3" in err
    assert (out / "coffee.npz").exists()
    assert all((out / n).stat().st_mtime_ns == t for n, t in before.items())


def test_bench_folder_prints_images_per_second_for_three_ways(capsys):
    """``alens bench --generate N``: one row per method with the engine, our per-image path and captum
    (no timing is asserted: speed is a benchmark, not a test)."""
    from alens_gui.cli import main

    rc = main(["bench", "--generate", "4", "--methods", "gradcam", "--top-k", "2", "--batch-size", "2"])
    assert rc == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| Grad-CAM"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:4] == ["2", "4", "2"]
    ips = [float(c) for c in cells[4:7]]
    assert all(v > 0 for v in ips)
    assert "generated photographs" in out and "load average" in out


def test_bench_folder_perturbation_row_has_captum_and_the_engine_one_by_one(capsys):
    """A perturbation row: captum's FeatureAblation per class as the peer, and a fourth way (the engine
    with each image's perturbed passes alone) against the engine sharing them across images."""
    from alens_gui.cli import main

    rc = main(["bench", "--generate", "3", "--methods", "feature_ablation", "--top-k", "2", "--batch-size", "2"])
    assert rc == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| Feature Ablation"))
    assert "segments=25" in row
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:4] == ["2", "3", "2"]
    ips = [float(c) for c in cells[4:7] + cells[9:10]]
    assert all(v > 0 for v in ips)
    ratio = float(cells[10])
    assert ratio == pytest.approx(ips[3] / ips[0], rel=0.02)  # time shared / time one by one


def test_generated_folder_is_the_same_every_time(tmp_path):
    from alens_gui.core.bench import generate_folder

    a = generate_folder(tmp_path / "a", 7)
    b = generate_folder(tmp_path / "b", 7)
    assert [p.name for p in a] == [p.name for p in b] and len({p.suffix for p in a}) == 2
    assert all(pa.read_bytes() == pb.read_bytes() for pa, pb in zip(a, b))
    with Image.open(a[0]) as im0, Image.open(a[1]) as im1:
        assert im0.size != im1.size


def test_ctrl_c_in_a_folder_run_keeps_what_was_written(photos, tmp_path):
    """SIGINT while a later batch computes: exit 130, the images already written stay whole, no
    temporary file is left, and --skip-existing then goes on from there."""
    import re
    import signal
    import subprocess
    import sys

    src = tmp_path / "in"
    src.mkdir()
    for i, n in enumerate(("chelsea", "coffee", "astronaut", "rocket", "cat", "chelsea")):
        Image.fromarray((np.asarray(photos[n]) * 255).round().astype(np.uint8)).save(src / f"{i}_{n}.png")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "alens_gui.cli", "explain", str(src), "--method", "ig", "-O", "steps=100",
         "--top-k", "2", "--no-png", "--batch-size", "2", "--out", str(out)],
        stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    try:
        for line in proc.stderr:  # the first image's class line comes once its batch is written
            lines.append(line)
            if re.match(r"0_chelsea\.png: classes ", line):
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, lines + [rest]
    assert "alens: interrupted after" in rest and "--skip-existing" in rest
    written = sorted(p.name for p in out.iterdir())
    assert "0_chelsea.npz" in written and not any(n.endswith(".part") for n in written)
    for name in written:
        with np.load(out / name) as z:
            assert z["refined"].shape[0] == 2
    assert len(written) < 6


def test_maps_in_the_model_frame_and_the_normalisation_are_public(explainer, photos):
    """For evaluators: the maps on the model's pixels, and how a model input is made."""
    import torch

    expl = explainer.explain(photos["coffee"], "ixg", top_k=3)  # 400 x 600: display and model frames differ
    frame = expl.model_frame()
    h, w = explainer.input_size
    assert all(frame[k].shape == (3, h, w) for k in ("base", "distribution", "refined"))
    np.testing.assert_allclose(frame["base"], expl.raw.sum(axis=1), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(frame["distribution"].sum(0), 1.0, atol=1e-5)
    norm = explainer.normalization
    img = explainer.loaded.model_image(photos["coffee"])
    x = (torch.from_numpy(img).permute(2, 0, 1)[None] - torch.tensor(norm["mean"]).view(1, -1, 1, 1)) \
        / torch.tensor(norm["std"]).view(1, -1, 1, 1)
    torch.testing.assert_close(x, explainer.loaded.to_input(img))


@pytest.mark.parametrize("method, options", [
    ("occlusion", {"window": 48, "stride": 32, "batch_size": 8}),
    ("feature_ablation", {"segments": 12, "batch_size": 5}),
    ("shapley_sampling", {"samples": 2, "segments": 8, "batch_size": 7}),
    ("kernel_shap", {"samples": 12, "segments": 8, "batch_size": 5}),
    ("lime", {"samples": 12, "segments": 8, "batch_size": 5}),
])
def test_perturbed_passes_shared_across_images_equal_the_per_image_path(explainer, images, method, options,
                                                                        one_thread):
    """Perturbation methods with their perturbed inputs of several images in shared forward passes
    (chunks that straddle images: the option batch_size does not divide any image's passes)."""
    settings = RunSettings(method, options, ClassSet.top(2))
    engine = BatchEngine(explainer.loaded, settings, batch_size=3, cross_image=True)
    assert engine.batched and engine.cross_image and "shared passes" in engine.note
    results = list(engine.run(images[:4]))
    assert [r.index for r in results] == [0, 1, 2, 3]
    classes = set()
    for r, img in zip(results, images[:4]):
        assert r.ok, r.error
        _close(r.explanation, explainer.explain(img, settings), f"{method} {NAMES[r.index]}")
        classes.add(tuple(r.explanation.classes))
    assert len(classes) > 1  # each image scored its own classes
    # image by image inside the engine (where sharing does not pay) gives the same maps
    alone = list(BatchEngine(explainer.loaded, settings, batch_size=3, cross_image=False).run(images[:2]))
    for a, b in zip(alone, results[:2]):
        np.testing.assert_allclose(a.explanation.raw, b.explanation.raw, rtol=1e-4,
                                   atol=1e-5 * float(np.abs(b.explanation.raw).max()))
