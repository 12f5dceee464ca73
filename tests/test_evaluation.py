"""The evaluation suite: metrics on hand-made maps, the randomization cascade, real runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alens_gui.core.errors import AlensError
from alens_gui.core.evaluation import (
    auc,
    cascade,
    cascade_groups,
    cosine,
    format_markdown,
    lens_variants,
    localisation,
    localisation_batch,
    make_composites,
    make_grids,
    map_folder_classes,
    pearson,
    randomization_layers,
    run_grid_game,
    run_perturbation,
    run_sanity,
    save_plots,
    spearman,
    write_json,
)
from alens_gui.core.evaluation.data import EvaluationDataError
from alens_gui.core.evaluation.perturbation import blurred_baseline, perturbation_curve, pixel_order
from alens_gui.core.images import tile_masks
from alens_gui.core.ops import gaussian_kernel1d
from alens_gui.core.progress import Progress

S = 224
TILES = tile_masks(S)


@pytest.fixture(scope="module")
def loaded():
    from alens_gui.core.models import load_model

    return load_model("default", device="cpu")


@pytest.fixture(scope="module")
def grids(loaded):
    return make_grids(loaded, 4, seed=0)


# --------------------------------------------------------------------------- metrics
def test_map_entirely_inside_the_tile_has_ra_one():
    m = np.zeros((S, S))
    m[20:90, 20:90] = 1.0  # the 11 x 11 blur spreads it by 5 px: still inside tile 0
    r = localisation(m, TILES[0])
    assert r["ra"] == pytest.approx(1.0)
    assert r["precision"] == pytest.approx(1.0)
    support = 80 * 80 / (112 * 112)  # blurred support [15, 95)^2 inside a 112^2 tile
    assert r["recall"] == pytest.approx(support)
    assert r["iou"] == pytest.approx(support)
    assert r["f1"] == pytest.approx(2 * support / (1 + support))
    # the same map scored against another tile gets nothing
    assert localisation(m, TILES[3])["ra"] == 0.0


def test_uniform_map_has_ra_one_quarter_for_every_tile():
    rows = localisation_batch(np.full((4, S, S), 0.7), TILES)
    for r in rows:
        assert r["ra"] == pytest.approx(0.25)
        assert r["iou"] == pytest.approx(0.25)
        assert r["precision"] == pytest.approx(0.25)
        assert r["recall"] == pytest.approx(1.0)
        assert r["f1"] == pytest.approx(0.4)


def test_only_the_positive_part_counts():
    m = np.full((S, S), -1.0)
    m[30:40, 30:40] = 2.0
    r = localisation(m, TILES[0])
    assert r["ra"] == pytest.approx(1.0) and r["precision"] == pytest.approx(1.0)
    empty = localisation(-np.ones((S, S)), TILES[0])
    assert empty == {"ra": 0.0, "iou": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_point_on_the_tile_border_spreads_by_the_11x11_sigma2_kernel():
    m = np.zeros((S, S))
    m[111, 50] = 1.0  # last row of tile 0: 6 of the 11 kernel rows fall inside
    r = localisation(m, TILES[0])
    k = gaussian_kernel1d(2.0, 11).double().numpy()
    assert r["ra"] == pytest.approx(k[:6].sum(), rel=1e-6)
    assert r["precision"] == pytest.approx(66 / 121)
    assert r["recall"] == pytest.approx(66 / (112 * 112))
    assert r["iou"] == pytest.approx(66 / (112 * 112 + 55))


def test_auc_of_known_curves():
    assert auc([1, 1, 1, 1]) == pytest.approx(1.0)
    assert auc(np.linspace(0, 1, 11)) == pytest.approx(0.5)
    assert auc([0, 1], [0, 1]) == pytest.approx(0.5)
    assert auc([1, 0, 0, 0, 0]) == pytest.approx(0.125)  # a triangle of width 1/4
    assert auc([0.2, 0.2, 1.0], [0.0, 0.5, 1.0]) == pytest.approx(0.1 + 0.3)
    with pytest.raises(ValueError):
        auc([1.0])


def test_similarities():
    rng = np.random.default_rng(0)
    a = rng.random((16, 16))
    assert spearman(a, np.exp(3 * a)) == pytest.approx(1.0)  # monotone: ranks identical
    assert pearson(a, np.exp(3 * a)) < 0.999  # but not linear
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert cosine(np.eye(4)[0], np.eye(4)[1]) == 0.0
    assert cosine(a, 2 * a) == pytest.approx(1.0)


def test_a_constant_map_has_no_similarity_not_zero():
    from alens_gui.core.evaluation.metrics import similarity

    a = np.random.default_rng(1).random((16, 16))
    for const in (np.zeros_like(a), np.full_like(a, 0.3)):
        assert np.isnan(spearman(a, const)) and np.isnan(pearson(const, a))
        assert all(np.isnan(v) for v in similarity(a, const).values())
        assert all(np.isnan(v) for v in similarity(const, a).values())
    assert np.isnan(cosine(a, np.zeros_like(a)))


def test_sanity_summary_leaves_constant_maps_out_and_counts_them():
    from alens_gui.core.evaluation.metrics import similarity
    from alens_gui.core.evaluation.sanity import _summary

    rng = np.random.default_rng(2)
    a, b = rng.random((8, 8)), rng.random((8, 8))
    pairs = [similarity(a, a), similarity(a, b), similarity(a, np.zeros_like(a))]  # the last is undefined
    step1 = _summary([pairs])
    assert step1["n"] == 3 and step1["undefined"] == [0, 1]
    assert step1["spearman"][0] == 1.0
    assert step1["spearman"][1] == pytest.approx((1.0 + spearman(a, b)) / 2)  # mean of the two defined pairs
    all_out = _summary([[similarity(np.ones_like(a), b)]])
    assert np.isnan(all_out["pearson"][1]) and all_out["undefined"] == [0, 1]


def test_lens_variants_sweep_order_and_labels():
    vs = lens_variants(("al", "var"), ("none", "joint-maxabs"), ("signed", "abs"))
    assert [v.label for v in vs][:3] == ["al/none/signed", "al/none/abs", "al/joint-maxabs/signed"]
    assert len(vs) == 8
    assert vs[4].params.temperatures == (0.1,) and vs[4].params.tau == pytest.approx(0.01)
    assert lens_variants()[0].params.normalize == "none"


# --------------------------------------------------------------------------- inputs
def test_grids_are_seeded_and_tile_classes_are_top1_of_the_tile(loaded, grids):
    again = make_grids(loaded, 4, seed=0)
    assert all(np.array_equal(a.image, b.image) and a.classes == b.classes for a, b in zip(grids, again))
    assert not np.array_equal(make_grids(loaded, 1, seed=1)[0].image, grids[0].image)
    for g in grids:
        assert g.image.shape == (S, S, 3) and len(set(g.classes)) == 4
        tile = g.image[:112, 112:]
        _, x = loaded.preprocess(tile)
        assert int(np.argmax(loaded.probabilities(x))) == g.classes[1]


def test_composites_have_two_classes_on_the_two_halves(loaded):
    (c,) = make_composites(loaded, 1, seed=3)
    assert len(set(c.classes)) == 2
    assert c.regions[0, :, :112].all() and not c.regions[0, :, 112:].any()
    assert c.regions[1].sum() == S * S // 2


def _folder(tmp_path, names):
    from PIL import Image

    rng = np.random.default_rng(0)
    for n in names:
        d = tmp_path / n
        d.mkdir()
        Image.fromarray((rng.random((40, 50, 3)) * 255).astype(np.uint8)).save(d / "a.png")
    return tmp_path


def test_folder_classes_by_index_and_by_name(loaded, tmp_path):
    root = _folder(tmp_path, ["285", "espresso", "Drilling_Platform", "tripod", "moped"])
    mapping = map_folder_classes(root, loaded.class_names)
    assert sorted(mapping) == [285, 540, 665, 872, 967]
    grids = make_grids(loaded, 2, seed=0, folder=root)
    for g in grids:
        assert set(g.classes) <= {285, 540, 665, 872, 967} and len(set(g.classes)) == 4
        for c, src in zip(g.classes, g.sources):
            assert mapping[c][0].as_posix() == src.replace("\\", "/")


def test_folder_classes_list_dicom_files_without_a_suffix(loaded, tmp_path):
    import shutil

    from pydicom.data import get_testdata_file

    root = _folder(tmp_path, ["285", "espresso"])
    shutil.copy(get_testdata_file("CT_small.dcm"), root / "285" / "IM0001")  # as scanners name them
    mapping = map_folder_classes(root, loaded.class_names)
    assert [p.name for p in mapping[285]] == ["a.png", "IM0001"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["n02124075", "espresso"], "WordNet id"),
        (["no such class", "espresso"], "matches no class"),
        (["285", "Egyptian cat"], "second folder"),
        (["1000", "espresso"], "out of range"),
    ],
)
def test_folder_errors_are_clear(loaded, tmp_path, names, message):
    root = _folder(tmp_path, names)
    with pytest.raises(EvaluationDataError, match=message):
        map_folder_classes(root, loaded.class_names)


def test_too_few_classes_in_a_folder(loaded, tmp_path):
    root = _folder(tmp_path, ["285", "967", "540"])
    with pytest.raises(EvaluationDataError, match="at least 4"):
        make_grids(loaded, 1, folder=root)


# --------------------------------------------------------------------------- grid game
def test_grid_game_al_improves_region_attribution(loaded, grids, tmp_path):
    seen = []
    variants = lens_variants(("al",), ("none", "joint-maxabs"))
    res = run_grid_game(loaded, ["ixg", "gradcam"], grids=grids, lens_params_list=variants,
                        progress=Progress(lambda d, t, m: seen.append((d, t))))
    for m in ("ixg", "gradcam"):
        assert res[m]["al"]["ra"] > res[m]["base"]["ra"], m
        assert res[m]["base"]["n"] == 16
        assert set(res[m]["variants"]) == {"al/none/signed", "al/joint-maxabs/signed"}
        assert res[m]["al"]["ra"] == res[m]["variants"]["al/none/signed"]["ra"]  # the first variant is "AL"
        assert sum(c["n"] for c in res[m]["al"]["per_class"].values()) == 16
    # AL keeps fewer pixels: Grad-CAM's precision rises and its recall cannot
    assert res["gradcam"]["al"]["precision"] > res["gradcam"]["base"]["precision"]
    assert res["gradcam"]["al"]["recall"] <= res["gradcam"]["base"]["recall"] + 1e-9
    assert seen and seen[-1][0] == seen[-1][1] == 8  # 4 grids x 2 methods
    table = format_markdown(res)
    assert "| Input × Gradient |" in table and "Lens sweep" in table
    path = write_json(res, tmp_path / "grid.json")
    data = json.loads(path.read_text())
    assert data["gradcam"]["base"]["ra"] == pytest.approx(res["gradcam"]["base"]["ra"])
    (png,) = save_plots(res, tmp_path / "plots")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_grid_game_can_be_cancelled(loaded, grids):
    from alens_gui.core.errors import Cancelled

    p = Progress()
    p.cancel()
    with pytest.raises(Cancelled):
        run_grid_game(loaded, ["ixg"], grids=grids[:1], progress=p)


# --------------------------------------------------------------------------- insertion / deletion
def test_perturbation_curves_run_from_start_to_end_image(loaded, grids):
    img = grids[0].image
    base = blurred_baseline(img)
    score = np.random.default_rng(0).random((S, S))
    cls = grids[0].classes[0]
    ins = perturbation_curve(loaded, img, base, score, cls, "insertion", 4, np.random.default_rng(0))
    dele = perturbation_curve(loaded, img, base, score, cls, "deletion", 4, np.random.default_rng(0))
    p_img = loaded.probabilities(loaded.to_input(img))[cls]
    p_base = loaded.probabilities(loaded.to_input(base))[cls]
    assert ins.shape == (5,)
    assert ins[-1] == pytest.approx(p_img, abs=1e-4) and ins[0] == pytest.approx(p_base, abs=1e-4)
    assert dele[0] == pytest.approx(p_img, abs=1e-4) and dele[-1] == pytest.approx(p_base, abs=1e-4)


def test_ties_are_broken_randomly_not_in_raster_order():
    order = pixel_order(np.zeros((8, 8)), np.random.default_rng(0))
    assert sorted(order) == list(range(64)) and list(order) != list(range(64))
    score = np.zeros((8, 8))
    score[7, 7] = 1.0
    assert pixel_order(score, np.random.default_rng(0))[0] == 63


def test_insertion_deletion_run(loaded):
    out = run_perturbation(loaded, ["gradcam"], n=1, seed=0, steps=4)
    ins, dele = out["insertion"]["gradcam"], out["deletion"]["gradcam"]
    for r in (ins, dele):
        for key in ("base", "al"):
            assert r[key]["n"] == 2 and len(r[key]["curve"]) == 5
            # the mean AUC is the area under the mean curve (the trapezoid rule is linear)
            assert r[key]["auc"] == pytest.approx(auc(r[key]["curve"]), abs=1e-9)
    for key in ("base", "al"):  # insertion starts from the blurred copy, deletion from the intact image
        assert ins[key]["curve"][0] == pytest.approx(dele[key]["curve"][-1], abs=1e-6)
        assert ins[key]["curve"][-1] == pytest.approx(dele[key]["curve"][0], abs=1e-6)
    # a deletion curve starts at the intact image, where the class probability is highest
    assert dele["base"]["curve"][0] > dele["base"]["curve"][-1]
    assert "Deletion AUC (lower is better)" in format_markdown(out["deletion"])


# --------------------------------------------------------------------------- randomization
def test_cascade_randomizes_the_logits_layer_first_and_leaves_the_model_alone(loaded, grids):
    model = loaded.model
    x = loaded.to_input(grids[0].image)
    layers = randomization_layers(model, x)
    modules = dict(model.named_modules())
    assert isinstance(modules[layers[0]], torch.nn.Linear)
    assert modules[layers[0]].out_features == 1000
    assert layers[-1] == "conv_stem"  # the first layer the input meets comes last
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        out_before = model(x)
    groups = cascade_groups(layers, 4)
    first = set(groups[0])
    for step, rmodel in cascade(model, groups, seed=0):
        assert rmodel is not model
        changed = {name for name, mod in rmodel.named_modules()
                   if name in modules and getattr(mod, "weight", None) is not None
                   and mod.weight.shape == modules[name].weight.shape
                   and not torch.equal(mod.weight, modules[name].weight)}
        if step == 1:
            assert changed == first  # only the group next to the logits
        if step == 2:
            assert changed == first | set(groups[1])
            break
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with torch.no_grad():
        assert torch.equal(model(x), out_before)


def test_sanity_run_similarity_drops_and_model_is_restored(loaded, grids, tmp_path):
    x = loaded.to_input(grids[0].image)
    with torch.no_grad():
        out_before = loaded.model(x)
    res = run_sanity(loaded, ["saliency"], grids=grids[:1], steps=3)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), out_before)
    sal = res["saliency"]
    assert res["_meta"]["fractions"][0] == 0.0 and res["_meta"]["fractions"][-1] == pytest.approx(1.0)
    assert sal["base"]["spearman"][-1] < 0.9  # a fully random network gives another map
    for key in ("base", "al"):
        assert len(sal[key]["spearman"]) == 4 and sal[key]["spearman"][0] == 1.0
        assert len(sal[key]["undefined"]) == 4
        last, left_out = sal[key]["spearman"][-1], sal[key]["undefined"][-1]
        # the lensed map of a random network may keep nothing (its maps are near-ties): then the
        # pair is left out and counted, and there is no mean to compare
        assert last < 0.9 or (np.isnan(last) and left_out == sal[key]["n"])
    paths = save_plots(res, tmp_path)
    assert sorted(p.name for p in paths) == sorted(
        f"sanity_{s}{k}.png" for s in ("", "tiles_") for k in ("cosine", "pearson", "spearman"))


def test_sanity_top2_is_the_models_two_best_classes_and_scores_the_top1_map(loaded, grids):
    res = run_sanity(loaded, ["gradcam"], grids=grids[:2], steps=1, class_sets=("top2", "tiles"))
    meta = res["_meta"]
    for g, top in zip(grids[:2], meta["top2"]):
        probs = loaded.probabilities(loaded.to_input(g.image))
        assert top["classes"] == [int(c) for c in np.argsort(-probs)[:2]]
        assert probs[top["classes"][0]] >= probs[top["classes"][1]] >= np.sort(probs)[-2]
    by_set = res["gradcam"]["class_sets"]
    assert by_set["top2"]["base"]["n"] == 2  # one scored map (the top-1 class) per grid
    assert by_set["tiles"]["base"]["n"] == 8  # four tile classes per grid
    assert res["gradcam"]["base"] == by_set["top2"]["base"]  # the first class set is the headline
    # Grad-CAM's base map depends on the class only through the gradient, so it is never constant
    # on the unrandomized model; the counts of left-out pairs stay within the pairs scored.
    for cs, entry in by_set.items():
        for key in ("base", "al"):
            assert all(0 <= u <= entry[key]["n"] for u in entry[key]["undefined"]), cs
    with pytest.raises(AlensError, match="unknown class set"):
        run_sanity(loaded, ["gradcam"], grids=grids[:1], steps=1, class_sets=("best",))


# --------------------------------------------------------------------------- report: paper comparison
def _fake_grid(values: dict) -> dict:
    """A grid results dict with given (base RA, AL RA) per method; other metrics equal to RA."""
    from alens_gui.core.evaluation.metrics import LOCALISATION_KEYS

    out = {}
    for m, (b, a) in values.items():
        out[m] = {"label": m, "base": {k: b for k in LOCALISATION_KEYS}, "al": {k: a for k in LOCALISATION_KEYS},
                  "variants": {"al/none/signed": {k: a for k in LOCALISATION_KEYS}}}
    out["_meta"] = {"protocol": "grid", "model": "m", "n": 1, "seed": 0, "al_variant": "al/none/signed",
                    "lens": {"al/none/signed": {}}}
    return out


def test_paper_averages_use_only_the_methods_both_ran():
    from alens_gui.core.evaluation.summary import average_change, common_methods, paper_average

    res = _fake_grid({"saliency": (0.2, 0.4), "ixg": (0.5, 0.55), "gradcam": (0.4, 0.6)})
    common = common_methods(res, "grid", "ra")
    assert common == ["ixg", "gradcam"]  # Saliency is not in the paper's table
    assert average_change(res, "ra", common) == pytest.approx((10 + 50) / 2)
    assert paper_average("grid", "ra", common) == pytest.approx((37 + 25) / 2)  # the paper's IxG and Grad-CAM
    table = format_markdown(res, paper=True)
    row = next(line for line in table.splitlines() if line.startswith("| Avg. change, the 2 methods in both"))
    assert "+30.0% | +31.0%" in row  # ours and the paper's over the same two methods
    ours_all = next(line for line in table.splitlines() if line.startswith("| Avg. change, all 3"))
    assert f"{(100 + 10 + 50) / 3:+.1f}%" in ours_all and "saliency" in ours_all
    assert "| saliency | 0.200 → 0.400 (+100%) | ours only |" in table


def test_summary_puts_each_method_beside_the_paper_across_benchmarks():
    from alens_gui.core.evaluation.summary import summary_table

    grid = _fake_grid({"saliency": (0.2, 0.4), "ixg": (0.5, 0.55), "gradcam": (0.4, 0.6)})
    table = summary_table({"grid": grid})
    assert "| ixg | +10% | +37% |" in table and "| saliency | +100% | ours only |" in table
    assert "| Avg., the 2 methods in both | +30.0% | +31.0% |" in table
    assert "| Avg., all 3 of ours | +53.3% |  |" in table


def test_lens_choice_ranks_variants_over_all_benchmarks():
    from alens_gui.core.evaluation.summary import lens_choice, lens_choice_table

    labels = ("al/none/signed", "al/none/abs")

    def fake(proto, per_method):  # per_method: {method: {label: value}}
        key = {"grid": "ra", "insertion": "auc", "deletion": "auc"}.get(proto)
        res = {"_meta": {"protocol": proto, "lens": {lab: {} for lab in labels}}}
        for m, vals in per_method.items():
            if proto == "sanity":
                var = {lab: {"spearman": [1.0, v, v], "pearson": [1.0, v, v], "cosine": [1.0, v, v]}
                       for lab, v in vals.items()}
            else:
                var = {lab: {key: v} for lab, v in vals.items()}
            res[m] = {"label": m, "variants": var}
        return res

    signed, absv = labels
    by = {
        "grid": fake("grid", {"ixg": {signed: 0.4, absv: 0.5}, "gbp": {signed: 0.8, absv: 0.8}}),  # abs better
        "insertion": fake("insertion", {"ixg": {signed: 0.10, absv: 0.09}, "gbp": {signed: 0.20, absv: 0.05}}),
        "deletion": fake("deletion", {"ixg": {signed: 0.02, absv: 0.01}, "gbp": {signed: 0.03, absv: 0.09}}),
        "sanity": fake("sanity", {"ixg": {signed: 0.0, absv: 0.1}, "gbp": {signed: 0.0, absv: 0.2}}),
    }
    c = lens_choice(by)
    # grid: abs wins ixg, tie on gbp -> signed 1.75, abs 1.25; perturbation: signed wins 3 of 4 -> 1.25 / 1.75;
    # sanity: signed wins both -> 1.0 / 2.0
    assert c["scores"][signed] == pytest.approx({"grid": 1.75, "insertion/deletion": 1.25, "sanity": 1.0,
                                                 "combined": 4.0 / 3})
    assert c["scores"][absv]["combined"] == pytest.approx(5.0 / 3)
    assert c["best"] == signed
    assert c["means"][absv]["grid"] == pytest.approx(0.65)
    assert f"**{signed}**" in lens_choice_table(by)
    only_grid = lens_choice({"grid": by["grid"]})
    assert only_grid["best"] == absv


# --------------------------------------------------------------------------- CLI
def test_cli_evaluate_writes_json_and_table(tmp_path, capsys):
    from alens_gui.cli import main

    rc = main(["evaluate", "grid", "--methods", "gradcam", "--n", "1", "--device", "cpu", "--no-progress",
               "--normalize", "none,joint-maxabs", "--json", str(tmp_path / "r.json")])
    assert rc == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data["gradcam"]) >= {"base", "al", "variants"}
    assert len(data["gradcam"]["variants"]) == 2
    assert "| Grad-CAM |" in capsys.readouterr().out


def test_cli_evaluate_does_not_replace_results_unless_told(tmp_path, capsys, monkeypatch):
    # an evaluation can take hours: a repeated command must not silently replace the last one's results
    import alens_gui.cli_args as cli_args
    from alens_gui.cli import main

    old = tmp_path / "r.json"
    old.write_text('{"earlier": "results"}')
    loads = []
    real = cli_args.load_from_args
    monkeypatch.setattr(cli_args, "load_from_args", lambda args: loads.append(1) or real(args))
    common = ["--methods", "gradcam", "--n", "1", "--device", "cpu", "--no-progress"]
    for argv in (["evaluate", "grid", *common, "--json", str(old)],
                 ["evaluate", "grid", *common, "--instances", str(old)],
                 ["evaluate", "report", "--inputs", str(old), "--json", str(old)]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "already exists; nothing was run or replaced: --overwrite replaces it" in err[0]
    assert old.read_text() == '{"earlier": "results"}' and not loads  # before any model work
    assert main(["evaluate", "grid", *common, "--json", str(old), "--overwrite"]) == 0
    assert "gradcam" in json.loads(old.read_text()) and loads


def test_cli_perturbation_runs_both_tests_and_lens_choice_reads_the_files(tmp_path, capsys):
    from alens_gui.cli import main

    common = ["--methods", "gradcam,ixg", "--n", "1", "--device", "cpu", "--no-progress",
              "--softmax-input", "signed,abs", "--paper"]
    assert main(["evaluate", "perturbation", "--steps", "2", "--json", str(tmp_path / "p.json"), *common]) == 0
    out = capsys.readouterr().out
    assert "Insertion AUC" in out and "Deletion AUC" in out and "0.61 (+0%)" in out  # the paper's Grad-CAM
    data = json.loads((tmp_path / "p.json").read_text())
    assert set(data) == {"insertion", "deletion"}
    assert main(["evaluate", "grid", "--json", str(tmp_path / "g.json"), *common]) == 0
    capsys.readouterr()
    assert main(["evaluate", "lens-choice", "--inputs", str(tmp_path / "g.json"), str(tmp_path / "p.json")]) == 0
    table = capsys.readouterr().out
    assert "| al/none/abs |" in table or "| **al/none/abs** |" in table
    assert "Best over all benchmarks:" in table
    # the same numbers with another variant as "AL", without running the model again
    assert main(["evaluate", "report", "--inputs", str(tmp_path / "g.json"), "--al", "al/none/abs"]) == 0
    again = capsys.readouterr().out
    ra_abs = json.loads((tmp_path / "g.json").read_text())["gradcam"]["variants"]["al/none/abs"]["ra"]
    assert "lens al/none/abs" in again and f"→ {ra_abs:.3f}" in again
    with pytest.raises(SystemExit) as exc:  # a usage error: argparse's exit status 2
        main(["evaluate", "lens-choice"])
    assert exc.value.code == 2 and "needs --inputs" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "grid", "--methods", "nosuchmethod"],
        ["evaluate", "grid", "--methods", "ig", "-O", "ig.steps=0"],
        # an EvaluationDataError: one line like every other core error, no traceback
        ["evaluate", "grid", "--methods", "gradcam", "--folder", "/no/such/folder", "--device", "cpu"],
    ],
)
def test_cli_errors_are_one_line(argv, capsys):
    from alens_gui.cli import main

    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("alens: error:") and "\n" not in err



@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "nested deeper than 64 levels"),  # was a RecursionError traceback
    ("[1, 2]", "not a results file of alens evaluate"),
    ('{"_meta": 3}', "not a results file of alens evaluate"),
    ('{"_meta": {"protocol": NaN}}', "not valid JSON"),
])
def test_results_files_from_someone_else_are_one_line(tmp_path, capsys, text, message):
    from alens_gui.cli import main

    f = tmp_path / "r.json"
    f.write_text(text)
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "lens-choice", "--inputs", str(f)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and message in err[-1] and "r.json" in err[-1], err
