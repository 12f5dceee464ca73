"""Reading DICOM images with pydicom: native values, the file's own windows, and no identifiers.

What a reader of a clinical file expects, in order (PS3.3 C.11 and C.7.6.3):

* the pixel data of one frame is decoded (pydicom and its decoder plugins: pylibjpeg-libjpeg,
  pylibjpeg-openjpeg, pylibjpeg-rle, Pillow), in either byte order, at any size;
* the *modality LUT* turns stored values into physical units (*Rescale Slope/Intercept*,
  the *Modality LUT Sequence*, or the enhanced multi-frame functional groups);
* the *VOI* windows of the file (*Window Center/Width* with its *VOI LUT Function*, or the
  *VOI LUT Sequence*, read through pydicom's ``apply_voi``) are offered, the first one being
  the default;
* MONOCHROME1, and *Presentation LUT Shape* INVERSE (mammography, CR), are shown inverted
  (high values dark; :func:`shown_inverted`), palette colour is expanded, and YBR colour is
  converted to RGB.

pydicom's warnings about odd values it parses go to the ``alens_gui`` log (``-v`` shows them).

Patient identifiers are read into :attr:`DicomImage.identifiers` only; :attr:`DicomImage.info`
holds an allow-list of technical fields, so nothing identifying is written unless a caller
copies the identifiers on purpose.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from . import safeio
from .errors import AlensError, ImageReadError
from .windowing import VoiLut, Window

log = logging.getLogger(__name__)

DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")

#: Identifying fields (PS3.15 E.1 basic profile, the ones a viewer shows). Read only into
#: ``DicomImage.identifiers``; written out only when the user asks for identifiers.
IDENTIFIER_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "PatientSex", "PatientAge",
    "OtherPatientIDs", "OtherPatientNames", "PatientAddress", "PatientTelephoneNumbers",
    "IssuerOfPatientID", "MedicalRecordLocator", "AccessionNumber", "StudyID", "StudyDate", "StudyTime",
    "SeriesDate", "AcquisitionDate", "ContentDate", "StudyDescription", "SeriesDescription",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "ReferringPhysicianName",
    "PerformingPhysicianName", "PhysiciansOfRecord", "OperatorsName", "StationName", "DeviceSerialNumber",
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
)

# Which packages decode which compressed transfer syntax, and one pip line that does it
# (for the "no decoder" message).
_LIBJPEG = ("pylibjpeg with pylibjpeg-libjpeg", "pip install pylibjpeg pylibjpeg-libjpeg")
_OPENJPEG = ("pylibjpeg with pylibjpeg-openjpeg", "pip install pylibjpeg pylibjpeg-openjpeg")
_DECODER_HINTS = {
    "1.2.840.10008.1.2.4.50": (f"Pillow or {_LIBJPEG[0]}", _LIBJPEG[1]),
    "1.2.840.10008.1.2.4.51": (f"Pillow or {_LIBJPEG[0]}", _LIBJPEG[1]),
    "1.2.840.10008.1.2.4.57": (f"{_LIBJPEG[0]}, or python-gdcm", _LIBJPEG[1]),
    "1.2.840.10008.1.2.4.70": (f"{_LIBJPEG[0]}, or python-gdcm", _LIBJPEG[1]),
    "1.2.840.10008.1.2.4.80": (f"pyjpegls, {_LIBJPEG[0]}, or python-gdcm", "pip install pyjpegls"),
    "1.2.840.10008.1.2.4.81": (f"pyjpegls, {_LIBJPEG[0]}, or python-gdcm", "pip install pyjpegls"),
    "1.2.840.10008.1.2.4.90": (f"{_OPENJPEG[0]}, Pillow, or python-gdcm", _OPENJPEG[1]),
    "1.2.840.10008.1.2.4.91": (f"{_OPENJPEG[0]}, Pillow, or python-gdcm", _OPENJPEG[1]),
    "1.2.840.10008.1.2.4.201": ("pylibjpeg with pylibjpeg-openjpeg 2.4 or later", _OPENJPEG[1]),
    "1.2.840.10008.1.2.4.202": ("pylibjpeg with pylibjpeg-openjpeg 2.4 or later", _OPENJPEG[1]),
    "1.2.840.10008.1.2.4.203": ("pylibjpeg with pylibjpeg-openjpeg 2.4 or later", _OPENJPEG[1]),
    "1.2.840.10008.1.2.5": ("pylibjpeg with pylibjpeg-rle", "pip install pylibjpeg pylibjpeg-rle"),
}
_NO_PYDICOM_DECODER = (
    "pydicom has no decoder for it; convert the file to an uncompressed transfer syntax first "
    "(e.g. gdcmconv --raw, or dcmtk's dcmdjpeg/dcmdrle)"
)
_VIDEO_HINT = "it holds video; extract the frames as images first (e.g. with ffmpeg)"


@dataclass(frozen=True, eq=False)
class DicomImage:
    """One decoded frame of a DICOM file.

    Attributes
    ----------
    raw : ndarray
        ``(H, W)`` float32 in physical units (after the modality LUT) for monochrome images;
        ``(H, W, 3)`` RGB in the stored integer type for colour images.
    full_range : (lo, hi)
        The range the stored bits can hold, in the units of ``raw`` (the ``full`` window).
    windows : tuple of Window
        The file's VOI windows, first (the default) first; empty for colour images and files
        without any.
    invert : bool
        MONOCHROME1: windowed brightness is shown as ``1 - b``.
    frame, n_frames : int
        The frame decoded (from 0) and how many the file has.
    info : dict
        Non-identifying technical fields (modality, photometric interpretation, bits, size,
        transfer syntax, SOP class, rescale, units).
    identifiers : dict
        Patient and study identifiers present in the file (never exported by default).
    """

    raw: np.ndarray
    full_range: tuple[float, float]
    windows: tuple[Window, ...] = ()
    invert: bool = False
    frame: int = 0
    n_frames: int = 1
    info: dict = field(default_factory=dict)
    identifiers: dict = field(default_factory=dict)

    @property
    def bits_stored(self) -> int:
        return int(self.info.get("bits_stored", 8))


def has_dicom_magic(head: bytes) -> bool:
    """``DICM`` at offset 128: a DICOM Part 10 file with its preamble."""
    return len(head) >= 132 and head[128:132] == b"DICM"


def _looks_like_raw_dataset(head: bytes) -> bool:
    """A dataset written without preamble and meta header starts with a small-group element:
    (0002,xxxx) or (0008,xxxx) in either byte order, followed by an explicit VR or a
    plausible implicit-VR length."""
    if len(head) < 8:
        return False
    for order in ("<", ">"):
        group, elem = np.frombuffer(head[:4], dtype=f"{order}u2")
        if group not in (0x0002, 0x0008) or elem > 0x0100:
            continue
        vr = head[4:6]
        if vr.isalpha() and vr.isupper():
            return True
        if order == "<" and int(np.frombuffer(head[4:8], dtype="<u4")[0]) < 4096:
            return True
    return False


def looks_like_dicom(path: str | os.PathLike) -> bool:
    """A fast check (reads 132 bytes, decodes nothing): is this file DICOM?

    True for Part 10 files (``DICM`` at offset 128) whatever their name, and for bare
    datasets without preamble (as some older modalities write them).
    """
    try:
        with safeio.open_regular(path) as f:  # a FIFO or a device is not opened for reading
            head = f.read(132)
    except (AlensError, OSError):
        return False
    return is_dicom_head(head)


def is_dicom_head(head: bytes) -> bool:
    """:func:`looks_like_dicom` for the first 132 bytes of a file."""
    return has_dicom_magic(head) or _looks_like_raw_dataset(head)


_one_line = safeio.one_line
printable = safeio.printable


#: Largest data set a deflated file (Deflated Explicit VR Little Endian) may expand to. pydicom
#: inflates it whole and then parses every element in Python, so a few MB of deflated zeros
#: would otherwise cost gigabytes or minutes; files above this are converted first (e.g. with
#: dcmtk's ``dcmconv +te`` or ``gdcmconv --raw``).
MAX_DEFLATED_BYTES = 64 * 1024 * 1024


def _dcmread(f: IO[bytes], name: str):
    """The dataset of an open file, read within bounds: pydicom reads a whole file into memory
    and inflates a deflated one without limit, so both sizes are checked before it does."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    limit = safeio.memory_budget(0.5)
    size = os.fstat(f.fileno()).st_size
    if size > limit:
        raise ImageReadError(f"{name}: the DICOM file is {safeio.fmt_bytes(size)}, more than the "
                             f"{safeio.fmt_bytes(limit)} that can be read into memory now")
    if size <= _IN_MEMORY_BYTES:
        # one read, and a memory file never gives read(n) more than it holds (nor allocates it)
        f.seek(0)
        data = f.read(size + 1)
        f = io.BytesIO(data)
        maybe_deflated = _DEFLATED_UID in data  # its transfer syntax UID is in the file, or it is not deflated
    else:
        f = _Clamped(f, size)
        maybe_deflated = True
    if maybe_deflated:
        _check_deflated(f, name, min(MAX_DEFLATED_BYTES, limit - size))
    _check_element_count(f, name, MAX_ELEMENTS)
    try:
        try:
            f.seek(0)
            return pydicom.dcmread(f)
        except InvalidDicomError:
            f.seek(0)
            if not _looks_like_raw_dataset(f.read(132)):
                raise
            f.seek(0)
            return pydicom.dcmread(f, force=True)
    except InvalidDicomError as exc:
        raise ImageReadError(f"{name}: not a DICOM file (no DICM header and no readable dataset)") from exc
    except (EOFError, OSError, ValueError, KeyError, TypeError, AttributeError, NotImplementedError,
            struct.error, IndexError, OverflowError) as exc:
        raise ImageReadError(f"{name}: the DICOM file is truncated or corrupt ({_one_line(exc)})") from exc


