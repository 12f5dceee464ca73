"""The start-up check of Qt's xcb plugin: one clear message naming apt packages, not Qt's abort."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alens_gui.qt import platform_check as pc

ROOT = Path(__file__).resolve().parents[2]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt's xcb plugin exists on Linux only")


def missing(*names: str):
    """A loader that fails the way the dynamic loader does when ``names[0]`` is not installed."""

    def load(path: str):
        raise OSError(f"{names[0]}: cannot open shared object file: No such file or directory")

    return load


def not_elf(tmp_path: Path) -> Path:
    p = tmp_path / "libqxcb.so"
    p.write_bytes(b"not a shared object")  # ldd finds no dependencies in it
    return p


@linux_only
@pytest.mark.parametrize("env, xcb", [
    ({"DISPLAY": ":0"}, True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": ""}, True),
    ({"QT_QPA_PLATFORM": "xcb"}, True),
    ({"QT_QPA_PLATFORM": "xcb:nograb"}, True),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, False),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "x11"}, True),
    ({}, False),
])
def test_when_the_platform_will_be_xcb(env, xcb):
    assert pc.platform_will_be_xcb(env) is xcb


@linux_only
def test_a_simulated_missing_library_names_its_apt_package(tmp_path):
    msg = pc.check_platform({"DISPLAY": ":0"}, plugin=not_elf(tmp_path), loader=missing("libxcb-cursor.so.0"))
    assert msg is not None and "\n" not in msg
    assert "libxcb-cursor.so.0" in msg
    assert "sudo apt-get install libxcb-cursor0" in msg


@linux_only
def test_an_unknown_library_gets_debians_package_name(tmp_path):
    msg = pc.check_platform({"DISPLAY": ":0"}, plugin=not_elf(tmp_path), loader=missing("libfoo-bar.so.7"))
    assert "libfoo-bar.so.7" in msg and "sudo apt-get install libfoo-bar7" in msg


@linux_only
def test_other_load_errors_are_reported_as_such(tmp_path):
    def broken(path):
        raise OSError(f"{path}: undefined symbol: _ZN7QWindow4showEv, version Qt_6")

    msg = pc.check_platform({"DISPLAY": ":0"}, plugin=not_elf(tmp_path), loader=broken)
    assert "does not load" in msg and "undefined symbol" in msg


@linux_only
def test_no_check_when_another_platform_is_asked_for(tmp_path):
    for env in ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"},
                {"DISPLAY": ":0", "WAYLAND_DISPLAY": "w", "XDG_SESSION_TYPE": "wayland"}):
        assert pc.check_platform(env, plugin=not_elf(tmp_path), loader=missing("libxcb-cursor.so.0")) is None


@linux_only
def test_no_display_at_all_gets_its_own_message():
    msg = pc.check_platform({})
    assert "no display" in msg and "--self-test" in msg


@linux_only
def test_the_check_agrees_with_qt_itself():
    """Our verdict on the installed xcb plugin matches whether Qt can load it (no X server needed:
    Qt loads the plugin before it connects to the display)."""
    plugin = pc.xcb_plugin_path()
    assert plugin is not None and plugin.is_file(), "PySide6's Linux wheels ship platforms/libqxcb.so"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = ":97"  # no server there
    r = subprocess.run([sys.executable, "-c", "from PySide6.QtGui import QGuiApplication; QGuiApplication([])"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0, "Qt must fail here one way or the other: there is no X server on :97"
    # Qt says it could not load the plugin in both cases; it only tries to connect once it has loaded
    qt_cannot_load = "could not connect to display" not in r.stderr
    ours = pc.check_platform({"DISPLAY": ":97"})
    if qt_cannot_load:
        assert ours is not None and "sudo apt-get install" in ours, r.stderr
        for name in pc.ldd_missing(plugin):
            assert name in ours
    else:
        assert ours is None, ours


@linux_only
def test_main_prints_the_message_instead_of_starting_qt(tmp_path, monkeypatch, capsys):
    from alens_gui.qt import app

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(pc, "load_library", missing("libxcb-icccm.so.4"))
    monkeypatch.setattr(pc, "DIALOG_TOOLS", ())  # no dialog on a developer's desktop
    assert app.main([]) == 1
    err = capsys.readouterr().err
    assert "libxcb-icccm.so.4" in err and "sudo apt-get install libxcb-icccm4" in err


@linux_only
def test_without_a_terminal_the_message_also_goes_to_a_dialog(tmp_path, monkeypatch, capsys):
    log = tmp_path / "args.txt"
    tool = tmp_path / "bin" / "zenity"
    tool.parent.mkdir()
    tool.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{log}"\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tool.parent))
    assert pc.report("the message", tty=False) == "zenity"
    assert "the message" in log.read_text().splitlines()
    assert pc.report("the message", tty=True) is None
    assert capsys.readouterr().err.count("the message") == 2


def test_the_dialog_shows_the_install_command_whole_on_its_own_line():
    msg = pc.xcb_message(["libxcb-cursor.so.0", "libxcb-icccm.so.4"], "")
    text = pc.dialog_text(msg)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "    sudo apt-get install libxcb-cursor0 libxcb-icccm4" in lines
