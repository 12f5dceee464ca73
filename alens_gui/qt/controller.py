"""The controller: reacts to session fields, runs the work in the background, writes results back.

Reactions (one task slot each; a new request in a slot cancels the running one):

* :meth:`Controller.load_model` (the *Load* button, start-up) → load ``model_request``
  (``model``); the first model that fails to load falls back to the bundled default (SPEC §4);
* ``image_request`` → read the image (``image``), then explain it;
* ``lens`` → re-lens the cached maps (no model run); ``view.scale`` → redraw the maps;
* ``mask`` / ``fill`` → run the model on the masked image (``mask_result``);
* ``method``, ``options``, ``class_request``, ``input_policy``, ``window`` → the maps on
  screen no longer match the settings: ``stale`` is set until the next run.

Every worker error reaches :attr:`Controller.notified`, the window's one notification place,
and so do warnings logged under ``alens_gui`` and library warnings (``warnings.warn`` from
pydicom, timm, transformers, ... through :func:`logging.captureWarnings`), from any thread.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from alens_gui.core.errors import AlensError

from . import jobs, sessionstate
from .session import Activity, ClassRequest, ImageRequest, ModelRequest, Session
from .tasks import MainThreadCollector, TaskRunner, readable_error

#: Slots whose tasks show in the status bar's progress.
VISIBLE_SLOTS = ("model", "image", "explain", "mask", "export", "session", "evaluate")
#: The slot of the open folder's work (listing, classifying, Explain all): shown in the gallery.
GALLERY_SLOT = "folder"
#: Library warnings that say nothing to a user (captum's hooks, its inputs' grad flag).
_QUIET_WARNINGS = ("Setting forward, backward hooks", "Input Tensor 0 did not already require gradients")


class _LogRelay(QObject):
    """Carries log records from any thread to the GUI thread (a queued signal)."""

    record = Signal(str, str)


class _NotifyHandler(logging.Handler):
    """Puts warnings and errors of the ``alens_gui`` log and of libraries into the notification list."""

    def __init__(self, relay: _LogRelay) -> None:
        super().__init__(logging.WARNING)
        self.relay = relay

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.name == "py.warnings":  # "file:line: Category: message", then the source line
                first = text.strip().splitlines()[0] if text.strip() else text
                text = "warning from a library: " + first.split(": ", 1)[-1]
            if any(q in text for q in _QUIET_WARNINGS):
                return
            self.relay.record.emit(text, "error" if record.levelno >= logging.ERROR else "warning")
        except RuntimeError:  # the window is gone
            pass


class Controller(QObject):
    """Runs everything the session asks for.

    Signals
    -------
    notified(str, str)
        A message and its level (``info``, ``warning``, ``error``) for the notification area.
    """

    notified = Signal(str, str)

    def __init__(self, session: Session, parent: QObject | None = None, *, autorun: bool = True,
                 cache_dir: str | Path | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._cache = None
        self._after_explained: list = []  # one-shot callbacks (comparing two gallery images)
        self.runner = TaskRunner(self)
        self.autorun = autorun
        self._want_run = False
        self._shown_request = None  # the image request whose image is on screen
        self._last_complete = None  # (explanation, rendered) to restore when a partial run stops
        self._fell_back = False
        self._restoring = False  # opening a session shows saved results; nothing may run the model
        s = session
        s.image_request_changed.connect(self._on_image_request)
        s.lens_changed.connect(lambda _l: self.relens())
        s.view_changed.connect(self._on_view)
        s.mask_changed.connect(lambda _m: self.run_mask())
        s.fill_changed.connect(lambda _f: self.run_mask())
        for sig in (s.method_changed, s.options_changed, s.class_request_changed, s.input_policy_changed):
            sig.connect(self._mark_stale)
        s.window_changed.connect(lambda _w: self.rewindow())
        s.gallery.thumbnailsWanted.connect(self.load_thumbnails)
        self.runner.error.connect(lambda _slot, msg: self.notify(msg, "error"))
        self.runner.started.connect(self._on_started)
        self.runner.progress.connect(self._on_progress)
        self.runner.finished.connect(self._on_finished)
        self._thumb_batch = itertools.count(1)
        self._thumb_rows: dict[str, list[int]] = {}
        self._log_relay = _LogRelay(self)
        self._log_relay.record.connect(self.notify)
        self._log_handler = _NotifyHandler(self._log_relay)
        logging.captureWarnings(True)
        for name in ("alens_gui", "py.warnings"):
            logging.getLogger(name).addHandler(self._log_handler)

    def notify(self, text: str, level: str = "info") -> None:
        self.notified.emit(text, level)

    # -- model ------------------------------------------------------------------------
    def load_model(self, allow_code: bool = True):
        """Load ``model_request``. ``allow_code=False`` refuses a model whose loading would run code
        (an architecture file, a ``module:callable``, TorchScript): the model a session names,
        unless the user said yes (:meth:`open_session`)."""
        r = self.session.model_request
        self.session.model_status = f"loading {r.spec}…"
        return self.runner.run("model", jobs.load_model_job, r.spec, r.arch, r.labels, r.device, r.torchscript,
                               allow_code, r.output, label=f"loading model {r.spec}", on_return=self._on_model,
                               on_error=self._on_model_error, on_yield=self._on_status)

    def set_loaded(self, loaded) -> None:
        """Use an already loaded model (tests share one; the self-test passes its own)."""
        self._on_model(loaded)

    def _on_model(self, loaded) -> None:
        s = self.session
        MainThreadCollector.freeze()  # torch and the model are in: keep them out of collections
        s.model = loaded
        s.gallery.set_model(loaded)  # right/wrong follows the model's classes and output rule
        s.model_status = f"{loaded.name} on {loaded.device_label()}"
        if s.image is not None and (self.autorun or self._want_run):
            self._want_run = False
            self.run()

    def _on_model_error(self, exc: BaseException) -> None:
        s = self.session
        s.model_status = f"could not load {s.model_request.spec}"
        if s.model is None and not self._fell_back and s.model_request.spec != "default":
            self._fell_back = True
            self.notify(f"{readable_error(exc)}; using the bundled default model instead", "warning")
            s.model_request = ModelRequest(device=s.model_request.device)
            self.load_model()

    # -- image ------------------------------------------------------------------------
    def _on_image_request(self, req) -> None:
        if req != self._shown_request:
            self.read_image()

    def read_image(self, explain: bool = True):
        """Read ``image_request`` (and explain it when ``explain`` and autorun allow)."""
        req = self.session.image_request
        if req.empty:
            return None
        if self.session.pinned is None:  # a comparison keeps the pinned class set, a grid's included
            if req.tiles:
                self.session.class_request = ClassRequest(kind="tiles")
            elif self.session.class_request.kind == "tiles":
                self.session.class_request = ClassRequest()
        return self.runner.run("image", jobs.read_image_job, req, self.session.window, self.session.image,
                               label=f"reading {req.label}",
                               on_return=lambda image, req=req: self._on_image(req, image, explain),
                               on_error=self._on_image_error, on_yield=self._on_status)

    def _on_image_error(self, _exc: BaseException) -> None:
        # the message goes to the notifications; the screen keeps what it showed, and says so
        if self._shown_request is not None:
            self.session.image_request = self._shown_request

    def _on_image(self, req, image, explain: bool = True) -> None:
        s = self.session
        self._shown_request = req
        s.image = image
        if getattr(image, "frame", 0) != req.frame:  # the file has fewer frames than asked for
            self._shown_request = req = type(req)(path=req.path, sample=req.sample, tiles=req.tiles,
                                                  frame=image.frame)
            s.image_request = req
        if not explain:
            return
        if s.model is not None and self.autorun:
            self.run()
        else:
            self._want_run = self.autorun

    def rewindow(self):
        """Show the image under the session's window; the maps become stale (no file is read)."""
        s = self.session
        if s.image is None or self._restoring:
            return None
        return self.runner.run("image", jobs.rewindow_job, s.image, s.window, label="windowing",
                               on_return=self._on_rewindowed)

    def _on_rewindowed(self, image) -> None:
        self.session.image = image
        self._mark_stale()

    # -- explain ------------------------------------------------------------------------
    def check_settings(self):
        """``(method, options)`` checked against the registry (raises AlensError)."""
        from .registry import method_spec

        s = self.session
        spec = method_spec(s.method)
        spec.resolve_options(s.options)
        return spec.name, {k: v for k, v in s.options.items() if k in spec.options}

    def run(self):
        """Explain the current image with the session's method, options, class set and lens."""
        s = self.session
        if s.model is None or s.image is None:
            self._want_run = True
            self.notify("the model or the image is still loading; the run starts when both are ready", "info")
            return None
        try:
            method, options = self.check_settings()
        except AlensError as exc:
            self.notify(readable_error(exc), "error")
            return None
        label = f"{method} on {s.image_request.label or 'the image'}"
        return self.runner.run(
            "explain", jobs.explain_job, s.model, s.image, method, options, s.class_request, s.lens,
            s.view.scale, s.image_request.tiles, s.input_policy, label=label, on_yield=self._on_explain_yield,
            on_return=self._on_explained,
        )

    def _on_explain_yield(self, item) -> None:
        kind, payload = item
        s = self.session
        if kind != "partial":
            return self._on_status(item)
        kind, payload = payload
        if kind == "classes":
            classes, names = payload
            s.activity = Activity(label=s.activity.label, done=s.activity.done, total=s.activity.total,
                                  message="explaining " + ", ".join(f"{c} {n}" for c, n in zip(classes, names)))
        elif kind == "estimate":
            expl, rendered = payload
            if self._last_complete is None:
                self._last_complete = (s.explanation, s.rendered)
            self._show(expl, rendered)

    def _show(self, expl, rendered) -> None:
        s = self.session
        if s.explanation is None or s.explanation.shape != expl.shape:
            s.reset_mask()
        s.selected = min(s.selected, expl.k - 1)
        s.explanation = expl
        s.rendered = rendered
        if s.pinned is not None and not expl.partial:
            self.compare()

    def _on_explained(self, result) -> None:
        expl, rendered = result
        s = self.session
        self._last_complete = None
        self._show(expl, rendered)
        s.stale = False
        if expl.lens != s.lens:  # the user moved a lens control while the model ran
            self.relens()
        if s.mask is not None and s.mask.any():
            self.run_mask()
        self.notify(f"{expl.method_label}: {expl.k} classes explained ({s.image_request.label})")
        self._cache_current(expl)
        callbacks, self._after_explained = self._after_explained, []
        for cb in callbacks:
            cb()

    def _mark_stale(self, *_args) -> None:
        if self.session.explanation is not None:
            self.session.stale = True

    # -- lens and colours ------------------------------------------------------------------
    def relens(self):
        s = self.session
        expl = s.explanation
        if expl is None or expl.lens == s.lens:
            return None
        return self.runner.run("lens", jobs.relens_job, expl, s.lens, s.view.scale, label="re-lensing",
                               on_return=self._on_relensed)

    def _on_relensed(self, result) -> None:
        expl, rendered = result
        if self.runner.busy("explain") and self._last_complete is not None:
            return  # a partial estimate is on screen; the final result will be re-lensed
        self._show(expl, rendered)  # a pinned explanation follows the lens in compare()

    def _on_view(self, view) -> None:
        r = self.session.rendered
        if r is not None and r.scale != view.scale:
            self.runner.run("render", jobs.render_job, self.session.explanation, view.scale, label="drawing",
                            on_return=self._on_rendered)

    def _on_rendered(self, rendered) -> None:
        if rendered.explanation is self.session.explanation:
            self.session.rendered = rendered
            if self.session.pinned is not None:
                self.compare()

    # -- comparison ----------------------------------------------------------------------
    def pin(self) -> bool:
        """Keep the current explanation for comparison; the next runs use its class set."""
        s = self.session
        expl = s.explanation
        if expl is None or expl.partial:
            self.notify("explain an image first, then pin it to compare another one with it", "warning")
            return False
        s.pinned = expl
        s.class_request = ClassRequest(kind="picked", classes=tuple(int(c) for c in expl.classes))
        self.notify(f"pinned {s.image_request.label}: open another image to compare it with the same class set, "
                    "method, lens and colour scale")
        self.compare()
        return True

    def unpin(self) -> None:
        s = self.session
        s.pinned = None
        s.pinned_rendered = None
        if s.explanation is not None:
            self.runner.run("render", jobs.render_job, s.explanation, s.view.scale, label="drawing",
                            on_return=self._on_rendered)

    def compare(self, current=None, pinned=None):
        """Draw the current and the pinned explanation with one lens and one colour scale."""
        s = self.session
        current = current or s.explanation
        pinned = pinned or s.pinned
        if current is None or pinned is None:
            return None
        return self.runner.run("compare", jobs.compare_job, current, pinned, s.lens, s.view.scale,
                               label="comparison", on_return=lambda r, cur=current: self._on_compared(cur, r))

    def _on_compared(self, current, result) -> None:
        pinned, a, b = result
        s = self.session
        if current is not s.explanation or s.pinned is None:
            return
        s.pinned = pinned
        s.pinned_rendered = b
        s.rendered = a

    # -- masking -------------------------------------------------------------------------
    def run_mask(self):
        s = self.session
        expl, mask = s.explanation, s.mask
        if expl is None or s.model is None or self._restoring:
            return None
        if mask is None or not mask.any():
            self.runner.cancel("mask")
            s.mask_result = None
            return None
        return self.runner.run("mask", jobs.mask_job, s.model, expl, mask.copy(), s.fill, label="masking",
                               on_return=self._on_masked, on_yield=self._on_status)

    def _on_masked(self, result) -> None:
        self.session.mask_result = result

    def select_top_fraction(self, index: int, percent: float) -> bool:
        """Mask the top ``percent`` % of pixels of class ``index``'s refined map."""
        from alens_gui.core.masking import top_fraction_mask

        expl = self.session.explanation
        if expl is None:
            self.notify("explain an image first", "warning")
            return False
        if not 0 <= index < expl.k:
            self.notify(f"class position {index} is not in the class set", "error")
            return False
        try:
            region = top_fraction_mask(np.nan_to_num(expl.refined[index]), percent / 100.0)
        except AlensError as exc:
            self.notify(readable_error(exc), "error")
            return False
        if not region.any():
            self.notify(f"{expl.class_names[index]} wins no pixel at this lens setting; nothing to mask", "warning")
            return False
        before = self.session.mask
        self.session.add_to_mask(region)
        if before is not None and before.any():  # said, not done silently: the result is of the union
            self.notify(f"the top {percent:g} % of {expl.class_names[index]} was added to the mask already drawn "
                        f"({100 * self.session.mask.mean():.1f} % of the image masked now); Clear first to mask "
                        "only these pixels", "warning")
        return True

    # -- export and sessions ----------------------------------------------------------------
    def export(self, kind: str, path: str, indices: Sequence[int] | None = None):
        """Write a figure (``figure``: PNG/SVG/PDF), the ``territory`` view, the ``npz`` maps, or the
        ``comparison`` of the pinned and the current explanation as one figure."""
        s = self.session
        if s.explanation is None:
            self.notify("nothing to export yet: explain an image first", "warning")
            return None
        what = s.explanation
        if kind == "comparison":
            if s.pinned is None or list(s.pinned.classes) != list(s.explanation.classes):
                self.notify("pin an explanation and explain another image with its class set to compare them",
                            "warning")
                return None
            what = (s.pinned, s.explanation)
        return self.runner.run("export", jobs.export_job, kind, what, str(path), indices, s.view.scale,
                               s.view.opacity, label=f"exporting {Path(path).name}",
                               on_return=lambda p: self.notify(f"saved {p}"))

    def session_state(self) -> dict:
        """The session's settings as plain JSON (what a session file stores; see :mod:`.sessionstate`)."""
        return sessionstate.state_of(self.session)

    def save_session(self, path: str):
        s = self.session
        return self.runner.run("session", jobs.save_session_job, str(path), self.session_state(), s.explanation,
                               s.mask, label=f"saving {Path(path).name}",
                               on_return=lambda p: self.notify(f"session saved: {p}"))

    def open_session(self, path: str):
        """Open a session file: its saved maps and settings are shown, nothing is recomputed.

        The file is read as data (``core.sessionfile.load_session``). The model it names is
        loaded only when loading it runs no code; otherwise :attr:`confirm_code` asks the user
        (default no), and on no the current model stays.
        """
        return self.runner.run("session", jobs.open_session_job, str(path), self.session.view.scale,
                               label=f"opening {Path(path).name}",
                               on_return=lambda opened: self._on_session_opened(opened, Path(path).name))

    def confirm_code(self, what: str, where: str) -> bool:
        """May the model a session names be loaded although loading it runs ``what`` (e.g. "the
        architecture file evil.py (Python code, Net)")? ``where`` names the session file.

        No, unless replaced: the window sets this to a dialog that asks the user (default no).
        """
        return False

    def _on_session_opened(self, opened, name: str = "") -> None:
        data, rendered = opened.data, opened.rendered
        st = data.state  # every field checked by load_session: types and ranges hold
        s = self.session
        warnings = list(data.warnings)
        autorun, self.autorun = self.autorun, False  # restoring shows the saved maps; nothing runs
        self._restoring = True
        try:
            self.runner.cancel("image")
            fields, notes = sessionstate.settings_from_state(st, has_maps=data.explanation is not None)
            warnings += notes
            self._shown_request = fields["image_request"]
            for field, value in fields.items():  # in the order the panels expect (class set before method)
                setattr(s, field, value)
            if data.explanation is not None:
                s.lens = data.explanation.lens
                if rendered is None or rendered.scale != s.view.scale:
                    rendered = jobs.render(data.explanation, s.view.scale)
                s.reset_mask()
                s.explanation = data.explanation
                s.rendered = rendered
                s.selected = min(st.get("selected", 0), data.explanation.k - 1)
                if data.mask is not None:
                    s.mask = data.mask
                    s.mask_result = sessionstate.mask_result_from_state(st.get("mask_result"), data.explanation,
                                                                        data.mask)
            s.stale = False
        finally:
            self.autorun = autorun
            self._restoring = False
        self._read_session_image(warnings)
        for w in warnings:
            self.notify(w, "warning")
        inputs = len(st.get("inputs") or [])
        self.notify("session opened" + (f" ({inputs} input file(s))" if inputs else "") + "; nothing was recomputed")
        m = st.get("model")
        if m:
            req = ModelRequest(spec=m["spec"], arch=m["arch"], labels=m["labels"], device=m["device"],
                               torchscript=m["torchscript"], output=m["output"])
            if req != s.model_request or (s.model is None and not self.runner.busy("model")):
                # asked after the session is on screen, from the event loop: a dialog opened inside
                # this callback would run a nested event loop in the middle of the task's return
                QTimer.singleShot(0, lambda: self._session_model(req, opened.code, name))

    def _read_session_image(self, warnings: list[str]) -> None:
        """Read the session's image for the next run (nothing is recomputed now); only regular files."""
        from alens_gui.core.safeio import special_kind

        req = self.session.image_request
        if req.empty:
            return
        for p in ([req.path] if req.path else [t for t in req.tiles if Path(t).suffix]):
            kind = special_kind(p)
            if kind is not None:
                if not any(Path(p).name in w for w in warnings):
                    warnings.append(f"{Path(p).name}: the session's input is {kind}; it was not read")
                return
        self.read_image(explain=False)

    def _session_model(self, req: ModelRequest, code: str | None, name: str) -> None:
        """Load the model a session names: at once when that runs no code, else only on the user's yes."""
        s = self.session
        if code is None:
            s.model_request = req
            self.load_model(allow_code=False)  # (refused all the same if the file became a program since)
            return
        if self.confirm_code(code, name):
            s.model_request = req
            self.load_model(allow_code=True)
            return
        kept = getattr(s.model, "name", None) or s.model_request.spec
        self.notify(f"{name}: the session's model was not loaded (loading it would run {code}); "
                    f"the saved maps are shown and {kept} stays in use", "warning")

    # -- folders ----------------------------------------------------------------------------
    @property
    def cache(self):
        from alens_gui.core.resultcache import ResultCache

        if self._cache is None:  # the platform's cache folder unless the window names one
            self._cache = ResultCache(self.cache_dir)
        return self._cache

    def _model_id(self) -> str:
        from alens_gui.core.sessionfile import file_sha256

        m = self.session.model_request
        ck = file_sha256(m.spec) if m.spec != "default" and Path(m.spec).is_file() else ""
        output = getattr(self.session.model, "output", "softmax")  # probabilities differ per output rule
        return f"{m.spec}|{m.arch}|{m.labels}|{ck}|{getattr(self.session.model, 'name', '')}" + (
            f"|{output}" if output != "softmax" else "")

    def _explain_key_fn(self):
        s = self.session
        model_id, policy, window = self._model_id(), s.input_policy, s.window
        method, options, request = s.method, dict(s.options), s.class_request.describe()

        def key(path):
            return self.cache.explanation_key(path, model_id, policy, window, method, options, request)

        return key

    def open_folder(self, folder: str, recursive: bool = False):
        """List a folder's images in the gallery (nothing decoded); then classify the ones the cache lacks."""
        from .gallery import GalleryRow

        s = self.session
        s.folder = str(folder)

        def listed(result) -> None:
            root, items, skipped, notes = result
            for note in skipped:  # a FIFO, a device, a link loop: not opened, and the user is told
                self.notify(f"{root.name}/{note}", "warning")
            for note in notes:
                self.notify(f"{root.name}: {note}", "warning" if note.startswith("no true labels") else "info")
            s.gallery.notes = list(notes)
            rows = [GalleryRow(path=p, rel=rel, true_label=label, explained=explained) for p, rel, label, _, explained
                    in items]
            for r, (_p, _rel, _lab, pred, _e) in zip(rows, items):
                if pred:
                    r.pred, r.pred_name, r.p, r.top5 = pred["top1"], pred["name"], pred["p"], pred.get("top5")
            s.gallery.set_rows(root, rows)
            cached = sum(r.pred is not None for r in rows)
            labelled = sum(r.true_label is not None for r in rows)
            self.notify(f"{root.name}: {len(rows)} images ({cached} with cached predictions, {labelled} labelled)")
            self.classify_folder()

        return self.runner.run("folder", jobs.list_folder_job, str(folder), bool(recursive), self.cache,
                               self._model_id(), s.input_policy, s.window, self._explain_key_fn(),
                               label=f"listing {Path(folder).name}", on_return=listed)

    def classify_folder(self):
        s = self.session
        items = [(i, r.path) for i, r in enumerate(s.gallery.rows) if r.pred is None]
        if not items or s.model is None:
            return None
        return self.runner.run("folder", jobs.classify_job, s.model, items, self.cache, self._model_id(),
                               s.input_policy, s.window, label=f"classifying {len(items)} images",
                               on_yield=self._on_folder_yield)

    def explain_all(self):
        """Explain every image of the gallery with the current settings, in the background; cached."""
        s = self.session
        if s.model is None or not s.gallery.rows:
            self.notify("open a folder (and let the model load) first", "warning")
            return None
        try:
            method, options = self.check_settings()
        except AlensError as exc:
            self.notify(readable_error(exc), "error")
            return None
        items = [(i, r.path) for i, r in enumerate(s.gallery.rows)]

        def done(result) -> None:
            ok, failed = result
            self.notify(f"explained {ok} image(s) of {Path(s.folder).name}" + (f"; {failed} failed" if failed else ""))

        return self.runner.run("folder", jobs.explain_all_job, s.model, items, self.cache, self._model_id(),
                               s.input_policy, s.window, method, options, s.class_request, s.lens,
                               self._explain_key_fn(), label=f"explaining {len(items)} images",
                               on_yield=self._on_folder_yield, on_return=done)

    def _on_folder_yield(self, item) -> None:
        kind, payload = item
        if kind == "row":
            row, record, explained = payload
            self.session.gallery.update_prediction(row, record, explained)
        elif kind == "failed":
            row, message = payload
            self.notify(message, "error")

    def load_thumbnails(self, rows: list) -> None:
        g = self.session.gallery
        items = [(i, g.rows[i].path) for i in rows if 0 <= i < len(g.rows)]
        if items:
            # every batch its own slot: a batch never replaces another; rows of a batch that was
            # cancelled (Esc, a new folder) are asked for again when they are next drawn
            slot = f"thumbs-{next(self._thumb_batch)}"
            self._thumb_rows[slot] = [i for i, _p in items]
            self.runner.run(slot, jobs.thumbnails_job, items, label="thumbnails",
                            on_yield=lambda item: g.set_thumbnail(*item[1]) if item[0] == "thumb" else None)

    def open_gallery_row(self, row: int) -> None:
        """Open a gallery image: its cached explanation at once if there is one, else explain it."""
        s = self.session
        if not 0 <= row < len(s.gallery.rows):
            return
        path = str(s.gallery.rows[row].path)
        key = self._explain_key_fn()(path)
        if self.cache.has_explanation(key):
            self._shown_request = ImageRequest(path=path)
            s.image_request = self._shown_request
            self.read_image(explain=False)

            def show(result) -> None:
                if result is None:  # a damaged entry, or the image cannot be read again: explain it
                    self.read_image()
                    return
                expl, rendered = result
                self._show(expl, rendered)
                s.stale = False
                callbacks, self._after_explained = self._after_explained, []
                for cb in callbacks:
                    cb()

            self.runner.run("explain", jobs.cached_explanation_job, self.cache, key, s.view.scale, path, s.window,
                            label="cached explanation", on_return=show)
        else:
            s.image_request = ImageRequest(path=path)

    def compare_rows(self, a: int, b: int) -> None:
        """Explain gallery images ``a`` and ``b`` with one class set and show them side by side."""
        s = self.session
        s.pinned = None
        self._after_explained.append(lambda: (self.pin(), self.open_gallery_row(b)))
        self.open_gallery_row(a)

    def _cache_current(self, expl) -> None:
        """Keep what was explained for a gallery image, so reopening it is instant."""
        s = self.session
        req = s.image_request
        if not req.path or req.frame or expl.partial or s.stale:  # (a gallery row is a file's first frame)
            return
        row = s.gallery.row_of(req.path)
        # (a cache that cannot be written, or is turned off, keeps nothing: the row is not marked)
        if self.cache.put_explanation(self._explain_key_fn()(req.path), expl) and row >= 0:
            s.gallery.update_prediction(row, None, True)

    def export_report(self, path: str, what: str = "current", rows: Sequence[int] = ()):
        """A PDF report of the current explanation, the comparison, or gallery rows (explained by Explain all)."""
        from alens_gui.core.report import Comparison, ReportSettings

        s = self.session
        items = []
        if what == "comparison":
            if s.pinned is None or s.explanation is None:
                self.notify("pin an explanation and explain another image to report a comparison", "warning")
                return None
            items = [Comparison(s.pinned, s.explanation)]
        elif what == "current":
            if s.explanation is None:
                self.notify("nothing to report yet: explain an image first", "warning")
                return None
            items = [s.explanation]
        else:
            key = self._explain_key_fn()
            chosen = [(s.gallery.rows[i].rel, str(s.gallery.rows[i].path), key(s.gallery.rows[i].path))
                      for i in rows]
            for rel, _path, k in chosen:
                if not self.cache.has_explanation(k):
                    self.notify(f"{rel} is not explained yet: use Explain all first", "warning")
                    return None
            items = _cached_items(self.cache, chosen, s.window)  # read (images too) in the worker
        total = len(items) if isinstance(items, list) else len(chosen)
        settings = ReportSettings.for_explainer(
            s.model, scale=s.view.scale, opacity=s.view.opacity, class_request=s.class_request.describe(),
            window=str(s.window), input_policy=s.input_policy,
        )
        return self.runner.run("export", jobs.report_job, str(path), items, settings, total,
                               label=f"writing {Path(path).name}", on_return=lambda p: self.notify(f"saved {p}"))

    # -- evaluation ---------------------------------------------------------------------
    def run_grid_game(self, n: int = 8):
        s = self.session
        if s.model is None:
            self.notify("load a model first", "warning")
            return None
        try:
            method, options = self.check_settings()
        except AlensError as exc:
            self.notify(readable_error(exc), "error")
            return None
        return self.runner.run("evaluate", jobs.grid_game_job, s.model, method, options, int(n), s.lens,
                               label="grid pointing game", on_return=self._on_grid_game)

    def _on_grid_game(self, result: dict) -> None:
        self.grid_game_result = result
        self.notify(jobs.grid_game_summary(result))

    # -- task bookkeeping ---------------------------------------------------------------------
    def cancel(self) -> None:
        if self.runner.busy():
            self.runner.cancel()
            self.notify("cancelled")

    def _on_status(self, item) -> None:
        kind, payload = item
        if kind == "status":
            a = self.session.activity
            self.session.activity = Activity(a.label, a.done, a.total, str(payload))

    def _on_started(self, slot: str, label: str) -> None:
        if slot in VISIBLE_SLOTS:
            self.session.activity = Activity(label=label)
        elif slot == GALLERY_SLOT:
            self.session.gallery_activity = Activity(label=label)

    def _on_progress(self, slot: str, done: float, total: float, message: str) -> None:
        if slot in VISIBLE_SLOTS:
            a = self.session.activity
            self.session.activity = Activity(a.label or slot, done, total, message or a.message)
        elif slot == GALLERY_SLOT:
            a = self.session.gallery_activity
            self.session.gallery_activity = Activity(a.label or slot, done, total, message or a.message)

    def cancel_gallery(self) -> None:
        """Stop the folder's background work (Explain all, classifying); what is done stays cached."""
        if self.runner.busy(GALLERY_SLOT):
            self.runner.cancel(GALLERY_SLOT)
            self.notify("stopped the folder's work; the images done so far are kept")

    def _on_finished(self, slot: str, outcome: str) -> None:
        s = self.session
        if slot in self._thumb_rows:
            rows = self._thumb_rows.pop(slot)
            if outcome != "done":  # (an unreadable file in a finished batch is not asked for again)
                s.gallery.forget_unloaded(rows)
        if slot == "explain" and outcome != "done" and self._last_complete is not None:
            # a cancelled or failed run must not leave its partial estimate looking like a result
            expl, rendered = self._last_complete
            self._last_complete = None
            s.explanation, s.rendered = expl, rendered
        still = [x for x in VISIBLE_SLOTS if self.runner.busy(x)]
        if not still:
            s.activity = Activity()
        elif slot in VISIBLE_SLOTS and s.activity.label != self.runner.label(still[0]):
            # the status says what still runs (the model loading), not what just finished
            s.activity = Activity(label=self.runner.label(still[0]))
        if slot == GALLERY_SLOT and not self.runner.busy(GALLERY_SLOT):
            s.gallery_activity = Activity()

    def shutdown(self) -> bool:
        done = self.runner.shutdown()
        for name in ("alens_gui", "py.warnings"):
            logging.getLogger(name).removeHandler(self._log_handler)
        return done



def _cached_items(cache, chosen, window):
    """Cached explanations of gallery rows for a report, read one at a time (in the worker); an
    entry that cannot be read any more is listed as a failure."""
    from alens_gui.core.report import Failure

    for rel, path, key in chosen:
        expl = cache.explanation(key, path, window)
        yield expl if expl is not None else Failure(rel, f"{rel}: its cached explanation cannot be read any more "
                                                         "(damaged, or the image changed): explain it again")
