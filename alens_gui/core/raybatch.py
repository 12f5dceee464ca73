"""``--engine ray``: the batch engine's per-batch function on a Ray cluster (or a local Ray instance).

Ray Data does the scheduling: the inputs become a dataset (``ray.data.from_items``), and
``map_batches`` runs :class:`BatchActor` over it with an actor-pool compute strategy, so each
actor loads the model once and then explains batch after batch. Each actor asks for one GPU
when the cluster has GPUs. There is no scheduler of our own.

An actor runs exactly what the local engine runs for a batch (:mod:`.batch`):
:func:`~.batch.prepare_checked` per image, then :func:`~.batch.explain_batch` (which is
:func:`~.batch.compute_batch` and :func:`~.batch.finish_computed`, the two halves the local
engine runs on its computing and writer threads). For ``alens explain`` the actor writes each
image's files into the output folder itself (shared storage on a cluster) through
:func:`~.publish.publish_explanation`, the local engine's naming and atomic publishing; for
``alens report`` it hands the explanation back (npz bytes) for the driver's PDF. A failing image
is one line in its row and the run goes on.

Ray is imported only here, and only when ``--engine ray`` is asked for (:func:`require_ray`).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .errors import AlensError

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "alens-gui[ray]"'
#: Bytes a report explanation handed back by an actor may take (read with the bounded npz reader).
MAX_RESULT_BYTES = 1 << 30


def require_ray():
    """The ``ray`` module with Ray Data, or an :class:`AlensError` saying in one line how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise AlensError(f"--engine ray needs Ray, which is not installed ({exc}); install it with: "
                         f"{INSTALL_HINT}") from None
    return ray


@dataclass
class RayRow:
    """What the driver gets back for one input (in input order for a report, as done otherwise)."""

    index: int
    name: str
    status: str  # "written" | "failed" | "kept" | "explained" (report)
    message: str = ""  # the error line, or the class set of a written image
    files: int = 0
    npz: bytes | None = None


class BatchActor:
    """A Ray Data actor: loads the model once, then explains batches of rows (index, path, name, stem).

    ``out`` set: writes each image's files there and returns its status; ``out`` None: returns the
    explanation as npz bytes (with its raw maps, so the driver re-lenses it exactly).
    """

    def __init__(self, model_kwargs: dict, settings, include_identifiers: bool = False, out: str | None = None,
                 write: dict | None = None, threads: int | None = None, chunk: int | str = "auto") -> None:
        import torch

        from .batch import choose_batch_size, loaded_for
        from .methods import get_method
        from .models import load_model

        if threads:
            torch.set_num_threads(int(threads))
        kw = dict(model_kwargs)
        self.loaded = loaded_for(load_model(kw.pop("source"), **kw), settings)
        # Images per forward pass, chosen here from this actor's own device and free memory (the
        # driver cannot see them) exactly as the local engine chooses it; a number is kept as given.
        self.chunk = choose_batch_size(self.loaded, settings, chunk)
        self.settings = settings
        self.info = get_method(settings.method)
        self.include_identifiers = include_identifiers
        self.out = out
        self.write = dict(write or {})
        self.fatal: str | None = None

    def __call__(self, batch: dict) -> dict:
        from .batch import explain_batch, prepare_checked

        rows = {int(i): (str(p), str(n), str(s)) for i, p, n, s in
                zip(batch["index"], batch["path"], batch["name"], batch["stem"])}
        result = {i: ("failed", "", 0, b"") for i in rows}
        prepared = []
        for i, (path, name, _stem) in rows.items():
            try:
                prepared.append(prepare_checked(self.loaded, self.settings, path, i, self.include_identifiers, name))
            except AlensError as exc:
                result[i] = ("failed", str(exc), 0, b"")
        done = []
        for start in range(0, len(prepared), self.chunk):
            done.extend(explain_batch(self.loaded, self.settings, prepared[start:start + self.chunk]))
        for prep, expl, err in done:
            if expl is None:
                result[prep.index] = ("failed", err or f"{prep.name}: failed", 0, b"")
            elif self.out is None:
                result[prep.index] = ("explained", "", 0, expl.npz_bytes())
            else:
                result[prep.index] = self._publish(expl, rows[prep.index])
        import numpy as np

        order = list(rows)

        def column(values):  # object arrays: numpy's bytes dtype would drop an npz's trailing zero bytes
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
            return arr

        return {
            "index": np.array(order, dtype=np.int64), "name": column([rows[i][1] for i in order]),
            "status": column([result[i][0] for i in order]), "message": column([result[i][1] for i in order]),
            "files": np.array([result[i][2] for i in order], dtype=np.int64),
            "npz": column([result[i][3] for i in order]),
        }

    def _publish(self, expl, row) -> tuple:
        from .outputs import is_fatal, write_error
        from .publish import publish_explanation

        path, name, stem = row
        if self.fatal:
            return "failed", f"{name}: not written ({self.fatal})", 0, b""
        try:
            files = publish_explanation(expl, self.out, stem, frame=self.write.get("frame"),
                                        png=self.write.get("png", True), overwrite=self.write.get("overwrite", False),
                                        keep_figures=self.write.get("skip_existing", False))
        except OSError as exc:
            target = getattr(exc, "target", os.path.join(self.out, stem))
            if isinstance(exc, FileExistsError) and self.write.get("skip_existing") and str(target).endswith(".npz"):
                return "kept", f"{name}: explained by another run meanwhile; kept", 0, b""
            msg = write_error(exc, target)
            if is_fatal(exc):
                self.fatal = msg
            return "failed", msg if name in msg else f"{path}: {msg}", 0, b""
        chosen = ", ".join(f"{int(c)} {n} ({p:.3f})" for c, n, p in zip(expl.classes, expl.class_names, expl.probs))
        return "written", f"{name}: classes {chosen}", len(files), b""


