"""The Cohort dock's work: what the model uses for each class across the gallery's folder.

The :class:`CohortController` builds the cohort's :class:`~alens_gui.core.settings.RunSettings`
from the session, starts and cancels the cohort task (explanations from the result cache first,
then strategies, embedding and territory per class: :mod:`.cohortjob`) in its own slot, keeps
every cohort it computed per folder, model and settings (going back to one is instant, no model
run), and writes what the dock shows into the session:

* ``cohort``: the :class:`~alens_gui.core.cohort.Cohort` shown (None before the first one);
* ``cohort_status``: one line about it (its size and notes, a bad request, a cancel, a failure);
* ``cohort_activity``: the cohort task's :class:`~.messages.TaskState` (idle when none runs),
  which the dock's progress line, its *Find strategies* and its *Cancel* read.

It works for the window's controller (its ``host``): the host's task runner, the gallery's
result cache and cache keys, and the settings check.
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from . import sessionstate
from .cohortjob import cohort_job
from .messages import TaskState

#: The cohort's task slot: a new cohort replaces the one being computed, never the main view's run.
COHORT_SLOT = "cohort"


class CohortController(QObject):
    """Runs the Cohort dock's work for ``host`` (the window's controller)."""

    def __init__(self, host) -> None:
        super().__init__(host)
        self.host = host
        self.session = host.session
        self._kept: dict[tuple, object] = {}
        self._task_id = 0  # the cohort task started last (a replaced one's end says nothing)
        self._shown_folder: str | None = None  # the folder of the cohort on screen
        host.runner.state_changed.connect(self._on_state)
        self.session.folder_changed.connect(self._on_folder)

    def request(self, by: str = "classset", clusters=0, groups_text: str = ""):
        """``(key, settings, by, clusters, groups)`` for a cohort of the open folder now, or
        ``(None, problem)`` with one line saying what is missing or wrong."""
        s = self.session
        rows = s.gallery.rows
        if s.model is None or not rows:
            return None, "open a folder in the gallery (and let the model load) first"
        try:
            method, options = self.host.check_settings()
            settings = sessionstate.run_settings(s, method, options)
        except Exception as exc:  # a bad setting: one line, nothing runs
            return None, str(exc)
        clusters = clusters or "auto"
        groups = None
        text = (groups_text or "").strip()
        if text:
            parts = [p.strip() for p in text.split(",") if p.strip()]
            labels = {r.true_label for r in rows}
            if len(parts) != 2:
                return None, f"groups: name two sub-folders, e.g. benign,malignant; got {text!r}"
            missing = [p for p in parts if p not in labels]
            if missing:
                return None, f"groups: no sub-folder {missing[0]!r} in this folder"
            groups = (parts[0], parts[1])
        key = (s.folder, tuple(str(r.path) for r in rows), settings.key(), self.host.gallery.model_id(), by,
               clusters, groups)
        return (key, settings, by, clusters, groups), ""

    def compute(self, by: str = "classset", clusters=0, groups_text: str = ""):
        """Compute the folder's cohort in the background (``clusters`` 0: auto; ``groups_text``: two
        sub-folders "A,B" or ""), or show the one kept for this request at once. Returns the task
        started, or None (kept, or a problem: said in ``cohort_status``)."""
        s = self.session
        request, problem = self.request(by, clusters, groups_text)
        if request is None:
            s.cohort_status = problem
            return None
        key, settings, by, clusters, groups = request
        if key in self._kept:
            self._show(self._kept[key])
            return None
        items = [(r.path, r.true_label) for r in s.gallery.rows]
        s.cohort_status = f"explaining and grouping {len(items)} images…"

        def done(cohort) -> None:
            self._kept[key] = cohort
            self._show(cohort)

        gallery = self.host.gallery
        task = self.host.runner.run(
            COHORT_SLOT, cohort_job, s.model, items, settings, gallery.cache, gallery.explain_key_fn(settings), by, clusters,
            groups, label=f"cohort of {len(items)} images", on_return=done)
        self._task_id = task.id
        return task

    def cancel(self) -> None:
        """Stop the cohort being computed; the cohort shown (and every kept one) stays."""
        self.host.runner.cancel(COHORT_SLOT)

    def _on_folder(self, folder) -> None:
        """Another folder: the cohort of the last one leaves the dock (it is kept, and comes back at
        once if that folder is opened and asked for again); one being computed for it stops."""
        s = self.session
        if self._shown_folder is not None and folder != self._shown_folder:
            self._task_id = 0  # (its end says nothing: the dock now speaks of the new folder)
            self.cancel()
            self._shown_folder = None
            s.cohort = None
            s.cohort_status = "a new folder: Find strategies groups its images"

    def _show(self, cohort) -> None:
        s = self.session
        self._shown_folder = s.folder
        notes = cohort.failures + cohort.notes
        s.cohort_status = (f"{len(cohort.items)} images, {len(cohort.classes)} classes"
                           + (f"; {len(cohort.failures)} failed" if cohort.failures else "")
                           + ("; " + "; ".join(notes[:3]) if notes else ""))
        s.cohort = cohort

    def _on_state(self, state: TaskState) -> None:
        if state.slot != COHORT_SLOT:
            return
        s = self.session
        if state.finished and state.id == self._task_id:  # (said before the dock sees it idle)
            if state.outcome == "cancelled":
                s.cohort_status = "cancelled; nothing was changed"
            elif state.outcome == "error":
                s.cohort_status = "the cohort could not be computed (see the notifications)"
        s.cohort_activity = self.host.runner.active((COHORT_SLOT,))
