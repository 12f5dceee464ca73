"""``alens doctor``: what a bug report needs to say about this machine.

Versions of the key packages, the compute device, which Qt platform plugins can load
(each one tried in a child process, so a plugin that crashes cannot take the doctor
with it; for a plugin whose system libraries are missing, the libraries and the
``apt-get`` line that installs them), and whether the default model loads and calls
``skimage.data.chelsea()`` an Egyptian cat (class 285), as it must; and where the result cache
is, how large, and its cap.

Nothing here imports Qt: the plugins are probed by ``python -c`` children.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Platform plugins a desktop user runs the window on; each is started in a child process.
STARTED_PLUGINS = ("xcb", "wayland", "offscreen", "minimal")
#: Debian/Ubuntu packages of the shared libraries Qt's plugins load (soname -> package).
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
}


@dataclass
class PluginReport:
    """What the doctor found out about one Qt platform plugin."""

    name: str
    missing: list[str] = field(default_factory=list)
    started: bool | None = None  # None: not tried
    detail: str = ""

    @property
    def apt_line(self) -> str:
        return apt_install_line(self.missing)


# ---------------------------------------------------------------------------------
# Versions and device
# ---------------------------------------------------------------------------------
def versions_section() -> list[str]:
    from .versions import package_versions

    lines = [f"Python {platform.python_version()} ({sys.executable})",
             f"OS {platform.platform()} ({platform.machine()})"]
    versions = package_versions()
    lines += [f"{name} {version}" for name, version in versions.items()]
    note = binding_warning(versions.get("PySide6") or versions.get("PySide6-Essentials"))
    if note:
        lines.append(note)
    return lines


def binding_warning(pyside: str | None, python: tuple[int, int] | None = None) -> str | None:
    """A known crash of the installed Qt binding with this Python, or None."""
    python = python or sys.version_info[:2]
    if pyside and pyside.startswith("6.12.") and python < (3, 12):
        return (f"WARNING: PySide6 {pyside} on Python {python[0]}.{python[1]} drops references to None and "
                "crashes the window after a while ('deallocating None'): pip install 'PySide6-Essentials<6.12'")
    return None


def device_section() -> list[str]:
    """The CUDA GPUs torch sees (name, compute capability, memory), or why there are none."""
    import torch

    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"]
    built = torch.version.cuda
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            lines.append(f"cuda:{i} {p.name}, compute capability {p.major}.{p.minor}, "
                         f"{p.total_memory / 2**30:.1f} GiB")
        lines.append(f"CUDA {built}, cuDNN {torch.backends.cudnn.version()}")
    elif built:
        lines.append(f"no CUDA GPU visible (torch is built with CUDA {built}; check the driver with nvidia-smi)")
    else:
        lines.append("no CUDA (this torch is a CPU-only build)")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        lines.append("Apple MPS available (alens runs on the CPU there; --device mps is not supported)")
    return lines


# ---------------------------------------------------------------------------------
# Qt platform plugins
# ---------------------------------------------------------------------------------
def qt_plugin_dir() -> Path | None:
    """PySide6's ``plugins/platforms`` folder, found without importing PySide6."""
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    for sub in ("Qt/plugins/platforms", "plugins/platforms"):
        if (root / sub).is_dir():
            return root / sub
    return None


def plugin_name(path: Path) -> str:
    """``libqxcb.so`` -> ``xcb``; ``qwindows.dll`` -> ``windows``; ``libqcocoa.dylib`` -> ``cocoa``."""
    stem = path.name.split(".")[0]
    stem = stem[3:] if stem.startswith("lib") else stem
    return stem[1:] if stem.startswith("q") else stem