class RayEngine:
    """Explain many files on Ray with one :class:`~.settings.RunSettings` (see the module docstring).

    Parameters
    ----------
    model_kwargs : dict
        :func:`~.models.load_model`'s keywords (``source`` first): each actor loads the model itself.
    settings : RunSettings
    batch_size : int or "auto"
        Images per batch handed to an actor; auto: 32 on GPUs, 8 (:data:`~.batch.CPU_MAX_BATCH`)
        on CPUs, and each actor stacks as many of them into one pass as its own device's free
        memory allows (:func:`~.batch.choose_batch_size`, as the local engine does). A number is
        both the batch handed over and the images per pass.
    address : str or None
        A running cluster (``ray://host:10001``, ``host:6379`` or ``auto``); None starts Ray
        on this machine (``ray.init()``) unless it is already running in this process.
    actors : int or None
        Actors in the pool (each loads the model): default, the cluster's GPUs, else one per
        four CPUs.
    """

    def __init__(self, model_kwargs: dict, settings, *, batch_size: int | str = "auto", address: str | None = None,
                 actors: int | None = None, include_identifiers: bool = False) -> None:
        self.ray = require_ray()
        self.model_kwargs = dict(model_kwargs)
        self.settings = settings
        self.batch_size = batch_size
        self.address = address
        self.actors = actors
        self.include_identifiers = include_identifiers
        self.started = False  # whether this engine started Ray (and shuts it down)
        self.gpus = 0
        self.cpus = 0
        self.chunk: int | str = "auto"

    def start(self) -> str:
        """Connect to the cluster (or start Ray here); one line saying what runs where."""
        ray = self.ray
        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING)
                else:
                    ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the cluster at {self.address}" if self.address else "a local Ray instance"
                raise AlensError(f"could not start or reach {where}: {str(exc).strip().splitlines()[0]}") from None
            self.started = True
        res = ray.cluster_resources()
        self.gpus = int(res.get("GPU", 0))
        self.cpus = int(res.get("CPU", 1))
        if self.actors is None:
            self.actors = self.gpus if self.gpus else max(1, self.cpus // 4)
        self.actors = max(1, int(self.actors))
        self.chunk = "auto" if self.batch_size in (None, "auto") else max(1, int(self.batch_size))
        if self.batch_size in (None, "auto"):  # handed over in blocks of the local engine's cap; each actor
            from .batch import CPU_MAX_BATCH, GPU_MAX_BATCH  # sizes its passes from its own memory

            self.batch_size = GPU_MAX_BATCH // 2 if self.gpus else CPU_MAX_BATCH
        self.batch_size = max(1, int(self.batch_size))
        where = f"cluster {self.address}" if self.address else "local Ray"
        per_pass = "each actor sizes its passes from its memory" if self.chunk == "auto" else "one pass each"
        return (f"{where}: {self.cpus} CPU(s), {self.gpus} GPU(s); {self.actors} actor(s), "
                f"{self.batch_size} image(s) per batch ({per_pass})")

    def run(self, paths: Sequence, names: Sequence[str], stems: Sequence[str], *, out: str | None = None,
            write: dict | None = None) -> Iterator[RayRow]:
        """Yield a :class:`RayRow` per input as the cluster finishes them (in input order without ``out``)."""
        ray = self.ray
        if not ray.is_initialized():
            self.start()
        items = [{"index": i, "path": os.fspath(p), "name": names[i], "stem": stems[i]} for i, p in enumerate(paths)]
        if not items:
            return
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = out is None  # report pages in input order
        ctx.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # the run's own lines say how it goes
        per_actor = {}
        threads = None
        if self.gpus:
            per_actor["num_gpus"] = 1
            per_actor["num_cpus"] = 1
        else:
            cpus = max(1, self.cpus // self.actors)
            per_actor["num_cpus"] = cpus
            threads = cpus
        ds = ray.data.from_items(items, override_num_blocks=max(1, -(-len(items) // self.batch_size)))
        ds = ds.map_batches(
            BatchActor, batch_size=self.batch_size, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=self.actors),
            fn_constructor_kwargs=dict(model_kwargs=self.model_kwargs, settings=self.settings,
                                       include_identifiers=self.include_identifiers, out=out, write=write,
                                       threads=threads, chunk=self.chunk),
            **per_actor)
        for row in ds.iter_rows():
            npz = row["npz"]
            yield RayRow(int(row["index"]), str(row["name"]), str(row["status"]), str(row["message"]),
                         int(row["files"]), bytes(npz) if npz is not None and len(npz) else None)

    def stop(self) -> None:
        """End the cluster work of this run: shutting the driver down ends its actors and tasks."""
        try:
            self.ray.shutdown()
        except Exception as exc:  # a cluster already gone: nothing left to stop
            log.info("ray.shutdown: %s", exc)

    def close(self) -> None:
        """Shut down the Ray instance this engine started (none that was running before it)."""
        if self.started:
            self.stop()
            self.started = False


def explanation_from_row(row: RayRow):
    """The :class:`~.explanation.Explanation` an actor handed back (bounded npz reader, no pickle)."""
    from .explanation import Explanation
    from .safeio import load_npz

    arrays = load_npz(io.BytesIO(row.npz), row.name, max_total=MAX_RESULT_BYTES)
    return Explanation.from_arrays(arrays)


__all__ = ["INSTALL_HINT", "BatchActor", "RayEngine", "RayRow", "explanation_from_row", "require_ray"]
