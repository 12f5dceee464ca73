"""PDF reports: first page, a page per image, comparisons, failures, identifiers, cancel, the CLI."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from alens_gui.cli import main
from alens_gui.core.errors import Cancelled, ReportError
from alens_gui.core.export import panels
from alens_gui.core.progress import Progress
from alens_gui.core.report import Comparison, Failure, ReportSettings, write_report

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdfimages") is None,
    reason="poppler-utils (pdftotext, pdfimages) is not installed: apt-get install poppler-utils",
)


def pdf_pages(path) -> list[str]:
    """The text of each page (poppler's pdftotext; pages end with a form feed)."""
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return out.split("\f")[:-1]


@pytest.fixture(scope="module")
def expls(explainer, photos):
    cat = explainer.explain(photos["chelsea"], "ixg", classes=[285, 967, 281])
    cup = explainer.explain(photos["coffee"], "ixg", classes=[285, 967, 281])
    cat = cat.with_meta(source={"file": "chelsea.png", "sha256": "ab" * 32})
    cup = cup.with_meta(source={"file": "coffee.jpg", "sha256": "cd" * 32})
    return cat, cup


@needs_poppler
def test_report_pages_settings_and_failures(tmp_path, explainer, expls):
    cat, cup = expls
    ticks = []
    settings = ReportSettings.for_explainer(explainer, class_request="classes 285,967,281", window="auto")
    out = write_report(tmp_path / "r.pdf", [cat, Failure("broken.png", "broken.png: not an image file"), (cat, cup)],
                       settings, Progress(lambda done, total, msg: ticks.append((done, total, msg))))
    assert out == tmp_path / "r.pdf" and not [p for p in tmp_path.iterdir() if p.name != "r.pdf"]
    assert ticks == [(1, 3, "chelsea.png"), (2, 3, "broken.png"), (3, 3, "chelsea.png vs coffee.jpg")]
    pages = pdf_pages(out)
    assert len(pages) == 3  # summary, the image, the comparison (a failure gets a line, not a page)
    first = pages[0]
    assert "Settings and provenance" in first
    assert re.search(r"Inputs\s+4 input\(s\): 1 explained, 1 comparison\(s\), 1 failed", first)
    assert "EfficientNet-Lite0" in first and "Input × Gradient" in first and "classes 285,967,281" in first
    assert re.search(r"Lens\s+1/t=\{1, 5, 100\}, tau=0", first) and re.search(r"Intensity window\s+auto", first)
    assert re.search(r"torch \d+\.\d+", first) and re.search(r"Date\s+\d{4}-\d\d-\d\d", first)
    assert re.search(r"broken\.png\s+broken\.png: not an image file", first)
    # the contents give each item's page
    assert re.search(r"1\s+chelsea\.png\s+Egyptian cat \(0\.\d{3}\)\s+2", first)
    assert re.search(r"2\s+chelsea\.png vs coffee\.jpg\s+largest change: .*\s+3", first)
    # an image page: its file, hash, every class with its probability, base and refined maps
    page = pages[1]
    assert "chelsea.png" in page and "SHA-256 " + "ab" * 32 in page
    for name, p in zip(cat.class_names, cat.probs):
        assert f"{name} (p {p:.3f})" in page
    assert page.count("Attribution Lens") >= cat.k and "class territory" in page
    # the comparison page: both names, the differences B - A to three decimals
    page = pages[2]
    assert "Comparison: chelsea.png vs coffee.jpg" in page and "difference B - A" in page
    for name, d in zip(cat.class_names, cup.probs - cat.probs):
        assert re.search(re.escape(name) + r":\s+" + re.escape(f"{d:+.3f}"), page)


@needs_poppler
def test_report_maps_are_the_views_panels(tmp_path, expls):
    """At full resolution the PDF holds the very arrays export.panels gives the views."""
    cat = expls[0]
    out = write_report(tmp_path / "r.pdf", [cat], ReportSettings(full_resolution=True))
    subprocess.run(["pdfimages", "-png", "-f", "2", "-l", "2", str(out), str(tmp_path / "img")], check=True)
    # matplotlib stores images bottom row first
    found = [np.asarray(Image.open(p).convert("RGB"), dtype=np.int16)[::-1] for p in sorted(tmp_path.glob("img-*.png"))]
    drawn = panels(cat)
    wanted = [cat.image, drawn["territory"], *drawn["base"], *drawn["refined"]]
    for arr in wanted:
        ref = np.asarray(arr * 255, dtype=np.int16)  # matplotlib truncates to 8 bits
        assert any(f.shape == ref.shape and np.abs(f - ref).max() <= 1 for f in found)
    assert len([f for f in found if f.shape == cat.image.shape]) == len(wanted)
    # a map with another colour limit is not in the file: the check can fail
    other = panels(cat.relens(tau=0.2))["refined"][0]
    ref = np.asarray(other * 255, dtype=np.int16)
    assert not any(f.shape == ref.shape and np.abs(f - ref).max() <= 1 for f in found)


def test_comparison_shares_one_colour_scale(expls):
    from alens_gui.core.export import shared_scale

    cat, cup = expls
    (blim, rlim), signed = shared_scale([cat, cup])
    own = [panels(e)["limits"] for e in (cat, cup)]
    # one limit for both images, at least each one's own (the larger range wins)
    assert np.all(blim >= np.maximum(own[0][0], own[1][0]) * 0.5)
    np.testing.assert_allclose(panels(cup, limits=(blim, rlim), signed=signed)["limits"][0], blim)
    assert not np.allclose(own[0][0], own[1][0])  # without sharing they differ


def test_comparison_needs_one_class_set_method_and_lens(explainer, photos, expls):
    cat, cup = expls
    other = explainer.explain(photos["coffee"], "ixg", classes=[967, 285, 281])
    with pytest.raises(ReportError, match="one class set"):
        Comparison(cat, other)
    with pytest.raises(ReportError, match="one lens"):
        Comparison(cat, cup.relens(tau=0.1))
    with pytest.raises(ReportError, match="one method"):
        Comparison(cat, cup.with_meta(method="saliency"))
    c = Comparison(cat, cup)
    np.testing.assert_allclose(c.probability_differences(), cup.probs - cat.probs)


@needs_poppler
def test_identifiers_only_when_asked(tmp_path, expls):
    cat = expls[0]
    ids = {"PatientName": "DOE^JANE^ALENSTEST", "PatientID": "ALENS-4711-TEST"}
    tagged = cat.with_meta(source={**cat.source, "identifiers": ids, "PatientName": ids["PatientName"]})
    plain = write_report(tmp_path / "plain.pdf", [tagged])
    text = "".join(pdf_pages(plain))
    data = plain.read_bytes()
    for value in ("DOE", "JANE", "4711", "ALENSTEST"):
        assert value not in text and value.encode() not in data
    assert re.search(r"Patient identifiers\s+left out", text)
    asked = write_report(tmp_path / "asked.pdf", [tagged], ReportSettings(include_identifiers=True))
    text = "".join(pdf_pages(asked))
    assert "DOE^JANE^ALENSTEST" in text and "ALENS-4711-TEST" in text


def test_cancel_leaves_no_file(tmp_path, expls):
    cat, cup = expls
    progress = Progress(lambda done, total, msg: progress.cancel())

    with pytest.raises(Cancelled):
        write_report(tmp_path / "r.pdf", [cat, cup, cat], progress=progress)
    assert not list(tmp_path.iterdir())


def test_nothing_to_report_and_bad_items(tmp_path, expls):
    with pytest.raises(ReportError, match="nothing to report"):
        write_report(tmp_path / "r.pdf", [])
    with pytest.raises(ReportError, match="must be an Explanation"):
        write_report(tmp_path / "r.pdf", [expls[0], "cat.png"])
    assert not list(tmp_path.iterdir())


@needs_poppler
def test_long_class_sets_continue_on_more_pages(tmp_path, explainer, photos):
    e = explainer.explain(photos["rocket"], "gradcam", top_k=10)
    pages = pdf_pages(write_report(tmp_path / "r.pdf", [e]))
    assert len(pages) == 3 and "(continued)" in pages[2]
    assert all(f"{n} (p " in "".join(pages[1:]) for n in e.class_names)


# -- the command line ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    from skimage import data

    d = tmp_path_factory.mktemp("report_imgs")
    Image.fromarray(data.chelsea()).save(d / "chelsea.png")
    Image.fromarray(data.coffee()).save(d / "coffee.jpg")
    (d / "broken.png").write_text("this is not a picture")
    return d


@needs_poppler
def test_cli_report_folder_with_a_bad_file(photo_dir, tmp_path, capsys):
    out = tmp_path / "report.pdf"
    rc = main(["report", str(photo_dir), str(tmp_path / "missing.png"), "--method", "ixg", "--classes", "285,967",
               "--title", "Cats and coffee", "--out", str(out)])
    assert rc == 1  # two inputs failed; the report still lists them
    err = capsys.readouterr().err
    assert f"wrote {out}: 2 of 4 input(s) explained, 2 listed as failed" in err
    pages = pdf_pages(out)
    assert len(pages) == 3 and "Cats and coffee" in pages[0]
    assert re.search(r"Inputs\s+4 input\(s\): 2 explained, 2 failed", pages[0])
    assert re.search(r"broken\.png\s+broken\.png: not an image", pages[0])
    assert re.search(r"missing\.png\s+missing\.png: no such file", pages[0])
    assert "classes 285,967" in pages[0]
    assert "chelsea.png" in pages[1] and "coffee.jpg" in pages[2]  # sorted folder order


@needs_poppler
def test_cli_report_compare(photo_dir, tmp_path):
    out = tmp_path / "cmp.pdf"
    rc = main(["report", str(photo_dir / "chelsea.png"), str(photo_dir / "coffee.jpg"), "--compare", "--top-k", "2",
               "--out", str(out)])
    assert rc == 0
    pages = pdf_pages(out)
    assert len(pages) == 2 and "Comparison: chelsea.png vs coffee.jpg" in pages[1]
    # the first image's top-2 is the class set of both
    assert "Egyptian cat" in pages[1] and "tiger cat" in pages[1] and "espresso" not in pages[1]
    assert "top-2 of each image; shared by both images" in pages[0]
    assert re.search(r"Inputs\s+2 input\(s\): 1 comparison\(s\), 0 failed", pages[0])


def test_cli_report_usage_errors(photo_dir, tmp_path, capsys):
    for args, message in (
        (["--out", str(tmp_path)], "is a folder"),
        (["--out", str(tmp_path / "r.png")], "must name a .pdf file"),
        (["--compare", "--out", str(tmp_path / "r.pdf")], "--compare needs exactly two images"),
        (["--class-presets", str(tmp_path / "p.json"), "--out", str(tmp_path / "r.pdf")], "goes with --class-preset"),
    ):
        with pytest.raises(SystemExit):
            main(["report", str(photo_dir / "chelsea.png"), *args])
        assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cli_report_ctrl_c_leaves_no_file(photo_dir, tmp_path, monkeypatch, capsys):
    from alens_gui.core import batch

    real = batch.finish_computed  # two inputs go through the batch engine: Ctrl-C while the second is lensed
    calls = []

    def interrupted(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(batch, "finish_computed", interrupted)
    rc = main(["report", str(photo_dir / "chelsea.png"), str(photo_dir / "coffee.jpg"), "--out",
               str(tmp_path / "r.pdf")])
    assert rc == 130 and "alens: interrupted" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_written_files_get_ordinary_permissions(tmp_path):
    """Files are written to a private temporary file and renamed: the result must not stay private."""
    import os

    from alens_gui.core.outputs import atomic_write

    old = os.umask(0o022)
    try:
        p = atomic_write(tmp_path / "a.bin", lambda f: f.write(b"x"))
        assert p.stat().st_mode & 0o777 == 0o644
        os.chmod(p, 0o640)  # rewriting keeps a file's own permissions
        atomic_write(p, lambda f: f.write(b"y"))
        assert p.stat().st_mode & 0o777 == 0o640 and p.read_bytes() == b"y"
        os.umask(0o077)
        assert atomic_write(tmp_path / "b.bin", lambda f: f.write(b"x")).stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_explain_inputs_lists_failures_and_stops_on_cancel(explainer, photo_dir):
    import threading

    from alens_gui.core.explanation import Explanation
    from alens_gui.core.report import explain_inputs

    items = list(explain_inputs(explainer, [photo_dir / "chelsea.png", photo_dir / "broken.png"], "ixg", top_k=2))
    assert isinstance(items[0], Explanation) and list(items[0].classes) == [285, 282]
    assert isinstance(items[1], Failure) and items[1].name == "broken.png" and "not an image" in items[1].message
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        next(explain_inputs(explainer, [photo_dir / "chelsea.png"], "ixg", progress=progress))
    # a cancel reaches a running explanation (IG with 1000 steps runs for a minute)
    progress = Progress()
    timer = threading.Timer(1.0, progress.cancel)
    timer.start()
    with pytest.raises(Cancelled):
        next(explain_inputs(explainer, [photo_dir / "chelsea.png"], "ig", progress=progress, top_k=2, steps=1000))
    timer.cancel()
