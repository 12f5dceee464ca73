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


def measure_run_stall(method: str = "ig", steps: int = 50, k: int = 3, sample: str = "chelsea") -> dict:
    """Explain a sample photograph in the real window and report the longest GUI stall.

    Returns a dict with ``longest_stall_ms``, ``run_s`` (wall time of the run),
    ``ticks`` (timer ticks seen) and the ``method``.
    """
    import tempfile

    from PySide6.QtWidgets import QApplication

    from .app import make_app
    from .window import MainWindow

    app = make_app()
    with tempfile.TemporaryDirectory() as cfg:
        win = MainWindow(("sample", sample), config_dir=cfg, autorun=False)
        win.show()
        while win.loaded is None or win.runner.busy():
            QApplication.processEvents()
            time.sleep(0.005)
        win.set_method(method, **({"steps": steps} if method == "ig" else {}))
        win.set_class_mode("topk", k=k)
        meter = StallMeter(5)
        for _ in range(10):
            app.processEvents()
        meter.start()
        t0 = time.perf_counter()
        win.run_explanation()
        while win.runner.busy():
            app.processEvents()
            time.sleep(0.001)
        run_s = time.perf_counter() - t0
        # let the result be drawn (the re-lens and image updates also run on the GUI thread)
        t1 = time.perf_counter()
        while time.perf_counter() - t1 < 0.3:
            app.processEvents()
            time.sleep(0.001)
        meter.stop()
        ok = win.model.explanation is not None
        win.close()
    return {"method": method, "steps": steps, "k": k, "run_s": round(run_s, 2), "ticks": len(meter.gaps_ms),
            "longest_stall_ms": round(meter.longest_stall_ms, 1), "finished": ok}


if __name__ == "__main__":  # python -m alens_gui.qt.diagnostics [steps]
    import os
    import sys

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    print(measure_run_stall(steps=int(sys.argv[1]) if len(sys.argv) > 1 else 50))
