"""One lock per model, in the core: waiting is cancellable, the holder may re-enter."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from alens_gui.core.errors import Cancelled
from alens_gui.core.locking import model_lock, using_model
from alens_gui.core.progress import Progress


def _hold(model, taken: threading.Event, release: threading.Event):
    with using_model(model):
        taken.set()
        release.wait(30)


def _holder(model):
    taken, release = threading.Event(), threading.Event()
    t = threading.Thread(target=_hold, args=(model, taken, release), daemon=True)
    t.start()
    assert taken.wait(10)
    return t, release


def test_waiting_for_a_busy_model_can_be_cancelled():
    model = torch.nn.Linear(2, 2)
    holder, release = _holder(model)
    progress = Progress()
    threading.Timer(0.3, progress.cancel).start()
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        with using_model(model, progress):
            pytest.fail("the lock was taken while another thread held it")
    assert 0.25 < time.perf_counter() - t0 < 5
    release.set()
    holder.join(10)
    with using_model(model, Progress()):  # free again
        pass


def test_the_lock_is_per_model_and_reentrant():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    assert model_lock(a) is model_lock(a) and model_lock(a) is not model_lock(b)
    holder, release = _holder(a)
    with using_model(b, Progress()):  # another model is not blocked
        pass
    release.set()
    holder.join(10)
    with using_model(a), using_model(a):  # the holder may take it again
        pass


def test_compute_base_waits_for_the_model(explainer, chelsea_input):
    """A method does not run on a model another thread holds; the wait obeys cancel."""
    from alens_gui.core.methods import compute_base

    holder, release = _holder(explainer.model)
    progress = Progress()
    threading.Timer(0.3, progress.cancel).start()
    try:
        with pytest.raises(Cancelled):
            compute_base(explainer.model, chelsea_input, [285, 967], "ixg", progress)
    finally:
        release.set()
        holder.join(10)
    assert compute_base(explainer.model, chelsea_input, [285, 967], "ixg").shape[0] == 2

