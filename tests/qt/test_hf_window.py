"""The window with a Hugging Face folder: typed into the model panel, loaded, explained, judged."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from alens_gui.qt.gallerystate import GalleryRow, LabelJudge

from .conftest import wait_idle

pytest.importorskip("transformers", reason="the hf extra (pip install 'alens-gui[hf]') is not installed")

LONG = 180_000


def test_an_hf_folder_loads_and_explains_in_the_window(make_window, qtbot, tmp_path):
    from tests.test_hf_models import NAMES, save_vit

    folder = save_vit(tmp_path / "vit")
    win = make_window()
    wait_idle(qtbot, win)
    win.model_panel.spec.setCurrentText(f"hf:{folder}")
    win.model_panel.load.click()
    qtbot.waitUntil(lambda: getattr(win.session.model, "name", "") == "hf:vit", timeout=LONG)
    assert win.session.model.output == "sigmoid"  # problem_type = multi_label_classification
    wait_idle(qtbot, win)
    win.session.method = "grad_rollout"
    assert win.run() is not None, win.notifications.messages
    wait_idle(qtbot, win)
    assert not win.notifications.errors(), win.notifications.errors()
    e = win.session.explanation
    assert e.output == "sigmoid" and set(e.class_names) <= set(NAMES)
    assert e.geometry.model_hw == (64, 64)
    np.testing.assert_allclose(e.distribution.sum(axis=0), 1.0, atol=1e-5)


def test_output_rule_in_the_model_panel(make_window, qtbot):
    win = make_window()
    wait_idle(qtbot, win)
    from alens_gui.qt.controls._util import set_combo_data

    set_combo_data(win.model_panel.output, "sigmoid")
    assert win.model_panel.request().output == "sigmoid"


def test_library_warnings_and_our_log_reach_the_notifications(make_window, qtbot):
    """Records of the alens_gui log and library warnings (logging.captureWarnings sends them to the
    py.warnings logger) reach the notification list, also from a worker thread; captum's noise does not."""
    import threading

    win = make_window()
    wait_idle(qtbot, win)
    logging.getLogger("alens_gui.core.test").warning("a message from the core")

    def worker():
        warned = logging.getLogger("py.warnings")
        warned.warning("/x/lib.py:3: UserWarning: a library spoke up in a worker thread\n  warn(...)\n")
        warned.warning("/x/captum.py:9: UserWarning: Setting forward, backward hooks and attributes on ...")

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    qtbot.waitUntil(lambda: any("library spoke up" in m for _, m in win.notifications.messages), timeout=10_000)
    texts = [m for _, m in win.notifications.messages]
    assert any("a message from the core" in m for m in texts)
    assert "warning from a library: UserWarning: a library spoke up in a worker thread" in texts
    assert not any("Setting forward, backward hooks" in m for m in texts)


def test_gallery_right_and_wrong_follow_the_model(tmp_path):
    """Multi-label: right when the labelled finding's own probability is above 0.5, wherever it ranks;
    WordNet folder names count as the ImageNet class they name."""

    class M:
        class_names = ["effusion", "nodule", "mass"]
        synsets = None
        output = "sigmoid"

    judge = LabelJudge.for_model(M)
    top5 = [[0, "effusion", 0.9], [1, "nodule", 0.7], [2, "mass", 0.1]]
    row = GalleryRow(path=tmp_path / "a.png", rel="a.png", true_label="nodule", pred=0, pred_name="effusion", p=0.9,
                     top5=top5)
    assert row.correct(judge) is True and row.correct() is False  # by name alone: wrong
    row.true_label = "mass"
    assert row.correct(judge) is False
    row.true_label = "unsorted"  # a folder name that is no class of the model: not judged, never "wrong"
    assert row.correct(judge) is None

    class ImageNet:
        class_names = [f"c{i}" for i in range(1000)]
        synsets = [f"n{i:08d}" for i in range(1000)]
        output = "softmax"

    row = GalleryRow(path=tmp_path / "b.png", rel="b.png", true_label="n00000285", pred=285, pred_name="c285", p=0.8,
                     top5=[[285, "c285", 0.8]])
    assert row.correct(LabelJudge.for_model(ImageNet)) is True

