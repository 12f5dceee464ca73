"""Publishing one explanation's files (``alens explain``, the local and the Ray engines): the PNGs,
then the .npz, each written whole or not at all (:func:`~.outputs.atomic_write`)."""

from __future__ import annotations

import os
from pathlib import Path

from . import outputs


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
    from .export import render_figure, safe_name  # (matplotlib and torch load with the first image, not the CLI)

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
                outputs.atomic_write(target, lambda f, data=data: f.write(data), overwrite=overwrite or keep_figures)
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
