"""Exceptions raised by the core.

Every error a user can cause (a bad file, a bad class list, a cancelled run) is an
:class:`AlensError` whose message is one readable line; the CLI prints it and exits
non-zero, the GUI shows it in its notification area.
"""

from __future__ import annotations


class AlensError(Exception):
    """Base class for errors caused by user input or a user's action."""


class ImageReadError(AlensError):
    """An image file could not be read (missing, empty, truncated, not an image, too large)."""


class WindowError(AlensError):
    """An intensity window request is not auto, full, dicom, CENTER,WIDTH or a valid Window."""


class FolderError(AlensError):
    """A folder of images cannot be listed, or its labels file is malformed."""


class ModelLoadError(AlensError):
    """A model, checkpoint or labels file could not be loaded or does not fit."""


class CodeRefused(ModelLoadError):
    """Loading a model would run code (an architecture file, a ``module:callable`` or a
    TorchScript program) and the caller did not allow it (e.g. the model named in a session
    file someone else made). ``what`` says which code, in words."""

    def __init__(self, message: str, what: str = "") -> None:
        super().__init__(message)
        self.what = what


class ClassSetError(AlensError):
    """A class set is invalid (K < 2, out of range, duplicated, unknown name)."""


class LensError(AlensError):
    """The lens was given maps it cannot refine (wrong shape, empty)."""


class MethodError(AlensError):
    """An attribution method is unknown, misconfigured or unsupported for a model."""


class ReportError(AlensError):
    """A report cannot be written as asked (nothing to report, unlike explanations compared)."""


class Cancelled(AlensError):
    """The user cancelled a running computation."""

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message)
