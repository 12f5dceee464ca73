"""Reading bytes that someone else may have made: bounded, never blocking, never running code.

Every file the program reads (an image, a session, a labels or presets file, a cache
entry, a checkpoint) may come from another person. The helpers here give each read a
bound decided *before* the bytes are expanded, and refuse anything that is not a regular
file, so that a crafted file can neither hang the program (a FIFO, ``/dev/zero``), nor
exhaust its memory (a zip, zlib or npy bomb), nor exhaust its stack (deeply nested JSON).
Each limit exceeded is one :class:`~.errors.AlensError` line naming the file and the limit.

The callers pick the error type (``error=``), so that a session says
``SessionFileError`` and a labels file ``ModelLoadError``, each with the same wording.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import AlensError

#: Largest JSON document read (labels, class presets, session state, cache index).
MAX_JSON_BYTES = 32 * 1024 * 1024
#: Deepest nesting of lists/objects accepted in a JSON document (no file of ours needs > 10).
MAX_JSON_DEPTH = 64
#: Largest file hashed (SHA-256 of an input or a checkpoint): larger files are not hashed.
MAX_HASH_BYTES = 8 * 1024**3

MiB = 1024 * 1024


def _fmt_bytes(n: float) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


#: A size in words for messages (``3.0 GiB``), for the readers that use these limits.
fmt_bytes = _fmt_bytes


def printable(text: str) -> str:
    """``text`` with control characters escaped, so that a file name or a value from a crafted
    file cannot break a one-line message into several (or rewrite a terminal line)."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


def one_line(exc: BaseException, limit: int = 240) -> str:
    """An exception's message for a one-line error: whitespace runs collapsed, control
    characters escaped, at most ``limit`` characters; its type's name if it has no message."""
    text = printable(" ".join(str(exc).split())) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- what kind of file ----------------------------------------------------------------------
def special_kind(path: str | os.PathLike) -> str | None:
    """``None`` for a regular file (after following links); otherwise what it is, in words.

    One of ``"missing"``, ``"a folder"``, ``"a FIFO (named pipe)"``, ``"a device"``,
    ``"a socket"``, ``"a symbolic-link loop"``, ``"not a regular file"``. Never opens the file.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        try:
            os.lstat(path)
        except OSError:
            return "missing"
        return "a broken symbolic link"
    except OSError as exc:
        if getattr(exc, "errno", None) == 40:  # ELOOP
            return "a symbolic-link loop"
        return "missing"
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def is_regular_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file (links followed); never blocks."""
    return special_kind(path) is None


def require_regular_file(path: str | os.PathLike, name: str | None = None,
                         error: type[AlensError] = AlensError) -> int:
    """Raise ``error`` unless ``path`` is a regular file; returns its size in bytes."""
    kind = special_kind(path)
    label = name or Path(path).name
    if kind == "missing":
        raise error(f"{label}: no such file")
    if kind is not None:
        raise error(f"{label}: is {kind}, not a file that can be read")
    return os.stat(path).st_size


