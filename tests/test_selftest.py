"""``alens-gui --self-test``: passes on a working installation, names the step that fails."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from alens_gui import selftest

ROOT = Path(__file__).resolve().parents[1]


def test_the_self_test_covers_what_the_issue_asks_for():
    names = [n for n, _ in selftest.STEPS]
    for needed in ("model", "explain", "relens", "mask", "qt", "window", "png", "session"):
        assert needed in names
    assert len(set(names)) == len(names)
    assert len(selftest.METHODS) == 2


def test_self_test_passes_from_another_folder_with_a_minimal_environment(tmp_path):
    """As `make package` runs it on the bundle: another working directory, PATH=/usr/bin:/bin,
    a fresh HOME, nothing else (the interpreter and PYTHONPATH stand in for the bundle)."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)}
    r = subprocess.run([sys.executable, "-c", "import sys; from alens_gui.qt.app import main; "
                        "sys.exit(main(['--self-test']))"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    ok = [ln.split()[1] for ln in lines if ln.startswith("ok ")]
    assert ok == [n for n, _ in selftest.STEPS], r.stdout
    assert lines[-1].startswith("self-test passed")
    assert not [p for p in tmp.iterdir() if p.name.startswith("alens-selftest-")], "the temporary folder was left"


def test_a_failing_step_is_named_and_stops_the_run(tmp_path):
    seen = []

    def good(state):
        seen.append("good")
        return "fine"

    def bad(state):
        raise selftest.SelfTestError("the maps are upside down")

    def never(state):
        seen.append("never")
        return "unreachable"

    out = io.StringIO()
    code = selftest.run([("first", good), ("second", bad), ("third", never)], folder=tmp_path, out=out)
    text = out.getvalue()
    assert code == 1
    assert seen == ["good"]
    assert "ok   first" in text
    assert "FAIL second" in text and "the maps are upside down" in text
    assert text.strip().splitlines()[-1] == "self-test FAILED at step 'second'"


def test_the_files_are_written_where_asked(tmp_path, explainer, photos):
    state = selftest.SelfTest(tmp_path, explainer=explainer, image=photos["chelsea"])
    selftest.step_explain(state)
    selftest.step_mask(state)
    selftest.step_png(state)
    selftest.step_session(state)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".alens", ".png"]
