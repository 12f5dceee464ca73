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

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ImageReadError
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
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return has_dicom_magic(head) or _looks_like_raw_dataset(head)


def _one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dcmread(p: Path, name: str):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        try:
            return pydicom.dcmread(p)
        except InvalidDicomError:
            with open(p, "rb") as f:
                head = f.read(132)
            if not _looks_like_raw_dataset(head):
                raise
            return pydicom.dcmread(p, force=True)
    except InvalidDicomError as exc:
        raise ImageReadError(f"{name}: not a DICOM file (no DICM header and no readable dataset)") from exc
    except (EOFError, OSError, ValueError, KeyError, TypeError, AttributeError, NotImplementedError) as exc:
        raise ImageReadError(f"{name}: the DICOM file is truncated or corrupt ({_one_line(exc)})") from exc


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


def _tag_windows(item) -> list[Window]:
    """Windows from Window Center/Width (+ VOI LUT Function, + explanations) on ``item``."""
    centers, widths = _floats(item.get("WindowCenter")), _floats(item.get("WindowWidth"))
    labels = _strings(item.get("WindowCenterWidthExplanation"))
    function = str(item.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().lower()
    function = function if function in ("linear", "linear_exact", "sigmoid") else "linear"
    out = []
    for i, (c, w) in enumerate(zip(centers, widths)):
        if not (np.isfinite(c) and np.isfinite(w)) or w <= 0 or (function == "linear" and w < 1):
            continue  # a broken window in the tags: skip it rather than refuse the image
        label = labels[i] if i < len(labels) else ""
        out.append(Window(c, w, "dicom", function, label.strip()))
    return out


def _lut_windows(ds, name: str = "") -> list[Window]:
    """The VOI LUT Sequence's tables as windows, each read by pydicom (``apply_voi``).

    pydicom maps every input value the table covers; an image then maps through that table
    exactly as ``apply_voi_lut(arr, ds, prefer_lut=True)`` maps it. A table pydicom cannot
    read is left out (logged), not the image.
    """
    from pydicom.pixels import apply_voi

    out = []
    for i, item in enumerate(ds.get("VOILUTSequence") or []):
        desc = item.get("LUTDescriptor")
        if desc is None or item.get("LUTData") is None:
            continue
        try:
            n, first, bits = int(desc[0]) or 65536, int(desc[1]), int(desc[2])
            values = np.asarray(apply_voi(np.arange(first, first + n, dtype=np.int64), ds, index=i))
        except Exception as exc:  # NotImplementedError (bit depth), struct.error (short data), ...
            log.warning("%s: VOI LUT %d left out: %s", name, i + 1, _one_line(exc))
            continue
        lut = VoiLut(float(first), values.astype(np.float64), bits)
        label = str(item.get("LUTExplanation", "") or "").strip()
        out.append(Window(first + (n - 1) / 2.0, float(max(n - 1, 1)), "dicom", "lut", label, lut))
    return out


def shown_inverted(ds, photometric: str) -> bool:
    """Whether a monochrome image is shown inverted (high values dark).

    MONOCHROME1 says so, and so does *Presentation LUT Shape* INVERSE (PS3.3 C.11.6). The DX
    and mammography modules pair INVERSE with MONOCHROME1 for one and the same inversion
    ("output after inversion is in P-Values"), so the two together invert once, not twice.
    """
    shape = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    return photometric == "MONOCHROME1" or shape == "INVERSE"


def _stored_range(ds) -> tuple[float, float]:
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 8)
    if int(ds.get("PixelRepresentation") or 0) == 1:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0 ** bits - 1


def _monochrome(arr: np.ndarray, ds, frame: int) -> tuple[np.ndarray, tuple[float, float], dict]:
    from pydicom.pixels import apply_modality_lut

    lo, hi = _stored_range(ds)
    rescale: dict = {}
    if arr.dtype.kind == "f":  # float pixel data is already in physical units
        finite = arr[np.isfinite(arr)]
        return arr.astype(np.float32), (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0), {}
    if ds.get("ModalityLUTSequence"):
        out = apply_modality_lut(arr, ds)
        top = float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
        return out.astype(np.float32), (0.0, top), {"modality_lut": True}
    item = _functional_item(ds, frame, "PixelValueTransformationSequence") or ds
    slope, intercept = item.get("RescaleSlope"), item.get("RescaleIntercept")
    out = arr.astype(np.float32)
    if slope is not None and intercept is not None:
        slope, intercept = float(slope), float(intercept)
        out = (arr.astype(np.float64) * slope + intercept).astype(np.float32)
        lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
        rescale = {"rescale_slope": slope, "rescale_intercept": intercept}
        if item.get("RescaleType"):
            rescale["units"] = str(item.RescaleType)
    if "units" not in rescale and str(ds.get("Modality", "")) == "CT" and slope is not None:
        rescale["units"] = "HU"
    return out, (float(lo), float(hi)), rescale


