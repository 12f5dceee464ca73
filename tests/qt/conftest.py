"""Qt test configuration: offscreen platform, and no test may leave thread-pool work behind."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def no_running_workers():
    """Fail a test that leaves QThreadPool work running (napari's conftest does the same).

    Autouse fixtures are set up first, so this check runs after the window fixtures have
    closed their windows.
    """
    yield
    from PySide6.QtCore import QThreadPool

    pool = QThreadPool.globalInstance()
    # A worker that has sent its last signal still needs a moment to return from run(); on a
    # loaded 2-core machine that moment can outlast the test (seen in a fresh-clone run). Work
    # still running after 5 s was really left behind.
    if pool.waitForDone(5_000):
        return
    left = pool.activeThreadCount()
    if left:
        pool.waitForDone(60_000)  # do not let the leftover work spill into the next test
        pytest.fail(f"{left} thread-pool worker(s) were still running after the test")


@pytest.fixture
def make_window(qtbot, explainer, tmp_path):
    """Real main windows on the real default model (loaded once per session)."""
    from alens_gui.qt.window import MainWindow

    made = []

    def make(image=None, autorun=False, config_dir=None, size=(1400, 850)):
        win = MainWindow(image, loaded=explainer.loaded, config_dir=config_dir or tmp_path / "config", autorun=autorun)
        qtbot.addWidget(win)
        win.resize(*size)
        win.show()
        made.append(win)
        # start() runs on the first turn of the event loop: the model is set, the first image is read
        qtbot.waitUntil(lambda: win.session.model is not None, timeout=10_000)
        return win

    yield make
    for win in made:
        win.close()


def wait_idle(qtbot, win, timeout=180_000):
    """Wait until the window has no task running."""
    qtbot.waitUntil(lambda: not win.controller.runner.busy(), timeout=timeout)


def pytest_collection_modifyitems(items):
    # The offscreen platform plugin warns that it cannot propagate size hints; that is
    # the test platform talking, not the program, so only that message is ignored.
    for item in items:
        if "tests/qt/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints"))
