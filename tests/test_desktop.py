"""Desktop integration: the .desktop file is valid, and installing it puts entry and icon in place."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alens_gui import desktop
from alens_gui._resources import resource_path

VALIDATOR = shutil.which("desktop-file-validate")
needs_validator = pytest.mark.skipif(
    VALIDATOR is None, reason="desktop-file-validate is not installed (apt-get install desktop-file-utils)"
)


def validate(path: Path) -> str:
    r = subprocess.run([VALIDATOR, str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return (r.stdout + r.stderr).strip()


def exec_line(path: Path) -> str:
    return next(line for line in path.read_text().splitlines() if line.startswith("Exec="))


@needs_validator
def test_the_shipped_desktop_file_validates_without_remarks():
    # hints (e.g. two main categories) count too: they mean a menu shows the entry twice
    assert validate(resource_path("alens-gui.desktop")) == ""


@needs_validator
@pytest.mark.parametrize("command, expected", [
    (["/opt/alens/alens-gui"], "Exec=/opt/alens/alens-gui %f"),
    (["/home/ana/My Apps/alens-gui"], 'Exec="/home/ana/My Apps/alens-gui" %f'),
    (["/tmp/a$b/alens-gui"], 'Exec="/tmp/a\\\\$b/alens-gui" %f'),
    (["/tmp/100%/alens-gui"], "Exec=/tmp/100%%/alens-gui %f"),
    (["/usr/bin/python3", "-m", "alens_gui"], "Exec=/usr/bin/python3 -m alens_gui %f"),
])
def test_install_writes_a_valid_entry_and_the_icon(tmp_path, command, expected):
    files = desktop.install(tmp_path, command)
    entry, icon, mime = files
    assert entry == tmp_path / "applications" / "alens-gui.desktop"
    assert icon == tmp_path / "icons" / "hicolor" / "256x256" / "apps" / "alens-gui.png"
    assert mime == tmp_path / "mime" / "packages" / "alens-gui.xml"
    assert icon.read_bytes() == resource_path("icon.png").read_bytes()
    assert exec_line(entry) == expected
    assert validate(entry) == ""
    assert desktop.uninstall(tmp_path) == files
    assert not entry.exists() and not icon.exists() and not mime.exists()


def test_the_session_file_type_is_declared_and_opened_by_the_program():
    """``*.alens`` is a MIME type of its own (a shared-mime-info package), and the desktop entry
    lists it, so a double-click on a session opens it in the program."""
    import xml.etree.ElementTree as ET

    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    root = ET.parse(resource_path(desktop.MIME_PACKAGE)).getroot()
    types = root.findall("m:mime-type", ns)
    assert [t.get("type") for t in types] == [desktop.SESSION_MIME_TYPE]
    assert [g.get("pattern") for g in types[0].findall("m:glob", ns)] == ["*.alens"]
    assert types[0].find("m:sub-class-of", ns).get("type") == "application/zip"
    mime_line = next(ln for ln in resource_path("alens-gui.desktop").read_text().splitlines()
                     if ln.startswith("MimeType="))
    assert desktop.SESSION_MIME_TYPE in mime_line.removeprefix("MimeType=").split(";")
    assert exec_line(resource_path("alens-gui.desktop")).endswith(" %f")  # the file is passed on


@pytest.mark.skipif(shutil.which("update-mime-database") is None,
                    reason="update-mime-database is not installed (apt-get install shared-mime-info)")
def test_installing_registers_alens_files_in_the_mime_database(tmp_path):
    desktop.install(tmp_path, ["/opt/alens/alens-gui"])
    globs = (tmp_path / "mime" / "globs2").read_text()
    assert f"{desktop.SESSION_MIME_TYPE}:*.alens" in globs
    desktop.uninstall(tmp_path)
    assert "*.alens" not in (tmp_path / "mime" / "globs2").read_text()


def test_icon_size_matches_its_hicolor_folder():
    w, h = desktop.png_size(resource_path("icon.png"))
    assert w == h and w in (16, 22, 24, 32, 48, 64, 96, 128, 192, 256, 512)


def test_the_launch_command_is_this_installation():
    cmd = desktop.launch_command()
    assert Path(cmd[0]).is_absolute() and Path(cmd[0]).exists()
    if len(cmd) == 1:
        assert Path(cmd[0]).name == "alens-gui"
    else:
        assert cmd[1:] == ["-m", "alens_gui"]


def test_data_home_follows_xdg(tmp_path):
    assert desktop.data_home({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path
    assert desktop.data_home({"XDG_DATA_HOME": "relative/ignored"}) == Path.home() / ".local" / "share"


def test_the_command_line_installs_under_xdg_data_home(tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, "-m", "alens_gui.desktop", "install"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "applications" / "alens-gui.desktop").is_file()
    assert (tmp_path / "icons" / "hicolor" / "256x256" / "apps" / "alens-gui.png").is_file()
