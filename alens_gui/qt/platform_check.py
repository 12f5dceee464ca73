"""Before the QApplication: can Qt open a window here? One clear message instead of Qt's abort.

Qt's xcb platform plugin (X11, also XWayland) links some fifteen system libraries. When one is
missing, Qt prints a generic "could not load the Qt platform plugin" and aborts (and from 6.5 it
blames libxcb-cursor0 whatever is missing). :func:`check_platform` loads the plugin itself first
and, when that fails, names the missing libraries and the apt packages that provide them.
"""

from __future__ import annotations

import _ctypes
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from alens_gui.doctor import debian_package
from alens_gui.doctor import missing_libraries as doctor_missing

_MISSING_RE = re.compile(r"([\w.+-]+\.so[\w.]*): cannot open shared object file")

Loader = Callable[[str], object]


def load_library(path: str) -> object:
    """dlopen ``path`` (lazily, locally); OSError with the loader's message when it cannot."""
    # _ctypes.dlopen rather than ctypes.CDLL: in a PyInstaller bundle CDLL's error replaces the
    # loader's message (which names the missing library) with a generic one
    return _ctypes.dlopen(path, getattr(os, "RTLD_LOCAL", 0) | getattr(os, "RTLD_LAZY", 1))


def platform_will_be_xcb(env: Mapping[str, str] | None = None) -> bool:
    """Whether Qt will use its xcb plugin: asked for, or an X display and no Wayland session."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return False
    requested = env.get("QT_QPA_PLATFORM", "").strip()
    if requested:
        return requested.split(":", 1)[0].split(";", 1)[0] == "xcb"
    wayland = bool(env.get("WAYLAND_DISPLAY")) and env.get("XDG_SESSION_TYPE", "").lower() == "wayland"
    return bool(env.get("DISPLAY")) and not wayland


def no_display(env: Mapping[str, str] | None = None) -> bool:
    """On Linux with no platform requested, no X display and no Wayland display: Qt would abort."""
    env = os.environ if env is None else env
    return (sys.platform.startswith("linux") and not env.get("QT_QPA_PLATFORM", "").strip()
            and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"))


def xcb_plugin_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The ``libqxcb.so`` Qt will load, or None when it cannot be found."""
    env = os.environ if env is None else env
    dirs: list[Path] = []
    if env.get("QT_QPA_PLATFORM_PLUGIN_PATH"):
        dirs.append(Path(env["QT_QPA_PLATFORM_PLUGIN_PATH"]))
    dirs += [Path(p) / "platforms" for p in env.get("QT_PLUGIN_PATH", "").split(os.pathsep) if p]
    try:
        from PySide6.QtCore import QLibraryInfo

        dirs.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms")
        import PySide6

        dirs.append(Path(PySide6.__file__).resolve().parent / "Qt" / "plugins" / "platforms")
    except ImportError:  # pragma: no cover - PySide6 is a dependency
        pass
    for d in dirs:
        if (d / "libqxcb.so").is_file():
            return d / "libqxcb.so"
    return None


def ldd_missing(path: Path) -> list[str]:
    """Libraries ``ldd`` reports as ``not found`` for ``path`` (empty without ldd)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        out = subprocess.run([ldd, str(path)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return doctor_missing(out)


def missing_libraries(plugin: Path, loader: Loader | None = None) -> tuple[list[str], str] | None:
    """Try to load ``plugin``; None when it loads, else (missing library names, loader's error).

    ``loader`` opens a shared library and raises :class:`OSError` when it cannot (a parameter so
    that a missing library can be simulated). The dynamic loader names only the first missing
    library; ``ldd`` supplies the rest when it is there.
    """
    try:
        (loader or load_library)(str(plugin))
    except OSError as exc:
        error = str(exc)
        names = _MISSING_RE.findall(error)
        for name in ldd_missing(plugin):
            if name not in names:
                names.append(name)
        return names, error
    return None


def xcb_message(missing: list[str], error: str) -> str:
    """The one message a user sees when the xcb plugin cannot load."""
    from .appinfo import APP_NAME

    if not missing:
        return (f"{APP_NAME} cannot open its window: Qt's X11 (xcb) platform plugin does not load ({error}). "
                "Reinstall the program, or run it with QT_QPA_PLATFORM=wayland on a Wayland desktop.")
    packages = " ".join(dict.fromkeys(debian_package(n) for n in missing))
    return (f"{APP_NAME} cannot open its window: Qt's X11 (xcb) platform plugin needs system libraries "
            f"that are not installed: {', '.join(missing)}. Install them with:  sudo apt-get install {packages}")


def dialog_text(message: str, width: int = 76) -> str:
    """``message`` for a dialog: wrapped, with a shell command on a line of its own (a dialog
    that does not wrap showed one long line cut off at the screen's edge, the command with it)."""
    import textwrap

    head, sep, command = message.partition("  sudo ")
    text = textwrap.fill(head.strip(), width)
    return f"{text}\n\n    sudo {command.strip()}\n" if sep else text


def check_platform(
    env: Mapping[str, str] | None = None,
    plugin: Path | None = None,
    loader: Loader | None = None,
) -> str | None:
    """None when Qt can start here, else the message to show instead of Qt's abort."""
    env = os.environ if env is None else env
    if no_display(env):
        return ("There is no display to open a window on (neither DISPLAY nor WAYLAND_DISPLAY is set). "
                "Start the program from a desktop session, or use `alens-gui --self-test` or the `alens` "
                "command line, which need no display.")
    if not platform_will_be_xcb(env):
        return None
    plugin = plugin or xcb_plugin_path(env)
    if plugin is None:
        return None  # Qt will list the plugins it has; nothing better to say
    found = missing_libraries(plugin, loader)
    if found is None:
        return None
    return xcb_message(*found)


DIALOG_TOOLS = (
    ("zenity", ["--error", "--no-wrap", "--no-markup", "--title", "{title}", "--text", "{text}"]),
    ("kdialog", ["--title", "{title}", "--error", "{text}"]),
    ("notify-send", ["--urgency=critical", "{title}", "{text}"]),
    ("xmessage", ["-center", "{text}"]),
)


def report(message: str, *, tty: bool | None = None) -> str | None:
    """Print ``message`` to stderr; without a terminal (a double-click) also show it in a dialog.

    Returns the dialog tool used, if any.
    """
    from .appinfo import APP_NAME

    print(message, file=sys.stderr)
    if tty is None:
        tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if tty:
        return None
    for tool, args in DIALOG_TOOLS:
        exe = shutil.which(tool)
        if exe is None:
            continue
        argv = [exe] + [a.format(title=APP_NAME, text=dialog_text(message)) for a in args]
        try:
            subprocess.run(argv, timeout=600, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            continue
        return tool
    return None
