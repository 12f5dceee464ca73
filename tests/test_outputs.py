"""Outputs of ``alens explain`` and ``alens report``: names that are unique and stable, nothing
replaced without being told, one line for each write error (a huge name, a read-only folder, a
full disk) and no partial file left behind."""

from __future__ import annotations

import errno
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alens_gui import cli
from alens_gui.cli import main
from alens_gui.core import explanation as explanation_module
from alens_gui.core import outputs as outputs_module
from alens_gui.core.outputs import HASH_CHARS, MAX_STEM_BYTES, atomic_write, output_names, path_hash

FAST = ["--method", "ixg", "--classes", "285,967"]


def _save(img, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Real photographs at a third of their size (each explanation takes a fraction of a second)."""
    from skimage import data

    d = tmp_path_factory.mktemp("small")
    return {"cat": data.chelsea()[::3, ::3].copy(), "cup": data.coffee()[::3, ::3].copy(),
            "rocket": data.rocket()[::3, ::3].copy(), "dir": d}


def _files(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file with its inode and bytes (a replaced file gets a new inode)."""
    return {p.name: (p.stat().st_ino, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()}


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("alens: error")]


class ExplainCounter:
    """Counts the images the model explains (``Explainer.explain`` calls, and images the batch engine
    reads) during a command."""

    def __init__(self, monkeypatch, after=None):
        from alens_gui.core.api import Explainer

        self.calls: list[str] = []
        real = Explainer.explain

        def explain(this, image, *args, **kwargs):
            self.calls.append(Path(image).name)
            out = real(this, image, *args, **kwargs)
            if after is not None:
                after(Path(image))
            return out

        monkeypatch.setattr(Explainer, "explain", explain)
        # several images go through the batch engine, which reads each once before the model sees it
        from alens_gui.core import batch

        real_prepare = batch.prepare_image

        def prepare(loaded, settings, item, *args, **kwargs):
            self.calls.append(Path(item).name)
            return real_prepare(loaded, settings, item, *args, **kwargs)

        monkeypatch.setattr(batch, "prepare_image", prepare)


def _no_model(monkeypatch):
    """Make loading a model fail the test: the command must stop before any model work."""
    def refuse(_args):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(cli, "load_from_args", refuse)


# -- names ------------------------------------------------------------------------------------
def test_output_names_are_readable_stable_and_unique(tmp_path):
    cases = tmp_path / "cases"
    a, b = cases / "a" / "scan.dcm", cases / "b" / "scan.dcm"
    # a file named by itself keeps its stem; one found in a folder is named by its path in it
    assert output_names([(a, None)]) == ["scan"]
    assert output_names([(a, cases), (b, cases), (cases / "IM0001", cases)]) == ["a__scan", "b__scan", "IM0001"]
    assert output_names([(tmp_path / "1.2.840.5.11", None)]) == ["1.2.840.5.11"]
    # independent of the other inputs: a/scan.dcm is a__scan whatever else the folder holds
    alone = output_names([(a, cases)])[0]
    assert alone == output_names([(cases / "z.png", cases), (a, cases), (cases / "a__scan.tif", tmp_path)])[1]
    # two inputs that would share a name get a hash of their own path, the same in every run
    x_png, x_jpg = tmp_path / "x.png", tmp_path / "x.jpg"
    names = output_names([(x_png, None), (x_jpg, None)])
    assert names == [f"x-{path_hash(x_png)}", f"x-{path_hash(x_jpg)}"]
    assert output_names([(tmp_path / "other" / "x.tif", None), (x_png, None)])[1] == names[0]
    # names equal but for case are one file on macOS and Windows
    upper = output_names([(tmp_path / "Scan.png", None), (tmp_path / "d" / "scan.png", None)])
    assert len({n.casefold() for n in upper}) == 2
    # a file named like another's hashed name cannot take it
    crafted = tmp_path / "q" / f"x-{path_hash(x_png)}.png"
    trio = output_names([(x_png, None), (x_jpg, None), (crafted, None)])
    assert len({n.casefold() for n in trio}) == 3
    # separators, control characters and Windows device names never reach a file name
    odd = output_names([(tmp_path / "a\nb:c*?.png", None), (tmp_path / "CON.png", None), (tmp_path / "..png", None)])
    assert odd == ["a_b_c", "CON_", "image"]


def test_long_names_are_cut_with_a_hash_and_stay_valid_utf8(tmp_path):
    long_ascii = tmp_path / ("n" * 240 + ".png")
    long_accents = tmp_path / ("é" * 120 + ".png")  # 240 bytes in UTF-8
    names = output_names([(long_ascii, None), (long_accents, None)])
    for name, path in zip(names, (long_ascii, long_accents)):
        assert name.endswith("-" + path_hash(path))
        assert len(name.encode("utf-8")) <= MAX_STEM_BYTES + 1 + HASH_CHARS
        name.encode("utf-8").decode("utf-8")  # cut on a character boundary
    assert output_names([(long_ascii, None)]) == names[:1]  # stable


def test_a_240_character_file_name_does_not_end_the_batch(small, tmp_path, capsys):
    src = tmp_path / "in"
    long_file = _save(small["cat"], src / ("very_long_scan_name_" * 12 + ".png"))  # 240 characters
    _save(small["cup"], src / "cup.png")
    out = tmp_path / "out"
    assert main(["explain", str(long_file), str(src / "cup.png"), *FAST, "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    stem = output_names([(long_file, None)])[0]
    assert f"{stem}.npz" in names and "cup.npz" in names
    assert sum(n.endswith(".png") for n in names) == 4
    assert all(len(n.encode("utf-8")) <= 255 for n in names)
    assert not [n for n in names if n.endswith(".part")]
    with np.load(out / f"{stem}.npz") as z:
        assert list(z["classes"]) == [285, 967]
    assert "wrote 2 of 2 image(s)" in capsys.readouterr().err


# -- nothing replaced silently; resumable -------------------------------------------------------
def test_a_second_run_replaces_nothing_unless_told_and_resumes(small, tmp_path, capsys, monkeypatch):
    cases = tmp_path / "cases"
    _save(small["cat"], cases / "a" / "x.png")
    _save(small["cup"], cases / "b" / "x.png")
    out = tmp_path / "out"
    args = ["explain", str(cases), "-r", *FAST, "--out", str(out)]
    assert main(args) == 0
    first = _files(out)
    assert sorted(n for n in first if n.endswith(".npz")) == ["a__x.npz", "b__x.npz"]
    capsys.readouterr()

    # a new image in the folder: the names of the others stay what they were
    _save(small["rocket"], cases / "c" / "y.png")
    with monkeypatch.context() as m:
        _no_model(m)
        assert main(args) == 1  # refused before any model work
    err = capsys.readouterr().err
    assert _errors(err) == [f"alens: error: 2 of 3 image(s) already have outputs in {out} (e.g. a__x.npz); nothing "
                            "was replaced: --skip-existing explains only the others, --overwrite replaces them"]
    assert _files(out) == first

    counter = ExplainCounter(monkeypatch)
    assert main([*args, "--skip-existing"]) == 0
    assert counter.calls == ["y.png"]
    now = _files(out)
    assert {n: now[n] for n in first} == first and "c__y.npz" in now
    assert "wrote 1 of 3 image(s)" in capsys.readouterr().err

    # a batch stopped after b/x.png's figures, before its .npz: --skip-existing redoes that one image
    (out / "b__x.npz").unlink()
    counter.calls.clear()
    assert main([*args, "--skip-existing"]) == 0
    assert counter.calls == ["x.png"]
    assert (out / "b__x.npz").is_file() and (out / "a__x.npz").stat().st_ino == first["a__x.npz"][0]

    # everything done: nothing to do, no model loaded
    with monkeypatch.context() as m:
        _no_model(m)
        assert main([*args, "--skip-existing"]) == 0
    assert "already explained" in capsys.readouterr().err

    before = _files(out)
    counter.calls.clear()
    assert main([*args, "--overwrite"]) == 0
    assert len(counter.calls) == 3
    after = _files(out)
    assert set(after) == set(before) and all(after[n][0] != before[n][0] for n in before)  # each replaced whole

    with pytest.raises(SystemExit) as exc:
        main([*args, "--overwrite", "--skip-existing"])
    assert exc.value.code == 2


def test_a_file_another_run_writes_meanwhile_is_not_replaced(small, tmp_path, capsys, monkeypatch):
    src = _save(small["cat"], tmp_path / "in" / "cat.png")
    out = tmp_path / "out"
    out.mkdir()

    def other_run_finishes(image: Path) -> None:  # while this run explains, another writes the result
        (out / f"{image.stem}.npz").write_bytes(b"the other run's result")

    ExplainCounter(monkeypatch, after=other_run_finishes)
    assert main(["explain", str(src), *FAST, "--out", str(out)]) == 1
    errors = _errors(capsys.readouterr().err)
    assert len(errors) == 1 and "cat.npz: already exists" in errors[0] and "not replaced" in errors[0]
    # the other run's file is intact, and this run left none of its own files for that image
    assert sorted(p.name for p in out.iterdir()) == ["cat.npz"]
    assert (out / "cat.npz").read_bytes() == b"the other run's result"

    (out / "cat.npz").unlink()
    assert main(["explain", str(src), *FAST, "--out", str(out), "--skip-existing"]) == 0
    assert "explained by another run meanwhile; kept" in capsys.readouterr().err
    assert (out / "cat.npz").read_bytes() == b"the other run's result"


def _writer_race(path: Path, overwrite: bool) -> tuple[list, list[bytes]]:
    """Two writers of one file, both with a complete temporary file before either publishes."""
    contents = [bytes([65 + i]) * (3 * 1024 * 1024) for i in range(2)]
    ready = threading.Barrier(2, timeout=60)
    results: list = [None, None]

    def writer(i: int) -> None:
        def write(f):
            for k in range(0, len(contents[i]), 65536):  # in pieces, as a real writer does
                f.write(contents[i][k:k + 65536])
            ready.wait()

        try:
            atomic_write(path, write, overwrite=overwrite)
            results[i] = "written"
        except FileExistsError:
            results[i] = "exists"

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results, contents


def test_concurrent_writers_of_one_file_never_interleave(tmp_path):
    results, contents = _writer_race(tmp_path / "maps.npz", overwrite=False)
    assert sorted(results) == ["exists", "written"]  # the second is told, not silently replaced
    winner = results.index("written")
    assert (tmp_path / "maps.npz").read_bytes() == contents[winner]
    assert [p.name for p in tmp_path.iterdir()] == ["maps.npz"]  # no temporary file left

    results, contents = _writer_race(tmp_path / "other.npz", overwrite=True)
    assert results == ["written", "written"]
    assert (tmp_path / "other.npz").read_bytes() in contents  # the last complete file, never a mix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps.npz", "other.npz"]


def test_exclusive_writes_without_hard_links_still_refuse(tmp_path, monkeypatch):
    """On a file system without hard links (FAT, some network shares) the name is claimed by an
    exclusive create instead."""
    def no_links(_src, _dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(outputs_module.os, "link", no_links)
    atomic_write(tmp_path / "a.bin", lambda f: f.write(b"first"), overwrite=False)
    with pytest.raises(FileExistsError):
        atomic_write(tmp_path / "a.bin", lambda f: f.write(b"second"), overwrite=False)
    assert (tmp_path / "a.bin").read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


# -- write errors -------------------------------------------------------------------------------
def _failing_writes(monkeypatch, victim: str, code: int) -> None:
    """Writes of files whose name contains ``victim`` fail with ``code`` part-way through."""
    real = outputs_module.atomic_write

    def atomic(path, write, **kwargs):
        if victim in Path(path).name:
            def broken(f):
                f.write(b"\0" * 4096)  # part of the file is on disk when the error comes
                raise OSError(code, os.strerror(code))

            return real(path, broken, **kwargs)
        return real(path, write, **kwargs)

    monkeypatch.setattr(outputs_module, "atomic_write", atomic)  # (what the CLI imports when it runs)
    monkeypatch.setattr(explanation_module, "atomic_write", atomic)  # (what Explanation.to_npz calls)


@pytest.mark.parametrize("code, goes_on", [(errno.ENOSPC, False), (errno.ENAMETOOLONG, True)])
def test_a_write_error_is_one_line_and_leaves_nothing_partial(small, tmp_path, capsys, monkeypatch, code, goes_on):
    src = tmp_path / "in"
    for name in ("a_cat", "b_cup", "c_rocket"):
        _save(small[name.split("_")[1]], src / f"{name}.png")
    out = tmp_path / "out"
    # b_cup's figures are written, then its .npz fails: the disk is full (the batch stops) or the
    # file system refuses the name (the batch goes on)
    _failing_writes(monkeypatch, "b_cup.npz", code)
    assert main(["explain", str(src), *FAST, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    errors = _errors(err)
    assert len(errors) == 1 and "Traceback" not in err
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.startswith("b_cup") or n.endswith(".part")]  # nothing partial
    assert "a_cat.npz" in names and len([n for n in names if n.startswith("a_cat_")]) == 2
    if goes_on:
        assert "b_cup.npz: the file name is too long for this file system" in errors[0]
        assert "c_rocket.npz" in names and "wrote 2 of 3 image(s)" in err
    else:
        assert errors[0] == (f"alens: error: {out}: no space left on the device while writing b_cup.npz; nothing "
                             "partial was left; stopped: 2 image(s) not written")
        assert "c_rocket.npz" not in names and "wrote 1 of 3 image(s)" in err
    # the stopped batch resumes where it stopped
    monkeypatch.undo()
    assert main(["explain", str(src), *FAST, "--out", str(out), "--skip-existing"]) == 0
    assert {"a_cat.npz", "b_cup.npz", "c_rocket.npz"} <= {p.name for p in out.iterdir()}


def _mount_tmpfs(where: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return r.returncode == 0


@pytest.fixture
def full_disk(tmp_path):
    """A real file system with 64 KiB of room (a tmpfs; mounting one needs root)."""
    where = tmp_path / "full"
    if not _mount_tmpfs(where, "size=64k"):
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN); the disk-full path is also tested "
                    "above with the write failing part-way")
    yield where
    subprocess.run(["umount", str(where)], check=True)


def test_a_really_full_disk_stops_cleanly(small, tmp_path, full_disk, capsys):
    src = tmp_path / "in"
    _save(small["cat"], src / "cat.png")
    _save(small["cup"], src / "cup.png")
    assert main(["explain", str(src), *FAST, "--out", str(full_disk)]) == 1
    err = capsys.readouterr().err
    errors = _errors(err)
    assert len(errors) == 1 and "no space left on the device" in errors[0] and "Traceback" not in err
    assert list(full_disk.iterdir()) == []  # no partial figure, no temporary file
    assert main(["report", str(src / "cat.png"), *FAST, "--out", str(full_disk / "r.pdf")]) == 1
    err = capsys.readouterr().err
    assert _errors(err) == [f"alens: error: {full_disk}: no space left on the device while writing r.pdf; nothing "
                            "partial was left"] and "Traceback" not in err
    assert list(full_disk.iterdir()) == []


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nothing can be written to: a read-only tmpfs as root (root ignores permissions),
    a folder without write permission otherwise."""
    where = tmp_path / "ro"
    if os.geteuid() == 0:
        if not _mount_tmpfs(where, "ro,size=64k"):
            pytest.skip("as root only a read-only mount stops writes, and mounting is not allowed here")
        yield where
        subprocess.run(["umount", str(where)], check=True)
    else:
        where.mkdir()
        where.chmod(0o555)
        yield where
        where.chmod(0o755)


def test_a_read_only_output_folder_is_one_line_before_any_work(small, tmp_path, read_only_folder, capsys,
                                                               monkeypatch):
    src = _save(small["cat"], tmp_path / "cat.png")
    _no_model(monkeypatch)
    assert main(["explain", str(src), *FAST, "--out", str(read_only_folder)]) == 1
    err = capsys.readouterr().err
    assert _errors(err) == [f"alens: error: {read_only_folder}: "
                            + ("the folder is on a read-only file system" if os.geteuid() == 0
                               else "no permission to write in this folder") + "; nothing was written"]
    assert main(["report", str(src), *FAST, "--out", str(read_only_folder / "r.pdf")]) == 1
    assert len(_errors(capsys.readouterr().err)) == 1


# -- report ---------------------------------------------------------------------------------------
def test_report_replaces_nothing_unless_told(small, tmp_path, capsys, monkeypatch):
    src = _save(small["cat"], tmp_path / "cat.png")
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(b"an earlier report")
    with monkeypatch.context() as m:
        _no_model(m)
        assert main(["report", str(src), *FAST, "--out", str(pdf)]) == 1
        assert _errors(capsys.readouterr().err) == [f"alens: error: {pdf} already exists; not replaced: "
                                                     "--overwrite replaces it"]
        assert main(["report", str(src), *FAST, "--out", str(pdf), "--skip-existing"]) == 0
    assert pdf.read_bytes() == b"an earlier report"
    assert main(["report", str(src), *FAST, "--out", str(pdf), "--overwrite"]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


# -- TorchScript only when asked, in every command that loads a model ---------------------------------
class _TinyNet(__import__("torch").nn.Module):
    def __init__(self):
        import torch

        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.conv(x).relu().mean(dim=(2, 3)))


def test_report_and_evaluate_load_torchscript_only_when_asked(small, tmp_path, capsys):
    import torch

    ts = tmp_path / "tiny.pt"
    torch.jit.trace(_TinyNet().eval(), torch.rand(1, 3, 64, 64)).save(str(ts))
    src = _save(small["cat"], tmp_path / "cat.png")
    model = ["--model", str(ts), "--input-size", "64", "--classes", "0,1", "--method", "ixg"]
    assert main(["report", str(src), *model, "--out", str(tmp_path / "r.pdf")]) == 1
    errors = _errors(capsys.readouterr().err)
    assert len(errors) == 1 and "is a TorchScript program, not a state dict" in errors[0] and "--torchscript" in errors[0]
    assert not (tmp_path / "r.pdf").exists()
    assert main(["report", str(src), *model, "--torchscript", "--out", str(tmp_path / "r.pdf")]) == 0
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    # evaluate and bench take the same model options (one shared helper loads the model)
    for command in (["evaluate", "grid"], ["bench"]):
        args = cli.build_parser().parse_args([*command, "--model", str(ts), "--torchscript"])
        assert args.torchscript is True
