"""Time to a visible window: a command against a bare PySide6 + pyqtgraph window, as a ratio.

    python packaging/startup.py --command "dist/alens-gui/alens-gui" --runs 7
    python packaging/startup.py --command ".venv/bin/alens-gui" --runs 7 --json

Both programs start under the same X server (an Xvfb this script starts, or ``--display``), in
alternation, after one warm-up run each (so both find their files in the page cache). A run ends
when ``xdotool search --onlyvisible --pid PID`` finds a mapped window of the started process;
the process is then terminated. The figures are the medians over ``--runs``; the ratio is
command / bare. Needs Xvfb and xdotool (``apt-get install xvfb xdotool``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_WINDOW = """\
import sys
import pyqtgraph as pg
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1])
win = QMainWindow()
plot = pg.PlotWidget()
plot.addItem(pg.ImageItem())
win.setCentralWidget(plot)
win.resize(1400, 850)
win.show()
sys.exit(app.exec())
"""


def start_xvfb(size: str = "1920x1080x24") -> tuple[subprocess.Popen, str]:
    """Start Xvfb on a free display number; returns the process and ``:N``."""
    if shutil.which("Xvfb") is None:
        raise SystemExit("Xvfb is not installed (apt-get install xvfb)")
    for n in range(90, 200):
        if Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
            continue
        proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", size, "-nolisten", "tcp", "-noreset"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if Path(f"/tmp/.X11-unix/X{n}").exists():
                return proc, f":{n}"
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    raise SystemExit("could not start Xvfb on any display from :90 to :199")


def visible_windows(pid: int, env: dict) -> list[int]:
    """Ids of the mapped windows of process ``pid`` (``xdotool search --onlyvisible --pid``)."""
    r = subprocess.run(["xdotool", "search", "--onlyvisible", "--pid", str(pid)], env=env,
                       capture_output=True, text=True)
    return [int(w) for w in r.stdout.split()] if r.returncode == 0 else []


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_window(proc: subprocess.Popen, env: dict, timeout: float, poll: float = 0.01) -> int:
    """Poll until ``proc`` has a visible window; returns its id. RuntimeError if it exits or times out."""
    t0 = time.perf_counter()
    while True:
        found = visible_windows(proc.pid, env)
        if found:
            return found[0]
        if proc.poll() is not None:
            raise RuntimeError(f"no visible window: the program exited with status {proc.returncode}")
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"no visible window within {timeout:.0f} s")
        time.sleep(poll)


def time_to_window(argv: list[str], env: dict, timeout: float) -> float:
    """Seconds from starting ``argv`` until a window of its process is visible."""
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for_window(proc, env, timeout)
            return time.perf_counter() - t0
        except RuntimeError as exc:
            stop(proc)
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{shlex.join(argv)}: {exc}\n{tail}") from None
        finally:
            stop(proc)


def measure(command: list[str], bare: list[str], runs: int, warmup: int, env: dict, timeout: float) -> dict:
    for _ in range(warmup):
        time_to_window(bare, env, timeout)
        time_to_window(command, env, timeout)
    bare_s, cmd_s = [], []
    for i in range(runs):
        # alternate the order so a drift in machine load hits both sides alike
        pair = [(bare, bare_s), (command, cmd_s)] if i % 2 == 0 else [(command, cmd_s), (bare, bare_s)]
        for argv, out in pair:
            out.append(time_to_window(argv, env, timeout))
    b, c = statistics.median(bare_s), statistics.median(cmd_s)
    return {"command": shlex.join(command), "runs": runs, "bare_s": [round(x, 3) for x in bare_s],
            "command_s": [round(x, 3) for x in cmd_s], "bare_median_s": round(b, 3),
            "command_median_s": round(c, 3), "ratio": round(c / b, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--command", required=True,
                   help="the program to time, as one shell-quoted string (e.g. 'dist/alens-gui/alens-gui')")
    p.add_argument("--runs", type=int, default=5, help="timed runs of each program (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs of each first")
    p.add_argument("--bare-python", default=sys.executable,
                   help="the Python (with PySide6 and pyqtgraph) that runs the bare window")
    p.add_argument("--display", help="use this X display instead of starting Xvfb")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for a window")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    if shutil.which("xdotool") is None:
        raise SystemExit("xdotool is not installed (apt-get install xdotool)")
    command = shlex.split(args.command)
    bare = [args.bare_python, "-c", BARE_WINDOW]
    xvfb = None
    if args.display:
        display = args.display
    else:
        xvfb, display = start_xvfb()
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = display
    try:
        result = measure(command, bare, args.runs, args.warmup, env, args.timeout)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"bare PySide6 + pyqtgraph window: median {result['bare_median_s']:.2f} s  {result['bare_s']}")
        print(f"{result['command']}: median {result['command_median_s']:.2f} s  {result['command_s']}")
        print(f"ratio (command / bare, medians of {args.runs} runs): {result['ratio']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
