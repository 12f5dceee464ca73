"""Class-set strategies (SPEC section 1): predefined, top-k (+ lowest), best-vs-worst."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ClassSetError


def validate_classes(classes: Sequence[int], num_classes: int, *, min_k: int = 2) -> list[int]:
    """Check a user's class list: integers, in range, no duplicates, at least ``min_k``."""
    try:
        out = [int(c) for c in classes]
    except (TypeError, ValueError):
        raise ClassSetError(f"classes must be integers, got {list(classes)!r}") from None
    if any(float(c) != int(c) for c in classes if isinstance(c, float)):
        raise ClassSetError(f"classes must be integers, got {list(classes)!r}")
    bad = [c for c in out if not 0 <= c < num_classes]
    if bad:
        raise ClassSetError(
            f"class {bad[0]} is out of range: this model has classes 0..{num_classes - 1}"
        )
    dup = sorted({c for c in out if out.count(c) > 1})
    if dup:
        raise ClassSetError(f"class {dup[0]} appears more than once in the class set")
    if len(out) < min_k:
        raise ClassSetError(
            f"the lens compares classes, so it needs at least {min_k} (K >= {min_k}); got K = {len(out)}"
        )
    return out


def parse_classes(text: str, class_names: Sequence[str] | None = None) -> list[int]:
    """Parse ``"285,967"`` or ``"tabby, espresso"`` (names matched case-insensitively)."""
    items = [s.strip() for s in text.replace(";", ",").split(",") if s.strip()]
    if not items:
        raise ClassSetError("no classes given")
    out = []
    lookup = {n.lower(): i for i, n in enumerate(class_names or [])}
    for item in items:
        if item.lstrip("-").isdigit():
            out.append(int(item))
        elif item.lower() in lookup:
            out.append(lookup[item.lower()])
        else:
            raise ClassSetError(f"unknown class {item!r}: give class indices or exact class names")
    return out


def top_k(probs, k: int, with_lowest: bool = False) -> list[int]:
    """The ``k`` most probable classes, optionally plus the least probable one."""
    p = np.asarray(probs).reshape(-1)
    if k < 1:
        raise ClassSetError(f"top-k needs k >= 1; got {k}")
    if k + int(with_lowest) < 2:
        raise ClassSetError("top-k needs k >= 2 (or k = 1 with the lowest class) so that K >= 2")
    if k + int(with_lowest) > p.size:
        raise ClassSetError(f"the model has only {p.size} classes; cannot take {k} of them")
    order = np.argsort(-p, kind="stable")
    out = [int(c) for c in order[:k]]
    if with_lowest:
        out.append(int(order[-1]))
    return out


def best_vs_worst(probs) -> list[int]:
    """``{argmax, argmin}`` of the model's output."""
    p = np.asarray(probs).reshape(-1)
    if p.size < 2:
        raise ClassSetError("best-vs-worst needs a model with at least two classes")
    order = np.argsort(-p, kind="stable")  # same tie-breaking as top_k
    return [int(order[0]), int(order[-1])]
