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
    p.add_argument("--method", default="gradcam")
    p.add_argument("--size", default="1600x950")
    args = p.parse_args(argv)

    from PySide6.QtCore import QEventLoop, QTimer

    from alens_gui.core.images import GRID_PHOTOS
    from alens_gui.qt.app import make_app
    from alens_gui.qt.session import ImageRequest
    from alens_gui.qt.window import MainWindow

    app = make_app()
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as cfg:
        win = MainWindow(config_dir=cfg, autorun=False)
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

        s, c = win.session, win.controller
        if not wait(lambda: s.model is not None and not c.runner.busy()):
            print("the model did not load", file=sys.stderr)
            return 1
        # the grid pointing game, hands-on: four photographs, their four classes, Grad-CAM + the lens
        s.method = args.method
        c.autorun = True
        s.image_request = ImageRequest(tiles=GRID_PHOTOS)
        if not wait(lambda: s.explanation is not None and not c.runner.busy()):
            print("the explanation did not finish", file=sys.stderr)
            return 1
        expl = s.explanation
        # what a user would see next: the distribution under the cursor (on the cup), and a
        # rectangle masked over the cat, with the model run on the masked image
        s.hover = (60, 170)
        s.view = s.view.with_(hover_radius=3)
        s.tool = "rectangle"
        vb = win.maps.map_tiles("base")[0].vb
        win.maps.tool_drag(vb, (20, 20), (90, 95), True, False)
        win.maps.tool_drag(vb, (20, 20), (90, 95), False, True)
        s.tool = "navigate"
        wait(lambda: s.mask_result is not None and not c.runner.busy())
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
