"""Cohorts: strategies per class (spectral clustering of refined maps), territory, two groups.

The planted shortcut (``examples/shortcut``): one class's training images carry a corner tag;
on a test folder where half of that class's images carry it, ``alens cohort`` must find a
strategy made of the tagged images whose prototype sits on the tag. The same run on the
base maps is checked beside it (its figures go to the README).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from alens_gui.cli import main
from alens_gui.core import cohort as co

SHORTCUT = Path(__file__).resolve().parents[1] / "examples" / "shortcut"
GRADENET = f"{SHORTCUT.parent / 'grades' / 'gradenet.py'}:GradeNet"


def planted_maps(rng, n: int = 60, side: int = 48):
    """Noisy maps with evidence at one of three places: (maps, which place)."""
    truth = rng.integers(0, 3, n)
    maps = rng.normal(0, 0.3, (n, side, side)).astype(np.float32)
    for i, t in enumerate(truth):
        y, x = [(4, 4), (30, 30), (6, 32)][t]
        maps[i, y:y + 10, x:x + 10] += 1.0
    return maps, truth


def test_spectral_clustering_recovers_planted_strategies_and_counts_them(rng):
    maps, truth = planted_maps(rng)
    c = co.cluster_maps(maps, "auto", out_hw=(96, 96))
    assert c.chosen_by == "eigengap" and c.n_clusters == 3
    assert co.agreement(c.labels, truth)["ari"] == pytest.approx(1.0)
    assert sum(len(s.members) for s in c.strategies) == len(maps)
    assert sorted(m for s in c.strategies for m in s.members) == list(range(len(maps)))
    assert [s.share for s in c.strategies] == sorted((s.share for s in c.strategies), reverse=True)
    assert sum(s.share for s in c.strategies) == pytest.approx(1.0)
    # each prototype is the mean of its members, in the frame asked for, peaked on its own place
    for s in c.strategies:
        assert s.prototype.shape == (96, 96)
        peak = np.unravel_index(np.argmax(s.prototype), s.prototype.shape)
        place = [(4, 4), (30, 30), (6, 32)][np.bincount(truth[s.members]).argmax()]
        assert place[0] * 2 <= peak[0] < (place[0] + 10) * 2 and place[1] * 2 <= peak[1] < (place[1] + 10) * 2
    assert c.embedding.shape == (len(maps), 2) and c.embedding_method in ("t-SNE", "UMAP")
    # a given number is obeyed
    assert co.cluster_maps(maps, 2, embed=False).n_clusters == 2
    assert co.cluster_maps(maps, 1, embed=False).n_clusters == 1


def test_maps_that_are_zero_everywhere_are_a_strategy_of_their_own(rng):
    """Refined maps of images where the class wins nothing are 0: they form their own strategy,
    and the others are still clustered (they would be everyone's nearest neighbour otherwise)."""
    maps, truth = planted_maps(rng, n=40)
    maps = np.concatenate([maps, np.zeros((15, *maps.shape[1:]), np.float32)])
    c = co.cluster_maps(maps, "auto")
    assert c.n_clusters == 4 and c.strategies[-1].empty and len(c.strategies[-1].members) == 15
    assert c.strategies[-1].members == list(range(40, 55))
    assert co.agreement(c.labels[:40], truth)["ari"] == pytest.approx(1.0)
    alone = co.cluster_maps(np.zeros((8, 16, 16), np.float32))
    assert alone.n_clusters == 1 and alone.strategies[0].empty and alone.embedding_method == "none"


def test_few_images_are_one_strategy_and_bad_counts_are_refused(rng):
    maps, _ = planted_maps(rng, n=4)
    c = co.cluster_maps(maps)
    assert c.n_clusters == 1 and c.chosen_by == "too few images"
    with pytest.raises(co.CohortError, match="at least 1"):
        co.cluster_maps(maps, 0)


def test_permutation_test_finds_a_real_difference_and_controls_false_positives(rng):
    a = rng.normal(0, 1, (12, 24, 24)).astype(np.float32)
    b = rng.normal(0, 1, (12, 24, 24)).astype(np.float32)
    null = co.group_difference(a, b, ("a", "b"), permutations=199)
    assert null.significant.sum() == 0  # family-wise: no pixel of pure noise passes
    assert null.p.min() > 0.05
    a[:, 5:10, 5:10] += 2.5
    real = co.group_difference(a, b, ("a", "b"), permutations=199, out_hw=(48, 48))
    assert real.significant.shape == real.p.shape == (48, 48)  # the frame asked for (here 2 x the maps)
    inside = real.significant[10:20, 10:20]
    outside = real.significant.copy()
    outside[10:20, 10:20] = False
    assert inside.mean() > 0.8 and outside.sum() == 0
    assert real.difference.shape == (48, 48) and real.difference[12:18, 12:18].mean() > 2.0
    assert real.counts == (12, 12) and real.permutations == 199


def test_unaligned_photographs_get_a_note_aligned_images_do_not(photos):
    from alens_gui.core.cohort import FEATURE_SIDE, _area_down, _resize

    def small(img):
        g = np.asarray(img, dtype=np.float32).mean(axis=2)
        g = _area_down(g[None], FEATURE_SIDE)
        return _resize(g, (FEATURE_SIDE, FEATURE_SIDE))[0]

    grays = [small(p) for p in photos.values()]
    assert len(grays) >= 4
    half = len(grays) // 2
    maps = np.zeros((len(grays), 8, 8), dtype=np.float32)
    different = co.group_difference(maps[:half], maps[half:], gray_a=np.stack(grays[:half]),
                                    gray_b=np.stack(grays[half:]), permutations=19)
    assert "not aligned" in different.note
    rng = np.random.default_rng(1)
    same = [grays[0] + rng.normal(0, 0.02, grays[0].shape) for _ in range(6)]
    aligned = co.group_difference(maps[:3].repeat(2, 0), maps[:3].repeat(2, 0), gray_a=np.stack(same[:3]),
                                  gray_b=np.stack(same[3:]), permutations=19)
    assert "not aligned" not in aligned.note


def test_cohort_of_photographs_with_the_default_model(explainer, photos, tmp_path):
    """Real photographs, the real model: every class of the class sets gets strategies in the
    model's frame, territory in [0, 1], and the cache serves a second pass."""
    from PIL import Image

    from alens_gui.core.resultcache import ResultCache
    from alens_gui.core.settings import ClassSet, RunSettings

    paths = []
    for name, img in list(photos.items())[:6]:
        p = tmp_path / f"{name}.png"
        Image.fromarray(np.round(np.asarray(img)[..., :3] * 255).astype(np.uint8)).save(p)
        paths.append(p)
    # two cats and a retriever; the input policy as the window and the CLI give it (the model's own)
    settings = RunSettings("ixg", classes=ClassSet.picked([281, 285, 207]), resize="model")
    cache = ResultCache()

    def key_of(p):
        return cache.explanation_key(p, "default-test", settings)

    cohort = co.build_cohort(co.explain_paths(explainer, paths, settings, cache=cache, key_of=key_of),
                             by="classset")
    assert len(cohort.items) == len(paths) and not cohort.failures
    assert sorted(cohort.classes) == [207, 281, 285]
    hw = explainer.loaded.input_size
    for cc in cohort.classes.values():
        assert cc.members == list(range(len(paths)))
        for cl in (cc.refined, cc.base):
            assert sorted(m for s in cl.strategies for m in s.members) == cc.members
            assert all(s.prototype.shape == tuple(hw) and np.isfinite(s.prototype).all() for s in cl.strategies)
        t = cc.territory
        assert 0 <= t.area <= 1 and 0 <= t.margin <= 1 and t.frequency.shape == tuple(hw)
        assert t.frequency.min() >= 0 and t.frequency.max() <= 1
    # the maps are the lens's own, in the model's frame: a class's refined map is 0 wherever its
    # share S is not above chance, and non-zero somewhere it wins
    from alens_gui.core.lensparams import TIE_MARGIN

    expl = explainer.explain(paths[0], settings)
    base, dist, ref = co.model_frame(expl)
    labels, strength = co.territory_of(dist, expl.lens.tau)
    assert ref.shape == (3, *hw) and labels.shape == tuple(hw)
    below = dist <= 1 / 3 + expl.lens.tau + TIE_MARGIN
    assert below.any() and np.abs(ref[below]).max() == 0
    np.testing.assert_array_equal(cohort.items[0].territory, labels)
    for i in range(3):
        if (labels == i).any():
            assert np.abs(ref[i][labels == i]).max() > 0
    # a second pass reads every explanation from the cache (the explainer is never asked)
    assert all(cache.has_explanation(key_of(p)) for p in paths)

    class NoModel:
        def explain(self, *a, **k):
            raise AssertionError("explained again instead of reading the cache")

    again = co.build_cohort(co.explain_paths(NoModel(), paths, settings, cache=cache, key_of=key_of))
    assert not again.failures
    for c, cc in cohort.classes.items():
        np.testing.assert_allclose(again.classes[c].territory.frequency, cc.territory.frequency)
    # ... and so does the same run as `alens cohort` options (the CLI's own translation, defaults given)
    from alens_gui.cli import build_parser, run_settings_from_args

    args = build_parser().parse_args(["cohort", str(tmp_path), "--method", "ixg", "--classes", "281,285,207",
                                      "--resize", "model", "--out", str(tmp_path / "out")])
    typed = run_settings_from_args(args, explainer.class_names)
    assert typed.key() == settings.key()
    third = co.build_cohort(co.explain_paths(NoModel(), paths, typed, cache=cache,
                                             key_of=lambda p: cache.explanation_key(p, "default-test", typed)))
    assert not third.failures and sorted(third.classes) == sorted(cohort.classes)


# -- the planted shortcut ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def shortcut(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("make_shortcut", SHORTCUT / "make_shortcut.py")
    ms = importlib.util.module_from_spec(spec)
    sys.modules["make_shortcut"] = ms
    spec.loader.exec_module(ms)
    files = ms.write_all(tmp_path_factory.mktemp("shortcut"), seed=0, log=lambda *_: None)
    return ms, files


def model_args(files) -> list[str]:
    return ["--model", str(files["checkpoint"]), "--arch", GRADENET, "--labels", str(files["labels"])]


def tag_mass(prototype: np.ndarray, box, pad: int = 2) -> float:
    """Share of a prototype's positive mass within the tag (and ``pad`` pixels around it)."""
    y0, x0, y1, x1 = box
    pos = np.clip(prototype, 0, None)
    return float(pos[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad].sum() / max(pos.sum(), 1e-12))


def shortcut_figures(doc: dict, out: Path, box, key: str) -> dict:
    cls = doc["classes"]["coarse"]
    clusters = cls[key]
    members = [m for c in clusters for m in c["members"]]
    labels = [i for i, c in enumerate(clusters) for _ in c["members"]]
    truth = [int(Path(m).stem.endswith("_tag")) for m in members]
    best = max(clusters, key=lambda c: np.mean([Path(m).stem.endswith("_tag") for m in c["members"]]))
    proto = np.load(out / best["prototype"], allow_pickle=False)
    tagged = sum(Path(m).stem.endswith("_tag") for m in best["members"])
    return {"n": len(clusters), **co.agreement(labels, truth), "precision": tagged / len(best["members"]),
            "recall": tagged / sum(truth), "mass": tag_mass(proto, box), "proto": proto}


def test_cohort_finds_the_planted_shortcut(shortcut, tmp_path, capsys):
    ms, files = shortcut
    out = tmp_path / "cohort"
    rc = main(["cohort", str(files["test"]), *model_args(files), "--method", "ixg", "--by", "label",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((out / "cohort.json").read_text())
    assert set(doc["classes"]) == set(ms.NAMES)
    cls = doc["classes"]["coarse"]
    assert cls["images"] == 48 and cls["chosen_by"] == "eigengap"
    assert len(cls["embedding"]["points"]) == 48
    refined = shortcut_figures(doc, out, ms.TAG_BOX, "clusters")
    base = shortcut_figures(doc, out, ms.TAG_BOX, "base_clusters")
    print(f"\nplanted shortcut, refined: {refined['n']} strategies, ARI {refined['ari']:.2f}, purity "
          f"{refined['purity']:.2f}, tag strategy {refined['precision']:.2f} tagged / {refined['recall']:.2f} of "
          f"the tagged, prototype mass on the tag {refined['mass']:.3f}")
    print(f"planted shortcut, base:    {base['n']} strategies, ARI {base['ari']:.2f}, purity {base['purity']:.2f}, "
          f"tag strategy {base['precision']:.2f} tagged / {base['recall']:.2f} of the tagged, prototype mass on "
          f"the tag {base['mass']:.3f}")
    # a strategy made of the tagged images ...
    assert refined["ari"] >= 0.8 and refined["precision"] >= 0.9 and refined["recall"] >= 0.9
    # ... whose prototype sits on the tag: the tag (with 2 pixels around: 3.5 % of the image)
    # holds far more than its share of the positive mass, and the peak is there
    assert refined["mass"] >= 0.15
    peak = np.unravel_index(np.argmax(refined["proto"]), refined["proto"].shape)
    y0, x0, y1, x1 = ms.TAG_BOX
    assert y0 - 2 <= peak[0] < y1 + 2 and x0 - 2 <= peak[1] < x1 + 2
    assert refined["proto"].shape == (64, 64) and refined["proto"].dtype == np.float32
    # the plain images' strategy does not look at the tag
    others = [c for c in cls["clusters"] if not any(Path(m).stem.endswith("_tag") for m in c["members"])]
    assert others and all(tag_mass(np.load(out / c["prototype"]), ms.TAG_BOX) < 0.1 for c in others)
    # territory statistics and the PDF
    terr = cls["territory"]
    assert 0 < terr["area"] < 1 and np.load(out / terr["frequency"]).shape == (64, 64)
    from pypdf import PdfReader

    assert len(PdfReader(out / "cohort.pdf").pages) == 3


def test_two_folders_differ_where_the_tag_is(shortcut, tmp_path, capsys):
    import shutil

    ms, files = shortcut
    tagged, plain = tmp_path / "tagged", tmp_path / "plain"
    for d, kind in ((tagged, "tag"), (plain, "plain")):
        d.mkdir()
        for p in sorted((files["test"] / "coarse").glob(f"*_{kind}.png")):
            shutil.copy(p, d / p.name)
    out = tmp_path / "groups"
    rc = main(["cohort", str(tagged), str(plain), *model_args(files), "--classes", "coarse,medium",
               "--cohort-classes", "coarse", "--permutations", "199", "--out", str(out), "--no-pdf"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((out / "cohort.json").read_text())
    g = doc["classes"]["coarse"]["groups"]
    assert g["names"] == ["tagged", "plain"] and g["counts"] == [24, 24]
    sig = np.load(out / g["significant"]).astype(bool)
    diff = np.load(out / g["difference"])
    y0, x0, y1, x1 = ms.TAG_BOX
    assert sig[y0:y1, x0:x1].any()
    outside = sig.copy()
    outside[max(0, y0 - 3):y1 + 3, max(0, x0 - 3):x1 + 3] = False
    assert outside.mean() < sig[y0:y1, x0:x1].mean()
    assert diff[y0:y1, x0:x1].mean() > 0  # the tagged group has more coarse evidence on the tag
    assert "permutations" in g["test"] and not (out / "cohort.pdf").exists()


@pytest.mark.parametrize("argv, message", [
    (["--clusters", "many"], "--clusters is auto or a number"),
    (["--clusters", "0"], "--clusters is at least 1"),
    (["--by", "label", "SECOND"], "--by label reads labels"),
    (["--groups", "a"], "--groups names two label groups"),
])
def test_bad_cohort_options_are_one_line(tmp_path, capsys, argv, message):
    folder = tmp_path / "in"
    folder.mkdir()
    second = [str(tmp_path)] if "SECOND" in argv else []
    argv = [a for a in argv if a != "SECOND"]
    with pytest.raises(SystemExit) as exc:
        main(["cohort", str(folder), *second, *argv, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_an_existing_cohort_is_not_replaced(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "cohort.json").write_text("{}")
    assert main(["cohort", str(tmp_path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (out / "cohort.json").read_text() == "{}"


def test_label_groups_of_one_folder_and_a_broken_image(shortcut, tmp_path, capsys):
    """``--groups A,B`` compares two sub-folders; an unreadable image is named and left out, the
    others are grouped, and the exit status says something failed."""
    import shutil

    ms, files = shortcut
    root = tmp_path / "cases"
    shutil.copytree(files["test"], root)
    (root / "coarse" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    rc = main(["cohort", str(root), *model_args(files), "--groups", "coarse,medium", "--classes", "medium,coarse",
               "--permutations", "99", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "broken.png" in err
    doc = json.loads((out / "cohort.json").read_text())
    assert len(doc["inputs"]) == 72 and len(doc["failures"]) == 1 and "broken.png" in doc["failures"][0]
    assert doc["by"] == "classset" and doc["groups"] == ["coarse", "medium"]
    for name in ("coarse", "medium"):
        cls = doc["classes"][name]
        g = cls["groups"]
        # the images of the two sub-folders among the class's images (the fine ones are in neither group)
        in_groups = [m for m in cls["members"] if "/fine/" not in m.replace("\\", "/")]
        assert g["names"] == ["coarse", "medium"] and sum(g["counts"]) == len(in_groups)
        assert all(np.load(out / f).shape == (64, 64) for f in (*g["mean"], g["difference"], g["significant"]))
    # the tagged class's evidence differs between its own folder and the medium one
    g = doc["classes"]["coarse"]["groups"]
    assert g["counts"] == [48, 12] and g["share_significant"] > 0
    from pypdf import PdfReader

    assert len(PdfReader(out / "cohort.pdf").pages) == 2  # a page per class of the class set


def test_no_group_named_is_refused_before_any_work(shortcut, tmp_path, capsys):
    _, files = shortcut
    rc = main(["cohort", str(files["test"]), *model_args(files), "--groups", "coarse,zebra",
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1 and "no sub-folder named 'zebra'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_labels_that_are_no_class_names_are_said(shortcut, tmp_path, capsys):
    import shutil

    _, files = shortcut
    root = tmp_path / "cases"
    shutil.copytree(files["test"] / "fine", root / "thin stripes")
    rc = main(["cohort", str(root), *model_args(files), "--by", "label", "--out", str(tmp_path / "out"), "--no-pdf"])
    err = capsys.readouterr().err
    assert rc == 1 and "must be class names (found: thin stripes)" in err  # no cohort: a failure
    doc = json.loads((tmp_path / "out" / "cohort.json").read_text())
    assert doc["classes"] == {} and len(doc["inputs"]) == 12 and doc["notes"]


def test_a_cancel_stops_explaining_and_the_permutation_test(shortcut):
    from alens_gui.core.api import Explainer
    from alens_gui.core.errors import Cancelled
    from alens_gui.core.models import load_model
    from alens_gui.core.progress import Progress
    from alens_gui.core.settings import RunSettings

    _, files = shortcut
    ex = Explainer(load_model(str(files["checkpoint"]), arch=GRADENET, labels=str(files["labels"])))
    paths = sorted((files["test"] / "coarse").glob("*.png"))
    seen = []
    progress = Progress(lambda done, total, msg: progress.cancel() if done >= 3 else None)
    with pytest.raises(Cancelled):
        for path, _expl in co.explain_paths(ex, paths, RunSettings("ixg"), progress=progress):
            seen.append(path)
    assert len(seen) == 3 and progress.total == len(paths)
    stopped = Progress()
    stopped.cancel()
    maps = np.zeros((6, 8, 8), np.float32)
    with pytest.raises(Cancelled):
        co.group_difference(maps[:3], maps[3:], permutations=99, progress=stopped)
