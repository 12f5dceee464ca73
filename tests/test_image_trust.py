"""Images and DICOM files from someone else: every crafted file is one ImageReadError line, read
within bounded time and memory, and a bad file in a batch does not stop the others."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from alens_gui.core import dicom as dicom_module
from alens_gui.core.errors import ImageReadError
from alens_gui.core.images import load_image

from . import crafted
from .crafted import finishes, peak_bytes

MiB = crafted.MiB


# -- special files: never opened ----------------------------------------------------------------
def test_a_fifo_named_like_an_image_is_one_line_and_never_blocks(tmp_path):
    for name in ("scan.png", "IM0001", "scan.dcm", "scan.tif"):
        fifo = tmp_path / name
        os.mkfifo(fifo)
        with pytest.raises(ImageReadError, match=f"^{name}: is a FIFO \\(named pipe\\), not an image file$"):
            finishes(lambda fifo=fifo: load_image(fifo))


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_is_refused_without_reading_it(device, tmp_path):
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist on this system")
    with pytest.raises(ImageReadError, match="is a device, not an image file"):
        finishes(lambda: load_image(device))
    link = tmp_path / "scan.dcm"  # a link to a device is refused too
    link.symlink_to(device)
    with pytest.raises(ImageReadError, match="scan.dcm: is a device"):
        finishes(lambda: load_image(link))


def test_a_socket_and_a_link_loop_are_refused(tmp_path):
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    with pytest.raises(ImageReadError, match="loop.png: is a symbolic-link loop, not an image file"):
        load_image(loop)
    sock_path = tmp_path / "s.png"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(str(sock_path))
        with pytest.raises(ImageReadError, match="s.png: is a socket"):
            finishes(lambda: load_image(sock_path))
    finally:
        s.close()


# -- decompression bombs ------------------------------------------------------------------------
@pytest.mark.parametrize("colour", [2, 4, 6], ids=["rgb", "grey+alpha", "rgba"])
def test_16bit_png_with_2_gib_of_idat_is_refused_as_a_bomb(tmp_path, colour):
    # a 2 MB file whose header says 64 x 64 and whose image data expands to 2 GiB: before the
    # fix it "loaded" after allocating 4.2 GB; now nothing past the header's size is expanded
    p = crafted.png16_bomb(tmp_path / "bomb.png", colour=colour)
    assert p.stat().st_size < 3 * MiB
    err, peak = peak_bytes(lambda: load_image(p))
    assert isinstance(err, ImageReadError), err
    assert str(err).startswith("bomb.png: the PNG image data expands to more than ")
    assert str(err).endswith("(possible decompression bomb)")
    assert peak < 16 * MiB, peak


def test_16bit_png_data_shorter_than_its_header_is_truncated(tmp_path):
    rows = b"".join(b"\0" + bytes(64 * 6) for _ in range(10))  # 10 of 64 rows
    p = crafted.png(tmp_path / "short.png", 64, 64, 16, 2, zlib.compress(rows))
    with pytest.raises(ImageReadError, match="short.png: the PNG file is truncated or corrupt"):
        load_image(p)
    p = crafted.png(tmp_path / "none.png", 64, 64, 16, 2, [])
    with pytest.raises(ImageReadError, match="none.png: the PNG file is truncated or corrupt"):
        load_image(p)
    p = crafted.png(tmp_path / "zero.png", 0, 64, 16, 2, zlib.compress(b""))
    with pytest.raises(ImageReadError, match="zero.png: "):
        load_image(p)


def test_16bit_png_still_reads_exactly(tmp_path):
    rng = np.random.default_rng(3)
    img = rng.integers(0, 65536, (40, 30, 3), dtype=np.uint16)
    rows = b"".join(b"\0" + img[y].astype(">u2").tobytes() for y in range(40))
    comp = zlib.compress(rows)
    # IDAT split in three chunks, as encoders do
    p = crafted.png(tmp_path / "ok.png", 30, 40, 16, 2, [comp[:10], comp[10:500], comp[500:]])
    assert np.array_equal(load_image(p).raw, img)


def test_tiff_strip_bomb_is_refused(tmp_path):
    # a deflate strip of a 64 x 64 16-bit page that expands to 1 GiB
    p = crafted.tiff(tmp_path / "bomb.tif", 64, 64, crafted.zlib_zeros(1 << 30))
    err, peak = peak_bytes(lambda: load_image(p))
    assert isinstance(err, ImageReadError), err
    assert str(err).startswith("bomb.tif: a TIFF strip or tile: the compressed data expands to more than 8.0 KiB")
    assert peak < 32 * MiB, peak
    # the same page with an honest strip reads
    good = np.arange(64 * 64, dtype="<u2").reshape(64, 64)
    ok = crafted.tiff(tmp_path / "ok.tif", 64, 64, zlib.compress(good.tobytes()))
    assert np.array_equal(load_image(ok).raw, good)


def test_tiff_header_larger_than_the_data_or_the_limit(tmp_path):
    # 10000 x 12000 pixels of 4 x 64-bit samples: 3.6 GiB decoded, refused from the header alone
    big = crafted.tiff(tmp_path / "big.tif", 10000, 12000, b"", bits=64, samples=4, compression=1, byte_count=0)
    with pytest.raises(ImageReadError, match="big.tif: the image would take 3.6 GiB decoded, more than the"):
        load_image(big)
    # 480 MB of float32 declared, no strip data: refused before anything is allocated
    empty = crafted.tiff(tmp_path / "empty.tif", 10000, 12000, b"", bits=32, compression=1, byte_count=0)
    err, peak = peak_bytes(lambda: load_image(empty))
    assert isinstance(err, ImageReadError) and "empty.tif: the TIFF file is truncated" in str(err), err
    assert peak < 16 * MiB


def test_pillow_opens_only_the_formats_the_program_reads(tmp_path, monkeypatch):
    # PostScript named like a PNG: Pillow would hand it to Ghostscript, a program that runs it
    from PIL import EpsImagePlugin

    def never(*_a, **_k):
        raise AssertionError("an EPS file was opened")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", never)
    eps = tmp_path / "figure.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(ImageReadError, match="figure.png: not an image file"):
        load_image(eps)
    tga = tmp_path / "IMAGE"  # no suffix: formats outside the list are not tried either
    Image.new("RGB", (8, 8)).save(tga, format="TGA")
    with pytest.raises(ImageReadError, match="IMAGE: not an image file"):
        load_image(tga)


# -- DICOM: values in the header ----------------------------------------------------------------
def _voi_lut_item(bits: int, entries: int = 4096) -> Dataset:
    item = Dataset()
    item.add_new(0x00283002, "US", [entries, 0, bits])
    item.add_new(0x00283006, "US", [min(i, 65535) for i in range(entries)])
    return item


def test_voi_lut_saying_65535_bits_is_read_with_the_depth_its_data_has(tmp_path):
    # was: OverflowError (2 ** 65535 as a float) when the LUT is the file's window
    ds = crafted.dicom()
    del ds.WindowCenter, ds.WindowWidth
    ds.VOILUTSequence = Sequence([_voi_lut_item(65535)])
    p = crafted.save_patched(ds, tmp_path / "voi.dcm")
    img = load_image(p)
    assert img.window.function == "lut" and img.window.lut.bits == 16
    assert np.isfinite(img.pixels).all() and 0 <= img.pixels.min() and img.pixels.max() <= 1
    assert img.pixels.max() > 0.01  # the table's real top (4095 of 16 bits) is used, not 2**65535
    assert img.info["ignored"] == ["VOI LUT 1: the LUT Descriptor says 65535 bits per entry; 16 used"]


@pytest.mark.parametrize("descriptor, data, why", [
    ([0, 70000, 16], list(range(16)), "starts at 70000"),
    ([4096, 0, 16], b"\x01", "entries"),
])
def test_an_unusable_voi_lut_is_left_out_and_said(tmp_path, descriptor, data, why):
    ds = crafted.dicom()
    item = Dataset()
    item.add_new(0x00283002, "UL", descriptor)
    item.add_new(0x00283006, "OW" if isinstance(data, bytes) else "US", data)
    ds.VOILUTSequence = Sequence([item])
    img = load_image(crafted.save_patched(ds, tmp_path / "voi.dcm"))
    assert img.window.center == 600 and len(img.dicom_windows) == 1  # the tag window is kept
    assert len(img.info["ignored"]) == 1 and img.info["ignored"][0].startswith("VOI LUT 1: ")


def test_window_center_that_is_not_a_number_is_left_out(tmp_path):
    ds = crafted.dicom(WindowCenter="12345678", WindowWidth="87654321")
    p = crafted.save_patched(ds, tmp_path / "w.dcm", {b"12345678": b"abcdefgh", b"87654321": b"1e999999"})
    img = load_image(p)
    assert img.dicom_windows == () and img.window.mode == "auto" and "no window in the file" in img.window.label
    assert img.info["ignored"][0].startswith("Window Center/Width: ")
    assert np.isfinite(img.pixels).all()


@pytest.mark.parametrize("source, changes, replace, message", [
    ("MR_small.dcm", {"BitsStored": 65535}, None, r"Bits Stored is 65535; expected 1 to 16"),
    ("MR_small.dcm", {"SamplesPerPixel": 65535}, None, r"Samples per Pixel is 65535; expected 1, 3, 4"),
    ("MR_small.dcm", {"BitsAllocated": 12}, None, r"Bits Allocated is 12; expected 1, 8, 16, 32, 64"),
    ("MR_small.dcm", {"Rows": 0}, None, r"Rows is 0; expected 1 to 65535"),
    ("MR_small.dcm", {"NumberOfFrames": 2**31 - 1}, None,
     r"truncated \(the header says 2147483647 frame\(s\) of 64 x 64, the data holds 8192 bytes: 1 frame\(s\)\)"),
    ("MR_small.dcm", {"Rows": 60000, "Columns": 60000}, None, r"60000 x 60000 pixels, more than the 120 megapixel"),
    ("CT_small.dcm", {"RescaleSlope": "1e300"}, None, r"give values out of range"),
    ("CT_small.dcm", {"RescaleSlope": "12345678"}, {b"12345678": b"NaN     "}, r"Rescale Slope is 'NaN'"),
    ("CT_small.dcm", {"RescaleIntercept": "12345678"}, {b"12345678": b"inf     "}, r"Rescale Intercept is 'inf'"),
    ("MR_small_RLE.dcm", {"NumberOfFrames": 50}, None, r"says it has 50 frames, but its pixel data holds 1"),
], ids=["bits-stored", "samples", "bits-allocated", "rows-0", "frames", "60000-square", "slope-overflow",
        "slope-nan", "intercept-inf", "frames-vs-fragments"])
def test_impossible_image_values_are_one_line(tmp_path, source, changes, replace, message):
    p = crafted.save_patched(crafted.dicom(source, **changes), tmp_path / "x.dcm", replace)
    with pytest.raises(ImageReadError, match="^x.dcm: .*" + message):
        load_image(p)


def test_a_broken_modality_lut_is_refused(tmp_path):
    ds = crafted.dicom("CT_small.dcm")
    item = _voi_lut_item(65535)
    item.ModalityLUTType = "HU"
    ds.ModalityLUTSequence = Sequence([item])
    with pytest.raises(ImageReadError, match=r"mlut.dcm: the Modality LUT is broken \(its LUT Descriptor is "
                                             r"\[4096, 0, 65535\]\)"):
        load_image(crafted.save_patched(ds, tmp_path / "mlut.dcm"))


# -- DICOM: compressed frames that would decode to more than the header says ----------------------
@pytest.mark.parametrize("source, what", [
    ("SC_rgb_dcmtk_+eb+cr.dcm", "JPEG"), ("SC_rgb_jpeg_gdcm.dcm", "JPEG"),
    ("MR_small_jpeg_ls_lossless.dcm", "JPEG"), ("MR_small_jp2klossless.dcm", "JPEG 2000"),
])
def test_a_compressed_frame_larger_than_rows_and_columns_is_never_decoded(tmp_path, monkeypatch, source, what):
    # before the fix pylibjpeg allocated 60000 x 60000 x 3 (20 GB) for a 100 x 100 file
    import pydicom.pixels

    def never(*_a, **_k):
        raise AssertionError("the frame was handed to a decoder")

    p = crafted.patch_codestream_size(tmp_path / "big.dcm", source, 60000, 60000)
    monkeypatch.setattr(pydicom.pixels, "pixel_array", never)
    with pytest.raises(ImageReadError, match=f"big.dcm: the {what} frame says 60000 x 60000 pixels .* more than "
                                             r"the \d+ x \d+ of the DICOM header \(possible decompression bomb\)"):
        load_image(p)


def test_an_rle_frame_longer_than_its_image_is_refused(tmp_path):
    p = crafted.rle_bomb_dicom(tmp_path / "rle.dcm")
    with pytest.raises(ImageReadError, match="rle.dcm: the RLE frame is 100064 bytes, more than a 64 x 64 image"):
        load_image(p)


def test_a_deflated_data_set_is_inflated_within_a_bound(tmp_path, monkeypatch):
    # 1 GiB of deflated zeros would be inflated whole and then parsed as 130 million elements
    p = crafted.deflated_dicom(tmp_path / "dfl.dcm", crafted.zlib_zeros(256 * MiB, raw=True))
    monkeypatch.setattr(dicom_module, "MAX_DEFLATED_BYTES", 16 * MiB)
    err, peak = peak_bytes(lambda: load_image(p))
    assert isinstance(err, ImageReadError), err
    assert str(err) == "dfl.dcm: the deflated DICOM data set expands to more than 16.0 MiB (possible decompression bomb)"
    assert peak < 16 * MiB, peak
    real = load_image(crafted.PYDICOM_FILES / "image_dfl.dcm")  # a real deflated file still reads
    assert real.raw.shape == (512, 512) and "Deflated" in real.info["transfer_syntax"]


@pytest.mark.parametrize("nested", [False, True], ids=["top-level", "in-a-sequence"])
@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_a_flood_of_data_elements_is_refused_before_pydicom_parses_it(tmp_path, monkeypatch, nested, implicit):
    # 16 MB of empty elements cost pydicom 0.7 GB and 13 s; the count stops at the limit
    monkeypatch.setattr(dicom_module, "MAX_ELEMENTS", 20_000)
    p = crafted.element_flood_dicom(tmp_path / "flood.dcm", 100_000, nested=nested, implicit=implicit)
    err, peak = peak_bytes(lambda: finishes(lambda: load_image(p), 60))
    assert isinstance(err, ImageReadError), err
    assert str(err) == ("flood.dcm: the DICOM file holds more than 20,000 data elements before its pixel data; "
                        "not read (a real image's header has a few thousand)")
    assert peak < 4 * MiB, peak
    fine = crafted.element_flood_dicom(tmp_path / "fine.dcm", 10_000, nested=nested, implicit=implicit)
    assert load_image(fine).raw.shape == (64, 64)  # below the limit: the image reads


def test_every_pydicom_example_with_pixels_is_under_the_element_limit():
    import io

    counted = 0
    for p in sorted(crafted.PYDICOM_FILES.glob("*.dcm")):
        data = p.read_bytes()
        try:
            dicom_module._check_element_count(io.BytesIO(data), p.name, 5_000)
        except ImageReadError as exc:
            pytest.fail(f"a real file counted as a flood: {exc}")
        counted += 1
    assert counted > 50


def test_deeply_nested_sequences_are_one_line(tmp_path):
    p = crafted.nested_sequences_dicom(tmp_path / "deep.dcm", 20_000)
    with pytest.raises(ImageReadError, match="deep.dcm: the DICOM file nests sequences too deeply to be read"):
        load_image(p)
    shallow = crafted.nested_sequences_dicom(tmp_path / "shallow.dcm", 5)
    assert load_image(shallow).raw.shape == (64, 64)


# -- fuzz: mutated small files ---------------------------------------------------------------------
def _fuzz_bases(root) -> dict[str, bytes]:
    from skimage import data

    photo = data.astronaut()[::16, ::16]  # 32 x 32
    out = {}
    Image.fromarray(photo).save(root / "p.png")
    out["png"] = (root / "p.png").read_bytes()
    img16 = photo.astype(np.uint16) * 257
    rows = b"".join(b"\1" + img16[y].astype(">u2").tobytes() for y in range(32))  # Sub filter
    out["png16"] = crafted.png(root / "p16.png", 32, 32, 16, 2, zlib.compress(rows)).read_bytes()
    out["tiff"] = crafted.tiff(root / "t.tif", 32, 32, zlib.compress(img16[..., 0].astype("<u2").tobytes())).read_bytes()
    import tifffile

    tifffile.imwrite(root / "rgb.tif", img16, compression="zlib")
    out["tiff-rgb"] = (root / "rgb.tif").read_bytes()
    for name in ("MR_small.dcm", "MR_small_RLE.dcm", "SC_rgb_dcmtk_+eb+cr.dcm", "MR_small_jp2klossless.dcm"):
        out[name] = (crafted.PYDICOM_FILES / name).read_bytes()
    return out


_BASES: dict[str, bytes] = {}
_SUFFIX = {"png": ".png", "png16": ".png", "tiff": ".tif", "tiff-rgb": ".tif"}


def _mutate(base: bytes, edits, cut) -> bytes:
    b = bytearray(base)
    for pos, kind, value in edits:
        i = pos % len(b)
        if kind == 0:  # one byte
            b[i] = value & 0xFF
        elif kind == 1:  # a 32-bit number, in either order: lengths, sizes, counts
            b[i:i + 4] = struct.pack("<I" if value & 1 else ">I", value)
        elif kind == 2:  # a 16-bit number
            b[i:i + 2] = struct.pack("<H", value & 0xFFFF)
        else:  # bytes inserted or removed
            if value & 1:
                b[i:i] = bytes([value & 0xFF]) * (value % 7 + 1)
            else:
                del b[i:i + value % 7 + 1]
    return bytes(b[: max(1, int(len(b) * cut))]) if cut < 1 else bytes(b)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    _BASES.update(_fuzz_bases(d))
    return d


def test_load_image_fuzz_loads_or_says_why(fuzz_dir):
    """Mutated PNG, 16-bit PNG, TIFF and DICOM files (headers, lengths, sizes, truncation):
    load_image returns a finite float32 RGB image in [0, 1] or raises ImageReadError, within a
    time bound and with bounded memory."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    edit = st.tuples(st.integers(0, 1 << 20), st.integers(0, 3),
                     st.one_of(st.integers(0, 255), st.sampled_from([0, 1, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
                                                                     60000, 2**31 + 1]), st.integers(0, 2**32 - 1)))

    @settings(max_examples=400, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(base=st.sampled_from(sorted(_BASES)), edits=st.lists(edit, min_size=1, max_size=6),
           cut=st.one_of(st.just(1.0), st.floats(0.05, 1.0)))
    def check(base, edits, cut):
        p = fuzz_dir / f"case{_SUFFIX.get(base, '.dcm')}"
        p.write_bytes(_mutate(_BASES[base], edits, cut))
        out, peak = peak_bytes(lambda: finishes(lambda: load_image(p), 60))
        if isinstance(out, Exception):
            assert isinstance(out, ImageReadError), f"{type(out).__name__}: {out}"
            assert "\n" not in str(out) and str(out).startswith(f"{p.name}: ")
        else:
            px = out.pixels
            assert px.dtype == np.float32 and px.ndim == 3 and px.shape[-1] == 3
            assert np.isfinite(px).all() and px.min() >= 0.0 and px.max() <= 1.0
        assert peak < 256 * MiB, peak

    check()


# -- the command line: a bad file is one line and the batch goes on ------------------------------
def test_a_bomb_fifo_and_broken_dicom_in_a_batch_are_one_line_each(tmp_path, capsys):
    from skimage import data

    from alens_gui.cli import main

    Image.fromarray(data.chelsea()).save(tmp_path / "a.png")
    Image.fromarray(data.coffee()).save(tmp_path / "c.png")
    crafted.png16_bomb(tmp_path / "bomb.png")
    os.mkfifo(tmp_path / "pipe.png")
    crafted.save_patched(crafted.dicom(BitsStored=65535), tmp_path / "bits.dcm")
    ds = crafted.dicom()
    del ds.WindowCenter, ds.WindowWidth
    ds.VOILUTSequence = Sequence([_voi_lut_item(65535)])
    crafted.save_patched(ds, tmp_path / "voi.dcm")  # was an OverflowError that ended the batch
    names = ["a.png", "bomb.png", "pipe.png", "bits.dcm", "voi.dcm", "c.png"]
    out = tmp_path / "out"
    rc = finishes(lambda: main(["explain", *[str(tmp_path / n) for n in names], "--method", "gradcam",
                                "--top-k", "2", "--no-png", "--out", str(out)]), 600)
    assert rc == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("alens: error")]
    assert len(errors) == 3, errors
    assert "bomb.png: the PNG image data expands to more than" in errors[0]
    assert "pipe.png: is a FIFO (named pipe), not an image file" in errors[1]
    assert "bits.dcm: the DICOM file is corrupt (Bits Stored is 65535" in errors[2]
    assert sorted(p.name for p in out.glob("*.npz")) == ["a.npz", "c.npz", "voi.npz"]
    assert "wrote 3 of 6 image(s)" in err