#: Files up to this size are read into memory at once (pydicom reads them whole anyway).
_IN_MEMORY_BYTES = 64 * 1024 * 1024
_DEFLATED_UID = b"1.2.840.10008.1.2.1.99"


class _Clamped:
    """A file that never allocates more for ``read(n)`` than it has left: pydicom reads each
    element's declared length at once, and a crafted length of 4 GB in a 10 KB file would
    otherwise allocate 4 GB before finding the file short."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self._f, self._size = f, size

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            return self._f.read()
        return self._f.read(max(0, min(n, self._size - self._f.tell())))

    def __getattr__(self, attr: str):
        return getattr(self._f, attr)


def _check_deflated(f, name: str, limit: int) -> None:
    """Refuse a deflated data set that would expand past ``limit`` bytes (counted, not kept)."""
    from pydicom.filereader import read_dataset, read_preamble
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    f.seek(0)
    try:
        read_preamble(f, False)
        meta = read_dataset(f, is_implicit_VR=False, is_little_endian=True,
                            stop_when=lambda tag, _vr, _length: tag.group != 2)
        deflated = str(meta.get("TransferSyntaxUID", "") or "").strip("\0 ") == DeflatedExplicitVRLittleEndian
    except Exception:  # not Part 10, or a broken meta header: pydicom says which when it reads the file
        return
    if deflated:
        safeio.expanded_size(iter(lambda: f.read(1 << 20), b""), limit, name, ImageReadError,
                             "deflated DICOM data set", wbits=-zlib.MAX_WBITS)


#: Most data elements (nested ones included) a file may hold before its pixel data. pydicom
#: parses every top-level element, and every element of a sequence of undefined length, into
#: Python objects at ~400 bytes and several microseconds each: 16 MB of empty elements cost
#: 0.7 GB and 13 s. Real files hold a few thousand; an enhanced multi-frame file with
#: thousands of frames some hundred thousand.
MAX_ELEMENTS = 1_000_000

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_UNDEFINED = 0xFFFFFFFF


def _check_element_count(f, name: str, limit: int) -> None:
    """Refuse a file with more than ``limit`` data elements before its pixel data, counted by
    walking the element headers (values are skipped, not read), so the count costs time in
    proportion to ``limit`` at most, whatever the file's size."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

    f.seek(0)
    head = f.read(132)
    start = 132 if head[128:132] == b"DICM" else 0
    f.seek(start)
    ts = None
    if start:  # the file meta group: explicit VR little endian whatever follows
        while True:
            pos = f.tell()
            h = f.read(8)
            if len(h) < 8 or struct.unpack_from("<H", h)[0] != 0x0002:
                f.seek(pos)
                break
            vr, length = h[4:6], struct.unpack_from("<H", h, 6)[0]
            if vr in _LONG_VRS:
                extra = f.read(4)
                if len(extra) < 4:
                    return
                length = struct.unpack("<I", extra)[0]
            if length == _UNDEFINED:
                return  # a broken meta group: pydicom says what is wrong with it
            value = f.read(min(length, 256))
            if struct.unpack_from("<H", h, 2)[0] == 0x0010:
                ts = value.rstrip(b"\0 ").decode("ascii", "replace")
            f.seek(pos + 8 + (4 if vr in _LONG_VRS else 0) + length)
    if ts == DeflatedExplicitVRLittleEndian:  # its size was checked: inflate within that bound
        body = zlib.decompressobj(-zlib.MAX_WBITS).decompress(f.read(), MAX_DEFLATED_BYTES)
        f, ts = io.BytesIO(body), None
        implicit, order = False, "<"
    elif ts is not None:
        implicit, order = ts == ImplicitVRLittleEndian, (">" if ts == ExplicitVRBigEndian else "<")
    else:  # a bare dataset (or deflated, inflated above): explicit when a VR follows the first tag
        pos = f.tell()
        first = f.read(6)
        f.seek(pos)
        implicit = not (len(first) == 6 and first[4:6].isalpha() and first[4:6].isupper())
        order = "<"
    count = _walk_elements(f, implicit, order, limit)
    if count > limit:
        raise ImageReadError(f"{name}: the DICOM file holds more than {limit:,} data elements before its "
                             "pixel data; not read (a real image's header has a few thousand)")


