"""Generator functions that the window runs in the thread pool (see :mod:`.tasks`).

Each takes a :class:`~alens_gui.core.progress.Progress` first, yields partial results
as ``(kind, payload)`` tuples and returns the final result. They call the core only;
torch is imported here, inside the worker thread, never at GUI start-up.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np

from alens_gui.core.locking import using_model
from alens_gui.core.progress import Progress


@dataclass(frozen=True)
class ClassRequest:
    """What the user asked for as a class set.

    ``kind`` is ``"topk"`` (``k``, ``with_lowest``), ``"best_vs_worst"``, ``"picked"``
    (``classes``) or ``"tiles"`` (the top-1 class of each of ``tiles`` images: the grid game).
    """

    kind: str = "topk"
    k: int = 3
    with_lowest: bool = False
    classes: tuple[int, ...] = ()
    tiles: tuple = ()


def load_model_job(progress: Progress, spec: str, arch: str | None, labels: str | None, device: str | None):
    """Load a model (``alens_gui.core.models.load_model``) in the worker."""
    from alens_gui.core.models import load_model

    progress.add_total(1)
    yield ("status", f"loading {spec}…")
    loaded = load_model(spec, arch=arch or None, labels=labels or None, device=device or None)
    progress.advance(1, "model loaded")
    return loaded


def tile_classes(loaded, tiles: Sequence) -> list[int]:
    """The distinct top-1 classes of the grid's tiles, in tile order."""
    out: list[int] = []
    for t in tiles:
        c = int(np.argmax(loaded.predict(t)))
        if c not in out:
            out.append(c)
    return out


def explain_job(
    progress: Progress, loaded, image: np.ndarray, method: str, options: dict, request: ClassRequest, lens
) -> Generator:
    """Preprocess, choose the class set, yield it, then compute the explanation."""
    from alens_gui.core.api import Explainer
    from alens_gui.core.errors import ClassSetError
    from alens_gui.core.methods.base import get_method

    info = get_method(method)
    opts = info.resolve_options(options)
    ex = Explainer(loaded)
    if request.kind == "tiles":
        with using_model(loaded.model, progress):
            tiles = tile_classes(loaded, request.tiles)
        if len(tiles) < 2:
            raise ClassSetError("the four tiles share one top-1 class; the lens needs K >= 2 different classes")
        choice = {"classes": tiles}
    elif request.kind == "picked":
        choice = {"classes": list(request.classes)}
    elif request.kind == "best_vs_worst":
        choice = {"best_vs_worst": True}
    else:
        choice = {"top_k": request.k, "with_lowest": request.with_lowest}
    with using_model(loaded.model, progress):
        prepared = ex.prepare(image, **choice)
    yield ("prepared", (prepared.display, prepared.classes, prepared.probs))
    progress.check()
    # compute_base checks for cancel inside every forward and backward pass
    with using_model(loaded.model, progress):
        return ex.explain_prepared(prepared, info.name, lens=lens, progress=progress,
                                   on_partial=progress.on_partial, **opts)


def mask_job(progress: Progress, loaded, image: np.ndarray, mask: np.ndarray, classes, fill: str):
    """Probabilities of the class set before/after masking (two forward passes)."""
    from alens_gui.core.masking import probability_shift

    yield ("status", "running the model on the masked image…")
    with using_model(loaded.model, progress):
        return probability_shift(loaded, image, mask, classes, fill, progress=progress)


def export_job(progress: Progress, kind: str, expl, path: str, indices=None):
    """Write a figure (PNG/SVG/PDF via ``alens_gui.core.export``) or the raw maps (``.npz``)."""
    progress.add_total(1)
    yield ("status", f"writing {path}…")
    if kind == "npz":
        out = expl.to_npz(path)
    else:
        from alens_gui.core.export import render_figure

        out = render_figure(expl, indices=indices, path=path)
    progress.advance(1, "written")
    return str(out if out is not None else path)


def grid_game_job(progress: Progress, loaded, method: str, options: dict, n: int, lens):
    """The grid pointing game (``alens_gui.core.evaluation``) for one method and lens."""
    from alens_gui.core.evaluation.grid import run_grid_game

    yield ("status", f"grid pointing game: {n} grids…")
    prefixed = {f"{method}.{k}": v for k, v in options.items()}
    with using_model(loaded.model, progress):
        return run_grid_game(loaded, [method], n=n, lens_params_list=[lens], progress=progress,
                             method_options=prefixed)


def grid_game_summary(result: dict) -> str:
    """One readable line per metric: base vs lens, from a ``run_grid_game`` result."""
    lines = []
    for name, entry in result.items():
        if name.startswith("_"):
            continue
        base, al = entry["base"], entry["al"]
        metrics = ", ".join(f"{m} {base[m]:.3f} → {al[m]:.3f}" for m in ("ra", "iou", "f1") if m in base)
        lines.append(f"grid game, {entry['label']} on {result['_meta'].get('n', '?')} grids (base → lens): {metrics}")
    return "; ".join(lines)