def test_a_folder_with_special_files_lists_the_images_and_says_what_it_skipped(tmp_path, capsys):
    from skimage import data

    from alens_gui.cli import main

    root = tmp_path / "study"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(data.chelsea()[::2, ::2]).save(root / "a.png")
    shutil.copy(crafted.PYDICOM_FILES / "CT_small.dcm", root / "sub" / "IM0001")
    os.mkfifo(root / "IM0002")  # suffix-less: the listing used to open it to look for DICOM, and block
    os.mkfifo(root / "sub" / "pipe.png")
    (root / "sub" / "loop.png").symlink_to(root / "sub" / "loop.png")
    (root / "sub" / "up").symlink_to(root)
    out = tmp_path / "out"
    rc = finishes(lambda: main(["explain", str(root), "--recursive", "--method", "gradcam", "--top-k", "2",
                                "--no-png", "--out", str(out)]), 600)
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("alens: note")]
    assert notes == [f"alens: note: {root}/IM0002: skipped, is a FIFO (named pipe), not a file",
                     f"alens: note: {root}/sub/loop.png: skipped, a symbolic-link loop",
                     f"alens: note: {root}/sub/pipe.png: skipped, is a FIFO (named pipe), not a file",
                     f"alens: note: {root}/sub/up: skipped, a link to a folder (links are not followed into "
                     "sub-folders)"]
    assert rc == 0 and not [line for line in err.splitlines() if line.startswith("alens: error")]
    assert sorted(p.name for p in out.glob("*.npz")) == ["a.npz", "sub__IM0001.npz"]  # core/outputs naming


