"""The map views: small multiples of equal size, in the image's own aspect, that only draw the session.

Tiles: the image, the class-territory view, and per class its base and/or refined map
(``view.mode``). All tiles have one size, keep the image's aspect and grow with the
window; the column count is chosen so that the tiles are as large as the space allows
(they wrap for K up to 10 and beyond). Zoom and pan are linked, the crosshair and the
mask are drawn in every tile, and the colour images come ready-made from the controller
(:class:`~alens_gui.core.render.Rendered`, the arrays the exporters composite too), so
drawing is a blit, area-averaged where a tile is smaller than the data.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import (
    QGraphicsRectItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from alens_gui.core.colors import class_colors
from alens_gui.core.masking import brush_mask, rectangle_mask
from alens_gui.core.render import area_average

from ..session import Session
from ..widgets import Throttled, plain_tip

MASK_RGBA = (0, 230, 255, 120)
TITLE_HEIGHT = 18


def bar_labels(mode: str) -> list[str]:
    """The colour bars a view mode shows: one per kind of map on screen."""
    return [kind for kind in ("base", "refined") if mode in ("both", kind)]


class MapViewBox(pg.ViewBox):
    """Hands left-button drags to the masking tool unless the tool is ``navigate``."""

    def __init__(self, tile: MapTile) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self.tile = tile

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 - Qt naming
        grid = self.tile.grid
        if grid.session.tool == "navigate" or ev.button() != Qt.MouseButton.LeftButton:
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        p = self.mapSceneToView(ev.scenePos())
        start = self.mapSceneToView(ev.buttonDownScenePos())
        grid.tool_drag(self, (start.y(), start.x()), (p.y(), p.x()), ev.isStart(), ev.isFinish())

    def mouseClickEvent(self, ev):  # noqa: N802 - Qt naming
        grid = self.tile.grid
        if ev.button() == Qt.MouseButton.LeftButton:
            p = self.mapSceneToView(ev.scenePos())
            if grid.session.tool == "brush":
                ev.accept()
                grid.tool_drag(self, (p.y(), p.x()), (p.y(), p.x()), True, True)
                return
            if grid.session.tool == "navigate" and self.tile.index >= 0:
                ev.accept()
                grid.session.selected = self.tile.index
                return
        super().mouseClickEvent(ev)


class MapTile(QWidget):
    """One view: a title over an image, a heat map (or territory), the mask and a crosshair."""

    def __init__(self, grid: MapsView, kind: str, index: int = -1) -> None:
        super().__init__()
        self.grid, self.kind, self.index = grid, kind, index
        self.title = QLabel()
        self.title.setFixedHeight(TITLE_HEIGHT)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.title.setStyleSheet("font-size: 11px; color: #333;")
        self.view = pg.GraphicsView(background="w")
        # images are blitted unsmoothed: smooth scaling of K x 2 images costs the GUI thread tens of ms
        self.view.setAntialiasing(False)
        self.view.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.view.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.vb = MapViewBox(self)
        self.view.setCentralItem(self.vb)
        self.backdrop = pg.ImageItem()
        self.heat = pg.ImageItem()
        self.mask = pg.ImageItem()
        for item in (self.backdrop, self.heat, self.mask):
            self.vb.addItem(item)
        self.cross = pg.PlotCurveItem(pen=pg.mkPen(QColor(255, 215, 0), width=1), connect="pairs")
        self.cross.setZValue(20)
        self.cross.hide()
        self.vb.addItem(self.cross, ignoreBounds=True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(1, 1, 1, 1)
        lay.setSpacing(0)
        lay.addWidget(self.title)
        lay.addWidget(self.view, 1)
        # Every tile gets exactly the share of the grid its stretch gives it: equal sizes.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        # small enough that a comparison's two halves of K maps fit a 1280-pixel screen; the
        # column choice keeps tiles larger than this wherever there is room
        self.setMinimumSize(40, 40)
        self.size_hw = (0, 0)
        self._title = ("", False, None)
        if kind == "blank":  # keeps base/refined pairs in columns; drawn as empty space, not an empty frame
            policy = self.view.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            self.view.setSizePolicy(policy)
            self.view.hide()
        #: the full-size (backdrop, RGBA map) this tile shows: arrays of the session's Rendered
        self.sources: tuple | None = None
        self._drawn_key: tuple | None = None
        self.vb.sigRangeChangedManually.connect(lambda _m: grid.sync_range(self.vb))
        self.vb.sigTransformChanged.connect(lambda _vb: self._blit())
        self.vb.sigResized.connect(lambda _vb: self._blit())
        self.view.scene().sigMouseMoved.connect(self._moved)

    def set_title(self, text: str, selected: bool = False, color: tuple | None = None, tip: str = "") -> None:
        self._title = (text, selected, color, tip)
        mark = "▶ " if selected else ""
        swatch = ""
        if color is not None:
            swatch = f"<span style='color: rgb{tuple(color)}'>■</span> "
        fm = QFontMetrics(self.title.font())
        shown = fm.elidedText(mark + text, Qt.TextElideMode.ElideRight, max(40, self.width() - 16))
        shown = html.escape(shown)  # a class name from a file is text, never markup
        self.title.setText(swatch + (f"<b>{shown}</b>" if selected else shown))
        self.title.setToolTip(plain_tip(tip or text))

    def set_legend(self, items: list[tuple[tuple, str]]) -> None:
        """The class-territory tile's title: a colour swatch and a name per class (elided to the
        tile's width; the whole legend in the tooltip)."""
        self._title = ("", False, None, "")
        self._legend = items
        fm = QFontMetrics(self.title.font())
        room = max(40, self.width() - 16)
        width = max(12, room // max(1, len(items)) - fm.horizontalAdvance("■ "))
        parts = [f"<span style='color: rgb{tuple(c)}'>■</span> "
                 f"{html.escape(fm.elidedText(name, Qt.TextElideMode.ElideRight, width))}" for c, name in items]
        self.title.setText("&nbsp;".join(parts))
        self.title.setToolTip(plain_tip("class territory (the winning class per pixel; faint: a narrow win): "
                                        + ", ".join(name for _c, name in items)))

    def resizeEvent(self, ev):  # noqa: N802 - Qt naming
        super().resizeEvent(ev)
        if getattr(self, "_legend", None) and not self._title[0]:
            self.set_legend(self._legend)
        if self._title[0]:
            self.set_title(*self._title)  # re-elide for the new width
        QTimer.singleShot(0, self._blit)  # the view box has its new size on the next turn

    def set_size(self, h: int, w: int) -> None:
        if (h, w) != self.size_hw:
            self.size_hw = (h, w)
            self.vb.setRange(QRectF(0, 0, w, h), padding=0.0, disableAutoRange=True)

    def show_map(self, backdrop: np.ndarray, rgba: np.ndarray | None) -> None:
        """Draw ``rgba`` over ``backdrop`` (full-size uint8 arrays of a Rendered)."""
        self.sources = (backdrop, rgba)
        self._blit()

    def reduction(self) -> int:
        """By how much the maps are area-averaged: data pixels per screen pixel, rounded up."""
        px = self.vb.viewPixelSize()
        if not px or not all(math.isfinite(v) and v > 0 for v in px):
            return 1
        return max(1, math.ceil(max(px) - 0.02))

    def _blit(self) -> None:
        """Blit the sources, area-averaged where the tile is smaller than the data (see
        :func:`alens_gui.core.render.area_average`): what a map says must not change with
        the size it is drawn at, and a blit without averaging samples one pixel in n."""
        if self.sources is None:
            return
        backdrop, rgba = self.sources
        f = self.reduction()
        key = (id(backdrop), id(rgba), f)
        if key == self._drawn_key:
            return
        self._drawn_key = key
        h, w = backdrop.shape[:2]
        full = QRectF(0, 0, w, h)
        self.backdrop.setImage(area_average(backdrop, f), levels=(0, 255))
        self.backdrop.setRect(full)
        if rgba is None:
            self.heat.clear()
        else:
            self.heat.setImage(area_average(rgba, f), levels=(0, 255))
            self.heat.setRect(full)

    def set_crosshair(self, y: int, x: int) -> None:
        h, w = self.size_hw
        if y < 0 or not h:
            self.cross.hide()
            return
        self.cross.setData(x=np.array([0, w, x + 0.5, x + 0.5], dtype=float),
                           y=np.array([y + 0.5, y + 0.5, 0, h], dtype=float))
        self.cross.show()

    def _moved(self, pos) -> None:
        if self.vb.sceneBoundingRect().contains(pos):
            p = self.vb.mapSceneToView(pos)
            self.grid.hover_at(int(math.floor(p.y())), int(math.floor(p.x())))
        else:
            self.grid.hover_at(-1, -1)

    def scene_pos_of(self, y: int, x: int) -> QPointF:
        """Scene position of the centre of pixel (row ``y``, column ``x``)."""
        return self.vb.mapViewToScene(QPointF(x + 0.5, y + 0.5))


class ColorBars(pg.GraphicsLayoutWidget):
    """The colour bars of the selected class's base and refined maps."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.setFixedWidth(92)
        self.bars: list[pg.ColorBarItem] = []
        self._labels: list[str] | None = None
        self._lut_id = None
        self.limits: list[tuple[float, float]] = []

    def prepared(self, labels: list[str]) -> bool:
        """Whether the bars for ``labels`` are built."""
        return labels == self._labels

    def prepare(self, labels: list[str]) -> None:
        """Build one bar per label (nothing when they are built already)."""
        if self.prepared(labels):
            return
        self.clear()
        self.bars, self._labels, self._lut_id = [], list(labels), None
        for row, label in enumerate(labels):
            bar = pg.ColorBarItem(values=(0.0, 1.0), interactive=False, label=label, width=12)
            bar.getAxis("right").enableAutoSIPrefix(False) if hasattr(bar, "getAxis") else None
            self.addItem(bar, row=row, col=0)
            self.bars.append(bar)

    def show_limits(self, pairs: list[tuple[str, float, float]], lut: np.ndarray) -> None:
        """Show one bar per ``(label, lo, hi)`` in the colours of ``lut``.

        The bars are made once per set of labels and then only re-levelled: building a
        ColorBarItem costs ~30 ms on the GUI thread, and limits change with every partial
        estimate of a running method.
        """
        self.prepare([label for label, _lo, _hi in pairs])
        key = (lut.shape, lut.tobytes())
        if key != self._lut_id:
            self._lut_id = key
            cmap = pg.ColorMap(pos=np.linspace(0.0, 1.0, lut.shape[0]), color=lut[:, :3])
            for bar in self.bars:
                bar.setColorMap(cmap)
        self.limits = []
        for bar, (_label, lo, hi) in zip(self.bars, pairs):
            bar.setLevels(values=(lo, hi))
            self.limits.append((lo, hi))


class MapsView(QWidget):
    """Small multiples of the session's maps (see the module docstring)."""

    tilesChanged = Signal()

    def __init__(self, session: Session, parent=None, role: str = "current") -> None:
        super().__init__(parent)
        self.session = session
        #: ``current`` draws the explanation being worked on; ``pinned`` the one kept for comparison.
        self.role = role
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.banner.setStyleSheet("background: #fff3cd; color: #664d03; padding: 3px;")
        self.placeholder = QLabel("The maps appear here once the model and an image are loaded.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)  # one line of it made a comparison's half 390 px wide at least
        self.placeholder.setStyleSheet("color: #777;")
        self.area = QWidget()
        self.grid_layout = QGridLayout(self.area)
        self.grid_layout.setContentsMargins(0, 0, 0, 0)
        self.grid_layout.setSpacing(4)
        self.colorbars = ColorBars()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.area, 1)
        row.addWidget(self.colorbars)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.banner)
        lay.addWidget(self.placeholder, 1)
        lay.addLayout(row, 1)
        self.area.hide()
        self.colorbars.hide()
        self.tiles: dict[tuple, MapTile] = {}
        self._pool: dict[tuple, MapTile] = {}
        self._order: list[tuple] = []
        self._columns = 0
        self._syncing = False
        self._stroke: list[tuple[float, float]] = []
        self._stroke_mask: np.ndarray | None = None
        self._rect_item: QGraphicsRectItem | None = None
        self._hover = Throttled(self._set_hover, 25, self)
        s = session
        if role == "pinned":
            s.pinned_rendered_changed.connect(self._on_rendered)
        else:  # the running estimate is drawn while there is one; then the result (or, cancelled, the last one)
            s.rendered_changed.connect(lambda r: self._on_rendered(r) if s.estimate is None else None)
            s.estimate_changed.connect(lambda _e: self._on_rendered(self.rendered))
        s.view_changed.connect(self._on_view)
        s.selected_changed.connect(lambda _i: self._titles())
        s.hover_changed.connect(self._on_hover)
        if role == "current":
            s.mask_changed.connect(self._draw_mask)
            s.stale_changed.connect(lambda _v: self._update_banner())
            s.image_changed.connect(self._on_image)
            s.model_changed.connect(lambda m: self.prewarm() if m is not None else None)
            s.class_request_changed.connect(lambda _r: self.prewarm() if s.model is not None else None)
        self._warm: list[tuple] = []
        self._warm_timer = QTimer(self)
        self._warm_timer.setInterval(0)
        self._warm_timer.timeout.connect(self._warm_one)

    # -- building ahead -------------------------------------------------------------------
    def prewarm(self, k: int | None = None) -> None:
        """Build the tiles and colour bars the next result needs while the window is idle.

        A map tile costs ~5 ms and a colour bar ~25 ms to build on the GUI thread; built
        when the first partial estimate arrives, they were one stall of over 100 ms. Here
        they are built one per event-loop turn instead, so no turn takes long.
        """
        k = min(10, max(2, self.session.class_request.size() if k is None else int(k)))
        keys = [("image", -1), ("territory", -1), ("blank", -1)]
        keys += [(kind, i) for i in range(k) for kind in ("base", "refined")]
        self._warm = [key for key in keys if key not in self._pool]
        if not self.colorbars.prepared(bar_labels(self.session.view.mode)):
            self._warm.append(("colorbars", -1))
        if self._warm:
            self._warm_timer.start()

    def prepared(self) -> dict[tuple, MapTile]:
        """Every tile built so far, shown or not, by ``(kind, index)``."""
        return dict(self._pool)

    def _warm_one(self) -> None:
        if not self._warm:
            self._warm_timer.stop()
            return
        key = self._warm.pop(0)
        if key[0] == "colorbars":
            self.colorbars.prepare(bar_labels(self.session.view.mode))
        else:
            self._tile(key)

    # -- what this view draws -------------------------------------------------------------
    @property
    def explanation(self):
        return self.session.pinned if self.role == "pinned" else self.session.drawn_explanation

    @property
    def rendered(self):
        s = self.session
        if self.role == "pinned":
            return s.pinned_rendered
        return s.estimate if s.estimate is not None else s.rendered

    def _scale_to(self, yx, src, dst):
        """A pixel of one explanation at the same relative position in another (linked hover)."""
        if src is None or dst is None or src.shape == dst.shape or yx[0] < 0:
            return yx
        (hs, ws), (hd, wd) = src.shape, dst.shape
        return int((yx[0] + 0.5) * hd / hs), int((yx[1] + 0.5) * wd / ws)

    # -- layout ---------------------------------------------------------------------------
    def _wanted_order(self) -> list[tuple]:
        expl = self.explanation
        view = self.session.view
        order: list[tuple] = [("image", -1)]
        if expl is None:
            return order
        order.append(("territory", -1) if view.territory else ("blank", -1))
        for i in range(expl.k):
            if view.mode in ("both", "base"):
                order.append(("base", i))
            if view.mode in ("both", "refined"):
                order.append(("refined", i))
        return order

    def _tile(self, key: tuple) -> MapTile:
        if key not in self._pool:
            self._pool[key] = MapTile(self, key[0], key[1])
        return self._pool[key]

    def _best_columns(self, n: int, pairs: bool) -> int:
        expl = self.explanation
        h, w = expl.shape if expl is not None else (3, 4)
        aspect = w / max(1, h)
        # the maps' own size, not the grid area's: that one is resized after this widget
        width = max(100, self.width() - self.colorbars.width() - 8)
        height = max(100, self.height() - (self.banner.height() if self.banner.isVisible() else 0))
        best, best_size = 1, -1.0
        for c in range(1, n + 1):
            if pairs and c % 2 and c != 1:
                continue
            rows = math.ceil(n / c)
            tile_w = min(width / c - 6, (height / rows - TITLE_HEIGHT - 6) * aspect)
            if tile_w > best_size + 1e-6:
                best, best_size = c, tile_w
        return best

    def follow(self, leader: MapsView) -> None:
        """Lay out as ``leader`` does (the pinned half of a comparison follows the current one):
        the same column count, so class i sits in the same cell on both sides."""
        self.leader = leader
        leader.tilesChanged.connect(lambda: self.relayout() if self.isVisible() and self._order else None)

    def relayout(self, force: bool = False) -> None:
        order = self._wanted_order()
        pairs = self.session.view.mode == "both"
        leader = getattr(self, "leader", None)
        if leader is not None and leader.columns and leader.explanation is not None:
            cols = min(leader.columns, len(order))
        else:
            cols = self._best_columns(len(order), pairs)
        if not force and order == self._order and cols == self._columns:
            return
        for tile in self.tiles.values():
            self.grid_layout.removeWidget(tile)
            tile.hide()
        self.tiles = {}
        for pos, key in enumerate(order):
            tile = self._tile(key)
            self.grid_layout.addWidget(tile, pos // cols, pos % cols)
            tile.show()
            self.tiles[key] = tile
        for c in range(self.grid_layout.columnCount()):
            self.grid_layout.setColumnStretch(c, 1 if c < cols else 0)
        rows = math.ceil(len(order) / cols)
        for r in range(self.grid_layout.rowCount()):
            self.grid_layout.setRowStretch(r, 1 if r < rows else 0)
        self._order, self._columns = order, cols
        # Lay the grid out now, not on the next turn of the event loop: until then the tiles
        # just shown keep the geometry they were built with (40 x 40), and whatever reads them
        # in between (a fit-to-view, a linked zoom, an export of the view) saw that size.
        if self.isVisible():
            self.layout().activate()
            self.grid_layout.activate()
        self._titles()
        self.tilesChanged.emit()

    def resizeEvent(self, ev):  # noqa: N802 - Qt naming
        super().resizeEvent(ev)
        if self._order:
            self.relayout()

    @property
    def columns(self) -> int:
        return self._columns

    def map_tiles(self, kind: str) -> list[MapTile]:
        """The visible tiles of one kind (``base``/``refined``), in class order."""
        return [t for (k, _i), t in sorted(self.tiles.items(), key=lambda kv: kv[0][1]) if k == kind]

    # -- drawing ----------------------------------------------------------------------------
    def _on_image(self, image) -> None:
        if image is None:
            return
        if self.explanation is not None:
            # a new window of the same image: the image tile shows it now, the maps when re-run
            tile = self.tiles.get(("image", -1))
            pixels = getattr(image, "pixels", None)
            if tile is not None and pixels is not None and pixels.shape[:2] == tuple(getattr(image, "shape", ())):
                if self.explanation.source.get("sha256") == getattr(image, "info", {}).get("sha256"):
                    from alens_gui.core.geometry import resize_image

                    tile.backdrop.setImage(resize_image(pixels, self.explanation.shape), levels=(0.0, 1.0))
            return
        # A new image before its maps: show it alone so the user sees what is being explained.
        self.placeholder.hide()
        self.area.show()
        self.relayout()
        img = np.asarray(getattr(image, "pixels", image), dtype=np.float32)
        tile = self.tiles.get(("image", -1))
        if tile is not None:
            tile.backdrop.setImage(img, levels=(0.0, 1.0))
            tile.set_size(*img.shape[:2])

    def _on_rendered(self, r) -> None:
        if r is None:
            return
        expl = r.explanation
        self.placeholder.hide()
        self.area.show()
        self.colorbars.show()
        self.relayout()
        h, w = expl.shape
        img = expl.image
        for key, tile in self._pool.items():
            kind, i = key
            if i >= expl.k:
                continue
            tile.set_size(h, w)
            if kind == "image":
                if tile.backdrop.image is not img:
                    tile.backdrop.setImage(img, levels=(0.0, 1.0))
                tile.heat.clear()
            elif kind in ("territory", "base", "refined"):
                rgba = r.territory if kind == "territory" else (r.base if kind == "base" else r.refined)[i]
                tile.show_map(r.backdrop, rgba)
        self._on_view(self.session.view)
        if self.role == "current":
            self._draw_mask(self.session.mask)
        self._titles()
        self._update_banner()
        y, x = self.session.hover
        for tile in self.tiles.values():
            tile.set_crosshair(y, x)

    def _on_view(self, view) -> None:
        if self.explanation is not None:
            self.relayout()
        opacity = view.opacity if view.overlay else 0.0
        for (kind, _i), tile in self._pool.items():
            if kind in ("base", "refined"):
                tile.heat.setOpacity(opacity)
            elif kind == "territory":
                tile.heat.setOpacity(1.0 if view.overlay else 0.0)
        self._colorbars()

    def _colorbars(self) -> None:
        r = self.rendered
        if r is None:
            return
        i = min(max(0, self.session.selected), r.explanation.k - 1)
        scale = r.scale
        blim, rlim = r.limits
        lims = {"base": blim[i], "refined": rlim[i]}
        pairs = [(label, *scale.levels(lims[label], r.signed)) for label in bar_labels(self.session.view.mode)]
        key = (tuple(pairs), r.signed, scale.gamma)
        if key != getattr(self, "_bar_key", None):
            self._bar_key = key
            self.colorbars.show_limits(pairs, scale.lut(r.signed))

    def _titles(self) -> None:
        s = self.session
        expl = self.explanation
        for (kind, i), tile in self.tiles.items():
            if kind == "image":
                label = (expl.source.get("file") if expl is not None else "") or "pinned image"
                tile.set_title(("pinned: " + label) if self.role == "pinned" else (s.image_request.label or "image"))
            elif kind == "territory":
                if expl is not None:  # its legend: each class's colour, as in the maps' titles
                    tile.set_legend([(c, n) for c, n in zip(class_colors(expl.classes), expl.class_names)])
                else:
                    tile.set_title("class territory (winner per pixel)")
            elif kind == "blank":
                tile.set_title("class territory: off (T shows it)")
            elif expl is not None and i < expl.k:
                sel = i == s.selected
                # the class's name (its index only on hover: "2 grade 3" read as one name), and
                # which method made the map: after a cancel the method box may name another
                what = (expl.method_label or expl.method) if kind == "base" else "Attribution Lens"
                tile.set_title(f"{expl.class_names[i]} (p={expl.probs[i]:.2f}) · {what}",
                               selected=sel, color=class_colors(expl.classes)[i],
                               tip=f"class {int(expl.classes[i])}: {expl.class_names[i]}, p = {expl.probs[i]:.4f}\n"
                                   f"{kind} map of {expl.method_label or expl.method}")
        self._colorbars()

    def _update_banner(self) -> None:
        if self.role == "pinned":
            return
        expl = self.explanation
        parts = []
        if expl is not None and expl.partial:
            parts.append("Partial estimate: the method is still running; these maps will be replaced.")
        elif self.session.stale:  # (while a run is under way there is nothing to re-run)
            parts.append("The settings changed since these maps were made: Run (Ctrl+R) to update them.")
        self.banner.setText(" ".join(parts))
        self.banner.setVisible(bool(parts))

    def _draw_mask(self, mask) -> None:
        if mask is None:
            for tile in self._pool.values():
                tile.mask.clear()
            return
        if self._stroke_mask is not None and self._stroke_mask.shape == mask.shape:
            mask = mask | self._stroke_mask
        rgba = np.zeros(mask.shape + (4,), dtype=np.uint8)
        rgba[mask] = MASK_RGBA
        for tile in self._pool.values():
            tile.mask.setImage(rgba, levels=(0, 255))

    # -- linked zoom and hover ------------------------------------------------------------------
    def sync_range(self, source: pg.ViewBox) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            # the region asked for, not the source's view of it: a tile laid out a moment ago (no
            # size yet, or the size of an earlier layout) stretches its view rect to its own
            # aspect, and copying that made every tile show a region many times too large
            rect = source.targetRect()
            for tile in self._pool.values():
                if tile.vb is not source:
                    tile.vb.setRange(rect, padding=0.0, disableAutoRange=True)
        finally:
            self._syncing = False

    def reset_zoom(self) -> None:
        expl = self.explanation
        if expl is None:
            return
        h, w = expl.shape
        for tile in self._pool.values():
            tile.vb.setRange(QRectF(0, 0, w, h), padding=0.0, disableAutoRange=True)

    def hover_at(self, y: int, x: int) -> None:
        self._hover(y, x)

    def _set_hover(self, y: int, x: int) -> None:
        expl = self.explanation
        if expl is None or not (0 <= y < expl.shape[0] and 0 <= x < expl.shape[1]):
            y, x = -1, -1
        elif self.role == "pinned":  # the hover is kept in the current image's pixels
            y, x = self._scale_to((y, x), expl, self.session.drawn_explanation)
        self.session.hover = (int(y), int(x))

    def _on_hover(self, yx) -> None:
        if self.role == "pinned":
            yx = self._scale_to(yx, self.session.drawn_explanation, self.explanation)
        y, x = yx
        for tile in self.tiles.values():
            tile.set_crosshair(y, x)

    # -- masking tools ------------------------------------------------------------------------
    def tool_drag(self, vb: MapViewBox, start, pos, is_start: bool, is_finish: bool) -> None:
        """Brush strokes and rectangles drawn on any tile become mask regions."""
        shape = self.session.image_shape
        if shape is None or self.role == "pinned":
            return
        tool = self.session.tool
        if tool == "brush":
            if is_start:
                self._stroke = [start]
            self._stroke.append(pos)
            self._stroke_mask = brush_mask(shape, self._stroke, float(self.session.brush_radius))
            self._draw_mask(self.session.mask if self.session.mask is not None else np.zeros(shape, bool))
            if is_finish:
                region, self._stroke_mask, self._stroke = self._stroke_mask, None, []
                if not self.session.add_to_mask(region):
                    self._draw_mask(self.session.mask)
        elif tool == "rectangle":
            y0, x0 = start
            y1, x1 = pos
            if self._rect_item is None or self._rect_item.scene() is not vb.scene():
                if self._rect_item is not None and self._rect_item.scene() is not None:
                    self._rect_item.scene().removeItem(self._rect_item)
                self._rect_item = QGraphicsRectItem()
                self._rect_item.setPen(QPen(QColor(0, 200, 255), 0))
                self._rect_item.setZValue(30)
                vb.addItem(self._rect_item, ignoreBounds=True)
            self._rect_item.setRect(QRectF(min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0)))
            self._rect_item.show()
            if is_finish:
                self._rect_item.hide()
                self.session.add_to_mask(rectangle_mask(shape, y0, x0, y1, x1))
