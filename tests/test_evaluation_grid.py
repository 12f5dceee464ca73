"""The grid game for independent evaluators: per-instance values, the pointing game, both sign
rules for signed maps, and pre-built grids read from a folder (untrusted input)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from alens_gui.core.evaluation import (
    GRID_KEYS,
    INSTANCE_COLUMNS,
    format_markdown,
    grid_scores,
    instance_rows,
    make_grids,
    pointing,
    read_grids,
    run_grid_game,
    write_instances,
    write_json,
)
from alens_gui.core.evaluation.data import EvaluationDataError, cell_masks
from alens_gui.core.images import tile_masks

S = 224
TILES = tile_masks(S)


@pytest.fixture(scope="module")
def loaded():
    from alens_gui.core.models import load_model

    return load_model("default", device="cpu")


@pytest.fixture(scope="module")
def grids(loaded):
    return make_grids(loaded, 2, seed=0)


@pytest.fixture(scope="module")
def results(loaded, grids):
    return run_grid_game(loaded, ["ixg", "guided_backprop"], grids=grids)


# --------------------------------------------------------------------------- metrics on hand-made maps
def test_pointing_game_hits_the_tile_of_the_maximum_and_misses_an_empty_map():
    m = np.zeros((4, S, S))
    m[0, 30, 40] = 5.0  # the maximum in tile 0, and mass elsewhere
    m[0, 150:200, 150:200] = 0.01
    scores = grid_scores(m, TILES)
    assert scores[0]["pointing"] == 1.0
    assert [s["pointing"] for s in scores[1:]] == [0.0, 0.0, 0.0]  # maps 1-3 are empty: misses
    # the same map scored against tile 3: most of the mass (25 of 30) is there, yet pointing misses
    other = grid_scores(m[:1], TILES[3:])[0]
    assert other["pointing"] == 0.0 and other["ra"] == pytest.approx(25 / 30, rel=1e-6)
    # a tie between two tiles is a hit for both
    b = np.zeros((S, S))
    b[10, 10] = b[200, 200] = 1.0
    assert pointing(b, TILES[0]) == pointing(b, TILES[3]) == 1.0 and pointing(b, TILES[1]) == 0.0


def test_signed_maps_are_scored_on_the_positive_part_and_on_abs():
    m = np.zeros((1, S, S))
    m[0, 20:90, 20:90] = 1.0  # positive mass in tile 0 (kept inside it by the 5 px blur margin)
    m[0, 130:200, 130:200] = -3.0  # three times as much negative mass in tile 3
    (s,) = grid_scores(m, TILES[:1])
    assert s["ra"] == pytest.approx(1.0)  # the positive-part rule drops the negative tile entirely
    assert s["ra_abs"] == pytest.approx(0.25)  # on |A| the tile holds 1 of 4 units of mass
    assert s["neg_mass"] == pytest.approx(0.75)
    assert s["pointing"] == 1.0  # the maximum of the positive part is in tile 0
    # a non-negative map: both rules agree and there is no negative mass
    (p,) = grid_scores(np.abs(m), TILES[:1])
    assert p["ra"] == pytest.approx(p["ra_abs"]) and p["neg_mass"] == 0.0


# --------------------------------------------------------------------------- real runs
def test_per_instance_values_are_complete_and_their_means_are_the_summary(results, grids):
    inst = results["_instances"]
    assert len(inst) == len(grids) * 4 * 2  # every (grid, tile, method)
    for m in ("ixg", "guided_backprop"):
        mine = [i for i in inst if i["method"] == m]
        assert [(i["grid"], i["tile"]) for i in mine] == [(g, t) for g in range(len(grids)) for t in range(4)]
        assert [i["class"] for i in mine] == [c for g in grids for c in g.classes]
        for k in GRID_KEYS:
            assert np.mean([i["base"][k] for i in mine]) == pytest.approx(results[m]["base"][k], abs=1e-12)
            assert np.mean([i["refined"]["al/none/signed"][k] for i in mine]) == pytest.approx(
                results[m]["al"][k], abs=1e-12)
        assert {i["base"]["pointing"] for i in mine} <= {0.0, 1.0}
    assert results["ixg"]["base"]["n"] == len(inst) // 2


def test_signed_refined_maps_put_mass_below_zero_and_both_rules_are_reported(results):
    gbp = results["guided_backprop"]
    # the lensed map is signed: a real share of its mass is negative, so the two RA rules differ
    assert gbp["al"]["neg_mass"] > 0.1
    assert gbp["al"]["ra"] != pytest.approx(gbp["al"]["ra_abs"], abs=1e-3)
    assert gbp["al"]["ra"] > gbp["base"]["ra"]
    assert results["_meta"]["scoring"]["ra_abs"].startswith("relevance accuracy on |A|")
    table = format_markdown(results)
    assert "| Method | RA | RA on |A| | Pointing game | Negative mass |" in table
    assert "Scoring: RA on the positive part" in table
    paper = format_markdown(results, paper=True)
    assert "Pointing game" in paper and "RA on |A|" in paper


def test_instances_written_as_csv_and_json_pair_base_and_refined(results, tmp_path):
    path = write_instances(results, tmp_path / "inst.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == INSTANCE_COLUMNS
    assert len(rows) == len(results["_instances"]) * len(GRID_KEYS)
    ra = [r for r in rows if r["method"] == "ixg" and r["metric"] == "ra"]
    assert np.mean([float(r["refined"]) for r in ra]) == pytest.approx(results["ixg"]["al"]["ra"], abs=1e-9)
    assert np.mean([float(r["base"]) for r in ra]) == pytest.approx(results["ixg"]["base"]["ra"], abs=1e-9)
    as_json = json.loads(write_instances(results, tmp_path / "inst.json").read_text())
    assert as_json == json.loads(json.dumps(instance_rows(results)))
    # the results JSON keeps them too, and a report with another variant keeps them
    data = json.loads(write_json(results, tmp_path / "r.json").read_text())
    assert len(data["_instances"]) == len(results["_instances"])


# --------------------------------------------------------------------------- pre-built grids
def _write_grids(folder, grids, loaded, tiles=None):
    entries = []
    for i, g in enumerate(grids):
        Image.fromarray((g.image * 255).round().astype(np.uint8)).save(folder / f"g{i}.png")
        names = tiles[i] if tiles else [loaded.class_names[g.classes[0]], g.classes[1], str(g.classes[2]),
                                        loaded.class_names[g.classes[3]].upper().replace(" ", "_")]
        entries.append({"image": f"g{i}.png", "rows": 2, "cols": 2, "tiles": names})
    (folder / "grids.json").write_text(json.dumps({"grids": entries}))


def test_prebuilt_grids_read_back_with_classes_by_name_or_index(loaded, grids, results, tmp_path):
    _write_grids(tmp_path, grids, loaded)
    back = read_grids(loaded, tmp_path)
    assert [g.classes for g in back] == [g.classes for g in grids]
    for a, b in zip(back, grids):
        assert np.array_equal(a.regions, b.regions)
        assert np.abs(a.image - b.image).max() <= 0.5 / 255 + 1e-6  # only the PNG's 8-bit rounding
    again = run_grid_game(loaded, ["ixg"], grids=back, source=str(tmp_path))
    assert again["_meta"]["source"] == str(tmp_path)
    assert again["ixg"]["base"]["ra"] == pytest.approx(results["ixg"]["base"]["ra"], abs=0.02)
    assert again["ixg"]["base"]["pointing"] == pytest.approx(results["ixg"]["base"]["pointing"], abs=0.26)


def test_cell_masks_split_rows_by_columns():
    m = cell_masks(S, 2, 2)
    assert np.array_equal(m, TILES)
    m = cell_masks(10, 1, 3)
    assert m.shape == (3, 10, 10) and m.sum(axis=0).min() == 1 and [int(c.sum()) for c in m] == [30, 30, 40]


@pytest.mark.parametrize("text, message", [
    ('{"grids": []}', "expected"),
    ('{"grids": [{"image": "g0.png", "tiles": [1, 2, 3]}]}', "must list 4 classes"),
    ('{"grids": [{"image": "g0.png", "rows": 9, "tiles": [1]}]}', "whole number from 1 to 8"),
    ('{"grids": [{"image": "g0.png", "tiles": [1, 1, 2, 3]}]}', "a class appears in two tiles"),
    ('{"grids": [{"image": "g0.png", "tiles": [1, 2, 3, 1000]}]}', "out of range"),
    ('{"grids": [{"image": "g0.png", "tiles": [1, 2, 3, "no such thing"]}]}', "matches no class name"),
    ('{"grids": [{"image": "g0.png", "tiles": [1, 2, 3, 4.5]}]}', "class index or a class name"),
    ('{"grids": [{"image": "../outside.png", "tiles": [1, 2, 3, 4]}]}', "outside the grids folder"),
    ('{"grids": [{"image": "missing.png", "tiles": [1, 2, 3, 4]}]}', "missing.png"),
    ('{"grids": [{"image": "grids.json", "tiles": [1, 2, 3, 4]}]}', "grid 1"),
    ('{"grids": NaN}', "not valid JSON"),
    ("[" * 50 + "]" * 50, "nested deeper"),
])
def test_bad_grids_files_are_one_line_errors(loaded, grids, tmp_path, text, message):
    Image.fromarray((grids[0].image * 255).astype(np.uint8)).save(tmp_path / "g0.png")
    (tmp_path / "grids.json").write_text(text)
    with pytest.raises(EvaluationDataError) as exc:
        read_grids(loaded, tmp_path)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_a_huge_grids_file_is_refused_before_parsing(loaded, tmp_path):
    (tmp_path / "grids.json").write_bytes(b" " * (5 * 1024 * 1024))
    with pytest.raises(EvaluationDataError, match="limit"):
        read_grids(loaded, tmp_path)
    with pytest.raises(EvaluationDataError, match="no grids.json"):
        read_grids(loaded, tmp_path / "nothing-here")


def test_cli_grid_on_prebuilt_grids_writes_instances(loaded, grids, tmp_path, capsys):
    from alens_gui.cli import main

    _write_grids(tmp_path, grids[:1], loaded)
    rc = main(["evaluate", "grid", "--grids", str(tmp_path), "--methods", "gradcam", "--device", "cpu",
               "--no-progress", "--json", str(tmp_path / "r.json"), "--instances", str(tmp_path / "i.csv")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Pointing game" in out and "Scoring:" in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["_meta"]["n"] == 1 and data["_meta"]["grids"][0]["classes"] == grids[0].classes
    with open(tmp_path / "i.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * len(GRID_KEYS) and {r["tile"] for r in rows} == {"0", "1", "2", "3"}
    # report re-writes the same instances from the results file, without the model
    assert main(["evaluate", "report", "--inputs", str(tmp_path / "r.json"),
                 "--instances", str(tmp_path / "j.csv")]) == 0
    assert (tmp_path / "j.csv").read_text() == (tmp_path / "i.csv").read_text()
    capsys.readouterr()
    (tmp_path / "grids.json").write_text('{"grids": [{"image": "../x.png", "tiles": [1, 2, 3, 4]}]}')
    assert main(["evaluate", "grid", "--grids", str(tmp_path), "--methods", "gradcam", "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("alens: error:") and "outside the grids folder" in err and "\n" not in err


def test_a_results_file_with_malformed_instances_is_one_line(tmp_path, capsys):
    from alens_gui.cli import main

    bad = {"_meta": {"protocol": "grid", "model": "m", "n": 1, "seed": 0}, "_instances": [{"grid": 0, "refined": 3}]}
    (tmp_path / "r.json").write_text(json.dumps(bad))
    assert main(["evaluate", "report", "--inputs", str(tmp_path / "r.json"), "--instances",
                 str(tmp_path / "i.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "alens: error: per-instance entry 1 of these results is malformed"
    assert not (tmp_path / "i.csv").exists()


# --------------------------------------------------------------------------- through the batch engine
@pytest.fixture
def one_thread():
    """One torch thread: kernels sum in the same order whatever the batch size (tests/test_batch.py
    explains: with more, a batched kernel's rounding can flip a ReLU6 kink)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_grids_through_the_batch_engine_give_the_maps_and_scores_of_the_grid_by_grid_path(loaded, grids,
                                                                                           one_thread):
    """``run_grid_game`` goes through the batch engine (grids composed ahead, B per forward pass, each
    with its own tile classes, scored on the writer thread): every map equals the grid-by-grid
    ``compute_base`` of the grid's tile classes, and the values equal batch size 1, in the same order."""
    from alens_gui.core.evaluation.common import base_maps, engine_results, prepare
    from alens_gui.core.progress import Progress

    three = grids + make_grids(loaded, 1, seed=5)  # batches of 2: a full one and a last one of one grid
    methods, opts = ["ixg", "gradcam", "ig", "occlusion"], {"ig.steps": 4, "occlusion.window": 56,
                                                            "occlusion.stride": 56}
    run = prepare(loaded, methods, opts, None, None)
    # Occlusion twice: image by image (a CPU's default) and with its perturbed passes shared across grids
    for info, cross in [(i, None) for i in run.infos] + [(run.infos[-1], True)]:
        got = list(engine_results(loaded, three, info, run.options[info.name], Progress(), batch_size=2,
                                  cross_image=cross))
        assert [r.index for r in got] == [0, 1, 2]
        for r, g in zip(got, three):
            one = base_maps(loaded, loaded.to_input(g.image), g.classes, info, run.options[info.name], Progress())
            assert r.classes == list(g.classes)  # the grid's own four tile classes, not a top-k
            assert r.raw.shape == one.shape == (4, *one.shape[1:])
            assert np.abs(r.raw - one).max() <= 1e-5 * np.abs(one).max(), (r.index, info.name, cross)
    done = Progress()
    a = run_grid_game(loaded, methods, grids=three, method_options=opts, batch_size=1)
    b = run_grid_game(loaded, methods, grids=three, method_options=opts, progress=done)  # auto
    assert done.total == len(three) * len(methods) and done.done == done.total
    assert [(i["grid"], i["tile"], i["method"]) for i in a["_instances"]] == \
        [(i["grid"], i["tile"], i["method"]) for i in b["_instances"]]
    for ia, ib in zip(a["_instances"], b["_instances"]):
        for k in GRID_KEYS:
            assert ib["base"][k] == pytest.approx(ia["base"][k], abs=1e-6), (ia["grid"], ia["method"], k)
            for lab in ia["refined"]:
                assert ib["refined"][lab][k] == pytest.approx(ia["refined"][lab][k], abs=1e-6)
    for m in methods:
        for k in GRID_KEYS:
            assert b[m]["al"][k] == pytest.approx(a[m]["al"][k], abs=1e-6)
            assert b[m]["base"][k] == pytest.approx(a[m]["base"][k], abs=1e-6)


