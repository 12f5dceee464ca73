"""The gallery's Explain all through the batch engine: one forward pass per image, not two."""

from __future__ import annotations

import numpy as np

from .conftest import wait_idle
from .test_gallery import labelled_folder, save  # noqa: F401 - the fixture


class SampleCounter:
    """Counts the samples (batch rows) that go through a model's forward, all calls together."""

    def __init__(self, model):
        self.model, self.samples, self.calls = model, 0, 0
        self.original = model.forward

    def __enter__(self):
        def counted(x, *a, **k):
            self.calls += 1
            self.samples += int(x.shape[0])
            return self.original(x, *a, **k)

        self.model.forward = counted
        return self

    def __exit__(self, *exc):
        del self.model.forward


def test_explain_all_runs_one_forward_pass_per_image(make_window, qtbot, labelled_folder, explainer, photos):  # noqa: F811
    from alens_gui.core.batch import per_sample_bytes

    per_sample_bytes(explainer.loaded)  # the batch size's one-off measurement, outside the count
    win = make_window()
    wait_idle(qtbot, win)
    win.session.method = "ixg"
    win.open_folder(labelled_folder, recursive=True)
    wait_idle(qtbot, win)
    rows = win.session.gallery.rows
    save(photos["astronaut"], labelled_folder / "espresso" / "late.png")  # not classified yet: no matter
    with SampleCounter(explainer.model) as counter:
        assert win.controller.gallery.explain_all() is not None
        wait_idle(qtbot, win)
    assert all(r.explained for r in rows)
    # five images, five samples through the model: the class set comes from the pass the maps use,
    # and several images share a pass
    assert counter.samples == len(rows) == 5
    assert counter.calls < 5
    # what the cache holds is what the per-image path gives
    key = win.controller.gallery.explain_key_fn()(rows[3].path)
    cached = win.controller.cache.explanation(key, rows[3].path)
    single = explainer.explain(rows[3].path, "ixg", top_k=3)
    assert list(cached.classes) == list(single.classes)
    np.testing.assert_allclose(cached.probs, single.probs, rtol=1e-4)


def test_alens_cohort_reads_what_explain_all_cached_for_the_same_run(make_window, qtbot, labelled_folder,  # noqa: F811
                                                                    tmp_path, capsys):
    """Explain all with a manual window and a non-default option, then ``alens cohort`` with the same
    settings typed on the command line: every map comes from the cache (no entry is added); the same
    command with another window is another run, explained and kept under new keys."""
    from alens_gui.cli import main
    from alens_gui.core.resultcache import ResultCache
    from alens_gui.qt.session import ClassRequest

    win = make_window()
    wait_idle(qtbot, win)
    s = win.session
    s.method, s.options = "saliency", {"abs": False}
    s.window, s.class_request = (100.0, 200.0), ClassRequest(kind="topk", k=2)
    win.open_folder(labelled_folder, recursive=True)
    wait_idle(qtbot, win)
    assert win.controller.gallery.explain_all() is not None
    wait_idle(qtbot, win)
    rows = s.gallery.rows
    assert len(rows) == 5 and all(r.explained for r in rows)
    cache = win.controller.cache
    assert cache.root == ResultCache().root  # (the CLI's cache: ALENS_CACHE_DIR)
    entries = cache.root / "explanations"

    def kept():
        return sorted(p.name for p in entries.glob("*.npz"))

    before = kept()
    assert len(before) == len(rows)
    key = win.controller.gallery.explain_key_fn()
    assert sorted(f"{key(r.path)}.npz" for r in rows) == before

    def cohort(window, out):
        return main(["cohort", str(labelled_folder), "-r", "--method", "saliency", "-O", "abs=false", "--top-k", "2",
                     f"--window={window}", "--min-members", "1", "--permutations", "0", "--no-pdf",
                     "--out", str(tmp_path / out)])

    assert cohort("100,200", "same") == 0
    assert "5 image(s)" in capsys.readouterr().err
    assert kept() == before  # nothing explained again: every key the CLI made was the gallery's
    assert cohort("100,300", "other") == 0  # another window: another run, five new entries
    after = kept()
    assert len(after) == 2 * len(rows) and set(before) < set(after)
