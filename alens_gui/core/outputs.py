"""Output files of a batch: names that are unique and stable, and write errors in one line.

Naming rule (``alens explain``; the README's *Command line* section says the same):

* an image named on the command line is named by its file name without the image suffix
  (``scans/a/scan.dcm`` -> ``scan``; a DICOM file ``1.2.840.5.11`` keeps its whole name);
* an image found in a folder named on the command line is named by its path relative to that
  folder, sub-folders joined with ``__`` (``alens explain cases -r``: ``cases/a/scan.dcm`` ->
  ``a__scan``);
* characters other than letters, digits and ``-_.+`` become ``_``; names reserved on Windows
  (``CON``, ``NUL``, ...) get a ``_``;
* a name longer than :data:`MAX_STEM_BYTES` bytes is cut, and a name that two inputs of one run
  would share (``x.png`` and ``x.jpg``; two files called ``scan.dcm`` named on the command line;
  names equal but for case) gets ``-`` and :data:`HASH_CHARS` hex digits of the SHA-256 of the
  input's absolute path (``scan-3fa81c02``). The hash depends on that path only, so the same input
  gets the same name in every run.

The same input path, given the same way, therefore always gets the same name, and two inputs
of one run never share one. Across runs, a name already taken in the output folder is refused
rather than replaced (see :func:`~alens_gui.core.explanation.atomic_write` with
``overwrite=False``).
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

#: Longest output stem in UTF-8 bytes: the per-class PNG names add up to ~90 bytes
#: (``_frameN``, ``_<class>_<name up to 60>.png``) and must stay under the usual 255-byte limit.
MAX_STEM_BYTES = 120
#: Hex digits of the path hash that keeps clashing names apart.
HASH_CHARS = 8
#: Joins the sub-folders of an image found in a folder (``a/scan.dcm`` -> ``a__scan``).
FOLDER_JOIN = "__"
_WINDOWS_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                               *(f"LPT{i}" for i in range(1, 10))})


def path_hash(path: str | os.PathLike, n: int = HASH_CHARS) -> str:
    """The first ``n`` hex digits of the SHA-256 of ``path`` made absolute (links not followed)."""
    text = os.path.abspath(os.fspath(path))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:n]


def _safe(text: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in text.strip())
    return keep.strip("._") or "image"


def _stem(name: str) -> str:
    from .folders import IMAGE_SUFFIXES

    p = Path(name)
    return p.stem if p.suffix.lower() in IMAGE_SUFFIXES else p.name


def _cut(text: str, max_bytes: int) -> tuple[str, bool]:
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text, False
    return raw[:max_bytes].decode("utf-8", "ignore").rstrip("._-") or "image", True


def readable_name(path: str | os.PathLike, folder: str | os.PathLike | None = None) -> tuple[str, bool]:
    """The readable part of an input's output name, and whether it was cut to fit.

    ``folder`` is the folder named on the command line that ``path`` was found in (None for a
    file named by itself).
    """
    p = Path(path)
    parts: list[str] = []
    if folder is not None:
        try:
            parts = list(p.relative_to(folder).parts[:-1])
        except ValueError:
            parts = []
    stem = FOLDER_JOIN.join([_safe(part) for part in parts] + [_safe(_stem(p.name))])
    if stem.split(".")[0].upper() in _WINDOWS_RESERVED:
        stem += "_"
    return _cut(stem, MAX_STEM_BYTES)


def output_names(inputs: Sequence[tuple[str | os.PathLike, str | os.PathLike | None]]) -> list[str]:
    """A unique output stem for each ``(path, folder it was found in or None)``, in order.

    See the module docstring for the rule. Inputs with the same absolute path should be given
    once (they would need the same name).
    """
    names: list[str] = []
    hashed: list[bool] = []
    for path, folder in inputs:
        name, cut = readable_name(path, folder)
        names.append(name)
        hashed.append(cut)
    for i, (path, _folder) in enumerate(inputs):
        if hashed[i]:
            names[i] = f"{names[i]}-{path_hash(path)}"
    # names equal but for case are one file on macOS and Windows: keep them apart everywhere
    for round_ in range(3):
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            groups.setdefault(name.casefold(), []).append(i)
        clashes = [idx for idx in groups.values() if len(idx) > 1]
        if not clashes:
            return names
        for idx in clashes:
            for i in idx:
                path = inputs[i][0]
                if not hashed[i]:
                    names[i], hashed[i] = f"{names[i]}-{path_hash(path)}", True
                else:  # a clash even with the hash (a file named like another's hashed name)
                    names[i] = f"{names[i]}-{path_hash(path, 16 * (round_ + 1))}"
    # the same path given twice: number them in input order (never reached through the CLI,
    # which explains a file given twice once)
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        n = seen.get(name.casefold(), 0) + 1
        seen[name.casefold()] = n
        if n > 1:
            names[i] = f"{name}-{n}"
    return names


# -- write errors -------------------------------------------------------------------------------
#: Errors after which no further output can be written to that folder: a batch stops.
FATAL_WRITE_ERRORS = frozenset(getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM")
                               if hasattr(errno, n))


def write_error(exc: OSError, path: str | os.PathLike) -> str:
    """One line saying why ``path`` could not be written, in words."""
    p = Path(path)
    code = exc.errno
    if isinstance(exc, FileExistsError) or code == errno.EEXIST:
        return f"{p.name}: already exists in {p.parent}; not replaced"
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        what = "no space left on the device" if code == errno.ENOSPC else "the disk quota is used up"
        return f"{p.parent}: {what} while writing {p.name}; nothing partial was left"
    if code == errno.EROFS:
        return f"{p.parent}: the folder is on a read-only file system"
    if code in (errno.EACCES, errno.EPERM):
        return f"{p.parent}: no permission to write in this folder"
    if code == errno.ENAMETOOLONG:
        return f"{p.name}: the file name is too long for this file system"
    if code == errno.ENOTDIR:
        return f"{p.parent}: is not a folder"
    return f"{p.name}: cannot be written ({exc.strerror or exc})"


def is_fatal(exc: OSError) -> bool:
    """Whether no further file can be written where this error happened (disk full, read-only)."""
    return exc.errno in FATAL_WRITE_ERRORS and not isinstance(exc, FileExistsError)


def check_writable(folder: str | os.PathLike) -> str | None:
    """Create ``folder`` if needed and try a file in it; None if it can be written, else one line.

    Run before any model work, so a read-only or missing output folder costs nothing.
    """
    import tempfile

    d = Path(folder)
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".alens-write-test-", dir=d)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        if exc.errno == errno.EEXIST or isinstance(exc, (FileExistsError, NotADirectoryError)):
            return f"{d}: exists and is not a folder"
        return write_error(exc, d / "x")
    return None


# -- publishing one explanation (alens explain; local and Ray engines) ----------------------------
class SameName(Exception):
    """Two inputs of one run would write one file (a name that differs only in case, a frame suffix)."""


def publish_explanation(expl, out: str | os.PathLike, stem: str, *, frame: int | None = None, png: bool = True,
                        overwrite: bool = False, keep_figures: bool = False,
                        taken: set[str] | None = None) -> list[Path]:
    """Write an explanation's files to ``out``: one PNG per class, then ``<stem>.npz``, each atomically.

    The .npz comes last: its presence says the image is done (what ``--skip-existing`` looks
    for). A file that exists is refused (:class:`FileExistsError`) unless ``overwrite``; PNGs are
    replaced with ``keep_figures`` too (the leftovers of an image whose .npz is missing). ``taken``
    holds the case-folded names this run wrote (:class:`SameName` if one comes again) and gets
    the new ones. On any error the files of this image written so far are removed; the error
    carries the target as ``target`` attribute.
    """
    from .explanation import atomic_write
    from .export import render_figure, safe_name

    out = Path(out)
    if frame is not None and int(expl.source.get("n_frames", 1)) > 1:
        stem = f"{stem}_frame{frame}"  # frames of one file explained one by one keep apart
    figures = [] if not png else [
        out / f"{stem}_{int(expl.classes[i])}_{safe_name(expl.class_names[i])}.png" for i in range(expl.k)]
    created: list[Path] = []
    target = out / f"{stem}.npz"
    try:
        for i, target in enumerate(figures + [out / f"{stem}.npz"]):
            if taken is not None and target.name.casefold() in taken:
                raise SameName(target.name)
            if target.suffix == ".npz":
                expl.to_npz(target, overwrite=overwrite)
            else:
                data = render_figure(expl, None, [i])
                atomic_write(target, lambda f, data=data: f.write(data), overwrite=overwrite or keep_figures)
            created.append(target)
            if taken is not None:
                taken.add(target.name.casefold())
    except BaseException as exc:
        for p in created:
            try:
                os.unlink(p)
            except OSError:
                pass
        exc.target = target
        raise
    return created
