"""Render the real main window offscreen on real photographs: the README's screenshots.

Run from the repository root (the README embeds the results, so re-run it when the GUI changes)::

    QT_QPA_PLATFORM=offscreen python packaging/screenshot.py            # all three scenes
    QT_QPA_PLATFORM=offscreen python packaging/screenshot.py --scene gallery --out /tmp/g.png

Scenes: ``main`` (a 2 x 2 grid, Grad-CAM + the lens, class territory, hover, a masked
rectangle) -> ``resources/screenshot.png``; ``gallery`` (a labelled folder of photographs,
explained, one wrong) -> ``resources/screenshot_gallery.png``; ``compare`` (one image pinned
beside another under one class set and colour scale) -> ``resources/screenshot_compare.png``.
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
    p.add_argument("--scene", choices=("main", "gallery", "compare", "all"), default="all")
    p.add_argument("--out", default=None, help="the file to write (one scene only)")
    p.add_argument("--method", default="gradcam")
    p.add_argument("--size", default="1600x950")
    args = p.parse_args(argv)
    scenes = ("main", "gallery", "compare") if args.scene == "all" else (args.scene,)
    rc = 0
    for scene in scenes:
        name = "screenshot.png" if scene == "main" else f"screenshot_{scene}.png"
        out = Path(args.out) if args.out and len(scenes) == 1 else root / "resources" / name
        rc |= shoot(scene, out, args)
    return rc


def _labelled_folder(root: Path) -> Path:
    """Real photographs in class sub-folders, one of them filed under the wrong class."""
    import numpy as np
    from PIL import Image
    from skimage import data

    def save(img, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(img)).save(path)

    cat, cup, rocket = data.chelsea(), data.coffee(), data.rocket()
    save(cat, root / "Egyptian cat" / "chelsea.png")
    save(cat[:, 60:400], root / "Egyptian cat" / "chelsea_crop.png")
    save(cat[:, ::-1], root / "Egyptian cat" / "chelsea_mirrored.png")
    save(cup, root / "Egyptian cat" / "filed_wrongly.png")
    save(cup, root / "espresso" / "coffee.png")
    save(cup[50:350, 100:500], root / "espresso" / "coffee_crop.png")
    save(rocket, root / "space shuttle" / "rocket.png")
    return root


def shoot(scene: str, out: Path, args) -> int:
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
        if scene == "gallery":
            return _gallery(win, wait, app, out, cfg)
        if scene == "compare":
            return _compare(win, wait, app, out)
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
        s.view = s.view.with_(territory=True)
        s.hover_radius = 3
        s.tool = "rectangle"
        vb = win.maps.map_tiles("base")[0].vb
        win.maps.tool_drag(vb, (20, 20), (90, 95), True, False)
        win.maps.tool_drag(vb, (20, 20), (90, 95), False, True)
        s.tool = "navigate"
        wait(lambda: s.mask_result is not None and not c.runner.busy())
        for _ in range(5):
            app.processEvents()
        ok = _save(win, app, out)
    print(f"{'wrote' if ok else 'FAILED to write'} {out} ({expl.method_label}, classes {[int(c) for c in expl.classes]})")
    return 0 if ok else 1


def _save(win, app, out: Path) -> bool:
    for _ in range(5):
        app.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = win.grab().save(str(out), "PNG")
    win.close()
    return ok


def _gallery(first, wait, app, out: Path, cfg) -> int:
    """A labelled folder: explained, sorted wrong first, one image open in the analysis view."""
    from PySide6.QtCore import Qt

    win = first
    folder = _labelled_folder(Path(cfg) / "cases")
    win.resize(1600, 1000)
    s, c = win.session, win.controller
    s.method = "gradcam"
    win.open_folder(folder, recursive=True)
    wait(lambda: not c.runner.busy() and s.gallery.rows and all(r.pred is not None for r in s.gallery.rows))
    c.gallery.explain_all()
    wait(lambda: not c.runner.busy())
    win.gallery.sort_wrong_first()
    view = win.gallery  # thumbnails are asked for as rows are drawn: draw each once (as scrolling does)
    for i in range(view.proxy.rowCount()):
        view.table.scrollTo(view.proxy.index(i, 0))
        app.processEvents()
        view.table.viewport().repaint()
    view.table.scrollToTop()
    if not wait(lambda: all(r.thumb is not None for r in s.gallery.rows), 60):
        print("some thumbnails did not come", file=sys.stderr)
    wrong = next(i for i, r in enumerate(s.gallery.rows) if r.correct() is False)
    c.gallery.open_row(wrong)
    wait(lambda: not c.runner.busy())
    win.gallery.select_rows([wrong])
    win.resizeDocks([win.gallery_dock], [330], Qt.Orientation.Vertical)
    ok = _save(win, app, out)
    print(f"{'wrote' if ok else 'FAILED to write'} {out} (gallery of {len(s.gallery.rows)} images)")
    return 0 if ok else 1


def _compare(win, wait, app, out: Path) -> int:
    """Two 2 x 2 grids of the same four photographs in other places, one pinned beside the other.

    One class set (the four tiles' classes), one method, one lens and one colour scale: each
    class's refined map and the class territory move with its photograph.
    """
    from alens_gui.core.images import GRID_PHOTOS
    from alens_gui.qt.session import ImageRequest

    s, c = win.session, win.controller
    s.method = "gradcam"
    c.autorun = True
    s.image_request = ImageRequest(tiles=GRID_PHOTOS)
    if not wait(lambda: s.explanation is not None and not s.explanation.partial and not c.runner.busy()):
        print("the first grid was not explained", file=sys.stderr)
        return 1
    if not c.comparison.pin():
        print("the explanation could not be pinned", file=sys.stderr)
        return 1
    s.view = s.view.with_(territory=True)
    moved = tuple(GRID_PHOTOS[i] for i in (3, 2, 1, 0))
    s.image_request = ImageRequest(tiles=moved)
    wait(lambda: s.explanation is not s.pinned and not c.runner.busy())
    if s.pinned is None or s.explanation is None or list(s.pinned.classes) != list(s.explanation.classes):
        print("no comparison on screen: the second image was not explained with the pinned class set",
              file=sys.stderr)
        return 1
    s.hover = (60, 170)
    wait(lambda: not c.runner.busy())
    ok = _save(win, app, out)
    print(f"{'wrote' if ok else 'FAILED to write'} {out} (comparison)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