def read_dicom(path: str | os.PathLike, frame: int | None = None) -> DicomImage:
    """Decode one frame of a DICOM file into native values, its windows and safe metadata.

    Parameters
    ----------
    path : path
    frame : int, optional
        Which frame of a multi-frame file (from 0); default the first.

    Raises
    ------
    ImageReadError
        Not DICOM, truncated or corrupt, no pixel data, a transfer syntax with no decoder
        installed (naming the package that decodes it), or a frame out of range; one line
        naming the file.
    """
    # pydicom warns about odd values as it parses them lazily; the errors that matter are raised.
    # Its warnings go to the log (shown with -v), once each, naming the file.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _read_dicom(Path(path), frame)
        finally:
            for text in dict.fromkeys(str(w.message) for w in caught):
                log.info("%s: pydicom: %s", Path(path).name, text)


def _read_dicom(p: Path, frame: int | None) -> DicomImage:
    from pydicom.pixels import apply_color_lut, pixel_array

    name = p.name or str(p)
    ds = _dcmread(p, name)
    pixel_keys = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
    if not any(k in ds for k in pixel_keys):
        sop = ds.get("SOPClassUID")
        what = f"a DICOM {sop.name}" if sop is not None and hasattr(sop, "name") else "a DICOM file"
        raise ImageReadError(f"{name}: {what} with no image (no pixel data)")
    ts = _transfer_syntax(ds)
    from .images import _check_pixels

    _check_pixels(name, int(ds.get("Columns") or 0), int(ds.get("Rows") or 0))
    problem = decoder_problem(ts)
    if problem:
        raise ImageReadError(f"{name}: {problem}")
    try:
        n_frames = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError) as exc:
        raise ImageReadError(f"{name}: the DICOM file is corrupt (Number of Frames is {ds.get('NumberOfFrames')!r})") from exc
    n_frames = max(n_frames, 1)
    index = 0 if frame is None else int(frame)
    if not 0 <= index < n_frames:
        have = "one frame (0)" if n_frames == 1 else f"{n_frames} frames (0 to {n_frames - 1})"
        raise ImageReadError(f"{name}: no frame {index}; the file has {have}")
    try:
        arr = pixel_array(ds, index=index if n_frames > 1 else None)
    except MemoryError as exc:
        raise ImageReadError(f"{name}: the image is too large to decode") from exc
    except Exception as exc:  # decoders raise RuntimeError, ValueError, struct.error, ... for bad data
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
        "bits_stored": int(ds.get("BitsStored") or ds.get("BitsAllocated") or 8),
        "bits_allocated": int(ds.get("BitsAllocated") or 0),
        "signed": bool(int(ds.get("PixelRepresentation") or 0)),
        "transfer_syntax": ts.name,
        "sop_class": getattr(ds.get("SOPClassUID"), "name", ""),
    }
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
            raw, full, rescale = _monochrome(arr, ds, index)
            info.update(rescale)
            invert = shown_inverted(ds, photometric)
            if ds.get("PresentationLUTShape"):
                info["presentation_lut_shape"] = str(ds.PresentationLUTShape).strip().upper()
            voi = _functional_item(ds, index, "FrameVOILUTSequence")
            windows = tuple(_tag_windows(voi if voi is not None else ds) + _lut_windows(ds, name))
    elif arr.ndim == 3 and arr.shape[-1] == 3:
        raw = arr
        if raw.dtype.kind == "f":
            full = (float(np.nanmin(raw)), float(np.nanmax(raw)))
        else:
            full = (0.0, 2.0 ** info["bits_stored"] - 1)
    else:
        raise ImageReadError(f"{name}: unsupported DICOM pixel layout {arr.shape} ({photometric})")
    info["shape"] = [int(raw.shape[0]), int(raw.shape[1])]
    return DicomImage(
        raw=np.ascontiguousarray(raw), full_range=(float(full[0]), float(full[1])), windows=windows,
        invert=invert, frame=index, n_frames=n_frames, info=info, identifiers=_identifiers(ds),
    )


def _identifiers(ds) -> dict:
    out = {}
    for key in IDENTIFIER_KEYWORDS:
        value = ds.get(key)
        if value is not None and str(value).strip():
            out[key] = str(value)
    return out