def _walk_elements(f, implicit: bool, order: str, limit: int) -> int:
    """Count element headers (sequences and items entered, values skipped) up to the pixel
    data, the end of the file or ``limit + 1``."""
    from pydicom.datadict import dictionary_VR

    tag_fmt, u16, u32 = order + "HH", order + "H", order + "I"
    count = 0
    while count <= limit:
        h = f.read(8)
        if len(h) < 8:
            break
        group, elem = struct.unpack_from(tag_fmt, h)
        if group == 0xFFFE:  # item and delimiters: no VR; an item's content is elements, entered
            count += 1
            continue
        if group == 0x7FE0 or group == 0xFFFC:  # the pixel data (or trailing padding): the header is over
            break
        count += 1
        if implicit:
            length = struct.unpack_from(u32, h, 4)[0]
            if length == _UNDEFINED:
                continue  # a sequence of undefined length: its items follow
            try:
                is_seq = dictionary_VR((group << 16) | elem) == "SQ"
            except KeyError:
                is_seq = False
            if is_seq:
                continue  # a defined-length sequence: its items are elements, entered
        else:
            vr = h[4:6]
            if vr in _LONG_VRS:
                extra = f.read(4)
                if len(extra) < 4:
                    break
                length = struct.unpack(u32, extra)[0]
            else:
                length = struct.unpack_from(u16, h, 6)[0]
            if vr == b"SQ" or (length == _UNDEFINED and vr == b"UN"):
                continue  # entered: sequences of either length
            if length == _UNDEFINED:
                break  # encapsulated data outside the pixel data: pydicom judges it
        f.seek(length, os.SEEK_CUR)
    return count


