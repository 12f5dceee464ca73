"""The open folder's work: listing it, classifying its images, Explain all, thumbnails, the
result cache and its keys, opening a row (its cached explanation at once), comparing two rows
and reporting chosen rows. Everything runs in the gallery's own task slot, so the folder's
work shows in the gallery (its progress and a Cancel) and never replaces the main view's run.

The :class:`GalleryController` works for the window's controller (its ``host``): the host's
task runner, notifications and result display (``host.show``); the host emits ``shown``
after every complete explanation it shows, which is when a computed one is cached.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject

from alens_gui.core.errors import AlensError

from . import jobs, sessionstate
from .session import ImageRequest
from .tasks import readable_error

#: The slot of the open folder's work (listing, classifying, Explain all): shown in the gallery.
GALLERY_SLOT = "folder"


class GalleryController(QObject):
    """Runs the open folder's work for ``host`` (the window's controller)."""

    def __init__(self, host, cache_dir: str | Path | None = None) -> None:
        super().__init__(host)
        self.host = host
        self.session = host.session
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._cache = None
        self._thumb_batch = itertools.count(1)
        self._thumb_rows: dict[str, list[int]] = {}  # a thumbnail batch's slot → its rows
        self._recursive = False  # how the open folder was listed (listed again for another model)
        self._listed_for: str | None = None  # the model id the open folder was listed for
        self.session.gallery.thumbnailsWanted.connect(self.load_thumbnails)
        host.runner.state_changed.connect(self._on_state)
        host.runner.finished.connect(self._on_finished)
        host.shown.connect(self._on_shown)

    # -- the result cache ---------------------------------------------------------------
    @property
    def cache(self):
        from alens_gui.core.resultcache import ResultCache

        if self._cache is None:  # the platform's cache folder unless the window names one
            self._cache = ResultCache(self.cache_dir)
        return self._cache

    def model_id(self) -> str:
        """What names the loaded model in cache keys (its spec, files' SHA-256, name, output rule)."""
        from alens_gui.core.cohort import model_identity  # (the CLI's cohorts read what the gallery wrote)

        s = self.session
        m = s.model_request
        return model_identity(m.spec, m.arch, m.labels, getattr(s.model, "name", ""),
                              getattr(s.model, "output", "softmax"))  # probabilities differ per output rule

    def explain_key_fn(self, settings=None):
        """``key(path)``: the cache key of a file's explanation under ``settings`` (a RunSettings;
        by default the session's now, built by ``sessionstate.run_settings`` as Explain all
        builds it). While the settings cannot make a run (a class set being edited, an option
        out of range) every key is None: nothing is looked up or kept under a wrong key."""
        if settings is None:
            try:
                method, options = self.host.check_settings()
                settings = sessionstate.run_settings(self.session, method, options)
            except AlensError:
                return lambda path: None
        model_id, cache = self.model_id(), self.cache

        def key(path):
            return cache.explanation_key(path, model_id, settings)

        return key

    # -- listing, classifying, Explain all ---------------------------------------------------
    def open_folder(self, folder: str, recursive: bool = False):
        """List a folder's images in the gallery (nothing decoded); then classify the ones the cache lacks."""
        from .gallerystate import GalleryRow

        s, notify = self.session, self.host.notify
        s.folder = str(folder)
        self._recursive = bool(recursive)
        self._listed_for = self.model_id() if s.model is not None else None

        def listed(result) -> None:
            root, items, skipped, notes = result
            for note in skipped:  # a FIFO, a device, a link loop: not opened, and the user is told
                notify(f"{root.name}/{note}", "warning")
            for note in notes:
                notify(f"{root.name}: {note}", "warning" if note.startswith("no true labels") else "info")
            s.gallery.notes = list(notes)
            rows = [GalleryRow(path=p, rel=rel, true_label=label, explained=explained) for p, rel, label, _, explained
                    in items]
            for r, (_p, _rel, _lab, pred, _e) in zip(rows, items):
                if pred:
                    r.pred, r.pred_name, r.p, r.top5 = pred["top1"], pred["name"], pred["p"], pred.get("top5")
            s.gallery.set_rows(root, rows)
            cached = sum(r.pred is not None for r in rows)
            labelled = sum(r.true_label is not None for r in rows)
            notify(f"{root.name}: {len(rows)} images ({cached} with cached predictions, {labelled} labelled)")
            self.classify_folder()

        return self.host.runner.run(GALLERY_SLOT, jobs.list_folder_job, str(folder), bool(recursive), self.cache,
                                    self.model_id(), sessionstate.input_settings(s), self.explain_key_fn(),
                                    label=f"listing {Path(folder).name}", on_return=listed)

    def model_changed(self) -> None:
        """A model came in while a folder is open: predictions, right/wrong and "explained" marks
        belong to the model, so the folder is listed again for it (its cached predictions read, the
        rest classified). A folder listed before the first model loaded (``alens-gui FOLDER``) is
        classified once it is in."""
        s = self.session
        if not s.folder or not s.gallery.rows or self._listed_for == self.model_id():
            return
        self.open_folder(s.folder, self._recursive)

    def classify_folder(self):
        s = self.session
        items = [(i, r.path) for i, r in enumerate(s.gallery.rows) if r.pred is None]
        if not items or s.model is None:
            return None
        return self.host.runner.run(GALLERY_SLOT, jobs.classify_job, s.model, items, self.cache, self.model_id(),
                                    sessionstate.input_settings(s), label=f"classifying {len(items)} images",
                                    on_yield=self._on_folder_yield)

    def explain_all(self):
        """Explain every image of the gallery with the current settings, in the background; cached."""
        s, notify = self.session, self.host.notify
        if s.model is None or not s.gallery.rows:
            notify("open a folder (and let the model load) first", "warning")
            return None
        try:
            method, options = self.host.check_settings()
        except AlensError as exc:
            notify(readable_error(exc), "error")
            return None
        items = [(i, r.path) for i, r in enumerate(s.gallery.rows)]

        def done(result) -> None:
            ok, failed = result
            notify(f"explained {ok} image(s) of {Path(s.folder).name}" + (f"; {failed} failed" if failed else ""))

        settings = sessionstate.run_settings(s, method, options)
        return self.host.runner.run(GALLERY_SLOT, jobs.explain_all_job, s.model, items, self.cache, self.model_id(),
                                    settings, self.explain_key_fn(settings), label=f"explaining {len(items)} images",
                                    on_yield=self._on_folder_yield, on_return=done)

    def _on_folder_yield(self, item) -> None:
        kind, payload = item
        if kind == "row":
            row, record, explained = payload
            self.session.gallery.update_prediction(row, record, explained)
        elif kind == "failed":
            _row, message = payload
            self.host.notify(message, "error")

    def cancel(self) -> None:
        """Stop the folder's background work (Explain all, classifying); what is done stays cached."""
        if self.host.runner.busy(GALLERY_SLOT):
            self.host.runner.cancel(GALLERY_SLOT)
            self.host.notify("stopped the folder's work; the images done so far are kept")

    def load_thumbnails(self, rows: list) -> None:
        g = self.session.gallery
        items = [(i, g.rows[i].path) for i in rows if 0 <= i < len(g.rows)]
        if items:
            # every batch its own slot: a batch never replaces another; rows of a batch that was
            # cancelled (Esc, a new folder) are asked for again when they are next drawn
            slot = f"thumbs-{next(self._thumb_batch)}"
            self._thumb_rows[slot] = [i for i, _p in items]
            self.host.runner.run(slot, jobs.thumbnails_job, items, label="thumbnails",
                                 on_yield=lambda item: g.set_thumbnail(*item[1]) if item[0] == "thumb" else None)

    # -- one row, two rows --------------------------------------------------------------------
    def open_row(self, row: int) -> None:
        """Open a gallery image: its cached explanation at once if there is one, else explain it."""
        s, host = self.session, self.host
        if not 0 <= row < len(s.gallery.rows):
            return
        path = str(s.gallery.rows[row].path)
        key = self.explain_key_fn()(path)
        if not self.cache.has_explanation(key):
            s.image_request = ImageRequest(path=path)
            return
        s.shown_request = s.image_request = ImageRequest(path=path)
        host.read_image(explain=False)

        def show(result) -> None:
            if result is None:  # a damaged entry, or the image cannot be read again: explain it
                host.read_image()
                return
            expl, rendered = result
            host.show(expl, rendered, computed=False)

        host.runner.run("explain", jobs.cached_explanation_job, self.cache, key, s.color_scale, path, s.window,
                        label="cached explanation", on_return=show)

    def compare_rows(self, a: int, b: int) -> None:
        """Explain gallery images ``a`` and ``b`` with one class set and show them side by side."""
        self.host.comparison.open_pair(lambda: self.open_row(a), lambda: self.open_row(b))

    def _on_shown(self, expl, computed: bool) -> None:
        """Keep what was explained for a gallery image, so reopening it is instant."""
        s = self.session
        req = s.image_request
        if not computed or not req.path or req.frame or expl.partial or s.stale:  # (a row is a file's first frame)
            return
        row = s.gallery.row_of(req.path)
        # (a cache that cannot be written, or is turned off, keeps nothing: the row is not marked)
        if self.cache.put_explanation(self.explain_key_fn()(req.path), expl) and row >= 0:
            s.gallery.update_prediction(row, None, True)

    # -- a report of chosen rows, the comparison or the current explanation ---------------------
    def export_report(self, path: str, what: str = "current", rows: Sequence[int] = ()):
        """A PDF report of the current explanation, the comparison, or gallery rows (explained by Explain all)."""
        from alens_gui.core.report import Comparison, ReportSettings

        s, notify = self.session, self.host.notify
        if what == "comparison":
            if s.pinned is None or s.explanation is None:
                notify("pin an explanation and explain another image to report a comparison", "warning")
                return None
            items = [Comparison(s.pinned, s.explanation)]
        elif what == "current":
            if s.explanation is None:
                notify("nothing to report yet: explain an image first", "warning")
                return None
            items = [s.explanation]
        else:
            key = self.explain_key_fn()
            chosen = [(s.gallery.rows[i].rel, str(s.gallery.rows[i].path), key(s.gallery.rows[i].path))
                      for i in rows]
            for rel, _path, k in chosen:
                if not self.cache.has_explanation(k):
                    notify(f"{rel} is not explained yet: use Explain all first", "warning")
                    return None
            items = _cached_items(self.cache, chosen, s.window)  # read (images too) in the worker
        total = len(items) if isinstance(items, list) else len(chosen)
        described = {}
        try:  # the run the maps were made with: the image on screen's, or Explain all's
            run = sessionstate.run_settings(s, s.method, dict(s.options), current_image=what != "gallery")
        except AlensError:  # (a class set being edited, a grid's classes not found again yet: said as asked)
            run, described = sessionstate.input_settings(s), {"class_request": s.class_request.describe()}
        settings = ReportSettings.for_run(s.model, run, scale=s.color_scale, opacity=s.view.opacity, **described)
        return self.host.runner.run("export", jobs.report_job, str(path), items, settings, total,
                                    label=f"writing {Path(path).name}", on_return=lambda p: notify(f"saved {p}"))

    # -- the gallery's task state ------------------------------------------------------------------
    def _on_state(self, state) -> None:
        if state.slot == GALLERY_SLOT:  # (the folder's task state, idle once none runs)
            self.session.gallery_activity = self.host.runner.active((GALLERY_SLOT,))

    def _on_finished(self, slot: str, outcome: str) -> None:
        if slot in self._thumb_rows:
            rows = self._thumb_rows.pop(slot)
            if outcome != "done":  # (an unreadable file in a finished batch is not asked for again)
                self.session.gallery.forget_unloaded(rows)


def _cached_items(cache, chosen, window):
    """Cached explanations of gallery rows for a report, read one at a time (in the worker); an
    entry that cannot be read any more is listed as a failure."""
    from alens_gui.core.report import Failure

    for rel, path, key in chosen:
        expl = cache.explanation(key, path, window)
        yield expl if expl is not None else Failure(rel, f"{rel}: its cached explanation cannot be read any more "
                                                         "(damaged, or the image changed): explain it again")
