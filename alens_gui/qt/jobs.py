"""Generator functions the controller runs in the thread pool (see :mod:`.tasks`).

Each takes a :class:`~alens_gui.core.progress.Progress` first and the run's parameters as one
:class:`~alens_gui.core.settings.RunSettings` where it has them, says what it does through the
progress (``status``, ``advance``, ``partial``) and returns the final result; a job that hands
the GUI results one by one (a folder's rows) yields them as ``(kind, payload)``. Everything
reaches the GUI thread as typed messages (:mod:`.messages`). They call the core only; torch
is imported here, inside worker threads, never at GUI start-up. Everything a view needs
to draw (the maps' colour images) is prepared here too, so the GUI thread only blits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alens_gui.core.colors import ColorScale
from alens_gui.core.locking import using_model
from alens_gui.core.progress import Progress
from alens_gui.core.render import Rendered, render, render_pair  # noqa: F401 - the views' one render
from alens_gui.core.windowing import window_request


# -- jobs -----------------------------------------------------------------------------
def load_model_job(progress: Progress, spec: str, arch: str, labels: str, device: str, torchscript: bool = False,
                   allow_code: bool = True, output: str = ""):
    """Load a model (``alens_gui.core.models.load_model``) in the worker; ``output`` "" is the model's own.

    ``allow_code=False`` (a model named by a session file) refuses any model whose loading
    would run code (``CodeRefused``); the controller passes True only for a model the user
    typed, chose or said yes to.
    """
    import os

    import torch

    from alens_gui.core.models import load_model

    # Leave one core to the GUI thread: with every core busy in torch's intra-op pool the
    # event loop stalls for tens of milliseconds at a time during a run.
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    progress.add_total(1)
    progress.status(f"loading {spec}…")
    loaded = load_model(spec, arch=arch or None, labels=labels or None, device=device or None,
                        torchscript=bool(torchscript), allow_code=bool(allow_code), output=output or None)
    progress.advance(1, "model loaded")
    warm_up()
    return loaded


def warm_up() -> None:
    """Import now what the first explanation would import (the API, every method family, the colour
    tables). Imports hold Python's lock for long stretches; done during the model's loading they
    cannot stall the window while a run is under way."""
    import importlib

    from alens_gui.core.colors import lut

    for module in ("api", "explanation", "masking", "export", "sessionfile", "methods.base", "methods.gradient",
                   "methods.cam", "methods.perturbation", "methods.vit", "methods.lrp"):
        importlib.import_module(f"alens_gui.core.{module}")
    lut(True)
    lut(False)


def read_image_job(progress: Progress, request, window="auto", previous=None):
    """Read the image a request names (a file, a sample photograph or four grid tiles).

    Returns an :class:`~alens_gui.core.images.ImageInput` (windowed pixels plus the native
    values, so the window can change without reading the file again). Another frame of the
    file on screen (``previous``) is read under the same window.
    """
    from alens_gui.core.images import compose_grid, load_image, sample_image

    progress.add_total(1)
    progress.status(f"reading {request.label}…")
    win = window_request(window)
    if request.tiles:
        image = load_image(compose_grid([_tile_source(t) for t in request.tiles]), window=win)
    elif request.path:
        if previous is not None and previous.path is not None and str(previous.path) == str(request.path):
            image = load_image(previous, window=win, frame=request.frame)
        else:
            image = load_image(request.path, window=win, frame=request.frame or None)
    else:
        image = load_image(sample_image(request.sample or "chelsea"), window=win)
    if not image.info.get("file"):  # a sample or a grid: named so in captions, reports and sessions
        image.info["file"] = f"{request.sample or 'chelsea'} (sample photograph)" if not request.tiles \
            else request.label
    progress.advance(1, "image read")
    return image


def rewindow_job(progress: Progress, image, window):
    """The same image under another intensity window (no file is read)."""
    progress.add_total(1)
    progress.status("windowing…")
    out = image.with_window(window_request(window))
    progress.advance(1)
    return out


def _tile_source(name: str):
    from pathlib import Path

    from alens_gui.core.images import sample_image

    return name if Path(name).suffix else sample_image(name)


def tile_classes(loaded, tiles) -> list[int]:
    """The distinct top-1 classes of the grid's tiles, in tile order."""
    out: list[int] = []
    for t in tiles:
        c = int(np.argmax(loaded.predict(_tile_source(t))))
        if c not in out:
            out.append(c)
    return out


