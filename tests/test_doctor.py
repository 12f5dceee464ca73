"""``alens doctor``: the report a bug report needs, and its failure modes."""

from __future__ import annotations

import pytest

from alens_gui.cli import main
from alens_gui.doctor import apt_install_line, debian_package, missing_libraries

LDD = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-cursor.so.0 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb-cursor.so.0 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)
"""


def test_missing_libraries_become_one_apt_line():
    missing = missing_libraries(LDD)
    assert missing == ["libxcb-cursor.so.0", "libxkbcommon-x11.so.0"]
    assert apt_install_line(missing) == "sudo apt-get install libxcb-cursor0 libxkbcommon-x11-0"
    # libraries not in the table follow Debian's naming rule
    assert debian_package("libfoo.so.7") == "libfoo7" and debian_package("libbar2.so.3") == "libbar2-3"
    assert apt_install_line([]) == ""


def test_doctor_reports_versions_device_plugins_and_the_model(capsys):
    import torch

    assert main(["doctor", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for section in ("## versions", "## device", "## Qt platform plugins", "## default model", "## verdict"):
        assert section in out
    assert f"torch {torch.__version__}" in out
    assert ("cuda:0 " in out) if torch.cuda.is_available() else ("no CUDA" in out)
    assert "offscreen    loads and starts" in out  # the tests' own platform
    assert "skimage chelsea -> class 285 (Egyptian cat)" in out and "as expected" in out
    assert out.rstrip().endswith("all checks passed")


def test_doctor_says_where_the_result_cache_is(capsys):
    import os

    assert main(["doctor", "--no-model", "--no-qt"]) == 0
    out = capsys.readouterr().out
    cache = out.split("## result cache\n", 1)[1].split("\n## ", 1)[0]
    assert f"folder: {os.environ['ALENS_CACHE_DIR']}" in cache
    assert "MB of 300 MB (limit from default)" in cache and "image pixels: not kept" in cache


def test_a_crashing_plugin_does_not_take_the_doctor_down(monkeypatch):
    from alens_gui import doctor

    monkeypatch.setattr(doctor, "_START", "import os; print('qt.qpa.plugin: Could not load the Qt platform "
                                          "plugin', flush=True); os.abort()")
    reports = {r.name: r for r in doctor.probe_plugins(timeout=60)}
    off = reports["offscreen"]
    assert off.started is False and "Could not load the Qt platform plugin" in off.detail


def test_a_wrong_prediction_fails_the_doctor(monkeypatch, capsys):
    """The model check can fail: a photograph of coffee is not class 285."""
    from alens_gui.core import images

    monkeypatch.setattr(images, "sample_image", lambda name="chelsea": images.to_float_rgb(
        __import__("skimage.data", fromlist=["coffee"]).coffee()))
    assert main(["doctor", "--device", "cpu", "--no-qt"]) == 1
    out = capsys.readouterr().out
    assert "class 967 (espresso)" in out and "WRONG: expected 285" in out and "PROBLEM" in out


@pytest.mark.skipif(not __import__("shutil").which("xvfb-run"), reason="xvfb-run is not installed here")
def test_xcb_starts_under_a_virtual_x_server():
    import subprocess
    import sys

    from alens_gui import doctor

    xcb = next((p for p in doctor.qt_plugin_dir().iterdir() if doctor.plugin_name(p) == "xcb"), None)
    missing = doctor._ldd(xcb) if xcb is not None else None
    if missing:
        pytest.skip(f"Qt's xcb plugin lacks system libraries here ({doctor.apt_install_line(missing)})")
    code = ("from alens_gui.doctor import probe_plugins; "
            "print({r.name: (r.started, r.missing) for r in probe_plugins()}['xcb'])")
    r = subprocess.run(["xvfb-run", "-a", sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(True, [])"


def test_doctor_names_the_binding_that_crashes_on_this_python():
    from alens_gui.doctor import binding_warning

    assert "PySide6-Essentials<6.12" in binding_warning("6.12.0", (3, 11))
    assert binding_warning("6.12.0", (3, 12)) is None and binding_warning("6.11.3", (3, 11)) is None