def _transfer_syntax(ds):
    from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts:
        return UID(ts)
    # A bare dataset: its encoding, as pydicom found it, names the transfer syntax.
    implicit, little = ds.original_encoding
    ts = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    from pydicom.dataset import FileMetaDataset

    if meta is None:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    return ts


def decoder_problem(ts) -> str | None:
    """Why pixel data in transfer syntax ``ts`` cannot be decoded here, or ``None`` if it can."""
    from pydicom.pixels import get_decoder

    uid = str(ts)
    label = f"{ts.name} ({uid})" if ts.name != uid else f"transfer syntax {uid}"
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        if uid.startswith(("1.2.840.10008.1.2.4.10", "1.2.840.10008.1.2.7")):
            return f"pixel data in {label}: {_VIDEO_HINT}"
        if uid in ("1.2.840.10008.1.2.4.94", "1.2.840.10008.1.2.4.95"):
            return f"pixel data in {label}: the pixels are not in the file but on a JPIP server"
        if not ts.is_transfer_syntax:
            return f"unknown {label}; it cannot be decoded"
        return f"pixel data in {label}: {_NO_PYDICOM_DECODER}"
    if decoder.is_available:
        return None
    hint = _DECODER_HINTS.get(uid)
    if hint is None:
        return f"no decoder is installed for {label}"
    return f"no decoder is installed for {label}; install {hint[0]} (e.g. {hint[1]})"


