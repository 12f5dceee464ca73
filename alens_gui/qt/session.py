"""The one session state: every field a user can set or see, with one change signal per field.

Panels bind their widgets to fields both ways (a widget is never the source of truth),
the controller reacts to fields and writes results back, and views only draw fields.
The pattern is napari's ``EventedModel``, kept small: a :class:`Field` descriptor stores
the value and emits ``<name>_changed`` when, and only when, the value really changes.

Values are immutable (frozen dataclasses, tuples, numbers, strings) or replaced whole
(arrays, explanations), so "changed" is a plain comparison and nothing is mutated
behind a signal's back. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from alens_gui.core.colors import ColorScale
from alens_gui.core.lensparams import AL

from .gallerystate import GalleryModel
from .messages import TaskState

_MISSING = object()
#: The photographs scikit-image ships (the offline sample set); decoded only when chosen.
SAMPLES = ("chelsea", "coffee", "rocket", "astronaut", "stereo_motorcycle", "cat")


def _same(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False  # arrays are replaced whole: a new array is a change
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # objects without a usable ==
        return False


class Field:
    """A session field: ``session.name`` reads it, ``session.name = v`` sets it and emits
    ``session.name_changed(v)`` when ``v`` differs from the current value."""

    def __init__(self, default: Any = None, doc: str = "") -> None:
        self.default = default
        self.__doc__ = doc

    def __set_name__(self, owner, name: str) -> None:
        self.name = name
        self.signal = f"{name}_changed"

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        value = obj._values.get(self.name, _MISSING)
        if value is _MISSING:
            value = self.default() if callable(self.default) else self.default
            obj._values[self.name] = value
        return value

    def __set__(self, obj, value) -> None:
        if _same(self.__get__(obj), value):
            return
        obj._values[self.name] = value
        getattr(obj, self.signal).emit(value)


# -- value types --------------------------------------------------------------------
@dataclass(frozen=True)
class ModelRequest:
    """Which model to load: ``spec`` (default, torchvision:NAME, timm:NAME, hf:DIR or a checkpoint
    file), ``arch`` for state dicts, a ``labels`` file, the ``device``, the ``output`` rule
    (``""``: the model's own, ``softmax`` or ``sigmoid`` for multi-label models), and ``torchscript``:
    the checkpoint is a TorchScript program, loaded as such (it runs code) only when this is set."""

    spec: str = "default"
    arch: str = ""
    labels: str = ""
    device: str = "auto"
    torchscript: bool = False
    output: str = ""


@dataclass(frozen=True)
class ImageRequest:
    """Which image to explain: a file ``path``, a ``sample`` photograph's name, or ``tiles``
    (four sources of a composed 2 x 2 grid)."""

    path: str = ""
    sample: str = ""
    tiles: tuple[str, ...] = ()
    frame: int = 0

    @property
    def label(self) -> str:
        if self.path:
            from pathlib import Path

            return Path(self.path).name + (f" [frame {self.frame}]" if self.frame else "")
        if self.tiles:
            return "2 x 2 grid of " + ", ".join(t.rsplit("/", 1)[-1] for t in self.tiles)
        return f"sample: {self.sample}" if self.sample else ""

    @property
    def empty(self) -> bool:
        return not (self.path or self.sample or self.tiles)


@dataclass(frozen=True)
class ClassRequest:
    """The class set asked for: ``kind`` is ``topk`` (``k``, ``with_lowest``),
    ``best_vs_worst``, ``picked`` (``classes``) or ``tiles`` (the grid's tile classes: ``classes``
    once its run has found them, empty before)."""

    kind: str = "topk"
    k: int = 3
    with_lowest: bool = False
    classes: tuple[int, ...] = ()

    def size(self) -> int:
        """How many classes the set will hold (a grid has four tiles)."""
        if self.kind == "topk":
            return int(self.k) + int(bool(self.with_lowest))
        if self.kind == "picked" or self.classes:
            return len(self.classes)
        return 4 if self.kind == "tiles" else 2

    def describe(self) -> str:
        if self.kind == "topk":
            return f"top-{self.k}" + (" + lowest" if self.with_lowest else "")
        if self.kind == "best_vs_worst":
            return "best vs worst"
        if self.kind == "tiles":
            return "the grid's tile classes"
        return "classes " + ", ".join(map(str, self.classes))


VIEW_MODES = ("both", "refined", "base")


@dataclass(frozen=True)
class ViewOptions:
    """How maps are laid out and shown: which maps (``mode``), overlay on/off and opacity, and
    whether the class-territory view is shown. (The colour scale and the hover read-out's radius
    are session fields of their own: a new colour scale re-renders the colours without re-laying
    out the maps, a new view re-lays them out without re-rendering, and a new radius does neither.)"""

    mode: str = "both"
    overlay: bool = True
    opacity: float = 0.75
    territory: bool = True

    def with_(self, **changes) -> ViewOptions:
        return replace(self, **changes)


#: What the background is doing, for the status bar and the gallery: the state of the task shown
#: (``label`` "" when idle; ``done``/``total``; the last ``message``), as the task runner keeps it.
Activity = TaskState


class Session(QObject):
    """Everything the user set and saw. See the module docstring.

    Inputs (set by panels): ``model_request``, ``image_request``, ``window``,
    ``input_policy``, ``method``, ``options``, ``class_request``, ``lens``, ``view``,
    ``color_scale`` (the maps' colours: a change re-renders them, nothing else), ``selected``, ``tool``, ``brush_radius``, ``fill``, ``mask``, ``hover``.
    Results (set by the controller): ``model`` (a LoadedModel), ``image`` (the image as
    read), ``explanation`` (the complete explanation shown), ``rendered`` (its colour images,
    prepared in a worker), ``estimate`` (the running method's partial estimate, drawn: a
    rendered estimate whose ``.explanation`` is partial; views draw it while it is not None,
    a finished or cancelled run clears it), ``mask_result``, ``activity``, ``stale`` (the settings
    changed since the maps were made), ``pinned`` and ``pinned_rendered`` (an explanation kept
    for comparison, drawn with the current one's colour scale), ``folder`` (the open folder;
    its rows are :attr:`Session.gallery`), ``gallery_activity`` (the folder's background work:
    listing, classifying, Explain all; the gallery shows its progress and a Cancel), ``cohort``
    (the Cohort dock's cohort of the folder: strategies, embedding, territory per class),
    ``cohort_status`` (one line about it) and ``cohort_activity`` (the cohort task's state: the
    dock's progress and Cancel).
    Bookkeeping (set by the controllers): ``shown_request`` (the image request whose image is on
    screen; a request equal to it reads nothing), ``run_wanted`` (a run was asked for before the
    model or the image was in: it starts when both are), ``restoring`` (a session file's fields
    are being set: nothing may run the model).
    """

    model_request = Field(ModelRequest)
    model = Field(None)
    model_status = Field("")
    image_request = Field(ImageRequest)
    image = Field(None)
    window = Field("default")
    input_policy = Field("model")
    method = Field("gradcam")
    options = Field(dict)
    class_request = Field(ClassRequest)
    lens = Field(lambda: AL)
    view = Field(ViewOptions)
    color_scale = Field(ColorScale)
    selected = Field(0)
    explanation = Field(None)
    rendered = Field(None)
    estimate = Field(None)
    stale = Field(False)
    tool = Field("navigate")
    brush_radius = Field(8)
    fill = Field("blur")
    mask = Field(None)
    mask_result = Field(None)
    hover = Field((-1, -1))
    hover_radius = Field(0)
    activity = Field(Activity)
    pinned = Field(None)
    pinned_rendered = Field(None)
    folder = Field("")
    gallery_activity = Field(Activity)
    cohort = Field(None)
    cohort_status = Field("")
    cohort_activity = Field(Activity)
    shown_request = Field(None)
    run_wanted = Field(False)
    restoring = Field(False)

    model_request_changed = Signal(object)
    model_changed = Signal(object)
    model_status_changed = Signal(object)
    image_request_changed = Signal(object)
    image_changed = Signal(object)
    window_changed = Signal(object)
    input_policy_changed = Signal(object)
    method_changed = Signal(object)
    options_changed = Signal(object)
    class_request_changed = Signal(object)
    lens_changed = Signal(object)
    view_changed = Signal(object)
    color_scale_changed = Signal(object)
    selected_changed = Signal(object)
    explanation_changed = Signal(object)
    rendered_changed = Signal(object)
    estimate_changed = Signal(object)
    stale_changed = Signal(object)
    tool_changed = Signal(object)
    brush_radius_changed = Signal(object)
    fill_changed = Signal(object)
    mask_changed = Signal(object)
    mask_result_changed = Signal(object)
    hover_changed = Signal(object)
    hover_radius_changed = Signal(object)
    activity_changed = Signal(object)
    pinned_changed = Signal(object)
    pinned_rendered_changed = Signal(object)
    folder_changed = Signal(object)
    gallery_activity_changed = Signal(object)
    cohort_changed = Signal(object)
    cohort_status_changed = Signal(object)
    cohort_activity_changed = Signal(object)
    shown_request_changed = Signal(object)
    run_wanted_changed = Signal(object)
    restoring_changed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._values: dict[str, Any] = {}
        self._mask_undo: list[np.ndarray] = []
        #: The open folder's rows (a Qt table model; updated one row at a time by the controller).
        self.gallery = GalleryModel(self)

    @classmethod
    def fields(cls) -> list[str]:
        return [n for n, v in vars(cls).items() if isinstance(v, Field)]

    def update(self, **values) -> None:
        """Set several fields (each emits its own signal)."""
        for name, value in values.items():
            if not isinstance(getattr(type(self), name, None), Field):
                raise AttributeError(f"the session has no field {name!r}")
            setattr(self, name, value)

    # -- derived --------------------------------------------------------------------
    @property
    def drawn_explanation(self):
        """What the maps show: the running estimate if there is one, else the shown explanation."""
        return self.estimate.explanation if self.estimate is not None else self.explanation

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(H, W) of the display frame the maps and the mask live in."""
        expl = self.drawn_explanation
        if expl is not None:
            return tuple(expl.shape)
        return None

    def class_label(self, i: int) -> str:
        expl = self.explanation
        if expl is None or not 0 <= i < expl.k:
            return ""
        return f"{int(expl.classes[i])} {expl.class_names[i]}"

    # -- mask editing (with undo) ---------------------------------------------------------
    def add_to_mask(self, region: np.ndarray) -> bool:
        """Union ``region`` (H, W bool) into the mask, remembering the old one for undo."""
        shape = self.image_shape
        if shape is None:
            return False
        region = np.asarray(region, dtype=bool)
        if region.shape != shape:
            raise ValueError(f"mask region {region.shape} does not match the maps {shape}")
        current = self.mask if self.mask is not None else np.zeros(shape, dtype=bool)
        new = current | region
        if np.array_equal(new, current):
            return False
        self._mask_undo.append(current)
        self.mask = new
        return True

    def undo_mask(self) -> bool:
        if not self._mask_undo:
            return False
        self.mask = self._mask_undo.pop()
        return True

    def clear_mask(self) -> None:
        if self.mask is not None and self.mask.any():
            self._mask_undo.append(self.mask)
            self.mask = np.zeros_like(self.mask)

    def reset_mask(self) -> None:
        """A new image: no mask and no undo history."""
        self._mask_undo.clear()
        self.mask = None
        self.mask_result = None

    @property
    def can_undo_mask(self) -> bool:
        return bool(self._mask_undo)
