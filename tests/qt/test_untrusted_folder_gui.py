"""A shared folder with special files in it, and class presets from someone else, in the real window."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from .conftest import wait_idle


def test_the_gallery_lists_the_images_and_says_what_it_skipped(make_window, qtbot, tmp_path, photos):
    root = tmp_path / "shared"
    (root / "sub").mkdir(parents=True)
    for name, img in (("cat.png", photos["chelsea"]), ("sub/cup.png", photos["coffee"])):
        Image.fromarray((np.asarray(img) * 255).round().astype(np.uint8)).save(root / name)
    os.mkfifo(root / "IM0001")  # no suffix: the listing used to open it to look for DICOM, and hang
    os.mkfifo(root / "sub" / "pipe.png")
    (root / "sub" / "loop.png").symlink_to(root / "sub" / "loop.png")  # was a RuntimeError in the listing job
    win = make_window()
    wait_idle(qtbot, win)
    assert win.open_folder(root, recursive=True) is not None
    wait_idle(qtbot, win)  # the runner becomes idle again: nothing blocked, nothing raised
    assert [r.rel for r in win.session.gallery.rows] == ["cat.png", "sub/cup.png"]
    warnings = [text for level, text in win.notifications.messages if level == "warning"]
    assert "shared/IM0001: skipped, is a FIFO (named pipe), not a file" in warnings
    assert "shared/sub/loop.png: skipped, a symbolic-link loop" in warnings
    assert "shared/sub/pipe.png: skipped, is a FIFO (named pipe), not a file" in warnings
    assert not win.notifications.errors(), win.notifications.errors()
    assert all(r.pred is not None for r in win.session.gallery.rows)  # and the images were classified


def test_a_presets_file_nested_too_deep_reads_as_no_presets(tmp_path):
    from alens_gui.qt.controls.class_panel import PresetStore

    store = PresetStore(tmp_path / "class_presets.json")
    store.path.write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")  # was a RecursionError
    assert store.load() == {}
    store.path.write_text('{"pair": [285, 967], "odd": ["a"]}')
    assert store.load() == {"pair": [285, 967]}


@pytest.mark.parametrize("text", ['{"x": ' + "[" * 100_000 + "]" * 100_000 + "}", '{"pair": [285, 967], "odd": [1.5]}',
                                  "[1, 2]"], ids=["too-deep", "one-bad-entry", "not-an-object"])
def test_saving_a_preset_keeps_a_presets_file_it_could_not_read(tmp_path, text):
    # nothing lost: a file from someone else (or another version) is set aside, not overwritten
    from alens_gui.qt.controls.class_panel import PresetStore

    store = PresetStore(tmp_path / "class_presets.json")
    store.path.write_text(text)
    kept = store.save("mine", [1, 2])
    assert kept == tmp_path / "class_presets.json.unreadable" and kept.read_text() == text
    assert store.load() == {"mine": [1, 2]}
    assert store.save("more", [3, 4]) is None  # the new file reads whole: nothing more set aside
    store.path.write_text(text)
    assert store.save("again", [5, 6]) == tmp_path / "class_presets.json.unreadable-2"


def test_saving_a_preset_keeps_the_ones_written_by_class_name_for_the_command_line(tmp_path):
    # {"name": [indices or class names]} is one format: the GUI shows the ones by index and keeps the rest
    import json

    from alens_gui.core.classsets import class_preset
    from alens_gui.qt.controls.class_panel import PresetStore

    store = PresetStore(tmp_path / "class_presets.json")
    store.path.write_text('{"cats": ["tabby", "tiger cat"], "pair": [285, 967]}')
    assert store.load() == {"pair": [285, 967]}
    assert store.save("mine", [1, 2]) is None
    assert json.loads(store.path.read_text()) == {"cats": ["tabby", "tiger cat"], "pair": [285, 967], "mine": [1, 2]}
    names = [f"class {i}" for i in range(1000)]
    names[281], names[282] = "tabby", "tiger cat"
    assert class_preset("cats", names, store.path) == [281, 282]