def _functional_item(ds, frame: int, keyword: str):
    """The first item of ``keyword`` in the per-frame, then the shared functional groups
    (enhanced multi-frame objects keep rescale and window there)."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        seq = ds.get(groups)
        if seq and len(seq) > index:
            inner = seq[index].get(keyword)
            if inner:
                return inner[0]
    return None


def _floats(value) -> list[float]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [float(v) for v in value if v is not None and v != ""]
    return [float(value)]


def _strings(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value]
    return [str(value)]


# -- values from the tags, checked --------------------------------------------------------------
def _label(keyword: str) -> str:
    from pydicom.datadict import dictionary_description, tag_for_keyword

    tag = tag_for_keyword(keyword)
    return dictionary_description(tag) if tag is not None else keyword


def _get(ds, keyword: str, name: str):
    """``ds.get(keyword)``; pydicom converts a value when it is first read, so a malformed one
    raises here, as one line."""
    try:
        return ds.get(keyword)
    except Exception as exc:
        raise ImageReadError(f"{name}: the DICOM file is corrupt ({_label(keyword)}: {_one_line(exc)})") from exc


def _int_tag(ds, keyword: str, name: str, default: int | None, allowed: range | tuple[int, ...]) -> int:
    """An integer element, checked against ``allowed``; missing: ``default`` (``None``: required)."""
    value = _get(ds, keyword, name)
    if value is None or value == "":
        if default is None:
            raise ImageReadError(f"{name}: the DICOM file has no {_label(keyword)}")
        return default
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ImageReadError(f"{name}: the DICOM file is corrupt ({_label(keyword)} is {str(value)[:40]!r})") from None
    if number not in allowed:
        expected = (f"{allowed.start} to {allowed.stop - 1}" if isinstance(allowed, range)
                    else ", ".join(str(a) for a in allowed))
        raise ImageReadError(f"{name}: the DICOM file is corrupt ({_label(keyword)} is {number}; expected {expected})")
    return number


def _finite_tag(value, keyword: str, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if not np.isfinite(number):
        raise ImageReadError(f"{name}: the DICOM file is corrupt ({_label(keyword)} is {str(value)[:40]!r})")
    return number


@dataclass(frozen=True)
class _Geometry:
    """The image-pixel elements every decoder sizes its output by, checked before decoding."""

    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    frames: int

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.columns * self.samples * max(self.bits_allocated, 8) // 8


def _geometry(ds, name: str) -> _Geometry:
    from .imagelimits import check_decoded
    from .imagelimits import check_pixels as _check_pixels

    rows = _int_tag(ds, "Rows", name, None, range(1, 65536))
    columns = _int_tag(ds, "Columns", name, None, range(1, 65536))
    _check_pixels(name, columns, rows)
    samples = _int_tag(ds, "SamplesPerPixel", name, 1, (1, 3, 4))
    allocated = _int_tag(ds, "BitsAllocated", name, 8, (1, 8, 16, 32, 64))
    stored = _int_tag(ds, "BitsStored", name, allocated, range(1, allocated + 1))
    signed = _int_tag(ds, "PixelRepresentation", name, 0, (0, 1)) == 1
    frames = _int_tag(ds, "NumberOfFrames", name, 1, range(-2**31, 2**31))
    geo = _Geometry(rows, columns, samples, allocated, stored, signed, max(frames, 1))
    check_decoded(name, geo.frame_bytes, "one frame")
    return geo


# -- windows --------------------------------------------------------------------------------------
def _tag_windows(item, ignored: list[str]) -> list[Window]:
    """Windows from Window Center/Width (+ VOI LUT Function, + explanations) on ``item``.

    A window that cannot be used (not a number, width <= 0) is left out and said in ``ignored``:
    the image is still read, with the next window or the fallback."""
    try:
        centers, widths = _floats(item.get("WindowCenter")), _floats(item.get("WindowWidth"))
        labels = _strings(item.get("WindowCenterWidthExplanation"))
        function = str(item.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().lower()
    except Exception as exc:  # values pydicom cannot convert (e.g. a Window Center of "abc")
        ignored.append(f"Window Center/Width: {_one_line(exc, 120)}")
        return []
    function = function if function in ("linear", "linear_exact", "sigmoid") else "linear"
    out = []
    for i, (c, w) in enumerate(zip(centers, widths)):
        if not (np.isfinite(c) and np.isfinite(w)) or w <= 0 or (function == "linear" and w < 1):
            ignored.append(f"Window Center/Width {c:g}/{w:g}: not a usable window")
            continue
        label = labels[i] if i < len(labels) else ""
        out.append(Window(c, w, "dicom", function, label.strip()))
    return out


#: VOI LUTs read from one file at most (each can hold 65536 entries).
MAX_VOI_LUTS = 16


def _lut_windows(ds, ignored: list[str]) -> list[Window]:
    """The VOI LUT Sequence's tables as windows, each read by pydicom (``apply_voi``).

    pydicom maps every input value the table covers; an image then maps through that table
    exactly as ``apply_voi_lut(arr, ds, prefer_lut=True)`` maps it. The descriptor is checked
    first (entries, first value); a table whose declared depth pydicom refuses (outside 8-16
    bits, common in the wild) is read with the depth its data shows. A table that cannot be
    used is left out and said in ``ignored``, never the image.
    """
    from pydicom.pixels import apply_voi

    out = []
    try:
        items = list(ds.get("VOILUTSequence") or [])
    except Exception as exc:
        ignored.append(f"VOI LUT Sequence: {_one_line(exc, 120)}")
        return out
    for i, item in enumerate(items):
        if i == MAX_VOI_LUTS:
            ignored.append(f"VOI LUT Sequence: {len(items)} tables, only the first {MAX_VOI_LUTS} read")
            break
        try:
            lut, label = _voi_lut(item, ds, ignored, i + 1)
            if lut is None:
                continue
            if int(list(item.get("LUTDescriptor"))[2]) in (8, 16):  # the depths pydicom reads
                # (9-15, allowed, and wrong depths corrected from the data are looked up by ours alone)
                n, first = lut.values.size, int(lut.first)
                values = np.asarray(apply_voi(np.arange(first, first + n, dtype=np.int64), ds, index=i),
                                    dtype=np.float64)
                if values.shape == (n,) and np.isfinite(values).all():
                    lut = VoiLut(lut.first, values, lut.bits)
        except Exception as exc:  # the descriptor, short data, a depth pydicom does not read, ...
            ignored.append(f"VOI LUT {i + 1}: {_one_line(exc, 120)}")
            continue
        size = lut.values.size
        out.append(Window(lut.first + (size - 1) / 2.0, float(max(size - 1, 1)), "dicom", "lut", label, lut))
    return out


def _voi_lut(item, ds, ignored: list[str], number: int) -> tuple[VoiLut | None, str]:
    desc, data = item.get("LUTDescriptor"), item.get("LUTData")
    if desc is None or data is None:
        return None, ""
    desc = list(desc) if not isinstance(desc, (int, float)) else [desc]
    if len(desc) != 3:
        raise ValueError(f"the LUT Descriptor has {len(desc)} values, not 3")
    n, first, bits = int(desc[0]) or 65536, int(desc[1]), int(desc[2])
    if not 1 <= n <= 65536:
        raise ValueError(f"the LUT Descriptor says {n} entries")
    if not -32768 <= first <= 65535:
        raise ValueError(f"the LUT Descriptor says the table starts at {first}")
    if isinstance(data, bytes):
        order = "<" if ds.original_encoding[1] is not False else ">"
        wide = len(data) >= 2 * n
        values = np.frombuffer(data[: 2 * n if wide else n], dtype=f"{order}u2" if wide else "u1")
    else:
        values = np.asarray(_floats(data)[:n], dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None, ""
    if values.size < n:
        raise ValueError(f"the LUT Data holds {values.size} of the {n} entries its descriptor says")
    if not np.isfinite(values).all() or values.min() < 0:
        raise ValueError("the LUT Data holds values that are not entries of a table")
    if not 8 <= bits <= 16:  # PS3.3 C.11.2.1.1: 8 to 16; wrong depths are common, the data tells
        found = 16 if values.max() > 255 else 8
        ignored.append(f"VOI LUT {number}: the LUT Descriptor says {bits} bits per entry; {found} used")
        bits = found
    return VoiLut(float(first), values, bits), str(item.get("LUTExplanation", "") or "").strip()


def shown_inverted(ds, photometric: str) -> bool:
    """Whether a monochrome image is shown inverted (high values dark).

    MONOCHROME1 says so, and so does *Presentation LUT Shape* INVERSE (PS3.3 C.11.6). The DX
    and mammography modules pair INVERSE with MONOCHROME1 for one and the same inversion
    ("output after inversion is in P-Values"), so the two together invert once, not twice.
    """
    shape = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    return photometric == "MONOCHROME1" or shape == "INVERSE"


def _stored_range(geo: _Geometry) -> tuple[float, float]:
    bits = geo.bits_stored
    if geo.signed:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0 ** bits - 1


def _monochrome(arr: np.ndarray, ds, frame: int, geo: _Geometry,
                name: str) -> tuple[np.ndarray, tuple[float, float], dict]:
    from pydicom.pixels import apply_modality_lut

    lo, hi = _stored_range(geo)
    rescale: dict = {}
    if arr.dtype.kind == "f":  # float pixel data is already in physical units
        if not np.isfinite(arr).all():
            raise ImageReadError(f"{name}: the DICOM pixel data holds NaN or infinite values")
        return arr.astype(np.float32), (float(arr.min()), float(arr.max())) if arr.size else (0.0, 1.0), {}
    mlut = _get(ds, "ModalityLUTSequence", name)
    if mlut:
        # the modality LUT defines the units: a broken one is refused, not guessed around
        try:
            desc = [int(v) for v in mlut[0].LUTDescriptor]
        except Exception as exc:
            raise ImageReadError(f"{name}: the Modality LUT is broken ({_one_line(exc)})") from exc
        if len(desc) != 3 or not 0 <= desc[0] <= 65535 or not 1 <= desc[2] <= 16:
            raise ImageReadError(f"{name}: the Modality LUT is broken (its LUT Descriptor is {desc[:3]})")
        try:
            out = np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
        except Exception as exc:
            raise ImageReadError(f"{name}: the Modality LUT is broken ({_one_line(exc)})") from exc
        return out, (0.0, float(2 ** desc[2] - 1)), {"modality_lut": True}
    item = _functional_item(ds, frame, "PixelValueTransformationSequence") or ds
    slope, intercept = _get(item, "RescaleSlope", name), _get(item, "RescaleIntercept", name)
    out = arr.astype(np.float32)
    if slope is not None and intercept is not None:
        slope, intercept = _finite_tag(slope, "RescaleSlope", name), _finite_tag(intercept, "RescaleIntercept", name)
        with np.errstate(over="ignore", invalid="ignore"):
            out = (arr.astype(np.float64) * slope + intercept).astype(np.float32)
        lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
        if not (np.isfinite(out).all() and np.isfinite(lo) and np.isfinite(hi)):
            raise ImageReadError(f"{name}: the DICOM file is corrupt (Rescale Slope {slope:g} and Intercept "
                                 f"{intercept:g} give values out of range)")
        rescale = {"rescale_slope": slope, "rescale_intercept": intercept}
        if item.get("RescaleType"):
            rescale["units"] = str(item.RescaleType)
    if "units" not in rescale and str(ds.get("Modality", "")) == "CT" and slope is not None:
        rescale["units"] = "HU"
    return out, (float(lo), float(hi)), rescale


# -- compressed frames: their own headers say how large they decode -------------------------------
_JPEG_SIZE_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xDE, 0xF7}  # SOFn, DHP, SOF55


def _jpeg_size(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) of a JPEG / JPEG-LS codestream, the largest of its frame
    headers (SOFn, SOF55, and DHP for hierarchical JPEG) before the first scan; None if none."""
    if data[:2] != b"\xff\xd8":
        return None
    found: tuple[int, int, int] | None = None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:  # decoders skip stray bytes between segments, and so does this
            i = data.find(b"\xff", i)
            if i < 0:
                break
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # segments without a length
            i += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image
            break
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in _JPEG_SIZE_MARKERS and i + 10 <= n:
            height, width = int.from_bytes(data[i + 5:i + 7], "big"), int.from_bytes(data[i + 7:i + 9], "big")
            comps = data[i + 9]
            found = (width, height, comps) if found is None else (
                max(found[0], width), max(found[1], height), max(found[2], comps))
        if length < 2:
            break
        i += 2 + length
    return found


