"""The result cache: in the platform's cache folder, private, bounded (least recently used out),
no image pixels unless asked, DICOM entries marked and free of identifiers, and anything tampered
with or damaged a miss, never an error; ``alens cache info|clear|limit|pixels``."""

from __future__ import annotations

import io
import json
import os
import stat
import time
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from alens_gui.cli import main
from alens_gui.core.resultcache import (
    INDEX,
    MAX_INDEX_BYTES,
    ResultCache,
    default_cache_dir,
    entry_bytes,
    old_cache_dirs,
    prediction_record,
)
from alens_gui.core.settings import ClassSet, RunSettings

FILES = Path(pydicom.__file__).parent / "data" / "test_files"
MODEL = "default|||"


@pytest.fixture(scope="module")
def cat_file(tmp_path_factory):
    from skimage import data

    p = tmp_path_factory.mktemp("img") / "cat.png"
    Image.fromarray(data.chelsea()[::2, ::2].copy()).save(p)
    return p


@pytest.fixture(scope="module")
def cat_expl(explainer, cat_file):
    return explainer.explain(cat_file, "ixg", classes=[285, 967, 281])


def _key(path, n: int = 0) -> str:
    return ResultCache.explanation_key(path, MODEL, RunSettings("ixg", classes=ClassSet.top(2 + n), resize="stretch"))


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _members(p: Path) -> set[str]:
    with zipfile.ZipFile(p) as z:
        return {n[:-4] for n in z.namelist()}