def missing_libraries(ldd_output: str) -> list[str]:
    """The sonames ``ldd`` reports as ``not found``, in order, without duplicates."""
    out: list[str] = []
    for line in ldd_output.splitlines():
        m = re.match(r"\s*(\S+)\s*=>\s*not found", line)
        if m and m.group(1) not in out:
            out.append(m.group(1))
    return out


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships a shared library (known names, else Debian's rule)."""
    if soname in DEBIAN_PACKAGES:
        return DEBIAN_PACKAGES[soname]
    m = re.match(r"(lib[\w+.-]*?)\.so\.(\d+)", soname)
    if not m:
        return soname
    name, major = m.group(1).lower(), m.group(2)
    return f"{name}-{major}" if name[-1].isdigit() else f"{name}{major}"


def apt_install_line(sonames) -> str:
    pkgs = sorted({debian_package(s) for s in sonames})
    return f"sudo apt-get install {' '.join(pkgs)}" if pkgs else ""


def _ldd(path: Path) -> list[str] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        r = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return missing_libraries(r.stdout + r.stderr)


_START = (
    "import sys\n"
    "from PySide6.QtGui import QGuiApplication\n"
    "app = QGuiApplication([sys.argv[0], '-platform', sys.argv[1]])\n"
    "print('STARTED', app.platformName(), flush=True)\n"
)


def _start_detail(text: str) -> str:
    """The most telling line of a failed start (Qt's own explanation, not the abort line)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for key in ("could not connect to display", "Could not load the Qt platform plugin", "Failed to create",
                "cannot open", "Cannot load library"):
        for ln in lines:
            if key.lower() in ln.lower():
                return ln[:200]
    return lines[-1][:200] if lines else "no output"


def probe_plugins(timeout: float = 30.0) -> list[PluginReport]:
    """Every platform plugin PySide6 ships: its missing system libraries, and (for the
    desktop ones) whether a ``QGuiApplication`` starts on it in a child process."""
    folder = qt_plugin_dir()
    if folder is None:
        return []
    reports = {}
    for path in sorted(folder.iterdir()):
        if path.suffix in (".so", ".dll", ".dylib"):
            rep = PluginReport(plugin_name(path))
            rep.missing = _ldd(path) or []
            reports[rep.name] = (rep, path)
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["QT_DEBUG_PLUGINS"] = "0"
    children = {}
    for name in STARTED_PLUGINS:
        if name in reports and not reports[name][0].missing:
            children[name] = subprocess.Popen([sys.executable, "-c", _START, name], stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True, env=env)
    for name, child in children.items():
        rep = reports[name][0]
        try:
            out, _ = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            out, _ = child.communicate()
            rep.started, rep.detail = False, f"did not start within {timeout:.0f} s"
            continue
        rep.started = child.returncode == 0 and "STARTED" in out
        if not rep.started:
            rep.detail = _start_detail(out)
            if name == "xcb" and not os.environ.get("DISPLAY"):
                rep.detail += " (DISPLAY is not set: no X server for this session)"
            elif name == "wayland" and not os.environ.get("WAYLAND_DISPLAY"):
                rep.detail += " (WAYLAND_DISPLAY is not set)"
    return [r for r, _ in reports.values()]


def plugin_section(reports: list[PluginReport]) -> list[str]:
    folder = qt_plugin_dir()
    if folder is None:
        return ["PySide6 is not installed: the window cannot open (the CLI and the API work)"]
    lines = [f"plugins in {folder}"]
    for r in sorted(reports, key=lambda r: (r.name not in STARTED_PLUGINS, r.name)):
        if r.missing:
            lines.append(f"{r.name:12s} cannot load: missing system libraries {', '.join(r.missing)}")
            lines.append(f"{'':12s} install them with: {r.apt_line}")
        elif r.started is True:
            lines.append(f"{r.name:12s} loads and starts")
        elif r.started is False:
            lines.append(f"{r.name:12s} loads, but does not start here: {r.detail}")
        else:
            lines.append(f"{r.name:12s} loads (not started: not a desktop platform)")
    return lines


# ---------------------------------------------------------------------------------
# The default model
# ---------------------------------------------------------------------------------
def model_section(device: str | None = "auto") -> tuple[list[str], bool]:
    """Load the default model, classify chelsea; ``ok`` when it says 285 (Egyptian cat)."""
    from .core.errors import AlensError
    from .core.images import sample_image
    from .core.models import load_model

    t0 = time.perf_counter()
    try:
        loaded = load_model("default", device=device)
    except AlensError as exc:
        return [f"the default model does not load: {exc}"], False
    t1 = time.perf_counter()
    probs = loaded.predict(sample_image("chelsea"))
    top = int(probs.argmax())
    lines = [f"{loaded.name} on {loaded.device_label()}: loaded in {t1 - t0:.1f} s"]
    verdict = "as expected" if top == 285 else "WRONG: expected 285 (Egyptian cat)"
    lines.append(f"skimage chelsea -> class {top} ({loaded.class_names[top]}), p = {probs[top]:.3f}: {verdict}")
    return lines, top == 285


def cache_section() -> list[str]:
    """Where the result cache is, its size, cap and what it keeps (``alens cache info``)."""
    from .core.resultcache import ResultCache

    try:
        return ResultCache().info().lines()
    except Exception as exc:  # the doctor reports; it never fails on a cache it cannot read
        return [f"cannot be read: {exc}"]


# ---------------------------------------------------------------------------------
def run_doctor(device: str | None = "auto", model: bool = True, plugins: bool = True) -> tuple[str, bool]:
    """The whole report as text, and whether everything a run needs works.

    ``ok`` is False when the default model does not load or misclassifies chelsea. A Qt
    plugin that cannot start (a server without a display) is reported, not a failure.
    """
    sections = [("versions", versions_section()), ("device", device_section()), ("result cache", cache_section())]
    ok = True
    if plugins:
        sections.append(("Qt platform plugins", plugin_section(probe_plugins())))
    if model:
        lines, ok = model_section(device)
        sections.append(("default model", lines))
    out = []
    for title, lines in sections:
        out.append(f"## {title}")
        out += [f"  {ln}" for ln in lines]
    out.append(f"## verdict\n  {'all checks passed' if ok else 'PROBLEM: see the default model section'}")
    return "\n".join(out), ok