def tile_classes_job(progress: Progress, loaded, tiles, policy: str | None = None) -> list[int]:
    """A grid's class set, found before its run: the distinct top-1 classes of its tiles, each tile
    (a whole photograph) classified under the input ``policy`` (None: the model's own)."""
    from dataclasses import replace

    from alens_gui.core.errors import ClassSetError

    progress.add_total(1)
    model = loaded if policy in (None, loaded.resize) else replace(loaded, resize=policy)
    with using_model(loaded.model, progress):
        classes = tile_classes(model, tiles)
    if len(classes) < 2:
        raise ClassSetError("the four tiles share one top-1 class; the lens needs K >= 2 different classes")
    progress.advance(1, "tiles classified")
    return classes


def explain_job(progress: Progress, loaded, image, settings, scale: ColorScale):
    """Explain ``image`` (read and windowed already) with ``settings`` (one
    :class:`~alens_gui.core.settings.RunSettings`) in one forward pass; the result is drawn with ``scale``.

    Partial results reach the GUI as they come: ``("classes", (classes, names))`` as soon as the
    forward pass has chosen them, ``("estimate", (expl, rendered))`` for running estimates (IG,
    SmoothGrad).
    """
    from alens_gui.core.api import Explainer

    ex = Explainer(loaded)
    progress.status("running the model…")
    relay = progress.on_partial  # (the API hands the method's own partials to on_partial below)

    def send(kind, payload) -> None:
        if relay is not None:
            relay((kind, payload))

    def on_classes(prepared) -> None:
        names = [loaded.class_names[c] for c in prepared.classes]
        send("classes", (list(prepared.classes), names))
        progress.advance(0, "explaining " + ", ".join(f"{c} {n}" for c, n in zip(prepared.classes, names)))

    # the image was read under the settings' window and frame: it is not windowed again
    run = settings.with_(window=None, frame=None)
    with using_model(loaded.model, progress):  # (the input policy is the settings', not the model's state)
        expl = ex.explain(image, run, progress=progress, on_classes=on_classes,
                          on_partial=lambda e: send("estimate", (e, render(e, scale))))
    return expl, render(expl, scale)


def relens_job(progress: Progress, expl, lens, scale: ColorScale):
    """Re-lens cached maps (no model run) and render them."""
    progress.add_total(1)
    progress.status("re-lensing…")
    out = expl.relens(lens)
    progress.advance(1)
    return out, render(out, scale)


def compare_job(progress: Progress, current, pinned, lens, scale: ColorScale):
    """The pinned explanation under the current lens, and both drawn with one colour scale."""
    progress.add_total(1)
    progress.status("drawing the comparison…")
    if pinned.lens != lens:
        pinned = pinned.relens(lens)
    a, b = render_pair(current, pinned, scale)
    progress.advance(1)
    return pinned, a, b


def render_job(progress: Progress, expl, scale: ColorScale):
    """Colour images of an explanation under another colour scale."""
    progress.add_total(1)
    progress.status("drawing…")
    out = render(expl, scale)
    progress.advance(1)
    return out


def mask_job(progress: Progress, loaded, expl, mask: np.ndarray, fill: str):
    """Probabilities of the class set before/after masking (two forward passes)."""
    from alens_gui.core.masking import probability_shift

    progress.status("running the model on the masked image…")
    with using_model(loaded.model, progress):
        return probability_shift(loaded, expl.image, mask, expl.classes, fill, progress=progress,
                                 geometry=expl.geometry)


def export_job(progress: Progress, kind: str, expl, path: str, indices=None, scale: ColorScale | None = None,
               opacity: float = 0.75):
    """Write a figure, the territory view, or the raw maps (``.npz``)."""
    progress.add_total(1)
    progress.status(f"writing {path}…")
    if kind == "npz":
        out = expl.to_npz(path)
    elif kind == "territory":
        from alens_gui.core.export import render_territory

        out = render_territory(expl, path)
    elif kind == "comparison":
        from alens_gui.core.export import render_comparison

        pinned, current = expl
        out = render_comparison(pinned, current, path, scale=scale, opacity=opacity)
    else:
        from alens_gui.core.export import render_figure

        out = render_figure(expl, path, indices, scale=scale, opacity=opacity, show_territory=indices is None)
    progress.advance(1, "written")
    return str(out)


def save_session_job(progress: Progress, path: str, state: dict, expl, mask):
    """Write a session file; the inputs' SHA-256 are computed here, not on the GUI thread."""
    from alens_gui.core.safeio import sha256_file
    from alens_gui.core.sessionfile import save_session

    progress.add_total(1)
    progress.status(f"saving {path}…")
    state = dict(state)
    state["inputs"] = [dict(item, sha256=sha256_file(item["path"])) for item in state.get("inputs") or []]
    model = dict(state.get("model") or {})
    if model.pop("checkpoint", None):
        model["checkpoint_sha256"] = sha256_file(model["spec"])
        state["model"] = model
    out = save_session(path, state, expl, mask)
    progress.advance(1)
    return str(out)


