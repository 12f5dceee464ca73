"""The controller: reacts to session fields, runs the work in the background, writes results back.

Reactions (one task slot each; a new request in a slot cancels the running one):

* :meth:`Controller.load_model` (the *Load* button, start-up) → load ``model_request``
  (``model``); the first model that fails to load falls back to the bundled default (SPEC §4);
* ``image_request`` → read the image (``image``), then explain it;
* ``lens`` → re-lens the cached maps (no model run); ``color_scale`` → redraw the maps' colours;
* ``method``, ``options``, ``class_request``, ``input_policy``, ``window`` → the maps on
  screen no longer match the settings: ``stale`` is set until the next run.

The rest is done by the controllers it holds, each for one job: :attr:`Controller.gallery`
(the open folder: listing, Explain all, thumbnails, the result cache;
:mod:`.gallerycontrol`), :attr:`Controller.comparison` (pin, unpin, the pair drawn with one
scale; :mod:`.comparecontrol`), :attr:`Controller.checks` (masking, the grid pointing game;
:mod:`.checkcontrol`), :attr:`Controller.files` (exports, session files; :mod:`.filecontrol`) and
:attr:`Controller.cohort` (the Cohort dock's strategies of the folder, kept per settings;
:mod:`.cohortcontrol`).

Every worker error reaches :attr:`Controller.notified`, the window's one notification place,
and so do warnings logged under ``alens_gui`` and library warnings (``warnings.warn`` from
pydicom, timm, transformers, ... through :func:`logging.captureWarnings`), from any thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from alens_gui.core.errors import AlensError

from . import jobs, sessionstate
from .checkcontrol import CheckController
from .cohortcontrol import CohortController
from .comparecontrol import CompareController
from .filecontrol import FileController
from .gallerycontrol import GalleryController
from .notifications import LogNotifier
from .session import ClassRequest, ModelRequest, Session
from .tasks import MainThreadCollector, TaskRunner, readable_error

#: Slots whose tasks show in the status bar's progress.
VISIBLE_SLOTS = ("model", "image", "explain", "mask", "export", "session", "evaluate")


class Controller(QObject):
    """Runs everything the session asks for.

    Signals
    -------
    notified(str, str)
        A message and its level (``info``, ``warning``, ``error``) for the notification area.
    shown(object, bool)
        A complete explanation is on screen, and whether it was computed now (False: from a cache).
    """

    notified = Signal(str, str)
    shown = Signal(object, bool)

    def __init__(self, session: Session, parent: QObject | None = None, *, autorun: bool = True,
                 cache_dir: str | Path | None = None) -> None:
        super().__init__(parent)
        self.session = s = session
        self.runner = TaskRunner(self)
        #: Explain an image as soon as it and the model are in (off in some tests and while restoring).
        self.autorun = autorun
        self._fell_back = False  # the first model that failed was replaced by the default
        self.gallery = GalleryController(self, cache_dir)  # (before comparison: a shown row is cached first)
        self.comparison = CompareController(self)
        self.checks = CheckController(self)
        self.files = FileController(self)
        self.cohort = CohortController(self)
        s.image_request_changed.connect(self._on_image_request)
        s.lens_changed.connect(lambda _l: self.relens())
        s.color_scale_changed.connect(self._on_color_scale)
        for sig in (s.method_changed, s.options_changed, s.class_request_changed, s.input_policy_changed):
            sig.connect(self._mark_stale)
        s.window_changed.connect(lambda _w: self.rewindow())
        s.input_policy_changed.connect(self._forget_tile_classes)
        self.runner.error.connect(lambda _slot, msg: self.notify(msg, "error"))
        self.runner.state_changed.connect(self._on_state)
        self.runner.finished.connect(self._on_finished)
        self._log = LogNotifier(self.notify, self)

    def notify(self, text: str, level: str = "info") -> None:
        self.notified.emit(text, level)

    @property
    def cache(self):
        """The result cache (the gallery's)."""
        return self.gallery.cache

    # -- model ------------------------------------------------------------------------
    def load_model(self, allow_code: bool = True):
        """Load ``model_request``. ``allow_code=False`` refuses a model whose loading would run code
        (an architecture file, a ``module:callable``, TorchScript): the model a session names,
        unless the user said yes (:meth:`.FileController.open_session`)."""
        r = self.session.model_request
        self.session.model_status = f"loading {r.spec}…"
        return self.runner.run("model", jobs.load_model_job, r.spec, r.arch, r.labels, r.device, r.torchscript,
                               allow_code, r.output, label=f"loading model {r.spec}", on_return=self._on_model,
                               on_error=self._on_model_error)

    def set_loaded(self, loaded) -> None:
        """Use an already loaded model (tests share one; the self-test passes its own)."""
        self._on_model(loaded)

    def _on_model(self, loaded) -> None:
        s = self.session
        MainThreadCollector.freeze()  # torch and the model are in: keep them out of collections
        s.model = loaded
        s.gallery.set_model(loaded)  # right/wrong follows the model's classes and output rule
        self.gallery.model_changed()  # an open folder's predictions are this model's
        s.model_status = f"{loaded.name} on {loaded.device_label()}"
        self._forget_tile_classes()  # (another model classifies the tiles again)
        if s.image is not None and (self.autorun or s.run_wanted):
            s.run_wanted = False
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
        if req != self.session.shown_request:
            self.read_image()

    def read_image(self, explain: bool = True):
        """Read ``image_request`` (and explain it when ``explain`` and autorun allow)."""
        s = self.session
        req = s.image_request
        if req.empty:
            return None
        if s.pinned is None:  # a comparison keeps the pinned class set, a grid's included
            if req.tiles:
                s.class_request = ClassRequest(kind="tiles")  # (its classes are found at its run)
            elif s.class_request.kind == "tiles":
                s.class_request = ClassRequest()
        return self.runner.run("image", jobs.read_image_job, req, s.window, s.image, label=f"reading {req.label}",
                               on_return=lambda image, req=req: self._on_image(req, image, explain),
                               on_error=self._on_image_error)

    def _on_image_error(self, _exc: BaseException) -> None:
        # the message goes to the notifications; the screen keeps what it showed, and says so
        if self.session.shown_request is not None:
            self.session.image_request = self.session.shown_request

    def _on_image(self, req, image, explain: bool = True) -> None:
        s = self.session
        s.shown_request = req
        s.image = image
        if getattr(image, "frame", 0) != req.frame:  # the file has fewer frames than asked for
            s.shown_request = req = type(req)(path=req.path, sample=req.sample, tiles=req.tiles, frame=image.frame)
            s.image_request = req
        if not explain or s.restoring:
            return
        if s.model is not None and self.autorun:
            self.run()
        else:
            s.run_wanted = self.autorun

    def rewindow(self):
        """Show the image under the session's window; the maps become stale (no file is read)."""
        s = self.session
        if s.image is None or s.restoring:
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
            s.run_wanted = True
            self.notify("the model or the image is still loading; the run starts when both are ready", "info")
            return None
        if s.class_request.kind == "tiles" and not s.class_request.classes:  # a grid: its tiles' classes first
            return self.runner.run("explain", jobs.tile_classes_job, s.model, s.image_request.tiles, s.input_policy,
                                   label="classifying the grid's tiles", on_return=self._on_tile_classes)
        try:
            method, options = self.check_settings()
            settings = sessionstate.run_settings(s, method, options, current_image=True)  # (a class set: K >= 2)
        except AlensError as exc:
            self.notify(readable_error(exc), "error")
            return None
        return self.runner.run("explain", jobs.explain_job, s.model, s.image, settings, s.color_scale,
                               label=f"{method} on {s.image_request.label or 'the image'}",
                               on_yield=self._on_explain_yield, on_return=self._on_explained)

    def _on_tile_classes(self, classes) -> None:
        self.session.class_request = ClassRequest(kind="tiles", classes=tuple(classes))
        self.run()

    def _on_explain_yield(self, item) -> None:
        """A run's partial results: ``("classes", ...)`` (the status line names them already) and
        ``("estimate", (expl, rendered))``, drawn over what is shown until the run ends."""
        kind, payload = item
        s = self.session
        if kind == "estimate":
            expl, rendered = payload
            if s.explanation is not None and s.explanation.shape != expl.shape:
                s.reset_mask()  # (a new image: the mask of the old one does not fit)
            s.selected = min(s.selected, expl.k - 1)
            s.estimate = rendered

    def _put(self, expl, rendered) -> None:
        s = self.session
        if s.explanation is None or s.explanation.shape != expl.shape:
            s.reset_mask()
        s.selected = min(s.selected, expl.k - 1)
        s.explanation = expl
        s.rendered = rendered
        if s.pinned is not None and not expl.partial:
            self.comparison.compare()

    def show(self, expl, rendered, computed: bool = True) -> None:
        """Show a complete explanation (``computed`` now, or from a cache) and say so (``shown``)."""
        s = self.session
        self._put(expl, rendered)
        s.estimate = None  # (after the result is in: the maps switch from the estimate to it once)
        s.stale = False
        if computed:
            if expl.lens != s.lens:  # the user moved a lens control while the model ran
                self.relens()
            if s.mask is not None and s.mask.any():
                self.checks.run_mask()
            self.notify(f"{expl.method_label}: {expl.k} classes explained ({s.image_request.label})")
        self.shown.emit(expl, computed)

    def _on_explained(self, result) -> None:
        self.show(*result)

    def _mark_stale(self, *_args) -> None:
        if self.session.explanation is not None:
            self.session.stale = True

    def _forget_tile_classes(self, *_args) -> None:
        if self.session.class_request.kind == "tiles":
            self.session.class_request = ClassRequest(kind="tiles")

    # -- lens and colours ------------------------------------------------------------------
    def relens(self):
        s = self.session
        expl = s.explanation
        if expl is None or expl.lens == s.lens:
            return None
        return self.runner.run("lens", jobs.relens_job, expl, s.lens, s.color_scale, label="re-lensing",
                               on_return=self._on_relensed)

    def _on_relensed(self, result) -> None:
        self._put(*result)  # a pinned explanation follows the lens in compare()

    def _on_color_scale(self, scale) -> None:
        r = self.session.rendered
        if r is not None and r.scale != scale:
            self.redraw()

    def redraw(self):
        """Draw the explanation on screen again with the session's colour scale."""
        return self.runner.run("render", jobs.render_job, self.session.explanation, self.session.color_scale,
                               label="drawing", on_return=self._on_rendered)

    def _on_rendered(self, rendered) -> None:
        if rendered.explanation is self.session.explanation:
            self.session.rendered = rendered
            if self.session.pinned is not None:
                self.comparison.compare()

    # -- task bookkeeping ---------------------------------------------------------------------
    def cancel(self) -> None:
        if self.runner.busy():
            self.runner.cancel()
            self.notify("cancelled")

    def _on_state(self, state) -> None:
        """The status bar shows the state of the visible task started last (what still runs when
        another ends: the model loading), idle when none runs."""
        if state.slot in VISIBLE_SLOTS:
            self.session.activity = self.runner.active(VISIBLE_SLOTS)

    def _on_finished(self, slot: str, outcome: str) -> None:
        s = self.session
        if slot == "explain" and outcome != "done":
            s.estimate = None  # a cancelled or failed run leaves no estimate: the last result shows again
            if s.mask is not None and s.explanation is not None and s.mask.shape != s.explanation.shape:
                s.reset_mask()  # (drawn on the estimate of another image)

    def shutdown(self) -> bool:
        done = self.runner.shutdown()
        self._log.close()
        return done
