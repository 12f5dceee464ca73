"""The bounded readers every untrusted file goes through (crafted inputs)."""

from __future__ import annotations

import io
import os
import zipfile
import zlib

import numpy as np
import pytest

from alens_gui.core import safeio
from alens_gui.core.errors import AlensError


def test_npz_round_trip_keeps_shapes_dtypes_and_order():
    buf = io.BytesIO()
    a = np.arange(12.0).reshape(3, 4)
    b = np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3))
    np.savez_compressed(buf, a=a, b=b, s=np.array(["x", "yy"]))
    out = safeio.load_npz(buf.getvalue(), "t.npz", max_total=1 << 20)
    np.testing.assert_array_equal(out["a"], a)
    np.testing.assert_array_equal(out["b"], b)
    assert out["s"].tolist() == ["x", "yy"]
    out["a"][0, 0] = 5  # writeable, no copy of a read-only buffer needed by callers


def _npz_with_header(shape, descr="<f8", payload=b"\0" * 64):
    h = io.BytesIO()
    np.lib.format.write_array_header_1_0(h, {"descr": descr, "fortran_order": False, "shape": shape})
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("big.npy", h.getvalue() + payload)
    return z.getvalue()


def test_npz_header_declaring_931_gib_is_refused_before_reading():
    with pytest.raises(AlensError, match="declares .* GiB, more than"):
        safeio.load_npz(_npz_with_header((500_000, 250_000)), "bomb.npz", max_total=1 << 20)


def test_npz_header_larger_than_its_data_is_cut_short():
    with pytest.raises(AlensError, match="cut short"):
        safeio.load_npz(_npz_with_header((100,)), "short.npz", max_total=1 << 20)


def test_npz_object_arrays_are_never_unpickled():
    with pytest.raises(AlensError, match="Python objects"):
        safeio.load_npz(_npz_with_header((2,), descr="|O"), "pickle.npz", max_total=1 << 20)


def test_zip_member_whose_declared_size_is_huge_is_refused():
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.npy", b"\0" * (8 << 20))
    with pytest.raises(AlensError, match="more than the"):
        safeio.load_npz(z.getvalue(), "zipbomb.npz", max_total=1 << 20)


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "[" * 70 + "]" * 70, '{"a": NaN}', "{"])
def test_json_depth_size_and_syntax_are_one_error(text):
    with pytest.raises(AlensError, match="x.json: the JSON is"):
        safeio.loads_json(text, "x.json")


def test_json_size_limit():
    with pytest.raises(AlensError, match="more than the"):
        safeio.loads_json("[" + "1," * 1000 + "1]", "x.json", max_bytes=100)
    assert safeio.loads_json('{"a": [1, {"b": 2}]}', "x.json") == {"a": [1, {"b": 2}]}


def test_decompress_is_bounded_and_exact():
    with pytest.raises(AlensError, match="decompression bomb"):
        safeio.decompress(zlib.compress(b"\0" * (50 << 20)), 1 << 20, "p.png")
    data = os.urandom(5000)
    comp = zlib.compress(data)
    assert safeio.decompress([comp[:100], comp[100:]], len(data), "p.png") == data


def test_special_files_are_named_and_never_opened(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    loop_a, loop_b = tmp_path / "a", tmp_path / "b"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    assert safeio.special_kind(fifo).startswith("a FIFO")
    assert safeio.special_kind("/dev/zero") == "a device"
    assert safeio.special_kind(loop_a) == "a symbolic-link loop"
    assert safeio.special_kind(tmp_path) == "a folder"
    # the very calls that used to block forever return at once
    assert safeio.sha256_file(fifo) is None
    assert safeio.sha256_file("/dev/zero") is None
    with pytest.raises(AlensError, match="FIFO"):
        safeio.read_bytes(fifo, 100)
    with pytest.raises(AlensError, match="device"):
        safeio.read_json("/dev/urandom")


def test_sha256_and_size_limit(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    assert safeio.sha256_file(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert safeio.sha256_file(f, max_bytes=2) is None
    with pytest.raises(AlensError, match="limit"):
        safeio.read_bytes(f, 2)


@pytest.mark.parametrize("compression", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_npz_members_compressed_other_than_deflate_are_refused_unread(compression):
    # zipfile expands bzip2/LZMA with no output limit: 881 bytes of bzip2 took 2 GB at the first read
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", compression=compression) as zf:
        zf.writestr("a.npy", b"\0" * 64)
    for read in (lambda d: safeio.load_npz(d, "b.npz", max_total=1 << 20), lambda d: safeio.npz_headers(d, "b.npz")):
        with pytest.raises(AlensError, match="only stored and deflate"):
            read(z.getvalue())


def test_npz_headers_give_declared_shapes_without_reading_data():
    h = io.BytesIO()
    np.lib.format.write_array_header_1_0(h, {"descr": "<f4", "fortran_order": False, "shape": (500_000, 250_000)})
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("big.npy", h.getvalue())  # a header alone: 465 GiB declared, no data
        zf.writestr("s.npy", b"")
    with pytest.raises(AlensError, match="s.*not a valid array"):
        safeio.npz_headers(z.getvalue(), "h.npz")
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("big.npy", h.getvalue())
    shape, dtype = safeio.npz_headers(z.getvalue(), "h.npz")["big"]
    assert shape == (500_000, 250_000) and dtype == np.float32


def test_an_explanations_meta_is_read_with_the_json_limits():
    """The meta of an explanation (sessions, cache entries, npz files from someone else) is bounded JSON: a
    100,000-deep nesting is one error line, not a RecursionError."""
    from alens_gui.core.errors import AlensError
    from alens_gui.core.explanation import Explanation

    with pytest.raises(AlensError, match="meta JSON"):
        Explanation.from_arrays({"meta": np.array("[" * 100_000 + "]" * 100_000)})
    with pytest.raises(AlensError, match="meta JSON is not an object"):
        Explanation.from_arrays({"meta": np.array("[1, 2]")})
