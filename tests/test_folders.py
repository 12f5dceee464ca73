"""Folders of images: listing without decoding, true labels, unique output names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from PIL import Image

from alens_gui.core.errors import FolderError
from alens_gui.core.folders import folder_labels, list_images

MR = Path(pydicom.__file__).parent / "data" / "test_files" / "MR_small.dcm"


def _png(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (200, 10, 10)).save(p)
    return p


def _bare_dicom(p: Path) -> Path:
    ds = pydicom.dcmread(MR)
    ds.preamble = None
    del ds.file_meta
    ds.save_as(p, implicit_vr=True, little_endian=True, enforce_file_format=False)
    return p


@pytest.fixture
def tree(tmp_path):
    for name in ("a.png", "b10.jpg", "b2.jpg", "sub/c.png", "sub/deeper/d.png", ".git/x.png", ".hidden.png"):
        _png(tmp_path / name)
    shutil.copy(MR, tmp_path / "IM0001")  # DICOM without a suffix
    shutil.copy(MR, tmp_path / "DICOMDIR")  # a directory record, not an image
    shutil.copy(MR, tmp_path / "sub" / "e.dcm")
    _bare_dicom(tmp_path / "1.2.826.0.1.11")  # no preamble, a UID as name
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "README").write_text("a plain text file without a suffix\n" * 10)
    (tmp_path / "labels.csv").write_text("path,label\n")
    return tmp_path


def test_list_images_sorted_with_dicom(tree):
    names = [p.relative_to(tree).as_posix() for p in list_images(tree)]
    assert names == ["1.2.826.0.1.11", "a.png", "b2.jpg", "b10.jpg", "IM0001"]
    deep = [p.relative_to(tree).as_posix() for p in list_images(tree, recursive=True)]
    assert deep == ["1.2.826.0.1.11", "a.png", "b2.jpg", "b10.jpg", "IM0001",
                    "sub/c.png", "sub/deeper/d.png", "sub/e.dcm"]


def test_listing_decodes_nothing(tree, monkeypatch):
    import PIL.Image

    def refuse(*_a, **_k):
        raise AssertionError("listing decoded an image")

    monkeypatch.setattr(PIL.Image, "open", refuse)
    monkeypatch.setattr(pydicom, "dcmread", refuse)
    assert len(list_images(tree, recursive=True)) == 8


def test_a_thousand_files(tmp_path):
    # 900 named images (never opened) and 100 suffix-less DICOM files (132 bytes read each)
    for i in range(900):
        (tmp_path / f"img{i}.png").write_bytes(b"")
    head = MR.read_bytes()[:200]
    for i in range(100):
        (tmp_path / f"IM{i:04d}").write_bytes(head)
    found = list_images(tmp_path)
    assert len(found) == 1000
    assert [p.name for p in found[:3]] == ["IM0000", "IM0001", "IM0002"]
    assert [p.stem for p in found[100:103]] == ["img0", "img1", "img2"]  # natural order
    assert found[-1].stem == "img899"


def test_missing_folder(tmp_path):
    with pytest.raises(FolderError, match="no such folder"):
        list_images(tmp_path / "nope")
    with pytest.raises(FolderError, match="not a folder"):
        list_images(_png(tmp_path / "f.png"))


def test_labels_from_class_subfolders(tmp_path):
    for name in ("grade1/a.png", "grade1/b.png", "grade2/x/c.png", "grade3/d.png"):
        _png(tmp_path / name)
    files = list_images(tmp_path, recursive=True)
    labels = folder_labels(tmp_path, files)
    assert {p.relative_to(tmp_path).as_posix(): v for p, v in labels.items()} == {
        "grade1/a.png": "grade1", "grade1/b.png": "grade1", "grade2/x/c.png": "grade2", "grade3/d.png": "grade3"}
    assert folder_labels(tmp_path) == labels  # the default lists the folder recursively
    _png(tmp_path / "loose.png")  # an image at the top: not a class layout
    assert folder_labels(tmp_path) == {}


def test_one_subfolder_is_not_a_class_layout(tmp_path):
    _png(tmp_path / "images" / "a.png")
    assert folder_labels(tmp_path) == {}


def test_labels_csv(tmp_path):
    for name in ("a.png", "sub/b.png", "c.png"):
        _png(tmp_path / name)
    (tmp_path / "labels.csv").write_text(f"path,label\na.png,benign\nsub/b.png, malignant \n{tmp_path / 'c.png'},benign\n")
    labels = folder_labels(tmp_path, list_images(tmp_path, recursive=True))
    assert {p.name: v for p, v in labels.items()} == {"a.png": "benign", "b.png": "malignant", "c.png": "benign"}
    (tmp_path / "labels.csv").write_text("a.png,benign\nb.png\n")
    with pytest.raises(FolderError, match="labels.csv line 2: expected 'path,label'"):
        folder_labels(tmp_path)


def test_special_entries_are_skipped_with_a_note_and_never_opened(tmp_path):
    import os
    import socket

    from alens_gui.core.folders import scan_images

    from .crafted import finishes

    _png(tmp_path / "a.png")
    _png(tmp_path / "sub" / "b.png")
    shutil.copy(MR, tmp_path / "sub" / "IM0001")
    os.mkfifo(tmp_path / "IM0002")  # no suffix: the listing used to open it to look for DICOM, and block
    os.mkfifo(tmp_path / "sub" / "pipe.png")
    (tmp_path / "loop.dcm").symlink_to(tmp_path / "loop.dcm")
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "sub" / "up").symlink_to(tmp_path)  # a link loop through a folder
    (tmp_path / "link.png").symlink_to(tmp_path / "a.png")  # a link to an image is an image
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp_path / "sub" / "s.sock"))
    try:
        flat = finishes(lambda: scan_images(tmp_path))
        deep = finishes(lambda: scan_images(tmp_path, recursive=True))
    finally:
        sock.close()
    assert [p.relative_to(tmp_path).as_posix() for p in flat.images] == ["a.png", "link.png"]
    assert flat.skipped == ("gone.png: skipped, a broken symbolic link",
                            "IM0002: skipped, is a FIFO (named pipe), not a file",
                            "loop.dcm: skipped, a symbolic-link loop",
                            "zero: skipped, is a device, not a file")
    assert [p.relative_to(tmp_path).as_posix() for p in deep.images] == ["a.png", "link.png", "sub/b.png",
                                                                         "sub/IM0001"]
    assert deep.skipped == flat.skipped[:3] + (  # in natural order of the path
        "sub/pipe.png: skipped, is a FIFO (named pipe), not a file",
        "sub/s.sock: skipped, is a socket, not a file",
        "sub/up: skipped, a link to a folder (links are not followed into sub-folders)",
        "zero: skipped, is a device, not a file")
    assert list_images(tmp_path, recursive=True) == deep.images  # the old call, same images
    # labels of a listing with loops in it: no RuntimeError from resolving them
    assert folder_labels(tmp_path, deep.images + [tmp_path / "loop.dcm"]) == {}


def test_special_folder_arguments(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(FolderError, match="pipe: is a FIFO \\(named pipe\\), not a folder"):
        list_images(tmp_path / "pipe")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(FolderError, match="loop: is a symbolic-link loop, not a folder"):
        list_images(tmp_path / "loop")


def test_labels_csv_that_is_not_a_regular_file_or_too_deep_to_matter(tmp_path):
    import os

    from .crafted import finishes

    _png(tmp_path / "a" / "x.png")
    _png(tmp_path / "b" / "y.png")
    os.mkfifo(tmp_path / "labels.csv")  # never read: the sub-folder labels apply
    labels = finishes(lambda: folder_labels(tmp_path))
    assert {p.name: v for p, v in labels.items()} == {"x.png": "a", "y.png": "b"}
    os.unlink(tmp_path / "labels.csv")
    (tmp_path / "labels.csv").write_text("x.png," + "y" * 200_000 + "\n")  # a field past csv's limit
    with pytest.raises(FolderError, match="labels.csv: cannot be read as CSV"):
        folder_labels(tmp_path)


def test_labels_note_says_why_a_mixed_folder_has_no_labels(tmp_path):
    from alens_gui.core.folders import folder_labels, labels_note

    root = tmp_path / "mixed"
    for rel in ("a/1.png", "b/2.png", "top.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    files = [root / "a/1.png", root / "b/2.png", root / "top.png"]
    labels = folder_labels(root, files)
    assert labels == {}
    note = labels_note(root, files, labels)
    assert "1 image(s) lie at the top" in note and "a, b" in note
    # a proper class-sub-folder layout has labels and no note
    files2 = files[:2]
    assert labels_note(root, files2, folder_labels(root, files2)) == ""
    # a flat folder is not a labelled dataset: nothing to explain
    assert labels_note(root, [root / "top.png"], {}) == ""
