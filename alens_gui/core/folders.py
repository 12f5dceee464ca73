"""Folders of images: which files are images, their true labels, and unique output names.

Listing never decodes an image: a file counts by its suffix, and a file without a known
image suffix only has its first 132 bytes read to recognise DICOM (``DICM`` at offset 128,
or a bare dataset without preamble). A folder of 1,000 files lists in milliseconds.

Only regular files are listed. A FIFO, a device or a socket is never opened (reading one
could block forever), a symbolic-link loop or a broken link is never followed, and each is
reported as one line in :attr:`FolderListing.skipped`, as is a sub-folder that cannot be read.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import safeio
from .dicom import DICOM_SUFFIXES, looks_like_dicom
from .errors import FolderError
from .images import SUFFIXES

#: Files with these suffixes are images by name alone.
IMAGE_SUFFIXES = SUFFIXES + DICOM_SUFFIXES
#: The labels file :func:`folder_labels` reads.
LABELS_FILE = "labels.csv"
# Suffixes that are certainly not DICOM, so their files are not even opened while listing.
_NOT_IMAGES = frozenset({
    ".csv", ".txt", ".json", ".xml", ".yaml", ".yml", ".md", ".rst", ".html", ".pdf", ".npz", ".npy",
    ".pt", ".pth", ".ckpt", ".safetensors", ".onnx", ".py", ".ipynb", ".zip", ".gz", ".tar", ".7z",
    ".svg", ".log", ".ini", ".cfg", ".toml", ".db", ".sqlite", ".doc", ".docx", ".xls", ".xlsx",
})
_SKIP_NAMES = frozenset({"DICOMDIR", "Thumbs.db", "desktop.ini"})


def natural_key(text: str) -> tuple:
    """Sort key that puts ``img2`` before ``img10`` and ignores case."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text))


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether a file is an image this program reads: a known suffix, or DICOM by content."""
    p = Path(path)
    if p.name in _SKIP_NAMES or p.name.startswith("."):
        return False
    suffix = p.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return True
    if suffix in _NOT_IMAGES:
        return False
    return looks_like_dicom(p)


@dataclass(frozen=True)
class FolderListing:
    """What :func:`scan_images` found in a folder.

    Attributes
    ----------
    images : list of Path
        The image files, in natural order of their path relative to the folder.
    skipped : tuple of str
        One line for each entry that was left out and why (``sub/pipe: skipped, is a FIFO
        (named pipe), not a file``), in the order met; hidden files and files that are not
        images are left out without a word.
    """

    images: list[Path]
    skipped: tuple[str, ...] = ()


def _skip_note(rel: str, kind: str) -> str:
    if kind == "a symbolic-link loop":
        return f"{rel}: skipped, a symbolic-link loop"
    if kind == "a broken symbolic link":
        return f"{rel}: skipped, a broken symbolic link"
    if kind == "a link to a folder":
        return f"{rel}: skipped, a link to a folder (links are not followed into sub-folders)"
    return f"{rel}: skipped, is {kind}, not a file"


def scan_images(folder: str | os.PathLike, recursive: bool = False) -> FolderListing:
    """The image files in a folder, and a line for each entry skipped on the way.

    Parameters
    ----------
    folder : path
    recursive : bool
        Also look in sub-folders. Hidden folders are not entered; links to folders are not
        followed (so a link loop cannot make the listing endless) and are reported.

    Returns
    -------
    FolderListing
        ``images`` includes ``.dcm`` files and DICOM files without a suffix and skips hidden
        files, ``DICOMDIR`` and ``labels.csv``; nothing is decoded, and only regular files are
        opened (at most 132 bytes, to recognise DICOM). ``skipped`` names FIFOs, devices,
        sockets, link loops, broken links and unreadable sub-folders.

    Raises
    ------
    FolderError
        The folder does not exist, is not a folder, or cannot be listed.
    """
    root = Path(folder)
    kind = safeio.special_kind(root)
    if kind == "missing":
        raise FolderError(f"{root}: no such folder")
    if kind != "a folder":
        raise FolderError(f"{root}: is {'a file' if kind is None else kind}, not a folder")
    found: list[Path] = []
    skipped: list[str] = []
    pending = [root]
    while pending:
        here = pending.pop()
        try:
            with os.scandir(here) as entries:
                listed = list(entries)
        except OSError as exc:
            if here == root:
                raise FolderError(f"{root}: cannot be listed ({exc.strerror or exc})") from exc
            skipped.append(f"{here.relative_to(root).as_posix()}: skipped, cannot be listed ({exc.strerror or exc})")
            continue
        for entry in listed:
            if entry.name.startswith("."):
                continue
            path = here / entry.name
            try:
                if entry.is_file(follow_symlinks=False):  # the common case, from the listing itself
                    found.append(path)
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        pending.append(path)
                    continue
                what = _entry_kind(entry)
            except OSError:
                what = safeio.special_kind(path)
            if what is None:  # a link to a regular file
                found.append(path)
            elif what == "a folder":
                if recursive:
                    skipped.append(_skip_note(path.relative_to(root).as_posix(), "a link to a folder"))
            elif what != "missing":  # gone since the listing: nothing to say
                skipped.append(_skip_note(path.relative_to(root).as_posix(), what))
    images = [p for p in found if is_image_file(p)]
    return FolderListing(sorted(images, key=lambda p: natural_key(p.relative_to(root).as_posix())),
                         tuple(sorted(skipped, key=natural_key)))


def _entry_kind(entry: os.DirEntry) -> str | None:
    """:func:`safeio.special_kind` of a directory entry that is not a plain file or folder."""
    if entry.is_symlink():
        return safeio.special_kind(entry.path)
    mode = entry.stat(follow_symlinks=False).st_mode
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """The image files in a folder, in natural order of their path relative to it.

    :attr:`scan_images(folder, recursive).images <FolderListing.images>`; use
    :func:`scan_images` to also learn which entries were skipped (FIFOs, devices, link loops).

    Parameters
    ----------
    folder : path
    recursive : bool
        Also look in sub-folders (hidden folders and links to folders are not entered).

    Returns
    -------
    list of Path
        Includes ``.dcm`` files and DICOM files without a suffix; skips hidden files,
        ``DICOMDIR`` and ``labels.csv``. Nothing is decoded.

    Raises
    ------
    FolderError
        The folder does not exist or cannot be read.
    """
    return scan_images(folder, recursive).images


def folder_labels(folder: str | os.PathLike, files: Sequence[str | os.PathLike] | None = None) -> dict[Path, str]:
    """True labels of a folder's images, if the folder says what they are.

    Two layouts are understood:

    * a ``labels.csv`` in the folder with columns ``path,label`` (a header row is optional;
      paths relative to the folder or absolute);
    * class sub-folders: every image lies in a sub-folder (at any depth), there are at least
      two of them and no images at the top; the label is the name of the top-level sub-folder.

    Parameters
    ----------
    folder : path
    files : sequence of path, optional
        The images to label (default: ``list_images(folder, recursive=True)``).

    Returns
    -------
    dict
        ``{path: label}`` with the same path objects as ``files`` (resolved keys for the
        default); empty if the folder has neither layout. ``labels.csv`` wins over
        sub-folders; images it does not list are left out.

    Raises
    ------
    FolderError
        A ``labels.csv`` that cannot be parsed (the line is named).
    """
    root = Path(folder)
    paths = [Path(f) for f in files] if files is not None else list_images(root, recursive=True)
    csv_path = root / LABELS_FILE
    if safeio.is_regular_file(csv_path):
        table = read_labels_csv(csv_path)
        return {p: table[key] for p in paths if (key := _norm(p)) in table}
    top = _resolved(root)
    rel = {}
    for p in paths:
        try:
            rel[p] = _resolved(p).relative_to(top)
        except ValueError:
            continue
    if not rel or any(len(r.parts) < 2 for r in rel.values()) or len({r.parts[0] for r in rel.values()}) < 2:
        return {}
    return {p: r.parts[0] for p, r in rel.items()}


def labels_note(folder: str | os.PathLike, files: Sequence[str | os.PathLike], labels: dict) -> str:
    """Why a folder's images got no true labels, in one line ("" where they got some, or where
    the folder has no sub-folders to read as classes).

    The case it explains: images at the top of a folder next to class sub-folders, so the
    sub-folders are not read as classes (:func:`folder_labels`) and "wrong only" is empty.
    """
    if labels:
        return ""
    top = _resolved(Path(folder))
    at_top, subs = 0, set()
    for f in files:
        try:
            parts = _resolved(Path(f)).relative_to(top).parts
        except ValueError:
            continue
        if len(parts) < 2:
            at_top += 1
        else:
            subs.add(parts[0])
    if at_top and subs:
        return (f"no true labels: {at_top} image(s) lie at the top of the folder beside the sub-folders "
                f"{', '.join(sorted(subs)[:4])}{'…' if len(subs) > 4 else ''}; move them into a class sub-folder "
                f"or add a {LABELS_FILE} (path,label)")
    if len(subs) == 1:
        return (f"no true labels: all images lie in one sub-folder ({next(iter(subs))}); class sub-folders "
                f"need at least two classes, or add a {LABELS_FILE}")
    return ""


def _resolved(p: Path) -> Path:
    """``p.resolve()``, or its absolute form where links cannot be followed (a link loop)."""
    try:
        return p.resolve()
    except (OSError, RuntimeError):  # RuntimeError: "Symlink loop" before Python 3.13
        return Path(os.path.abspath(p))


def _norm(p: Path) -> str:
    return os.path.normcase(str(_resolved(p)))


#: Largest labels.csv read.
MAX_LABELS_BYTES = 64 * 1024 * 1024


def read_labels_csv(path: str | os.PathLike) -> dict[str, str]:
    """Read ``path,label`` rows (paths relative to the file's folder) into ``{normalised path: label}``."""
    p = Path(path)
    base = p.parent
    out: dict[str, str] = {}
    try:
        data = safeio.read_bytes(p, MAX_LABELS_BYTES, p.name, FolderError, "labels file")
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FolderError(f"{p.name}: cannot be read as CSV ({exc})") from exc
    for line, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if line == 1 and cells[0].lower() in ("path", "file", "filename", "image"):
            continue
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise FolderError(f"{p.name} line {line}: expected 'path,label', got {','.join(row)!r}")
        target = Path(cells[0])
        out[_norm(target if target.is_absolute() else base / target)] = cells[1]
    return out


def safe_file_stem(text: str) -> str:
    """Keep a stem readable but safe in any file system (no separators, no control characters)."""
    keep = "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in text.strip())
    return keep.strip("._") or "image"
