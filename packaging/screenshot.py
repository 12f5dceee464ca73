"""Render the real main window offscreen on a real photograph to ``resources/screenshot.png``.

Run from the repository root (the README embeds the result, so re-run it when the GUI changes)::

    QT_QPA_PLATFORM=offscreen python packaging/screenshot.py [--out resources/screenshot.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv=None) -> int:
    root = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(root / "resources" / "screenshot.png"))
    p.add_argument("--sample", default="chelsea", help="sample photograph to explain")
    p.add_argument("--method", default="ig")
    p.add_argument("--size", default="1600x950")
    args = p.parse_args(argv)

    from PySide6.QtCore import QEventLoop, QTimer

    from alens_gui.qt.app import make_app
    from alens_gui.qt.window import MainWindow

    app = make_app()
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as cfg:
        win = MainWindow(("sample", args.sample), config_dir=cfg, autorun=False)
        win.resize(w, h)
        win.show()
        loop = QEventLoop()

        def wait(cond, timeout_s=300.0):
            deadline = [timeout_s * 1000]

            def tick():
                deadline[0] -= 50
                if cond() or deadline[0] <= 0:
                    loop.quit()

            t = QTimer()
            t.timeout.connect(tick)
            t.start(50)
            loop.exec()
            t.stop()
            return cond()

        if not wait(lambda: win.loaded is not None):
            print("the model did not load", file=sys.stderr)
            return 1
        win.set_method(args.method)
        win.set_class_mode("topk", k=3)
        win.autorun = True
        win.run_explanation()
        if not wait(lambda: win.model.explanation is not None and not win.runner.busy()):
            print("the explanation did not finish", file=sys.stderr)
            return 1
        expl = win.model.explanation
        # Show the read-outs a user would see: hover a pixel on the cat, mask a region with a
        # rectangle (drawn as the rectangle tool would) and let the model run on the masked image.
        win.model.set_hover(110, 100)
        win.tool_combo.setCurrentText("rectangle")
        vb = win.maps.base_cells[0].vb
        win.maps.tool_drag(vb, (60, 120), (105, 190), True, False)
        win.maps.tool_drag(vb, (60, 120), (105, 190), False, True)
        win.tool_combo.setCurrentText("navigate")
        wait(lambda: win.model.mask_result is not None and not win.runner.busy())
        win.side_tabs.setCurrentIndex(0)
        for _ in range(5):
            app.processEvents()
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        ok = win.grab().save(str(out), "PNG")
        win.close()
    print(f"{'wrote' if ok else 'FAILED to write'} {out} ({expl.method_label}, classes {list(expl.classes)})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
