"""``--engine ray``: Ray Data actors run the batch engine's per-batch function on a local Ray instance
with 2 CPUs; the npz files equal the local engine's, ``--skip-existing`` skips before submitting,
a failing image is one line and the run goes on."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

try:
    import ray
    import ray.data  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install
    ray = None

needs_ray = pytest.mark.skipif(ray is None, reason="ray is not installed (pip install alens-gui[ray])")

NAMES = ("chelsea", "coffee", "astronaut")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _folder(photos, path):
    path.mkdir()
    for n in NAMES:
        img = photos[n] if photos[n].dtype == np.uint8 else (photos[n] * 255).astype(np.uint8)
        Image.fromarray(img).save(path / f"{n}.png")
    return path


@needs_ray
def test_ray_engine_writes_what_the_local_engine_writes_resumes_and_lists_failures(local_ray, photos, tmp_path,
                                                                                      capsys):
    from alens_gui.cli import main

    src = _folder(photos, tmp_path / "in")
    (src / "broken.png").write_text("this is not a picture")
    common = ["--method", "ixg", "--top-k", "2", "--no-png", "--batch-size", "2"]
    rc = main(["explain", str(src), *common, "--out", str(tmp_path / "local")])
    assert rc == 1  # the broken file fails in both engines
    local_err = capsys.readouterr().err
    rc = main(["explain", str(src), *common, "--engine", "ray", "--ray-actors", "1", "--out", str(tmp_path / "ray")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "local Ray: 2 CPU(s), 0 GPU(s); 1 actor(s), 2 image(s) per batch" in err
    assert "wrote 3 of 4 image(s)" in err and "1 failed" in err
    errors = [line for line in err.splitlines() if line.startswith("alens: error:")]
    assert len(errors) == 1 and "broken.png" in errors[0]
    assert [line for line in local_err.splitlines() if line.startswith("alens: error:")] == errors
    # same names, same maps
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(p.name for p in (tmp_path / "local").iterdir())
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == [f"{n}.npz" for n in sorted(NAMES)]
    for n in NAMES:
        with np.load(tmp_path / "ray" / f"{n}.npz") as r, np.load(tmp_path / "local" / f"{n}.npz") as loc:
            assert list(r["classes"]) == list(loc["classes"])
            for key in ("base", "refined", "image"):
                np.testing.assert_allclose(r[key], loc[key], rtol=1e-5,
                                           atol=1e-5 * float(np.nanmax(np.abs(loc[key]))))
    # resumed: what is on disk is skipped before anything is submitted
    (tmp_path / "ray" / "coffee.npz").unlink()
    (src / "broken.png").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ray").iterdir()}
    rc = main(["explain", str(src), *common, "--engine", "ray", "--ray-actors", "1", "--skip-existing",
               "--out", str(tmp_path / "ray")])
    assert rc == 0
    err = capsys.readouterr().err
    assert "skipping 2 image(s)" in err and "alens: 1 image(s);" in err and "wrote 1 of 3" in err
    assert (tmp_path / "ray" / "coffee.npz").exists()
    assert all((tmp_path / "ray" / n).stat().st_mtime_ns == t for n, t in before.items())
    assert ray.is_initialized()  # the CLI leaves a Ray it did not start running


@needs_ray
def test_ray_report_pages_come_in_input_order(local_ray, photos, tmp_path, capsys):
    from pypdf import PdfReader

    from alens_gui.cli import main

    src = _folder(photos, tmp_path / "in")
    out = tmp_path / "r.pdf"
    rc = main(["report", str(src), "--method", "ixg", "--top-k", "2", "--engine", "ray", "--ray-actors", "1",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    text = "\n".join(page.extract_text() for page in PdfReader(out).pages)
    positions = [text.find(f"{n}.png") for n in sorted(NAMES)]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)


@pytest.mark.parametrize("command", ["explain", "report"])
def test_without_ray_engine_ray_says_how_to_install_it_before_any_model_work(command, photos, tmp_path,
                                                                             monkeypatch, capsys):
    import sys

    from alens_gui.cli import main

    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the extra sees: ImportError
    loaded = []
    monkeypatch.setattr("alens_gui.cli.load_from_args", lambda args: loaded.append(args))
    src = _folder(photos, tmp_path / "in")
    out = tmp_path / ("out" if command == "explain" else "r.pdf")
    rc = main([command, str(src), "--engine", "ray", "--out", str(out)])
    assert rc != 0 and not loaded
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and 'pip install "alens-gui[ray]"' in lines[0], lines


@needs_ray
def test_an_actor_sizes_its_passes_from_its_own_memory_and_its_maps_do_not_depend_on_it(photos, tmp_path):
    # The driver cannot see an actor's device: with "auto" each actor chooses its images per pass
    # as the local engine does; split into passes of any size, a batch gives the same maps.
    from alens_gui.core.batch import choose_batch_size
    from alens_gui.core.raybatch import BatchActor
    from alens_gui.core.settings import ClassSet, RunSettings

    src = _folder(photos, tmp_path / "in")
    settings = RunSettings("ixg", {}, ClassSet.from_request(top_k=2))
    kw = dict(source="default", device="cpu")
    auto = BatchActor(kw, settings)
    assert auto.chunk == choose_batch_size(auto.loaded, settings, "auto") >= 1
    one = BatchActor(kw, settings, chunk=1)
    assert one.chunk == 1
    batch = {"index": np.arange(3), "path": np.array([str(src / f"{n}.png") for n in NAMES], dtype=object),
             "name": np.array([f"{n}.png" for n in NAMES], dtype=object),
             "stem": np.array(list(NAMES), dtype=object)}
    a, b = auto(batch), one(batch)
    assert list(a["status"]) == list(b["status"]) == ["explained"] * 3
    from alens_gui.core.raybatch import RayRow, explanation_from_row

    for n, x, y in zip(NAMES, a["npz"], b["npz"]):
        ex, ey = (explanation_from_row(RayRow(0, n, "explained", npz=bytes(v))) for v in (x, y))
        assert list(ex.classes) == list(ey.classes)
        np.testing.assert_allclose(ex.refined, ey.refined, rtol=1e-5, atol=1e-5 * float(np.abs(ey.refined).max()))
