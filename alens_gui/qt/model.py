"""The one state object every view reads from: the current explanation, mask and hover pixel.

Views never talk to each other; they push requests into :class:`ExplanationModel` and
redraw from its signals (the napari layer-controls pattern). Re-lensing only swaps the
explanation for ``Explanation.relens(...)`` of the cached maps: no model run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from alens_gui.core.masking import MaskResult, empty_mask

if TYPE_CHECKING:  # torch-importing modules stay out of GUI start-up
    from alens_gui.core.explanation import Explanation
    from alens_gui.core.lens import LensParams


class ExplanationModel(QObject):
    """Holds the current :class:`Explanation` and the interactive state around it.

    Signals
    -------
    changed(object)
        A new explanation (or ``None``); maps, class set or lens changed.
    imageChanged(object)
        A new input image (H, W, 3) is being explained; maps are not ready yet.
    maskChanged(object)
        The mask (H, W) bool changed.
    maskResultChanged(object)
        A :class:`~alens_gui.core.masking.MaskResult` (or ``None``).
    hoverChanged(int, int)
        The pixel (row, column) under the cursor, in map coordinates; (-1, -1) when outside.
    """

    changed = Signal(object)
    imageChanged = Signal(object)
    maskChanged = Signal(object)
    maskResultChanged = Signal(object)
    hoverChanged = Signal(int, int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.explanation: Explanation | None = None
        self.image: np.ndarray | None = None
        self.mask: np.ndarray | None = None
        self.mask_result: MaskResult | None = None
        self.hover: tuple[int, int] = (-1, -1)
        self._undo: list[np.ndarray] = []

    # -- explanation ----------------------------------------------------------------
    def set_image(self, display: np.ndarray) -> None:
        """A new model-sized image: clears the mask and its result."""
        self.image = np.asarray(display, dtype=np.float32)
        self._undo.clear()
        self.mask = empty_mask(self.image.shape[:2])
        self.mask_result = None
        self.imageChanged.emit(self.image)
        self.maskChanged.emit(self.mask)
        self.maskResultChanged.emit(None)

    def set_explanation(self, expl: Explanation | None) -> None:
        if expl is not None and (self.image is None or self.image.shape != expl.image.shape
                                 or not np.array_equal(self.image, expl.image)):
            self.set_image(expl.image)
        self.explanation = expl
        self.changed.emit(expl)

    def relens(self, params: LensParams) -> Explanation | None:
        """Replace the explanation by the same cached maps seen through ``params``."""
        if self.explanation is None:
            return None
        if params == self.explanation.lens:
            return self.explanation
        self.explanation = self.explanation.relens(params)
        self.changed.emit(self.explanation)
        return self.explanation

    # -- mask ---------------------------------------------------------------------
    def _shape(self) -> tuple[int, int] | None:
        return None if self.image is None else tuple(self.image.shape[:2])

    def add_to_mask(self, region: np.ndarray) -> None:
        """Union ``region`` (H, W bool) into the mask, remembering the old one for undo."""
        shape = self._shape()
        if shape is None:
            return
        region = np.asarray(region, dtype=bool)
        if region.shape != shape:
            raise ValueError(f"mask region {region.shape} does not match the image {shape}")
        current = self.mask if self.mask is not None else empty_mask(shape)
        new = current | region
        if np.array_equal(new, current):
            return
        self._undo.append(current)
        self.mask = new
        self.maskChanged.emit(self.mask)

    def replace_mask(self, mask: np.ndarray) -> None:
        shape = self._shape()
        if shape is None:
            return
        current = self.mask if self.mask is not None else empty_mask(shape)
        self._undo.append(current)
        self.mask = np.asarray(mask, dtype=bool).copy()
        self.maskChanged.emit(self.mask)

    def undo_mask(self) -> bool:
        if not self._undo:
            return False
        self.mask = self._undo.pop()
        self.maskChanged.emit(self.mask)
        return True

    def clear_mask(self) -> None:
        shape = self._shape()
        if shape is None or self.mask is None or not self.mask.any():
            return
        self._undo.append(self.mask)
        self.mask = empty_mask(shape)
        self.maskChanged.emit(self.mask)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def set_mask_result(self, result: MaskResult | None) -> None:
        self.mask_result = result
        self.maskResultChanged.emit(result)

    # -- hover --------------------------------------------------------------------
    def set_hover(self, y: int, x: int) -> None:
        shape = self._shape()
        if shape is None or not (0 <= y < shape[0] and 0 <= x < shape[1]):
            y, x = -1, -1
        if (y, x) != self.hover:
            self.hover = (int(y), int(x))
            self.hoverChanged.emit(int(y), int(x))
