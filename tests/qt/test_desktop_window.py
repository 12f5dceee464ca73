"""Under a real X server (Xvfb): the window tells the window manager its icon, name and desktop file,
and packaging/startup.py measures time to a visible window."""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alens_gui._resources import resource_path
from alens_gui.desktop import png_size

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("Xvfb") is None or shutil.which("xdotool") is None,
    reason="needs Linux with Xvfb and xdotool (apt-get install xvfb xdotool)",
)


def load_startup():
    spec = importlib.util.spec_from_file_location("alens_startup", ROOT / "packaging" / "startup.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def startup():
    return load_startup()


@pytest.fixture(scope="module")
def display(startup):
    proc, name = startup.start_xvfb("1600x1000x24")
    yield name
    proc.terminate()
    proc.wait()


def x_env(display: str, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=display, HOME=str(home), PYTHONPATH=str(ROOT))
    return env


def window_property(display: str, window: int, name: str):
    """One X property of a window: bytes for 8-bit properties, a list of ints for 32-bit ones."""
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    ulong_p = ctypes.POINTER(ctypes.c_ulong)
    x11.XGetWindowProperty.argtypes = [
        ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_long, ctypes.c_long, ctypes.c_int,
        ctypes.c_ulong, ulong_p, ctypes.POINTER(ctypes.c_int), ulong_p, ulong_p, ctypes.POINTER(ctypes.c_void_p)]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = x11.XOpenDisplay(display.encode())
    assert dpy, f"cannot open display {display}"
    try:
        kind, fmt, n, after, data = ctypes.c_ulong(), ctypes.c_int(), ctypes.c_ulong(), ctypes.c_ulong(), ctypes.c_void_p()
        x11.XGetWindowProperty(dpy, window, x11.XInternAtom(dpy, name.encode(), 0), 0, 1 << 24, 0, 0,
                               ctypes.byref(kind), ctypes.byref(fmt), ctypes.byref(n), ctypes.byref(after),
                               ctypes.byref(data))
        if not data.value:
            return None
        if fmt.value == 8:
            return ctypes.string_at(data.value, n.value)
        # format 32 comes back as C longs
        return list((ctypes.c_long * n.value).from_address(data.value))
    finally:
        x11.XCloseDisplay(dpy)


def desktop_key(key: str) -> str:
    text = resource_path("alens-gui.desktop").read_text()
    return next(line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "="))


def test_the_window_shows_its_icon_name_and_desktop_file(startup, display, tmp_path):
    from alens_gui.qt.platform_check import check_platform

    if (problem := check_platform({"DISPLAY": display})) is not None:
        pytest.skip(problem)
    env = x_env(display, tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from alens_gui.qt.app import main; sys.exit(main())"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        window = startup.wait_for_window(proc, env, timeout=300)
        props = {name: window_property(display, window, name)
                 for name in ("_NET_WM_ICON", "WM_CLASS", "_NET_WM_NAME", "_GTK_APPLICATION_ID",
                              "_KDE_NET_WM_DESKTOP_FILE")}
    finally:
        startup.stop(proc)
    icon = props["_NET_WM_ICON"]
    assert icon and (icon[0], icon[1]) == png_size(resource_path("icon.png"))
    assert len(icon) >= 2 + icon[0] * icon[1]
    instance, wm_class = props["WM_CLASS"].rstrip(b"\0").split(b"\0")
    assert wm_class.decode() == desktop_key("StartupWMClass")
    assert desktop_key("Name") in props["_NET_WM_NAME"].decode()
    assert props["_GTK_APPLICATION_ID"] == props["_KDE_NET_WM_DESKTOP_FILE"] == b"alens-gui"


def test_startup_script_reports_a_ratio(startup, display, tmp_path, capsys):
    """The script's own figures on the bare window against itself: both medians and their ratio."""
    bare = shlex.join([sys.executable, "-c", startup.BARE_WINDOW])
    assert startup.main(["--command", bare, "--runs", "1", "--warmup", "0", "--display", display, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs"] == 1 and out["bare_median_s"] > 0 and out["command_median_s"] > 0
    assert out["ratio"] == pytest.approx(out["command_median_s"] / out["bare_median_s"], abs=0.01)