def _j2k_size(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) of a JPEG 2000 codestream (its SIZ segment), in a JP2 file or bare."""
    i = 0
    if data[4:8] == b"jP  ":  # a JP2 file: the codestream is in the jp2c box
        while i + 8 <= len(data):
            length, kind, head = int.from_bytes(data[i:i + 4], "big"), data[i + 4:i + 8], 8
            if length == 1:
                length, head = int.from_bytes(data[i + 8:i + 16], "big"), 16
            if kind == b"jp2c":
                i += head
                break
            if length < head:
                return None
            i += length
        else:
            return None
    if data[i:i + 4] != b"\xff\x4f\xff\x51" or len(data) < i + 42:
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", data[i + 8:i + 24])
    return max(xsiz - xosiz, 0), max(ysiz - yosiz, 0), int.from_bytes(data[i + 40:i + 42], "big")


def _check_encapsulated(ds, name: str, ts, index: int, geo: _Geometry) -> None:
    """Before a decoder sees a compressed frame: the file holds as many frames as it says, and
    the frame's own header does not ask for more pixels than Rows x Columns (decoders size
    their output by the codestream, so a 64 x 64 file could otherwise ask for 60000 x 60000)."""

    from pydicom.encaps import get_frame, parse_fragments
    from pydicom.uid import JPEG2000TransferSyntaxes, JPEGLSTransferSyntaxes, JPEGTransferSyntaxes, RLELossless

    data = ds.PixelData
    if len(data) < 8 or data[:4] != b"\xfe\xff\x00\xe0":
        raise ImageReadError(f"{name}: the compressed DICOM pixel data is corrupt (no Basic Offset Table item)")
    buf = io.BytesIO(data)
    buf.seek(8 + int.from_bytes(data[4:8], "little"))
    try:
        fragments, _ = parse_fragments(buf)
    except ValueError as exc:
        raise ImageReadError(f"{name}: the compressed DICOM pixel data is corrupt ({_one_line(exc)})") from exc
    if geo.frames > max(fragments, 1):
        raise ImageReadError(f"{name}: the DICOM file says it has {geo.frames} frames, but its pixel data "
                             f"holds {fragments} compressed fragment(s)")
    offsets = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    try:
        frame = get_frame(data, index, number_of_frames=geo.frames, extended_offsets=offsets)
    except Exception as exc:
        raise ImageReadError(f"{name}: the compressed DICOM pixel data is corrupt ({_one_line(exc)})") from exc
    uid = str(ts)
    if uid == RLELossless:
        # RLE never grows data by more than 1/128 (plus a 64-byte header): a longer frame can
        # only be one that decodes to more than the header says
        if len(frame) > 2 * geo.frame_bytes + 1024:
            raise ImageReadError(f"{name}: the RLE frame is {len(frame)} bytes, more than a {geo.columns} x "
                                 f"{geo.rows} image can take (possible decompression bomb)")
        return
    if uid in JPEGTransferSyntaxes or uid in JPEGLSTransferSyntaxes:
        size, what = _jpeg_size(frame), "JPEG"
    elif uid in JPEG2000TransferSyntaxes:
        size, what = _j2k_size(frame), "JPEG 2000"
    else:
        return
    if size is None:
        raise ImageReadError(f"{name}: the compressed frame has no {what} frame header; the file may be corrupt")
    width, height, comps = size
    if width > geo.columns or height > geo.rows or comps > 4:
        raise ImageReadError(f"{name}: the {what} frame says {width} x {height} pixels ({comps} components), "
                             f"more than the {geo.columns} x {geo.rows} of the DICOM header "
                             "(possible decompression bomb)")


def _check_native(ds, name: str, geo: _Geometry) -> None:
    """Uncompressed pixel data holds every frame the header says it has (a header that says
    2**31 frames is refused here, in words, before anything is sized by it)."""
    key = next(k for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData") if k in ds)
    held = len(ds[key].value or b"")
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    per_pixel = 2 if photometric.startswith("YBR_FULL_422") and geo.samples == 3 else geo.samples
    frame_bits = geo.rows * geo.columns * per_pixel * geo.bits_allocated
    if held * 8 < frame_bits * geo.frames:
        have = held * 8 // frame_bits
        raise ImageReadError(f"{name}: the DICOM pixel data is truncated (the header says {geo.frames} frame(s) of "
                             f"{geo.columns} x {geo.rows}, the data holds {held} bytes: "
                             f"{'not even one frame' if have == 0 else f'{have} frame(s)'})")


def read_dicom(source: str | os.PathLike | IO[bytes], frame: int | None = None, name: str | None = None) -> DicomImage:
    """Decode one frame of a DICOM file into native values, its windows and safe metadata.

    Parameters
    ----------
    source : path or binary file
        A path (only a regular file is opened) or a file open for reading.
    frame : int, optional
        Which frame of a multi-frame file (from 0); default the first.
    name : str, optional
        The file's name in messages (default: the path's name).

    Raises
    ------
    ImageReadError
        Not DICOM, truncated or corrupt, no pixel data, a transfer syntax with no decoder
        installed (naming the package that decodes it), a frame out of range, or a file whose
        header asks for more than the limits allow (pixels, decoded bytes, a deflated data set
        or a compressed frame that expands past its size); one line naming the file. Nothing
        else escapes, whatever the file holds.
    """
    # pydicom warns about odd values as it parses them lazily; the errors that matter are raised.
    # Its warnings go to the log (shown with -v), once each, naming the file.
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        label = name or printable(p.name or str(p))
    else:
        p, label = None, name or "DICOM file"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if p is not None:
                with safeio.open_regular(p, label, ImageReadError) as f:
                    return _read_guarded(f, label, frame)
            return _read_guarded(source, label, frame)
        finally:
            for text in dict.fromkeys(str(w.message) for w in caught):
                log.info("%s: pydicom: %s", label, printable(text))


def _read_guarded(f: IO[bytes], name: str, frame: int | None) -> DicomImage:
    try:
        return _read_dicom(f, name, frame)
    except ImageReadError:
        raise
    except MemoryError as exc:
        raise ImageReadError(f"{name}: the image is too large to decode in the memory available") from exc
    except RecursionError as exc:
        raise ImageReadError(f"{name}: the DICOM file nests sequences too deeply to be read") from exc
    except BaseException as exc:  # pydicom and its decoders raise many kinds for crafted values
        if not is_decoder_failure(exc):
            raise
        raise ImageReadError(f"{name}: the DICOM file is corrupt ({_one_line(exc)})") from exc


def is_decoder_failure(exc: BaseException) -> bool:
    """Whether a decoder's exception is a failure to read the file (one error line) rather than
    the user or the interpreter stopping the program. Decoders written in Rust (pylibjpeg-rle)
    raise ``PanicException``, a ``BaseException``, for some crafted input."""
    return not isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit))


def _read_dicom(f: IO[bytes], name: str, frame: int | None) -> DicomImage:
    from pydicom.pixels import apply_color_lut, pixel_array

    ds = _dcmread(f, name)
    pixel_keys = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
    if not any(k in ds for k in pixel_keys):
        try:  # the class's registered name only, never the element's own text (it could be anything)
            sop = ds.get("SOPClassUID")
            known = sop is not None and getattr(sop, "name", str(sop)) != str(sop)
        except Exception:
            known = False
        what = f"a DICOM {sop.name}" if known else "a DICOM file"
        raise ImageReadError(f"{name}: {what} with no image (no pixel data)")
    ts = _transfer_syntax(ds)
    geo = _geometry(ds, name)
    problem = decoder_problem(ts)
    if problem:
        raise ImageReadError(f"{name}: {problem}")
    n_frames = geo.frames
    index = 0 if frame is None else int(frame)
    if not 0 <= index < n_frames:
        have = "one frame (0)" if n_frames == 1 else f"{n_frames} frames (0 to {n_frames - 1})"
        raise ImageReadError(f"{name}: no frame {index}; the file has {have}")
    if ts.is_encapsulated and "PixelData" in ds:
        _check_encapsulated(ds, name, ts, index, geo)
    else:
        _check_native(ds, name, geo)
    try:
        # RLE: pydicom's own decoder (tried first anyway) and no fallback to pylibjpeg-rle, whose
        # Rust code panics on some crafted frames and prints a backtrace besides our one line
        plugin = {"decoding_plugin": "pydicom"} if str(ts) == "1.2.840.10008.1.2.5" else {}
        arr = pixel_array(ds, index=index if n_frames > 1 else None, **plugin)
    except MemoryError as exc:
        raise ImageReadError(f"{name}: the image is too large to decode") from exc
    except BaseException as exc:  # decoders raise RuntimeError, ValueError, struct.error, panics, ...
        if not is_decoder_failure(exc):
            raise
        msg = _one_line(exc)
        if "less than expected" in msg or "shorter than" in msg:
            raise ImageReadError(f"{name}: the DICOM pixel data is truncated ({msg})") from exc
        raise ImageReadError(f"{name}: the DICOM pixel data cannot be decoded; the file may be corrupt ({msg})") from exc
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)

    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    info: dict = {
        "format": "DICOM",
        "modality": str(ds.get("Modality", "") or ""),
        "photometric": photometric,
        "bits_stored": geo.bits_stored,
        "bits_allocated": geo.bits_allocated,
        "signed": geo.signed,
        "transfer_syntax": ts.name,
        "sop_class": getattr(ds.get("SOPClassUID"), "name", ""),
    }
    ignored: list[str] = []
    windows: tuple[Window, ...] = ()
    invert = False
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 1):
        arr = arr.reshape(arr.shape[:2])
        if photometric == "PALETTE COLOR":
            try:
                raw = apply_color_lut(arr, ds)
            except Exception as exc:
                raise ImageReadError(f"{name}: the palette colour table is broken ({_one_line(exc)})") from exc
            raw = np.asarray(raw)
            if raw.dtype.kind in "ui":
                full = (0.0, float(np.iinfo(raw.dtype).max))
            else:
                full = (0.0, float(raw.max(initial=1.0)))
            info["photometric"] = "PALETTE COLOR"
        else:
            if photometric not in ("MONOCHROME1", "MONOCHROME2", ""):
                raise ImageReadError(f"{name}: unsupported photometric interpretation {photometric!r} for one sample")
            raw, full, rescale = _monochrome(arr, ds, index, geo, name)
            info.update(rescale)
            invert = shown_inverted(ds, photometric)
            if ds.get("PresentationLUTShape"):
                info["presentation_lut_shape"] = str(ds.PresentationLUTShape).strip().upper()
            voi = _functional_item(ds, index, "FrameVOILUTSequence")
            windows = tuple(_tag_windows(voi if voi is not None else ds, ignored) + _lut_windows(ds, ignored))
    elif arr.ndim == 3 and arr.shape[-1] == 3:
        raw = arr
        if raw.dtype.kind == "f":
            if not np.isfinite(raw).all():
                raise ImageReadError(f"{name}: the DICOM pixel data holds NaN or infinite values")
            full = (float(raw.min()), float(raw.max()))
        else:
            full = (0.0, 2.0 ** geo.bits_stored - 1)
    else:
        raise ImageReadError(f"{name}: unsupported DICOM pixel layout {arr.shape} ({photometric})")
    info["shape"] = [int(raw.shape[0]), int(raw.shape[1])]
    if ignored:
        info["ignored"] = ignored
    return DicomImage(
        raw=np.ascontiguousarray(raw), full_range=(float(full[0]), float(full[1])), windows=windows,
        invert=invert, frame=index, n_frames=n_frames, info=info, identifiers=_identifiers(ds),
    )


def _identifiers(ds) -> dict:
    out = {}
    for key in IDENTIFIER_KEYWORDS:
        try:
            value = ds.get(key)
            text = "" if value is None else str(value)
        except Exception:  # a value pydicom cannot convert is not an identifier worth keeping
            continue
        if text.strip():
            out[key] = text[:1024]
    return out
