"""The real window under Xvfb with a real mouse (xdotool): wheel, hover, a dragged rectangle, clipping.

CI installs Xvfb, xdotool and the X libraries of Qt's xcb plugin (see ``.ci/run``); on a
machine without them this test is skipped with the apt-get line that would enable it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

WALK = Path(__file__).with_name("real_window_walk.py")
ROOT = Path(__file__).resolve().parents[2]


def _missing() -> str | None:
    for tool in ("Xvfb", "xdotool"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install xvfb xdotool)"
    return None


@pytest.mark.skipif(_missing() is not None, reason=_missing() or "")
def test_real_window_with_a_real_mouse(tmp_path):
    r, w = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    try:
        display = os.read(r, 64).decode().strip()  # keep r open: Xvfb may write more (SIGPIPE otherwise)
        assert display, "Xvfb did not start"
        # wait until the server takes connections
        probe = {**os.environ, "DISPLAY": f":{display}"}
        for _ in range(100):
            if subprocess.run(["xdotool", "getmouselocation"], env=probe, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
        env.update(DISPLAY=f":{display}", QT_QPA_PLATFORM="xcb", PYTHONUNBUFFERED="1",
                   ALENS_WALK_SHOT=str(tmp_path / "walk.png"), HOME=str(tmp_path))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
        proc = subprocess.run([sys.executable, str(WALK)], env=env, capture_output=True, text=True, timeout=600,
                              cwd=tmp_path)
    finally:
        xvfb.terminate()
        xvfb.wait(10)
        os.close(r)
    out = proc.stdout + proc.stderr
    if "could not load the qt platform plugin" in out.lower():
        pytest.skip("Qt's xcb plugin cannot load here (apt-get install libxcb-cursor0 libxkbcommon-x11-0 ...)")
    assert proc.returncode == 0 and "WALK OK" in proc.stdout, out[-4000:]
    assert "nothing changed" in proc.stdout and "rectangle mask" in proc.stdout