@dataclass(frozen=True)
class OpenedSession:
    """What :func:`open_session_job` hands the GUI thread: the session's data, its maps drawn
    under its own colour scale, and ``code``: what loading the session's model would run, in
    words (``None`` when it runs no code; see ``alens_gui.core.models.code_needed``)."""

    data: object
    rendered: Rendered | None
    code: str | None


def open_session_job(progress: Progress, path: str, scale: ColorScale):
    """Read a session file (as data: nothing in it is imported, called or loaded) and draw its maps."""
    from alens_gui.core.models import code_needed
    from alens_gui.core.sessionfile import load_session

    progress.add_total(1)
    progress.status(f"opening {path}…")
    data = load_session(path)
    # the colour scale's own record; files from before kept it in the view's
    saved = data.state.get("color_scale") or (data.state.get("view") or {}).get("scale")
    if saved:
        scale = ColorScale(**saved)  # (checked by load_session)
    rendered = render(data.explanation, scale) if data.explanation is not None else None
    m = data.state.get("model")
    # Only reads the spec (and whether a checkpoint is a TorchScript archive): imports nothing.
    code = code_needed(m["spec"], m["arch"] or None, m["torchscript"]) if m else None
    progress.advance(1)
    return OpenedSession(data, rendered, code)


def grid_game_job(progress: Progress, loaded, settings, n: int):
    """The grid pointing game (``alens_gui.core.evaluation``) on ``n`` grids for the method, its options
    and the lens of ``settings`` (a :class:`~alens_gui.core.settings.RunSettings`; the grids bring
    their own class sets)."""
    from alens_gui.core.evaluation.grid import run_grid_game

    progress.status(f"grid pointing game: {n} grids…")
    method = settings.method
    prefixed = {f"{method}.{k}": v for k, v in settings.options}
    with using_model(loaded.model, progress):
        return run_grid_game(loaded, [method], n=n, lens_params_list=[settings.lens], progress=progress,
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


# -- folders ---------------------------------------------------------------------------
def list_folder_job(progress: Progress, folder: str, recursive: bool, cache, model_id: str, settings, explain_key):
    """List a folder's images with their true labels and whatever the cache already knows.

    ``settings`` (a :class:`~alens_gui.core.settings.RunSettings`) gives the input policy and
    window the cached predictions were made under.

    ``explain_key(path)`` gives the cache key of an explanation with the current settings.
    Returns ``(root, [(path, rel, label, prediction or None, explained)], skipped, notes)``,
    ``skipped`` one line for each entry left out (a FIFO, a device, a link loop), ``notes`` what
    the user should know about the listing (a folder of class sub-folders opened without them
    was opened with them; why no image has a true label); nothing is decoded.
    """
    from pathlib import Path

    from alens_gui.core.folders import folder_labels, labels_note, scan_images

    progress.add_total(1)
    progress.status(f"listing {folder}…")
    root = Path(folder)
    listing = scan_images(root, recursive=recursive)
    notes = []
    if not recursive and not listing.images:
        # a dataset of class sub-folders has no images at its top: show the sub-folders' images
        deeper = scan_images(root, recursive=True)
        if deeper.images:
            listing = deeper
            subs = sorted({p.relative_to(root).parts[0] for p in deeper.images if len(p.relative_to(root).parts) > 1})
            notes.append(f"no images at the top of {root.name}: the images of its {len(subs)} sub-folder(s) "
                         f"({', '.join(subs[:4])}{'…' if len(subs) > 4 else ''}) are shown")
    files = listing.images
    labels = folder_labels(root, files)
    if note := labels_note(root, files, labels):
        notes.append(note)
    out = []
    for i, p in enumerate(files):
        if i % 200 == 0:
            progress.check()
        key = cache.prediction_key(p, model_id, settings.resize, settings.window)
        out.append((p, str(p.relative_to(root)), labels.get(p), cache.prediction(key), cache.has_explanation(
            explain_key(p))))
    progress.advance(1, f"{len(files)} images")
    return root, out, listing.skipped, notes


def classify_job(progress: Progress, loaded, items, cache, model_id: str, settings):
    """The model's prediction for each ``(row, path)``, one forward pass each, cached as it goes,
    under the input policy and window of ``settings`` (a :class:`~alens_gui.core.settings.RunSettings`)."""
    from dataclasses import replace

    from alens_gui.core.errors import AlensError
    from alens_gui.core.images import load_image
    from alens_gui.core.resultcache import prediction_record

    progress.add_total(len(items))
    policy = settings.resize or loaded.resize
    model = loaded if policy == loaded.resize else replace(loaded, resize=policy)
    for n, (row, path) in enumerate(items):
        try:
            img = load_image(path, window=settings.window)
            with using_model(loaded.model, progress):
                probs = model.probabilities(model.fit(img.pixels)[2])
            record = prediction_record(probs, loaded.class_names)
            cache.put_prediction(cache.prediction_key(path, model_id, settings.resize, settings.window), record,
                                 flush=n % 25 == 24)
            yield ("row", (row, record, None))
        except AlensError as exc:
            yield ("failed", (row, str(exc)))
        progress.advance(1, f"classified {n + 1} of {len(items)}")
    cache.flush()
    return len(items)


def explain_all_job(progress: Progress, loaded, items, cache, model_id: str, settings, key_of, batch_size="auto"):
    """Explain every ``(row, path)`` with ``settings`` (one :class:`~alens_gui.core.settings.RunSettings`:
    method, options, class set, lens, window, input policy), skipping what the cache has.

    The images not in the cache go through the batch engine (:class:`~alens_gui.core.batch.BatchEngine`):
    read ahead, one forward pass per image (the class set comes from the pass the maps use),
    batched backward passes, and the cache written on the engine's writer thread.
    """
    from alens_gui.core.batch import BatchEngine, FollowProgress
    from alens_gui.core.resultcache import prediction_record

    progress.add_total(len(items))
    policy = settings.resize or loaded.resize
    failures = 0
    todo = []
    done = 0
    for row, path in items:  # what the cache has costs nothing
        if cache.has_explanation(key_of(path)):
            done += 1
            yield ("row", (row, None, True))
            progress.advance(1, f"explained {done} of {len(items)}")
        else:
            todo.append((row, path))
    if not todo:
        cache.flush()
        return len(items), 0
    with using_model(loaded.model, progress):
        loaded.resize = policy
    engine = BatchEngine(loaded, settings, batch_size=batch_size)

    def store(result):  # on the engine's writer thread
        if result.explanation is None:
            return None
        _row, path = todo[result.index]
        cache.put_explanation(key_of(path), result.explanation)
        full = prediction_record(result.probs, loaded.class_names)
        cache.put_prediction(cache.prediction_key(path, model_id, policy, settings.window), full, flush=False)
        return full

    # the engine cancels with the job's progress; the job counts the images itself
    for result in engine.run([p for _, p in todo], FollowProgress(progress), finish=store):
        row = todo[result.index][0]
        error = result.error or (str(result.finish_error) if result.finish_error is not None else None)
        if error:
            failures += 1
            yield ("failed", (row, error))
        else:
            yield ("row", (row, result.finished, True))
        done += 1
        progress.advance(1, f"explained {done} of {len(items)}")
    cache.flush()
    return len(items) - failures, failures


def thumbnails_job(progress: Progress, items, size: int = 56):
    """Small RGB thumbnails of ``(row, path)`` items (decoded here, never on the GUI thread)."""
    from alens_gui.core.errors import AlensError
    from alens_gui.core.geometry import resize_image
    from alens_gui.core.images import load_image

    for row, path in items:
        progress.check()
        try:
            px = load_image(path).pixels
        except AlensError:
            continue
        h, w = px.shape[:2]
        s = size / max(h, w)
        small = resize_image(px, (max(1, round(h * s)), max(1, round(w * s))))
        yield ("thumb", (row, np.round(small * 255).astype(np.uint8)))
    return None


def cached_explanation_job(progress: Progress, cache, key, scale: ColorScale, path=None, window=None):
    """An explanation from the cache, drawn (no model run); its image is read again from
    ``path`` under ``window`` unless the cache keeps pixels. None if it cannot be read."""
    progress.add_total(1)
    progress.status("reading the cached explanation…")
    expl = cache.explanation(key, path, window)
    progress.advance(1)
    return None if expl is None else (expl, render(expl, scale))


def report_job(progress: Progress, path: str, items, settings, total: int | None = None):
    """Write a PDF report of explanations and comparisons (``alens_gui.core.report``); ``items``
    may be a generator (``total`` then says how many, for progress)."""
    from alens_gui.core.report import write_report

    progress.status(f"writing {path}…")
    return str(write_report(path, items, settings, progress=progress, total=total))
