"""Linked pyqtgraph views: the image, per-class base and refined maps, one colour scale.

All cells share one view range (zoom/pan linked), draw the same crosshair and the same
mask, and redraw only from :class:`~alens_gui.qt.model.ExplanationModel` signals.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QSizePolicy
from superqt.utils import qthrottled

from alens_gui.core.masking import brush_mask, rectangle_mask

from .model import ExplanationModel

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

#: A diverging map (blue negative, white zero, red positive), shared by every heat map.
COLORMAP_NAME = "CET-D1"
MASK_RGBA = (0, 230, 255, 120)
TOOLS = ("navigate", "brush", "rectangle")


@functools.lru_cache(maxsize=1)
def colormap() -> pg.ColorMap:
    return pg.colormap.get(COLORMAP_NAME)


def symmetric_level(maps: np.ndarray) -> float:
    """A robust symmetric colour limit: the 99.5th percentile of |maps| (never 0)."""
    a = np.abs(np.asarray(maps, dtype=np.float64))
    if a.size == 0:
        return 1.0
    m = float(np.percentile(a, 99.5))
    if not np.isfinite(m) or m <= 0:
        m = float(a.max()) if a.size and np.isfinite(a.max()) and a.max() > 0 else 1.0
    return m


def grey(image: np.ndarray) -> np.ndarray:
    """A light greyscale version of an RGB image, the backdrop under heat maps."""
    g = np.asarray(image, dtype=np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return 0.35 + 0.6 * g


class MapViewBox(pg.ViewBox):
    """A ViewBox that hands left-button drags to the masking tool unless the tool is "navigate"."""

    def __init__(self, owner: MapsView, index: int) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.owner = owner
        self.index = index

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 - Qt naming
        if self.owner.tool == "navigate" or ev.button() != Qt.MouseButton.LeftButton:
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        p = self.mapSceneToView(ev.scenePos())
        start = self.mapSceneToView(ev.buttonDownScenePos())
        self.owner.tool_drag(self, (start.y(), start.x()), (p.y(), p.x()), ev.isStart(), ev.isFinish())

    def mouseClickEvent(self, ev):  # noqa: N802 - Qt naming
        if ev.button() == Qt.MouseButton.LeftButton:
            p = self.mapSceneToView(ev.scenePos())
            if self.owner.tool == "brush":
                ev.accept()
                self.owner.tool_drag(self, (p.y(), p.x()), (p.y(), p.x()), True, True)
                return
            if self.owner.tool == "navigate" and self.index >= 0:
                ev.accept()
                self.owner.classClicked.emit(self.index)
                return
        super().mouseClickEvent(ev)


class Cell:
    """One linked view: backdrop, heat map (optional), mask overlay and crosshair."""

    def __init__(self, owner: MapsView, index: int, title: str, heat: bool) -> None:
        # A bare ViewBox under a label: PlotItems (four axes each) cost ~20 ms apiece to build.
        self.vb = MapViewBox(owner, index)
        self.plot = pg.GraphicsLayout()
        self.plot.setContentsMargins(1, 1, 1, 1)
        self.plot.layout.setSpacing(0)
        self.title = self.plot.addLabel(title, row=0, col=0, size="9pt", color="#444")
        self.plot.addItem(self.vb, row=1, col=0)
        self.plot.layout.setRowStretchFactor(1, 10)
        # equal preferred sizes, so every column of the grid gets the same width
        self.plot.setPreferredSize(200, 220)
        self.plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.vb.setPreferredSize(200, 200)
        self.vb.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.backdrop = pg.ImageItem()
        self.heat = pg.ImageItem() if heat else None
        self.mask = pg.ImageItem()
        self.vb.addItem(self.backdrop)
        if self.heat is not None:
            self.vb.addItem(self.heat)
        self.vb.addItem(self.mask)
        # Two segments spanning the image only (InfiniteLines would widen linked view ranges).
        self.cross = pg.PlotCurveItem(pen=pg.mkPen(QColor(255, 215, 0), width=1), connect="pairs")
        self.cross.setZValue(20)
        self.cross.hide()
        self.vb.addItem(self.cross, ignoreBounds=True)
        self.size = (0, 0)

    def set_crosshair(self, y: int, x: int) -> None:
        h, w = self.size
        if y < 0 or not h:
            self.cross.hide()
            return
        self.cross.setData(x=np.array([0, w, x + 0.5, x + 0.5], dtype=float),
                           y=np.array([y + 0.5, y + 0.5, 0, h], dtype=float))
        self.cross.show()


class MapsView(pg.GraphicsLayoutWidget):
    """Image + K base maps (top row) and masked image + K refined maps (bottom row).

    Signals
    -------
    classClicked(int)
        Index in the class set of a map clicked with the navigate tool.
    """

    classClicked = Signal(int)

    def __init__(self, model: ExplanationModel, parent=None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.model = model
        self.tool = "navigate"
        self.brush_radius = 8.0
        self.opacity = 0.75
        self.image_cell: Cell | None = None
        self.masked_cell: Cell | None = None
        self.base_cells: list[Cell] = []
        self.refined_cells: list[Cell] = []
        self.colorbar: pg.ColorBarItem | None = None
        self.level = 1.0
        self.selected = 0
        self._k = 0
        self._syncing = False
        self._title_key: tuple = ()
        self._pool: list[tuple[Cell, Cell]] = []
        self._stroke: list[tuple[float, float]] = []
        self._stroke_mask: np.ndarray | None = None
        self._rect_item: QGraphicsRectItem | None = None
        self.on_region: Callable[[np.ndarray], None] | None = None  # set by the window
        self._hover_throttled = qthrottled(self._emit_hover, timeout=25, leading=True)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        model.changed.connect(self._on_changed)
        model.imageChanged.connect(self._on_image)
        model.maskChanged.connect(self._draw_mask)
        model.hoverChanged.connect(self._on_hover)
        self._build(3)  # the default class set; other K reuse and add cells

    # -- layout -----------------------------------------------------------------------
    def cells(self) -> list[Cell]:
        return [c for c in (self.image_cell, self.masked_cell) if c is not None] + self.base_cells + self.refined_cells

    def _new_cell(self, index: int, title: str, heat: bool) -> Cell:
        c = Cell(self, index, title, heat)
        # Linked zoom/pan. pyqtgraph's setXLink/setYLink between aspect-locked views of
        # different sizes feed back into each other on resize (ranges blow up), so a user
        # pan/zoom in one view is copied to the others instead, once, with a guard.
        c.vb.disableAutoRange()
        c.vb.sigRangeChangedManually.connect(lambda _mask, vb=c.vb: self._sync_range(vb))
        return c

    def _build(self, k: int, labels: list[str] | None = None) -> None:
        """Lay out K class columns, reusing cells built earlier (building is the slow part)."""
        labels = labels or [f"class {i + 1}" for i in range(k)]
        if self.image_cell is None:
            self.image_cell = self._new_cell(-1, "image", heat=False)
            self.masked_cell = self._new_cell(-1, "masked image", heat=False)
            self.addItem(self.image_cell.plot, row=0, col=0)
            self.addItem(self.masked_cell.plot, row=1, col=0)
            self.colorbar = pg.ColorBarItem(
                values=(-self.level, self.level), colorMap=colormap(), interactive=True,
                label="attribution (shared scale)", width=14,
            )
        for c in self.base_cells + self.refined_cells:
            self.removeItem(c.plot)
        if self._k > 0:
            self.removeItem(self.colorbar)
        while len(self._pool) < k:
            i = len(self._pool)
            self._pool.append((self._new_cell(i, "base", heat=True), self._new_cell(i, "refined", heat=True)))
        self._k = k
        self.base_cells = [b for b, _ in self._pool[:k]]
        self.refined_cells = [r for _, r in self._pool[:k]]
        for i, (b, r) in enumerate(zip(self.base_cells, self.refined_cells)):
            self.addItem(b.plot, row=0, col=i + 1)
            self.addItem(r.plot, row=1, col=i + 1)
        grid = self.ci.layout
        for col in range(k + 2):
            grid.setColumnStretchFactor(col, 1 if col <= k else 0)
        if k > 0:
            self.colorbar.setImageItem([c.heat for c in self.base_cells + self.refined_cells])
            self.addItem(self.colorbar, row=0, col=k + 1, rowspan=2)
        self._titles(labels)
        if self.model.image is not None:
            self._on_image(self.model.image)

    def _sync_range(self, source: pg.ViewBox) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            rect = source.viewRect()
            for c in self.cells():
                if c.vb is not source:
                    c.vb.setRange(rect, padding=0.0, disableAutoRange=True)
        finally:
            self._syncing = False

    def view_rect(self) -> QRectF:
        """The visible region (map coordinates) of the image view."""
        return self.image_cell.vb.viewRect()

    def set_view_rect(self, rect: QRectF) -> None:
        """Zoom/pan every view to ``rect`` (map coordinates), as a mouse zoom would."""
        self.image_cell.vb.setRange(rect, padding=0.0, disableAutoRange=True)
        self._sync_range(self.image_cell.vb)

    def _titles(self, labels: list[str]) -> None:
        key = (tuple(labels), self.selected, len(self.base_cells))
        if key == self._title_key:  # re-lensing keeps the titles; relaying out labels is not free
            return
        self._title_key = key
        for i, (b, r) in enumerate(zip(self.base_cells, self.refined_cells)):
            mark = "▶ " if i == self.selected else ""
            b.title.setText(f"{mark}base: {labels[i]}", size="9pt", color="#444")
            r.title.setText(f"{mark}refined: {labels[i]}", size="9pt", color="#444")

    # -- model -> view ------------------------------------------------------------
    def _on_image(self, image: np.ndarray) -> None:
        if self.image_cell is None:
            return
        self.image_cell.backdrop.setImage(image, levels=(0.0, 1.0))
        self.masked_cell.backdrop.setImage(image, levels=(0.0, 1.0))
        g = grey(image)
        for c in self.base_cells + self.refined_cells:
            c.backdrop.setImage(g, levels=(0.0, 1.0))
        h, w = image.shape[:2]
        for c in self.cells():
            c.size = (h, w)
            c.vb.setRange(QRectF(0, 0, w, h), padding=0.0, disableAutoRange=True)

    def _on_changed(self, expl) -> None:
        if expl is None:
            return
        labels = [f"{int(c)} {n}" for c, n in zip(expl.classes, expl.class_names)]
        rebuilt = expl.k != self._k
        if rebuilt:
            self.selected = min(self.selected, expl.k - 1)
            self._build(expl.k, labels)
            self._draw_mask(self.model.mask)
        self._titles(labels)
        self.level = symmetric_level(expl.base)
        for i, (b, r) in enumerate(zip(self.base_cells, self.refined_cells)):
            b.heat.setImage(expl.base[i], autoLevels=False)
            r.heat.setImage(expl.refined[i], autoLevels=False)
        if self.colorbar is not None:
            self.colorbar.setLevels((-self.level, self.level))
        self.set_opacity(self.opacity)
        y, x = self.model.hover
        for c in self.cells():
            c.set_crosshair(y, x)

    def set_opacity(self, value: float) -> None:
        """Opacity of the heat maps over the grey image (0: image only, 1: map only)."""
        self.opacity = float(min(1.0, max(0.0, value)))
        for c in self.base_cells + self.refined_cells:
            c.heat.setOpacity(self.opacity)

    def set_selected(self, index: int) -> None:
        expl = self.model.explanation
        self.selected = int(index)
        if expl is not None:
            self._titles([f"{int(c)} {n}" for c, n in zip(expl.classes, expl.class_names)])

    def set_masked_preview(self, image: np.ndarray | None) -> None:
        if self.masked_cell is not None:
            src = image if image is not None else self.model.image
            if src is not None:
                self.masked_cell.backdrop.setImage(src, levels=(0.0, 1.0))

    def _draw_mask(self, mask: np.ndarray | None) -> None:
        if mask is None:
            return
        if self._stroke_mask is not None:
            mask = mask | self._stroke_mask
        rgba = np.zeros(mask.shape + (4,), dtype=np.uint8)
        rgba[mask] = MASK_RGBA
        faint = rgba.copy()
        faint[mask, 3] = 35  # on the masked image the fill itself must stay visible
        for c in self.cells():
            c.mask.setImage(faint if c is self.masked_cell else rgba, levels=(0, 255))

    # -- hover ----------------------------------------------------------------------
    def pixel_at_scene(self, pos: QPointF) -> tuple[int, int] | None:
        """The map pixel (row, column) under a scene position, or None outside every view."""
        for c in self.cells():
            if c.vb.sceneBoundingRect().contains(pos):
                p = c.vb.mapSceneToView(pos)
                return int(np.floor(p.y())), int(np.floor(p.x()))
        return None

    def scene_pos_of(self, y: int, x: int, cell: Cell | None = None) -> QPointF:
        """Scene position of the centre of pixel (row ``y``, column ``x``) in ``cell``."""
        cell = cell or (self.refined_cells[0] if self.refined_cells else self.image_cell)
        return cell.vb.mapViewToScene(QPointF(x + 0.5, y + 0.5))

    def _on_mouse_moved(self, pos) -> None:
        px = self.pixel_at_scene(pos)
        self._hover_throttled(*(px if px is not None else (-1, -1)))

    def _emit_hover(self, y: int, x: int) -> None:
        self.model.set_hover(y, x)

    def _on_hover(self, y: int, x: int) -> None:
        for c in self.cells():
            c.set_crosshair(y, x)

    # -- masking tools ----------------------------------------------------------------
    def tool_drag(self, vb: MapViewBox, start, pos, is_start: bool, is_finish: bool) -> None:
        """Brush strokes and rectangles drawn on any view become mask regions."""
        shape = None if self.model.image is None else self.model.image.shape[:2]
        if shape is None:
            return
        if self.tool == "brush":
            # view coordinates put pixel (r, c) on [r, r+1) x [c, c+1); brush_mask wants centres
            start, pos = (start[0] - 0.5, start[1] - 0.5), (pos[0] - 0.5, pos[1] - 0.5)
            if is_start:
                self._stroke = [start]
                self._stroke_mask = brush_mask(shape, [start], self.brush_radius)
            seg = [self._stroke[-1], pos] if self._stroke else [pos]
            self._stroke.append(pos)
            self._stroke_mask = self._stroke_mask | brush_mask(shape, seg, self.brush_radius)
            if is_finish:
                region, self._stroke_mask, self._stroke = self._stroke_mask, None, []
                self._emit_region(region)
            else:
                self._draw_mask(self.model.mask)
        elif self.tool == "rectangle":
            if self._rect_item is None:
                self._rect_item = QGraphicsRectItem()
                pen = QPen(QColor(0, 200, 255))
                pen.setCosmetic(True)
                pen.setWidth(2)
                self._rect_item.setPen(pen)
                self._rect_item.setZValue(30)
            if self._rect_item.parentItem() is not vb.childGroup:
                vb.addItem(self._rect_item, ignoreBounds=True)
            (y0, x0), (y1, x1) = start, pos
            self._rect_item.setRect(QRectF(min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0)))
            self._rect_item.show()
            if is_finish:
                self._rect_item.hide()
                self._emit_region(rectangle_mask(shape, y0, x0, y1, x1))

    def _emit_region(self, region: np.ndarray) -> None:
        if self.on_region is not None:
            self.on_region(region)
        else:
            self.model.add_to_mask(region)
