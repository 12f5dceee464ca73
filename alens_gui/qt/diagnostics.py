"""Measuring how responsive the GUI stays: the longest gap in event-loop processing."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer


class StallMeter(QObject):
    """Records the gaps between ticks of a fast ``QTimer`` on the GUI thread.

    While the event loop is free the timer fires every ``interval_ms``; any longer gap
    is time the GUI thread spent blocked (a stall the user would feel as lag).
    """

    def __init__(self, interval_ms: int = 5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self.gaps_ms: list[float] = []
        self._last: float | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.gaps_ms.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps_ms.append((now - self._last) * 1000.0)
        self._last = now

    @property
    def longest_stall_ms(self) -> float:
        """The longest gap beyond the timer interval, in milliseconds."""
        return max((g - self.interval_ms for g in self.gaps_ms), default=0.0)


def measure_run_stall(method: str = "ig", steps: int = 50, k: int = 3, sample: str = "chelsea", runs: int = 3) -> dict:
    """Explain a sample photograph ``runs`` times in the real window; report the longest GUI stall of each.

    Returns a dict with ``stalls_ms`` (the longest stall of each run, including drawing the
    result), ``median_stall_ms``, ``run_s`` (wall time of each run) and the settings.
    """
    import tempfile

    from .app import make_app
    from .session import ClassRequest, ImageRequest
    from .window import MainWindow

    app = make_app()

    def settle(win, extra_s: float = 0.0) -> None:
        while win.session.model is None or win.controller.runner.busy():
            app.processEvents()
            time.sleep(0.002)
        t = time.perf_counter()
        while time.perf_counter() - t < extra_s:
            app.processEvents()
            time.sleep(0.001)

    stalls, times = [], []
    with tempfile.TemporaryDirectory() as cfg:
        win = MainWindow(config_dir=cfg, autorun=False)
        win.resize(1280, 800)
        win.show()
        settle(win)
        win.session.image_request = ImageRequest(sample=sample)
        settle(win)
        win.session.method = method
        if method == "ig":
            win.session.options = {**win.session.options, "steps": steps}
        win.session.class_request = ClassRequest(kind="topk", k=k)
        for _ in range(runs):
            meter = StallMeter(5)
            settle(win, 0.2)
            meter.start()
            t0 = time.perf_counter()
            win.run()
            settle(win)
            times.append(round(time.perf_counter() - t0, 2))
            settle(win, 0.3)  # the result is drawn too
            meter.stop()
            stalls.append(round(meter.longest_stall_ms, 1))
        ok = win.session.explanation is not None and not win.session.explanation.partial
        win.close()
    return {"method": method, "steps": steps, "k": k, "runs": runs, "run_s": times, "stalls_ms": stalls,
            "median_stall_ms": sorted(stalls)[len(stalls) // 2], "finished": ok}


if __name__ == "__main__":  # python -m alens_gui.qt.diagnostics [steps]
    import os
    import sys

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    print(measure_run_stall(steps=int(sys.argv[1]) if len(sys.argv) > 1 else 50))