def test_a_png_header_its_data_cannot_fill_is_refused_before_decoding(tmp_path, monkeypatch):
    # 10000 x 10000 RGBA from a few bytes of image data: deflate cannot expand data more than
    # 1032 times, so this is refused before Pillow allocates the 400 MB image
    from PIL import ImageFile

    def never(*_a, **_k):
        raise AssertionError("Pillow was asked to decode it")

    p = crafted.png(tmp_path / "huge.png", 10000, 10000, 8, 6, zlib.compress(bytes(1000)))
    monkeypatch.setattr(ImageFile.ImageFile, "load", never)
    with pytest.raises(ImageReadError, match=r"huge.png: the PNG file is truncated \(\d+ bytes of compressed data "
                                             r"cannot hold the 381.5 MiB its header says\)"):
        load_image(p)


def test_decoded_size_limits_follow_the_memory_available(tmp_path, monkeypatch):
    from alens_gui.core import imagelimits, safeio

    Image.new("RGB", (600, 400), (10, 20, 30)).save(tmp_path / "ok.png")
    assert load_image(tmp_path / "ok.png").raw.shape == (400, 600, 3)
    monkeypatch.setattr(imagelimits, "MAX_DECODED_BYTES", 512 * 1024)
    with pytest.raises(ImageReadError, match=r"ok.png: the image would take 703.1 KiB decoded, more than the "
                                             r"512.0 KiB limit"):
        load_image(tmp_path / "ok.png")
    # a DICOM file larger than half the memory available is not read into memory
    monkeypatch.setattr(safeio, "memory_budget", lambda fraction=0.5, **_k: 4096)
    with pytest.raises(ImageReadError, match=r"CT_small.dcm: the DICOM file is 38.\d KiB, more than the 4.0 KiB "
                                             r"that can be read into memory now"):
        load_image(crafted.PYDICOM_FILES / "CT_small.dcm")


def test_a_damaged_tiff_is_one_line_without_the_librarys_own_complaints(tmp_path, caplog):
    tif = tmp_path / "empty.tif"
    tif.write_bytes(b"II*\0" + struct.pack("<I", 0))  # a header and no page
    with pytest.raises(ImageReadError, match="^empty.tif: the TIFF file holds no image$"):
        load_image(tif)
    assert not [r for r in caplog.records if r.name.startswith("tifffile")]  # tifffile logs "contains no pages"
