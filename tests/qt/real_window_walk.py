"""A walk through the real window with a real mouse: run by ``test_real_window.py`` under Xvfb.

Offscreen tests cannot see what only a real window shows: wheel events delivered by
the window system, focus, clipping at a real screen size. This script opens the program
on Qt's X11 plugin, moves and clicks the mouse with ``xdotool`` like a user, and checks
the program's session after each step. It prints ``WALK OK`` and exits 0, or prints the
failing step and exits 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def xdo(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=True, timeout=20)


def pump(app, seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.01)


def wait_for(app, cond, seconds: float, what: str) -> None:
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def settings(s) -> tuple:
    return (s.lens, s.view, s.color_scale, s.method, dict(s.options), s.class_request, s.fill, s.tool, s.input_policy, s.brush_radius)


def main() -> int:
    from PySide6.QtCore import QPoint, QPointF

    from alens_gui.qt.app import make_app
    from alens_gui.qt.window import MainWindow

    app = make_app()
    win = MainWindow(config_dir=tempfile.mkdtemp(prefix="alens-walk-"))
    win.show()
    wid = str(int(win.winId()))
    xdo("windowmove", wid, "0", "0")
    xdo("windowsize", wid, "1280", "800")
    s, c = win.session, win.controller
    wait_for(app, lambda: s.explanation is not None and not c.runner.busy(), 180, "the first explanation")
    pump(app, 1.0)
    print(f"window {win.width()}x{win.height()}, {s.explanation.k} classes explained", flush=True)

    # 1. the wheel over both control columns changes nothing, and the columns scroll instead
    from PySide6.QtWidgets import QScrollArea

    before, expl = settings(s), s.explanation
    bars = [(d.widget() if isinstance(d.widget(), QScrollArea) else d.widget().findChild(QScrollArea)).verticalScrollBar()
            for d in (win.setup_dock, win.inspect_dock)]
    for bar in bars:
        bar.setValue(0)
    for dock in (win.setup_dock, win.inspect_dock):
        area = dock.widget()
        for fy in (0.15, 0.3, 0.45, 0.6, 0.75, 0.9):
            p = area.mapToGlobal(QPoint(area.width() // 2, int(area.height() * fy)))
            xdo("mousemove", str(p.x()), str(p.y()))
            for button in ("5", "5", "5", "4"):
                xdo("click", button)
            pump(app, 0.05)
    for row in (win.lens_panel, win.view_panel):
        for fx in (0.2, 0.4, 0.6, 0.8):
            p = row.mapToGlobal(QPoint(int(row.width() * fx), row.height() // 2))
            xdo("mousemove", str(p.x()), str(p.y()))
            xdo("click", "5")
            pump(app, 0.05)
    pump(app, 1.0)
    assert settings(s) == before, f"the wheel changed the settings: {before} -> {settings(s)}"
    scrolled = [(b.value(), b.maximum()) for b in bars]
    assert all(v > 0 for v, m in scrolled if m > 0) and any(m > 0 for _v, m in scrolled), scrolled
    assert s.explanation is expl and not c.runner.busy("lens"), "the wheel re-lensed the maps"
    print(f"wheel over every control column: nothing changed; the columns scrolled {scrolled}", flush=True)

    # 2. hover over a refined map reads the distribution there
    tile = win.maps.map_tiles("refined")[0]
    y, x = 120, 200
    sp = tile.view.mapFromScene(tile.vb.mapViewToScene(QPointF(x + 0.5, y + 0.5)))
    g = tile.view.mapToGlobal(sp)
    xdo("mousemove", str(g.x()), str(g.y()))
    wait_for(app, lambda: s.hover != (-1, -1), 10, "the hover read-out")
    hy, hx = s.hover
    assert abs(hy - y) <= 2 and abs(hx - x) <= 2, (s.hover, (y, x))
    d = win.distribution.values
    assert d is not None and abs(d.sum() - 1) < 1e-5, d
    print(f"hover at {s.hover}: S = {np.round(d, 3).tolist()}", flush=True)

    # 3. a rectangle drawn with a real drag becomes the mask, and the model runs on the masked image
    s.tool = "rectangle"
    corners = []
    for yy, xx in ((60, 80), (160, 240)):
        sp = tile.view.mapFromScene(tile.vb.mapViewToScene(QPointF(xx, yy)))
        corners.append(tile.view.mapToGlobal(sp))
    a, b = corners
    xdo("mousemove", str(a.x()), str(a.y()))
    pump(app, 0.2)
    xdo("mousedown", "1")
    for t in np.linspace(0.1, 1.0, 8):
        xdo("mousemove", str(int(a.x() + t * (b.x() - a.x()))), str(int(a.y() + t * (b.y() - a.y()))))
        pump(app, 0.05)
    xdo("mouseup", "1")
    wait_for(app, lambda: s.mask is not None and s.mask.any(), 10, "the mask")
    rows, cols = np.nonzero(s.mask)
    box = (rows.min(), cols.min(), rows.max(), cols.max())
    assert abs(box[0] - 60) <= 4 and abs(box[1] - 80) <= 4 and abs(box[2] - 160) <= 4 and abs(box[3] - 240) <= 4, box
    wait_for(app, lambda: s.mask_result is not None and not c.runner.busy(), 60, "the masking result")
    print(f"rectangle mask {box}, {100 * s.mask_result.fraction:.1f}% masked", flush=True)

    # 4. nothing clipped at 1280 x 800 and at 1920 x 1080
    def unclipped(what: str) -> None:
        from PySide6.QtWidgets import QAbstractSpinBox, QScrollArea, QWidget

        for size in ((1280, 800), (1920, 1080)):
            xdo("windowsize", wid, str(size[0]), str(size[1]))
            wait_for(app, lambda size=size: (win.width(), win.height()) == size, 10, f"the window at {size}")
            pump(app, 1.0)
            for dock in (win.setup_dock, win.inspect_dock):
                scroll = dock.widget() if isinstance(dock.widget(), QScrollArea) else dock.widget().findChild(QScrollArea)
                vp = scroll.viewport()
                for w in scroll.widget().findChildren(QWidget):
                    if not w.isVisible() or isinstance(w.parent(), QAbstractSpinBox):
                        continue
                    left = w.mapTo(vp, QPoint(0, 0)).x()
                    assert left >= 0 and left + w.width() <= vp.width() + 1, (what, size, dock.windowTitle(),
                                                                               type(w).__name__)
            geo = win.geometry()
            for dock in (win.setup_dock, win.inspect_dock):
                r = dock.geometry()
                assert r.right() <= geo.width() and r.bottom() <= geo.height(), (what, size, dock.windowTitle(), r)
            print(f"{what}, {size[0]}x{size[1]}: nothing clipped", flush=True)

    unclipped("a photograph")

    # 5. a CT scan with its intensity window open: the setup column still shows every control whole
    from pathlib import Path

    import pydicom

    ct = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
    c.autorun = True
    assert win.open_image(ct)
    wait_for(app, lambda: s.explanation is not None and s.explanation.source.get("file") == "CT_small.dcm"
             and not c.runner.busy(), 120, "the scan's explanation")
    assert win.window_section.button.isChecked(), "a scan opens with its intensity window shown"
    unclipped("a CT scan, intensity window open")

    # 6. File → Open folder (not "with sub-folders") on a dataset of class sub-folders finds its images
    from PIL import Image

    from alens_gui.core.images import sample_images

    photos = sample_images()
    root = Path(tempfile.mkdtemp(prefix="alens-walk-data-")) / "cases"
    for rel, name in (("Egyptian cat/a.png", "chelsea"), ("Egyptian cat/b.png", "cat"), ("espresso/c.png", "coffee")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((photos[name] * 255).round().astype(np.uint8)).save(root / rel)
    xdo("windowsize", wid, "1280", "800")
    wait_for(app, lambda: (win.width(), win.height()) == (1280, 800), 10, "the window at 1280 x 800")
    assert win.open_folder(root, recursive=False) is not None
    g = s.gallery
    wait_for(app, lambda: len(g.rows) == 3 and not c.runner.busy("folder"), 120, "the folder's images")
    assert sum(r.true_label is not None for r in g.rows) == 3, [r.true_label for r in g.rows]
    print(f"Open folder on class sub-folders: {len(g.rows)} images, all labelled", flush=True)

    # 7. the wheel over the docks' tab bar (Notifications | Gallery) leaves the tab as it is
    from PySide6.QtWidgets import QTabBar

    bars = [b for b in win.findChildren(QTabBar) if b.isVisible() and b.count() >= 2]
    assert bars, "no tab bar of tabbed docks"
    bar = bars[0]
    before_tab = bar.currentIndex()
    p = bar.mapToGlobal(bar.tabRect(before_tab).center())
    xdo("mousemove", str(p.x()), str(p.y()))
    for button in ("5", "5", "4", "5"):
        xdo("click", button)
        pump(app, 0.05)
    pump(app, 0.3)
    assert bar.currentIndex() == before_tab, (before_tab, bar.currentIndex())
    print("wheel over the dock tab bar: the tab stays", flush=True)

    # 8. a comparison at 1280 x 800: pinned beside the current image, nothing off the screen
    c.autorun = True
    win.open_sample("chelsea")
    wait_for(app, lambda: s.explanation is not None and s.explanation.source.get("file", "").startswith("chelsea")
             and not c.runner.busy(), 120, "chelsea explained")
    assert c.comparison.pin()
    win.open_sample("coffee")
    wait_for(app, lambda: s.pinned_rendered is not None and s.explanation is not None
             and s.explanation.source.get("file", "").startswith("coffee") and not c.runner.busy(), 120,
             "the comparison")
    pump(app, 1.0)
    assert win.width() <= 1280 and win.inspect_dock.geometry().right() <= win.width(), win.width()
    assert win.pinned_maps.columns == win.maps.columns
    print(f"comparison at {win.width()}x{win.height()}: both halves {win.maps.columns} columns", flush=True)
    unclipped("a comparison")

    if os.environ.get("ALENS_WALK_SHOT"):
        win.grab().save(os.environ["ALENS_WALK_SHOT"])
    win.close()
    print("WALK OK", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as exc:
        print(f"WALK FAILED: {exc}", flush=True)
        sys.exit(1)
