"""Hook handles that are always removed (shared by the method modules; imports nothing of theirs)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def hooks() -> Iterator[list]:
    """Collect hook handles; every one is removed on exit, also when the body raises."""
    handles: list = []
    try:
        yield handles
    finally:
        for h in handles:
            h.remove()