def test_insertion_and_deletion_through_the_engine_equal_batch_size_one(loaded, one_thread):
    from alens_gui.core.evaluation import make_composites, run_perturbation

    comps = make_composites(loaded, 3, seed=0)
    kw = dict(modes=("insertion", "deletion"), steps=4, composites=comps, method_options={"ig.steps": 4})
    a = run_perturbation(loaded, ["ixg", "ig"], batch_size=1, **kw)
    b = run_perturbation(loaded, ["ixg", "ig"], batch_size=2, **kw)
    for mode in ("insertion", "deletion"):
        for m in ("ixg", "ig"):
            for lens in ("base", "al"):
                assert b[mode][m][lens]["n"] == a[mode][m][lens]["n"] == 6
                assert b[mode][m][lens]["auc"] == pytest.approx(a[mode][m][lens]["auc"], abs=1e-6)
                np.testing.assert_allclose(b[mode][m][lens]["curve"], a[mode][m][lens]["curve"], atol=1e-6)


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "sanity", "--batch-size", "2"], "--batch-size applies to grid, insertion, deletion and perturbation"),
    (["evaluate", "grid", "--batch-size", "0"], "a batch size is at least 1"),
    (["evaluate", "perturbation", "--grids", "x"], "--grids applies to grid only"),
    (["evaluate", "grid", "--grids", "x", "--folder", "y"], "not both"),
])
def test_grid_only_options_are_usage_errors_before_the_model_loads(argv, message, capsys):
    from alens_gui.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_a_caller_holding_the_model_lock_runs_the_engine_protocols(loaded, grids):
    """The GUI holds the model's lock around its grid game: the engine's threads must not need it
    (the grid scoring on the writer thread does not; the insertion/deletion curves are drawn here)."""
    import threading

    from alens_gui.core.evaluation import make_composites, run_perturbation
    from alens_gui.core.locking import using_model

    done = {}

    def job():
        with using_model(loaded.model):
            done["grid"] = run_grid_game(loaded, ["ixg"], grids=grids[:2], batch_size=2)
            done["curves"] = run_perturbation(loaded, ["ixg"], composites=make_composites(loaded, 2, seed=1),
                                              steps=2, batch_size=2)

    t = threading.Thread(target=job, daemon=True)
    t.start()
    t.join(timeout=600)
    assert not t.is_alive(), "deadlock: the engine waited for a lock its caller holds"
    assert done["grid"]["ixg"]["base"]["n"] == 8 and done["curves"]["insertion"]["ixg"]["base"]["n"] == 4