# -- where, and who can read it -------------------------------------------------------------------
def test_the_cache_lives_in_the_platform_cache_folder(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.delenv("ALENS_CACHE_DIR")
    assert default_cache_dir() == Path(platformdirs.user_cache_dir("alens-gui", appauthor=False)) / "results"
    assert ResultCache().root == default_cache_dir()
    monkeypatch.setenv("ALENS_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert ResultCache().root == tmp_path / "elsewhere"


def test_entries_are_private_and_keep_no_pixels(cat_file, cat_expl, tmp_path):
    old = os.umask(0o022)  # what most desktops use: files would be world-readable
    try:
        cache = ResultCache(tmp_path / "c")
        key = _key(cat_file)
        assert cache.put_explanation(key, cat_expl)
        cache.put_prediction(ResultCache.prediction_key(cat_file, MODEL, "stretch", "default"),
                             prediction_record(np.linspace(1, 0, 1000), [str(i) for i in range(1000)]))
        cache.set_limit(100)
    finally:
        os.umask(old)
    entry = cache.root / "explanations" / f"{key}.npz"
    assert _mode(cache.root) == 0o700 and _mode(cache.root / "explanations") == 0o700
    assert _mode(entry) == 0o600 and _mode(cache.root / INDEX) == 0o600 and _mode(cache.root / "settings.json") == 0o600
    # the maps and what re-lensing needs; no image, and nothing that is made again from raw
    assert _members(entry) == {"classes", "class_names", "probs", "raw", "meta", "dicom"}
    # read back, the image comes from the file again and everything is as it was
    back = ResultCache(tmp_path / "c").explanation(key, cat_file, "default")
    np.testing.assert_array_equal(back.image, cat_expl.image)
    np.testing.assert_allclose(back.refined, cat_expl.refined, rtol=1e-6, atol=1e-7)
    assert list(back.classes) == [285, 967, 281] and back.source == cat_expl.source
    # without the file to read it from there is no image: a miss, and the entry stays
    assert cache.explanation(key) is None and entry.is_file()


def test_pixels_are_kept_only_when_asked(cat_file, cat_expl, tmp_path):
    cache = ResultCache(tmp_path / "c")
    assert cache.keep_pixels is False
    assert main(["cache", "pixels", "on"]) == 0  # the CLI's cache is ALENS_CACHE_DIR's
    env_cache = ResultCache()
    assert env_cache.keep_pixels is True
    key = _key(cat_file)
    env_cache.put_explanation(key, cat_expl)
    assert "image" in _members(env_cache.root / "explanations" / f"{key}.npz")
    np.testing.assert_array_equal(env_cache.explanation(key).image, cat_expl.image)  # no file needed
    assert "1 with image pixels" in "\n".join(env_cache.info().lines())


def test_dicom_entries_are_marked_and_hold_no_identifiers(explainer, tmp_path, capsys):
    ds = pydicom.dcmread(FILES / "MR_small.dcm")
    ds.PatientName, ds.PatientID = "Doe^Jane", "PID-0042-XYZ"
    scan = tmp_path / "scan.dcm"
    ds.save_as(scan)
    expl = explainer.explain(scan, "ixg", top_k=2, include_identifiers=True)  # the window may ask for them
    assert expl.source["identifiers"]
    cache = ResultCache()
    cache.put_explanation(_key(scan), expl)
    entry = cache.root / "explanations" / f"{_key(scan)}.npz"
    with zipfile.ZipFile(entry) as z:
        raw = b"".join(z.read(n) for n in z.namelist())
        assert bool(np.load(io.BytesIO(z.read("dicom.npy")))) is True
    assert b"Doe^Jane" not in raw and "Doe^Jane".encode("utf-32-le") not in raw
    assert b"PID-0042" not in raw and "PID-0042".encode("utf-32-le") not in raw
    assert cache.info().dicom == 1
    assert main(["cache", "info"]) == 0
    assert "1 explanation(s) (1 from DICOM files, 0 with image pixels)" in capsys.readouterr().out
    back = cache.explanation(_key(scan), scan, "default")
    assert back is not None and "identifiers" not in back.source and back.source["modality"] == "MR"


# -- bounded ----------------------------------------------------------------------------------------
def test_a_cache_over_its_cap_evicts_the_least_recently_used(cat_file, cat_expl, tmp_path):
    size = len(entry_bytes(cat_expl))
    cache = ResultCache(tmp_path / "c", max_bytes=int(3.5 * size))
    keys = [_key(cat_file, n) for n in range(4)]
    t0 = time.time() - 1000
    for n, key in enumerate(keys[:3]):
        assert cache.put_explanation(key, cat_expl)
        os.utime(cache.root / "explanations" / f"{key}.npz", (t0 + 10 * n, t0 + 10 * n))
    assert cache.explanation(keys[0], cat_file, "default") is not None  # used again: now the most recent
    assert cache.put_explanation(keys[3], cat_expl)  # over the cap: the least recently used goes
    assert [cache.has_explanation(k) for k in keys] == [True, False, True, True]
    assert cache.size() <= 3.5 * size


def test_the_cap_comes_from_the_environment_or_alens_cache_limit(cat_file, cat_expl, monkeypatch, capsys):
    cache = ResultCache()
    assert cache.max_bytes == 300 * 1_000_000
    assert main(["cache", "limit", "12.5"]) == 0
    assert ResultCache().max_bytes == 12_500_000
    monkeypatch.setenv("ALENS_CACHE_MAX_MB", "7")
    assert ResultCache().max_bytes == 7_000_000
    monkeypatch.setenv("ALENS_CACHE_MAX_MB", "lots")
    info = ResultCache().info()
    assert info.max_bytes == 12_500_000 and any("'lots' is not a size in MB" in n for n in info.notes)
    monkeypatch.delenv("ALENS_CACHE_MAX_MB")
    # 0 turns the cache off: nothing is stored, and what was there goes
    cache.put_explanation(_key(cat_file), cat_expl)
    assert main(["cache", "limit", "0"]) == 0
    off = ResultCache()
    assert off.size() == 0 and not off.put_explanation(_key(cat_file), cat_expl) and not off.has_explanation(
        _key(cat_file))
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["cache", "limit", "-3"])
    assert "from 0" in capsys.readouterr().err


# -- tampered or damaged: a miss ---------------------------------------------------------------------
def _index_variants(tmp_path):
    good = prediction_record(np.linspace(1, 0, 10), [f"c{i}" for i in range(10)])
    yield "a list", b"[1, 2, 3]"
    yield "records of another shape", json.dumps({"k": [1, 2], "k2": {"top1": "x", "name": 5, "p": 0.3},
                                                  "k3": {**good, "top5": [[1, 2]]}, "k4": {**good, "p": True},
                                                  "k5": "text"}).encode()
    yield "nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000
    yield "nested deep inside a record", json.dumps({"k": {**good, "top5": [[[[[[[[[[1]]]]]]]]]]}}).encode()
    yield "not UTF-8", b'{"k": "\xff\xfe"}'
    yield "NaN", b'{"k": {"top1": 1, "name": "a", "p": NaN}}'


def test_a_tampered_prediction_index_is_a_miss(tmp_path):
    good = prediction_record(np.linspace(1, 0, 10), [f"c{i}" for i in range(10)])
    for what, data in _index_variants(tmp_path):
        root = tmp_path / what.replace(" ", "_")
        root.mkdir()
        (root / INDEX).write_bytes(data)
        cache = ResultCache(root)
        assert [cache.prediction(k) for k in ("k", "k2", "k3", "k4", "k5")] == [None] * 5, what
        cache.put_prediction("k", good)  # and the cache works again
        assert ResultCache(root).prediction("k") == good, what


def test_a_huge_or_special_index_is_a_miss_without_reading_it(tmp_path):
    root = tmp_path / "huge"
    root.mkdir()
    with open(root / INDEX, "wb") as f:  # sparse: no disk used
        f.truncate(MAX_INDEX_BYTES + 1)
    assert ResultCache(root).prediction("k") is None
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / INDEX)  # opening it to read would block for ever
    assert ResultCache(fifo).prediction("k") is None


