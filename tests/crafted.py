"""Crafted files an attacker or a careless colleague could pass on: bombs, lies in headers, odd values.

Each helper writes a small file whose header says one thing and whose data says another, so that
the tests can check that reading it is one clear error line within bounded time and memory
(:func:`finishes` and :func:`peak_bytes` are those bounds).
"""

from __future__ import annotations

import struct
import threading
import tracemalloc
import zlib
from pathlib import Path

import pydicom

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
GiB = 1024**3
MiB = 1024**2


def finishes(fn, seconds: float = 120.0):
    """``fn()`` in a thread: its result, or its exception raised here. A call that never returns
    (a read blocked on a FIFO) fails the test instead of hanging the suite."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # raised again in the calling thread
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn} never returned: it blocks"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def peak_bytes(fn) -> tuple[object, int]:
    """``(fn()'s result or exception, peak bytes Python and NumPy allocated meanwhile)``."""
    tracemalloc.start()
    try:
        try:
            out = fn()
        except Exception as exc:  # returned: the caller checks it is the expected one
            out = exc
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def zlib_zeros(total: int, block: int = 1 << 20, raw: bool = False) -> bytes:
    """A valid zlib stream (``raw``: a bare deflate stream) of ``total`` zero bytes (``total`` a
    multiple of ``block``), made in milliseconds: after a full flush deflate forgets its history,
    so every further block of zeros compresses to the same bytes and is repeated instead of
    compressed again."""
    c = zlib.compressobj(9, wbits=-15 if raw else 15)
    first = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    body = bytearray(first)
    for _ in range(total // block - 1):
        body += again
    body += c.flush()
    if not raw:  # the trailer is the Adler-32 of everything: for n zero bytes, a = 1, b = n mod 65521
        body[-4:] = struct.pack(">I", ((total % 65521) << 16) | 1)
    return bytes(body)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(path: Path, width: int, height: int, depth: int, colour: int, idat: bytes | list[bytes],
        interlace: int = 0) -> Path:
    """A PNG with the given IHDR and IDAT payload(s), nothing checked."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    chunks = [idat] if isinstance(idat, bytes) else idat
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
    data += b"".join(_png_chunk(b"IDAT", c) for c in chunks) + _png_chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def png16_bomb(path: Path, total: int = 2 * GiB, colour: int = 2) -> Path:
    """A 2 MB 16-bit PNG whose header says 64 x 64 and whose IDAT expands to ``total`` bytes."""
    return png(path, 64, 64, 16, colour, zlib_zeros(total))


def tiff(path: Path, width: int, height: int, strip: bytes, *, bits: int = 16, samples: int = 1,
         compression: int = 8, rows_per_strip: int | None = None, byte_count: int | None = None) -> Path:
    """A one-strip little-endian TIFF with the given header values and strip bytes."""
    entries = [
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, bits), (259, 3, 1, compression),
        (262, 3, 1, 1 if samples == 1 else 2), (273, 4, 1, 0), (277, 3, 1, samples),
        (278, 4, 1, rows_per_strip if rows_per_strip is not None else height),
        (279, 4, 1, len(strip) if byte_count is None else byte_count),
    ]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\0" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = data_offset
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, count) + packed
    out += struct.pack("<I", 0) + strip
    path.write_bytes(bytes(out))
    return path


def dicom(name: str = "MR_small.dcm", **changes) -> pydicom.Dataset:
    """A dataset shipped with pydicom with some elements changed (values pydicom accepts)."""
    ds = pydicom.dcmread(PYDICOM_FILES / name)
    for key, value in changes.items():
        setattr(ds, key, value)
    return ds


def save_patched(ds: pydicom.Dataset, path: Path, replace: dict[bytes, bytes] | None = None) -> Path:
    """Write ``ds`` and then replace byte strings in the file (same length each), for values that
    pydicom refuses to write, such as a Window Center of ``abc``."""
    ds.save_as(path, enforce_file_format=False)
    if replace:
        data = path.read_bytes()
        for old, new in replace.items():
            assert len(old) == len(new) and data.count(old) == 1, (old, new)
            data = data.replace(old, new)
        path.write_bytes(data)
    return path


def patch_codestream_size(path: Path, source: str, width: int, height: int) -> Path:
    """A compressed DICOM file from pydicom's test files whose JPEG / JPEG-LS / JPEG 2000 frame
    header says ``width`` x ``height`` (the DICOM Rows and Columns are left as they are)."""
    data = bytearray((PYDICOM_FILES / source).read_bytes())
    i = data.find(b"\xff\x4f\xff\x51")  # JPEG 2000 SOC + SIZ
    if i >= 0:
        data[i + 8:i + 16] = struct.pack(">II", width, height)
    else:
        i = min(j for j in (data.find(m) for m in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc3", b"\xff\xf7")) if j > 0)
        data[i + 5:i + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


def deflated_dicom(path: Path, payload: bytes) -> Path:
    """A Part 10 file in Deflated Explicit VR Little Endian whose data set is ``payload`` (raw deflate)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_file_meta_info(buf, meta)
    path.write_bytes(b"\0" * 128 + b"DICM" + buf.getvalue() + payload)
    return path


def nested_sequences_dicom(path: Path, depth: int) -> Path:
    """MR_small with a private sequence nested ``depth`` levels deep (undefined lengths)."""
    data = (PYDICOM_FILES / "MR_small.dcm").read_bytes()
    level = struct.pack("<HH2s2xI", 0x0009, 0x1010, b"SQ", 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    # insert right after the file meta, before (0008,xxxx): group 0009 sorts after 0008, but
    # pydicom reads elements in file order, so position does not matter for the parser
    meta_end = 132 + 12 + int.from_bytes(data[140:144], "little")
    path.write_bytes(data[:meta_end] + level * depth + close * depth + data[meta_end:])
    return path


def rle_bomb_dicom(path: Path, run_pairs: int = 25_000) -> Path:
    """MR_small (64 x 64, 16 bits) as RLE whose two segments each decode to ``128 * run_pairs``
    bytes instead of the 4096 the header implies."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    ds = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
    segment = b"\x81\x00" * run_pairs  # each pair: repeat the next byte 128 times
    header = struct.pack("<16I", 2, 64, 64 + len(segment), *([0] * 13))
    ds.PixelData = encapsulate([header + segment + segment])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.save_as(path, enforce_file_format=False)
    return path


def element_flood_dicom(path: Path, n: int, *, nested: bool = False, implicit: bool = False) -> Path:
    """MR_small with ``n`` empty private elements before its own: at the top level, or inside one
    private sequence of undefined length (``nested``), whose elements pydicom parses at once.
    ``implicit``: the whole file rewritten in Implicit VR Little Endian first."""
    import io

    ds = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
    if implicit:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        buf = io.BytesIO()
        ds.save_as(buf, implicit_vr=True, little_endian=True)
        data = buf.getvalue()
    else:
        data = (PYDICOM_FILES / "MR_small.dcm").read_bytes()
    meta_end = 132 + 12 + int.from_bytes(data[140:144], "little")
    if implicit:
        one = [struct.pack("<HHI", 0x0009 + 2 * (i // 0xEF00), 0x1000 + i % 0xEF00, 0) for i in range(n)]
        head = struct.pack("<HHI", 0x0009, 0x0010, 0xFFFFFFFF)  # undefined length: a sequence
    else:
        one = [struct.pack("<HH2sH", 0x0009 + 2 * (i // 0xEF00), 0x1000 + i % 0xEF00, b"LO", 0) for i in range(n)]
        head = struct.pack("<HH2s2xI", 0x0009, 0x0010, b"SQ", 0xFFFFFFFF)
    flood = b"".join(one)
    if nested:
        item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
        close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
        flood = head + item + flood + close
    path.write_bytes(data[:meta_end] + flood + data[meta_end:])
    return path