def open_regular(path: str | os.PathLike, name: str | None = None,
                 error: type[AlensError] = AlensError) -> IO[bytes]:
    """Open a regular file for reading without ever blocking on a FIFO or a device.

    The file is opened non-blocking and checked with ``fstat`` on the open descriptor, so a
    file swapped for a FIFO between a check and the open is refused too.
    """
    label = name or Path(path).name
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise error(f"{label}: no such file") from exc
    except OSError as exc:
        if exc.errno == 40:
            raise error(f"{label}: is a symbolic-link loop, not a file that can be read") from exc
        raise error(f"{label}: cannot be read ({exc.strerror})") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = special_kind(path) or "not a regular file"
            raise error(f"{label}: is {kind}, not a file that can be read")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike, max_bytes: int, name: str | None = None,
               error: type[AlensError] = AlensError, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` bytes (else one clear error)."""
    label = name or Path(path).name
    with open_regular(path, label, error) as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise error(f"{label}: the {what} is {_fmt_bytes(size)}, more than the {_fmt_bytes(max_bytes)} limit")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"{label}: the {what} is larger than the {_fmt_bytes(max_bytes)} limit")
    return data


def sha256_file(path: str | os.PathLike, max_bytes: int = MAX_HASH_BYTES) -> str | None:
    """SHA-256 of a regular file, or ``None`` when it is not one, cannot be read or is larger
    than ``max_bytes`` (so that hashing a device or a FIFO can never block or run forever)."""
    try:
        with open_regular(path) as f:
            return sha256_open(f, max_bytes)
    except (AlensError, OSError):
        return None


def sha256_open(f: IO[bytes], max_bytes: int = MAX_HASH_BYTES) -> str | None:
    """:func:`sha256_file` of a regular file already open (from its start; the position is
    left at its end); ``None`` when it is larger than ``max_bytes`` or cannot be read."""
    try:
        if os.fstat(f.fileno()).st_size > max_bytes:
            return None
        f.seek(0)
        h = hashlib.sha256()
        left = max_bytes
        for chunk in iter(lambda: f.read(1 << 20), b""):
            left -= len(chunk)
            if left < 0:
                return None
            h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


# -- JSON -------------------------------------------------------------------------------------
def _depth_ok(obj: Any, max_depth: int) -> bool:
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                return False
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            if depth > max_depth:
                return False
            stack.extend((v, depth + 1) for v in item)
    return True


def loads_json(data: bytes | str, name: str, error: type[AlensError] = AlensError, *,
               max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH, what: str = "JSON") -> Any:
    """Parse JSON with a size and a nesting-depth limit; any problem is one ``error`` line.

    ``NaN``/``Infinity`` literals are refused (they are not JSON and nothing of ours writes them).
    """
    if len(data) > max_bytes:
        raise error(f"{name}: the {what} is {_fmt_bytes(len(data))}, more than the {_fmt_bytes(max_bytes)} limit")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise error(f"{name}: the {what} is not UTF-8 text") from exc

    def no_constant(token: str):
        raise ValueError(f"{token} is not allowed")

    try:
        obj = json.loads(data, parse_constant=no_constant)
    except RecursionError as exc:
        raise error(f"{name}: the {what} is nested deeper than {max_depth} levels") from exc
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise error(f"{name}: the {what} is not valid JSON ({exc})") from exc
    if not _depth_ok(obj, max_depth):
        raise error(f"{name}: the {what} is nested deeper than {max_depth} levels")
    return obj


def read_json(path: str | os.PathLike, name: str | None = None, error: type[AlensError] = AlensError, *,
              max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH, what: str = "JSON file") -> Any:
    """:func:`loads_json` of a regular file, read with the same size limit."""
    label = name or Path(path).name
    return loads_json(read_bytes(path, max_bytes, label, error, what), label, error,
                      max_bytes=max_bytes, max_depth=max_depth, what=what)


# -- zlib / lzma -----------------------------------------------------------------------------
def _bomb(name: str, what: str, max_bytes: int) -> str:
    return f"{name}: the {what} expands to more than {_fmt_bytes(max_bytes)} (possible decompression bomb)"


def _expand(d, chunks: bytes | Iterable[bytes], max_bytes: int, name: str, error: type[AlensError],
            what: str, step: int | None = None) -> Iterator[bytes]:
    """The output of decompressor ``d`` (zlib or lzma) over ``chunks``, piece by piece (of at
    most ``step`` bytes), never more than ``max_bytes`` in all. No call asks for more than one
    byte past what is left, so a bomb is told apart from a stream that ends exactly at the
    limit, and input that would expand past it is never expanded. Stops at the end of the
    stream (trailing bytes are ignored, as zlib itself does)."""
    if isinstance(chunks, (bytes, bytearray, memoryview)):
        chunks = (bytes(chunks),)
    left = max_bytes
    for chunk in chunks:
        buf = chunk
        while not d.eof:
            want = left + 1 if step is None else min(left + 1, step)
            piece = d.decompress(buf, want)
            left -= len(piece)
            if left < 0:
                raise error(_bomb(name, what, max_bytes))
            if piece:
                yield piece
            # zlib keeps input it had no room for in unconsumed_tail, lzma inside (needs_input
            # false); a full piece may also leave output pending: ask again with no new input
            buf = getattr(d, "unconsumed_tail", b"")
            if buf:
                continue
            if len(piece) < want or getattr(d, "needs_input", False):
                break
        if d.eof:
            return
    if hasattr(d, "flush"):  # zlib: output still held for a stream without its end
        piece = d.flush(left + 1)
        if len(piece) > left:
            raise error(_bomb(name, what, max_bytes))
        if piece:
            yield piece


def decompress(chunks: bytes | Iterable[bytes], max_bytes: int, name: str,
               error: type[AlensError] = AlensError, what: str = "compressed data", *,
               wbits: int = zlib.MAX_WBITS) -> bytes:
    """zlib-decompress at most ``max_bytes`` bytes; more is refused as a decompression bomb.

    ``chunks`` may be one ``bytes`` or an iterable of them (e.g. a PNG's IDAT chunks), so the
    compressed stream is never joined in memory either. ``wbits`` as for :mod:`zlib`
    (``-15``: raw deflate, as in deflated DICOM).
    """
    try:
        return b"".join(_expand(zlib.decompressobj(wbits), chunks, max_bytes, name, error, what))
    except zlib.error as exc:
        raise error(f"{name}: the {what} is corrupt ({exc})") from exc


def expanded_size(chunks: bytes | Iterable[bytes], max_bytes: int, name: str,
                  error: type[AlensError] = AlensError, what: str = "compressed data", *,
                  wbits: int = zlib.MAX_WBITS) -> int:
    """How many bytes a zlib stream expands to, found without keeping them; more than
    ``max_bytes`` is refused as a decompression bomb (for a reader that inflates by itself)."""
    try:
        return sum(len(p) for p in _expand(zlib.decompressobj(wbits), chunks, max_bytes, name, error, what, MiB))
    except zlib.error as exc:
        raise error(f"{name}: the {what} is corrupt ({exc})") from exc


def decompress_lzma(data: bytes, max_bytes: int, name: str, error: type[AlensError] = AlensError,
                    what: str = "compressed data") -> bytes:
    """:func:`decompress` for an LZMA/XZ stream."""
    import lzma

    try:
        return b"".join(_expand(lzma.LZMADecompressor(), data, max_bytes, name, error, what))
    except lzma.LZMAError as exc:
        raise error(f"{name}: the {what} is corrupt ({exc})") from exc


# -- zip members ------------------------------------------------------------------------------
#: Zip compression methods that are read: stored and deflate. zipfile expands bzip2 and LZMA
#: members without an output limit (an 881-byte bzip2 member took 2 GB on its first read of
#: 100 bytes), and nothing this program writes uses them, so they are refused.
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def check_zip_member(info: zipfile.ZipInfo, max_bytes: int, name: str, error: type[AlensError] = AlensError,
                     what: str | None = None) -> None:
    """Refuse a zip member that is encrypted, compressed other than by deflate, or declares more
    than ``max_bytes`` bytes (before anything of it is decompressed)."""
    label = what or repr(info.filename)
    if info.flag_bits & 0x1:
        raise error(f"{name}: {label} is encrypted")
    if info.compress_type not in ZIP_METHODS:
        raise error(f"{name}: {label} uses a compression this program does not read (only stored and deflate)")
    if info.file_size > max_bytes:
        raise error(f"{name}: {label} is {_fmt_bytes(info.file_size)}, more than the {_fmt_bytes(max_bytes)} limit")


def read_zip_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int, name: str,
                    error: type[AlensError] = AlensError, what: str | None = None) -> bytes:
    """The bytes of one zip member, checked by :func:`check_zip_member` and read with a limit
    (zipfile stops at the declared size, and a member longer than it fails its CRC check)."""
    check_zip_member(info, max_bytes, name, error, what)
    with z.open(info) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"{name}: {what or repr(info.filename)} is larger than the {_fmt_bytes(max_bytes)} limit")
    return data


# -- npy / npz --------------------------------------------------------------------------------
def npy_header(f: IO[bytes], name: str, error: type[AlensError] = AlensError) -> tuple[tuple[int, ...], np.dtype, bool]:
    """``(shape, dtype, fortran_order)`` of an ``.npy`` stream positioned at its start.

    Object dtypes (which need pickle) are refused; the header itself is size-limited by numpy.
    """
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npformat.read_array_header_2_0(f)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise error(f"{name}: not a valid array ({exc})") from exc
    if dtype.hasobject:
        raise error(f"{name}: the array holds Python objects, which are never read")
    if any(int(n) < 0 for n in shape):
        raise error(f"{name}: the array has a negative size")
    return tuple(int(n) for n in shape), dtype, bool(fortran)


def declared_nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Bytes an array of ``shape`` and ``dtype`` takes (Python ints: no overflow)."""
    n = int(dtype.itemsize)
    for d in shape:
        n *= int(d)
    return n


def load_npz(source: str | os.PathLike | IO[bytes] | bytes, name: str, error: type[AlensError] = AlensError, *,
             max_total: int, max_member: int | None = None, max_members: int = 64,
             only: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (zip of ``.npy``) with bounds checked *before* reading.

    Each member's declared shape and dtype (its npy header) and its size inside the zip are
    checked against ``max_member`` and the running total against ``max_total`` before any of
    its data is decompressed; pickled (object) arrays are refused. ``only`` limits the members
    read. Problems are one ``error`` line.
    """
    max_member = max_total if max_member is None else max_member
    if isinstance(source, (bytes, bytearray)):
        import io

        source = io.BytesIO(source)
    wanted = None if only is None else {f"{k}.npy" for k in only}
    out: dict[str, np.ndarray] = {}
    total = 0
    try:
        with zipfile.ZipFile(source) as z:
            infos = [i for i in z.infolist() if not i.is_dir()]
            if len(infos) > max_members:
                raise error(f"{name}: {len(infos)} arrays, more than the {max_members} expected")
            for info in infos:
                if wanted is not None and info.filename not in wanted:
                    continue
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if info.file_size > max_member + 4096:
                    raise error(f"{name}: the array {key!r} is {_fmt_bytes(info.file_size)}, more than the "
                                f"{_fmt_bytes(max_member)} limit")
                check_zip_member(info, max_member + 4096, name, error, f"the array {key!r}")
                with z.open(info) as f:
                    shape, dtype, fortran = npy_header(f, f"{name} ({key})", error)
                    nbytes = declared_nbytes(shape, dtype)
                    if nbytes > max_member:
                        raise error(f"{name}: the array {key!r} declares {_fmt_bytes(nbytes)}, more than the "
                                    f"{_fmt_bytes(max_member)} limit")
                    if nbytes > info.file_size:
                        raise error(f"{name}: the array {key!r} is cut short")
                    total += nbytes
                    if total > max_total:
                        raise error(f"{name}: the arrays declare more than {_fmt_bytes(max_total)} in all")
                    out[key] = _read_data(f, shape, dtype, fortran, nbytes, f"{name}: the array {key!r}", error)
    except AlensError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
            zlib.error) as exc:
        raise error(f"{name}: the arrays are damaged ({exc})") from exc
    return out


def npz_headers(source: str | os.PathLike | IO[bytes] | bytes, name: str, error: type[AlensError] = AlensError, *,
                max_members: int = 64) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of every array of an ``.npz``, read from the npy headers only
    (a few hundred bytes each), so a caller can check the shapes against each other before
    :func:`load_npz` reads any data. Object dtypes and unreadable members are one ``error`` line."""
    if isinstance(source, (bytes, bytearray)):
        import io

        source = io.BytesIO(source)
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(source) as z:
            infos = [i for i in z.infolist() if not i.is_dir()]
            if len(infos) > max_members:
                raise error(f"{name}: {len(infos)} arrays, more than the {max_members} expected")
            for info in infos:
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                check_zip_member(info, 1 << 62, name, error, f"the array {key!r}")
                with z.open(info) as f:
                    shape, dtype, _ = npy_header(f, f"{name} ({key})", error)
                out[key] = (shape, dtype)
    except AlensError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
            zlib.error) as exc:
        raise error(f"{name}: the arrays are damaged ({exc})") from exc
    return out


def load_npy(source: IO[bytes] | bytes, name: str, error: type[AlensError] = AlensError, *,
             max_bytes: int) -> np.ndarray:
    """One ``.npy`` array with its declared size checked against ``max_bytes`` before reading."""
    import io

    f = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    shape, dtype, fortran = npy_header(f, name, error)
    nbytes = declared_nbytes(shape, dtype)
    if nbytes > max_bytes:
        raise error(f"{name}: the array declares {_fmt_bytes(nbytes)}, more than the {_fmt_bytes(max_bytes)} limit")
    return _read_data(f, shape, dtype, fortran, nbytes, f"{name}: the array", error)


def _read_data(f: IO[bytes], shape, dtype: np.dtype, fortran: bool, nbytes: int, label: str,
               error: type[AlensError]) -> np.ndarray:
    buf = bytearray(nbytes)
    view, got = memoryview(buf), 0
    while got < nbytes:
        n = f.readinto(view[got:])
        if not n:
            raise error(f"{label} is cut short")
        got += n
    arr = np.frombuffer(buf, dtype=dtype)
    return arr.reshape(shape[::-1]).transpose() if fortran else arr.reshape(shape)


def memory_budget(fraction: float = 0.5, floor: int = 256 * MiB, ceiling: int = 8 * 1024**3) -> int:
    """A cap for expanding untrusted data: ``fraction`` of the memory available now,
    kept within ``[floor, ceiling]`` bytes."""
    avail = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        avail = None
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = ceiling
    return int(min(ceiling, max(floor, avail * fraction)))
