"""Linux desktop integration: a menu entry and icon under ``~/.local/share`` (no root needed).

``alens-gui --install-desktop`` (also from the desktop bundle) or ``make install-desktop`` writes

* ``applications/alens-gui.desktop``: ``resources/alens-gui.desktop`` with ``Exec`` pointing at
  the program that ran the command (the bundle's executable, or the ``alens-gui`` script of the
  environment it is installed in), and
* ``icons/hicolor/256x256/apps/alens-gui.png``: ``resources/icon.png``, and
* ``mime/packages/alens-gui.xml``: ``resources/alens-gui-mime.xml``, the shared-mime-info
  package that makes ``*.alens`` files the type ``application/x-alens-session``, which the
  desktop file says the program opens (a double-click on a session opens it),

under ``$XDG_DATA_HOME`` (default ``~/.local/share``), then refreshes the desktop, icon and MIME
caches when their tools are installed. ``--uninstall-desktop`` removes the three files.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from alens_gui._resources import resource_path

#: The desktop file's base name; also the application's desktop file name and icon name.
DESKTOP_ID = "alens-gui"
#: The MIME type of session files (``*.alens``), declared by ``resources/alens-gui-mime.xml``.
SESSION_MIME_TYPE = "application/x-alens-session"
MIME_PACKAGE = "alens-gui-mime.xml"
#: Characters that make the Desktop Entry spec require an Exec argument to be quoted.
_RESERVED = set(' \t\n"\'\\><~|&;$*?#()`')


def data_home(env=None) -> Path:
    """``$XDG_DATA_HOME`` or ``~/.local/share``."""
    env = os.environ if env is None else env
    value = env.get("XDG_DATA_HOME", "")
    return Path(value) if value and Path(value).is_absolute() else Path.home() / ".local" / "share"


def launch_command() -> list[str]:
    """The command that starts this installation's GUI, as an argument list."""
    if getattr(sys, "frozen", False):  # the desktop bundle's executable
        return [str(Path(sys.executable).resolve())]
    script = Path(sys.executable).parent / "alens-gui"  # the entry point beside this interpreter
    if script.is_file():
        return [str(script.absolute())]
    found = shutil.which("alens-gui")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "alens_gui"]


def exec_quote(arg: str) -> str:
    """Quote one Exec argument as the Desktop Entry specification requires.

    Inside double quotes ``"`$\\`` take a backslash; the file's string escaping then doubles
    every backslash (the spec applies it before the quoting rule). ``%`` becomes ``%%``.
    """
    arg = arg.replace("%", "%%")
    if not arg or any(ch in _RESERVED for ch in arg):
        escaped = "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg)
        return '"' + escaped.replace("\\", "\\\\") + '"'
    return arg


def desktop_entry(command: Sequence[str] | None = None) -> str:
    """The text of ``resources/alens-gui.desktop`` with ``Exec`` set to ``command`` plus ``%f``."""
    command = list(command or launch_command())
    template = resource_path(f"{DESKTOP_ID}.desktop").read_text(encoding="utf-8")
    lines = []
    for line in template.splitlines():
        if line.startswith("Exec="):
            line = "Exec=" + " ".join(exec_quote(a) for a in command) + " %f"
        elif line.startswith("TryExec="):
            line = "TryExec=" + command[0]
        lines.append(line)
    return "\n".join(lines) + "\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file, read from its header."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path.name} is not a PNG file")
    return struct.unpack(">II", head[16:24])


def targets(root: Path | None = None) -> tuple[Path, Path, Path]:
    """Where the desktop file, the icon and the session MIME package go."""
    root = root or data_home()
    w, h = png_size(resource_path("icon.png"))
    return (root / "applications" / f"{DESKTOP_ID}.desktop",
            root / "icons" / "hicolor" / f"{w}x{h}" / "apps" / f"{DESKTOP_ID}.png",
            root / "mime" / "packages" / f"{DESKTOP_ID}.xml")


def _refresh_caches(root: Path) -> None:
    # Menus pick new entries up without the first two on most desktops (they only speed the
    # lookup up); the MIME database is what file managers read, so *.alens is known only after it.
    for argv in (["update-desktop-database", "-q", str(root / "applications")],
                 ["gtk-update-icon-cache", "-q", "-t", "-f", str(root / "icons" / "hicolor")],
                 ["update-mime-database", str(root / "mime")]):
        if shutil.which(argv[0]) and (root / argv[-1]).exists():
            subprocess.run(argv, check=False, capture_output=True, timeout=60)


def install(root: Path | None = None, command: Sequence[str] | None = None) -> list[Path]:
    """Install the desktop file, the icon and the session MIME type under ``root`` (default
    :func:`data_home`)."""
    root = root or data_home()
    desktop, icon, mime = targets(root)
    for p in (desktop, icon, mime):
        p.parent.mkdir(parents=True, exist_ok=True)
    desktop.write_text(desktop_entry(command), encoding="utf-8")
    shutil.copyfile(resource_path("icon.png"), icon)
    shutil.copyfile(resource_path(MIME_PACKAGE), mime)
    _refresh_caches(root)
    return [desktop, icon, mime]


def uninstall(root: Path | None = None) -> list[Path]:
    """Remove what :func:`install` wrote; returns the files removed."""
    root = root or data_home()
    removed = []
    for p in targets(root):
        if p.exists():
            p.unlink()
            removed.append(p)
    _refresh_caches(root)
    return removed


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m alens_gui.desktop [install|uninstall] [--root DIR]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m alens_gui.desktop", description=__doc__.splitlines()[0])
    p.add_argument("action", nargs="?", choices=("install", "uninstall"), default="install")
    p.add_argument("--root", type=Path, help="data folder (default $XDG_DATA_HOME or ~/.local/share)")
    args = p.parse_args(argv)
    if args.action == "uninstall":
        files = uninstall(args.root)
        print("removed " + (", ".join(map(str, files)) or "nothing (not installed)"))
    else:
        files = install(args.root)
        print("installed " + ", ".join(map(str, files)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