def _npy_header(shape, descr="<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _damaged_entries(good: bytes):
    yield "cut short", good[: len(good) // 2]
    yield "not a zip", b"PK\x03\x04 nothing else"
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        members = {n: z.read(n) for n in z.namelist()}

    def entry(**changes) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for n, data in {**members, **changes}.items():
                z.writestr(n, data)
        return buf.getvalue()

    def npy(arr) -> bytes:
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        return buf.getvalue()

    meta = json.loads(str(np.load(io.BytesIO(members["meta.npy"]))))
    yield "raw declares 931 GiB", entry(**{"raw.npy": _npy_header((500_000, 500_000))})
    yield "pickled objects", entry(**{"raw.npy": _npy_header((3,), "|O") + b"\x80\x04N."})
    yield "meta nested deep", entry(**{"meta.npy": npy(np.array("[" * 50_000 + "]" * 50_000))})
    yield "a 60000 x 60000 frame", entry(**{"meta.npy": npy(np.array(json.dumps(
        {**meta, "geometry": {**meta["geometry"], "display_hw": [60000, 60000]}})))})
    yield "classes of another length", entry(**{"classes.npy": npy(np.arange(7))})
    yield "thousands of members", entry(**{f"x{i}.npy": b"" for i in range(5000)})


def test_a_damaged_entry_is_a_miss_and_is_removed(cat_file, cat_expl, tmp_path):
    good = entry_bytes(cat_expl)
    key = _key(cat_file)
    for what, data in _damaged_entries(good):
        cache = ResultCache(tmp_path / what.replace(" ", "_"))
        cache.put_explanation(key, cat_expl)
        entry = cache.root / "explanations" / f"{key}.npz"
        entry.write_bytes(data)
        assert cache.has_explanation(key)
        assert cache.explanation(key, cat_file, "default") is None, what
        assert not entry.exists(), what  # gone, so the gallery explains the image again


# -- info and clear ----------------------------------------------------------------------------------
def test_info_and_clear_touch_only_the_cache_s_own_files(cat_file, cat_expl, tmp_path, monkeypatch, capsys):
    # the user pointed ALENS_CACHE_DIR at a folder that has other files in it
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("mine")
    monkeypatch.setenv("ALENS_CACHE_DIR", str(shared))
    # caches an earlier version left in the config folder and in ~/.cache/alens-gui
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    legacy = [tmp_path / "config" / "alens" / "Attribution Lens Studio" / "cache", tmp_path / "home" / ".cache" /
              "alens-gui"]
    for d in legacy:
        (d / "explanations").mkdir(parents=True)
        (d / INDEX).write_text("{}")
        (d / "explanations" / ("ab" * 16 + ".npz")).write_bytes(b"x" * 1000)
    (legacy[1] / "keep.me").write_text("not the cache's")
    assert old_cache_dirs() == legacy

    cache = ResultCache()
    cache.put_explanation(_key(cat_file), cat_expl)
    cache.put_prediction("k", prediction_record(np.linspace(1, 0, 10), [f"c{i}" for i in range(10)]))
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"folder: {shared}" in out and "of 300 MB (limit from default)" in out
    assert "1 explanation(s) (0 from DICOM files, 0 with image pixels), 1 prediction(s)" in out
    assert "image pixels: not kept" in out
    assert all(f"old cache of an earlier version: {d}" in out for d in legacy)

    assert main(["cache", "clear"]) == 0
    assert "removed 2 file(s)" in capsys.readouterr().out
    assert sorted(p.name for p in shared.rglob("*") if p.is_file()) == ["notes.txt"]
    assert all(d.is_dir() for d in legacy)  # earlier versions' caches only with --old
    assert main(["cache", "clear", "--old"]) == 0
    out = capsys.readouterr().out
    assert all(f"from {d} (an earlier version's cache)" in out for d in legacy)
    assert not legacy[0].exists() and sorted(p.name for p in legacy[1].iterdir()) == ["keep.me"]
    assert old_cache_dirs() == []


def test_one_run_is_one_key_whichever_front_end_wrote_its_settings(cat_file, tmp_path):
    """The key is (file, model, RunSettings): equal runs written differently share it, different runs do not."""
    from alens_gui.core.windowing import Window

    def key(path=cat_file, model=MODEL, **kw):
        return ResultCache.explanation_key(path, model, RunSettings("saliency", **kw))

    run = key(options={"abs": False}, window=(100.0, 200.0), resize="model")
    # a manual window as the window's tuple, the CLI's Window, or a text as a person types it
    for window in ("100,200", " 100.0 ; 200 ", Window(100, 200, "manual"), [100, 200.0]):
        assert key(options={"abs": False}, window=window, resize="model") == run
    # an option given at its default is the option left out; "default" (the window menu's) is no request;
    # frame 0 is a file's first frame, the default; a picked set's caption is no part of the run
    assert key(options={"abs": True}) == key() == key(window="default") == key(window="") == key(frame=0)
    assert key(window="AUTO") == key(window="auto") != key()
    picked = [281, 285]
    assert key(classes=ClassSet.picked(picked, "cats")) == key(classes=ClassSet.picked(picked))
    # different runs: an option's value, the window, the input policy, the class set, the model, the file
    others = [key(options={"abs": True}, window=(100.0, 200.0), resize="model"),
              key(options={"abs": False}, window=(100.0, 300.0), resize="model"),
              key(options={"abs": False}, window=(100.5, 200.0), resize="model"),
              key(options={"abs": False}, window="auto", resize="model"),
              key(options={"abs": False}, window=(100.0, 200.0), resize="stretch"),
              key(options={"abs": False}, window=(100.0, 200.0), resize="model", classes=ClassSet.top(4)),
              key(model=MODEL + "x", options={"abs": False}, window=(100.0, 200.0), resize="model")]
    other_file = tmp_path / "other.png"
    other_file.write_bytes(Path(cat_file).read_bytes() + b"\0")
    others.append(key(path=other_file, options={"abs": False}, window=(100.0, 200.0), resize="model"))
    assert len({run, *others}) == len(others) + 1
    # a window written with many digits keeps them (no two windows share a text)
    assert RunSettings(window=(32770.25, 1234567.0)).window == "32770.25,1234567"
    assert RunSettings(window=(1234567.0, 10)).key() != RunSettings(window=(1234570.0, 10)).key()
