"""What a run is made of, as one frozen value: :class:`RunSettings` with a :class:`ClassSet` inside.

A run is made of a method and its options, a class-set request, the lens, the intensity
window (and frame) and the input policy. Front ends build one :class:`RunSettings` where the
user sets it (a CLI's arguments, the window's panels, a session file) and pass it whole to
the API (``Explainer.explain(image, settings)``), the batch engine, jobs, cache keys and
files; when a value needs translating in a second place, this module is missing a method.

Both types are importable without torch, round-trip through plain JSON
(:meth:`RunSettings.to_json` / :meth:`RunSettings.from_json`, which validates every field
of a document someone else may have made: one :class:`~.errors.AlensError` line for
anything wrong), and give a stable :meth:`RunSettings.key` for caches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import classsets
from .errors import AlensError, ClassSetError, LensError, MethodError, WindowError
from .lensparams import AL, LensParams, preset

CLASS_SET_KINDS = ("topk", "best_vs_worst", "picked", "tiles")
#: Input policies: how an image is fitted to the model's input ("model" = the model's own data config).
INPUT_POLICIES = ("stretch", "center-crop", "pad", "model")
#: Largest class set a run may ask for (the lens is meant for a handful of classes; a few hundred
#: maps of a 640-pixel image are already gigabytes).
MAX_K = 256


class SettingsError(AlensError):
    """Run settings (from a file, a session or arguments) are malformed."""


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SettingsError(f"{what} must be an integer from {lo} to {hi}; got {value!r}")
    return value


@dataclass(frozen=True)
class ClassSet:
    """A class-set request (SPEC section 1), resolved per image by :meth:`resolve`.

    ``kind`` is ``"topk"`` (``k`` most probable, plus the least probable with
    ``with_lowest``), ``"best_vs_worst"`` (argmax and argmin), ``"picked"`` (the user's
    ``classes``) or ``"tiles"`` (a grid's four tile classes, also in ``classes``). ``label``
    names where a picked set came from (a preset's name), for captions.
    """

    kind: str = "topk"
    k: int = 3
    with_lowest: bool = False
    classes: tuple[int, ...] = ()
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind not in CLASS_SET_KINDS:
            raise ClassSetError(f"a class set is one of {', '.join(CLASS_SET_KINDS)}; got {self.kind!r}")
        object.__setattr__(self, "classes", tuple(int(c) for c in self.classes))
        if self.kind == "topk" and (self.k < 1 or self.k + int(self.with_lowest) < 2):
            raise ClassSetError("top-k needs k >= 2 (or k = 1 with the lowest class) so that K >= 2")
        if self.kind == "topk" and self.k > MAX_K:
            raise ClassSetError(f"top-k takes at most {MAX_K} classes; got {self.k}")
        if self.kind in ("picked", "tiles"):
            if len(self.classes) > MAX_K:
                raise ClassSetError(f"a class set holds at most {MAX_K} classes; got {len(self.classes)}")
            negative = [c for c in self.classes if c < 0]
            if negative:
                raise ClassSetError(f"class {negative[0]} is out of range: class indices start at 0")
            classsets.validate_classes(self.classes, 1 << 31)  # no duplicates, K >= 2; range per model

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def top(cls, k: int = 3, with_lowest: bool = False) -> ClassSet:
        return cls("topk", int(k), bool(with_lowest))

    @classmethod
    def best_vs_worst(cls) -> ClassSet:
        return cls("best_vs_worst", 2)

    @classmethod
    def picked(cls, classes: Sequence[int], label: str = "") -> ClassSet:
        return cls("picked", len(classes), False, tuple(classes), label)

    @classmethod
    def parse(cls, text: str, class_names: Sequence[str] | None = None) -> ClassSet:
        """``"285,967"`` or ``"tabby, espresso"`` as a picked set."""
        return cls.picked(classsets.parse_classes(text, class_names))

    @classmethod
    def from_request(cls, classes=None, top_k: int | None = None, with_lowest: bool = False,
                     best_vs_worst: bool = False, class_names: Sequence[str] | None = None) -> ClassSet:
        """The API's keyword form (``classes=`` / ``top_k=`` / ``best_vs_worst=``) as one value."""
        chosen = [x for x in (classes is not None, top_k is not None, best_vs_worst) if x]
        if len(chosen) > 1:
            raise ClassSetError("choose one class set: classes, top_k or best_vs_worst")
        if with_lowest and (classes is not None or best_vs_worst):
            raise ClassSetError("with_lowest goes with top_k")
        if classes is not None:
            if isinstance(classes, ClassSet):
                return classes
            if isinstance(classes, str):
                return cls.parse(classes, class_names)
            return cls.picked(list(classes))
        if best_vs_worst:
            return cls.best_vs_worst()
        return cls.top(top_k or 3, with_lowest)

    # -- use -----------------------------------------------------------------------------------
    def size(self) -> int:
        """How many classes the set holds once resolved."""
        if self.kind == "topk":
            return self.k + int(self.with_lowest)
        if self.kind in ("picked", "tiles"):
            return len(self.classes)
        return 2

    @property
    def per_image(self) -> bool:
        """Whether the classes depend on the image's probabilities (top-k, best-vs-worst)."""
        return self.kind in ("topk", "best_vs_worst")

    def resolve(self, probs, num_classes: int | None = None) -> list[int]:
        """The class indices for an image with probabilities ``probs`` (over all classes)."""
        import numpy as np

        p = np.asarray(probs).reshape(-1)
        n = p.size if num_classes is None else int(num_classes)
        if self.kind == "topk":
            return classsets.validate_classes(classsets.top_k(p, self.k, self.with_lowest), n)
        if self.kind == "best_vs_worst":
            return classsets.best_vs_worst(p)
        return classsets.validate_classes(self.classes, n)

    def check(self, num_classes: int) -> None:
        """Fail now (before any work) when the set cannot fit a model with ``num_classes``."""
        if self.kind in ("picked", "tiles"):
            classsets.validate_classes(self.classes, num_classes)
        elif self.size() > num_classes:
            raise ClassSetError(f"the model has only {num_classes} classes; cannot take {self.size()} of them")

    def describe(self, class_names: Sequence[str] | None = None) -> str:
        """For captions and reports, e.g. ``"top-3 + lowest"``, ``"preset 'grades': grade 1, grade 2"``."""
        if self.kind == "topk":
            return f"top-{self.k}" + (" + lowest" if self.with_lowest else "")
        if self.kind == "best_vs_worst":
            return "best vs worst"
        if class_names is not None and all(0 <= c < len(class_names) for c in self.classes):
            names = ", ".join(class_names[c] for c in self.classes)
        else:
            names = ", ".join(map(str, self.classes))
        if self.kind == "tiles":
            return f"the grid's tile classes ({names})"
        return f"preset {self.label!r}: {names}" if self.label else f"classes {names}"

    def as_keywords(self) -> dict[str, Any]:
        """The keyword form of :meth:`Explainer.explain` (``classes=`` / ``top_k=`` / ...)."""
        if self.kind == "topk":
            return {"top_k": self.k, "with_lowest": self.with_lowest}
        if self.kind == "best_vs_worst":
            return {"best_vs_worst": True}
        return {"classes": list(self.classes)}

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        if self.kind == "topk":
            d.update(k=self.k, with_lowest=self.with_lowest)
        elif self.kind in ("picked", "tiles"):
            d["classes"] = list(self.classes)
        if self.label:
            d["label"] = self.label
        return d

    @classmethod
    def from_json(cls, d: Any) -> ClassSet:
        """Inverse of :meth:`to_json`, checking every field (one :class:`SettingsError` line)."""
        if not isinstance(d, Mapping):
            raise SettingsError(f"a class set must be an object; got {type(d).__name__}")
        kind = d.get("kind", "topk")
        if kind not in CLASS_SET_KINDS:
            raise SettingsError(f"a class set is one of {', '.join(CLASS_SET_KINDS)}; got {kind!r}")
        label = d.get("label", "")
        if not isinstance(label, str) or len(label) > 200:
            raise SettingsError("a class set's label must be a short text")
        try:
            if kind == "topk":
                lowest = d.get("with_lowest", False)
                if not isinstance(lowest, bool):
                    raise SettingsError(f"with_lowest must be true or false; got {lowest!r}")
                return cls("topk", _int(d.get("k", 3), "k", 1, MAX_K), lowest, (), label)
            if kind == "best_vs_worst":
                return cls("best_vs_worst", 2, False, (), label)
            classes = d.get("classes")
            if not isinstance(classes, list) or len(classes) > MAX_K:
                raise SettingsError(f"a class set's classes must be a list of at most {MAX_K} indices")
            items = tuple(_int(c, "a class index", 0, (1 << 31) - 1) for c in classes)
            return cls(kind, len(items), False, items, label)
        except ClassSetError as exc:
            raise SettingsError(str(exc)) from exc


def _freeze_options(options: Mapping[str, Any] | Sequence[tuple[str, Any]] | None) -> tuple[tuple[str, Any], ...]:
    items = dict(options or {})
    out = []
    for k, v in sorted(items.items()):
        if not isinstance(k, str):
            raise SettingsError(f"option names are text; got {k!r}")
        if isinstance(v, list):
            v = tuple(v)
        if not (v is None or isinstance(v, (bool, int, float, str, tuple))):
            raise SettingsError(f"option {k} must be a number, text or a list; got {type(v).__name__}")
        out.append((k, v))
    return tuple(out)


def _number(v: float) -> str:
    """A window value written without losing digits: ``40``, ``-600``, ``0.25``, ``32770.5``."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _window_text(window) -> str | None:
    """The one written form of a window request, whichever front end gave it: ``None`` for the
    file's default (``None``, ``""``, the menu's ``"default"``), a mode name in lower case, or
    ``"C,W"`` for a manual window (a ``(center, width)`` pair, a :class:`~.windowing.Window` or
    a text such as ``" 40.0 ; 400 "``), so that equal windows are equal settings and cache keys."""
    from .windowing import Window, parse_window, window_request

    if isinstance(window, str):
        window = window.strip().lower()
    window = window_request(window)
    if window is None:
        return None
    if not isinstance(window, (str, Window)):
        try:
            window = tuple(window)
        except TypeError:
            raise SettingsError(f"a window is auto, full, dicom or CENTER,WIDTH; got {window!r}") from None
    parsed = parse_window(window)  # WindowError (one line) for anything else
    if isinstance(parsed, Window):
        return f"{_number(parsed.center)},{_number(parsed.width)}"
    return parsed


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides a run's result, besides the model and the image (frozen).

    Attributes
    ----------
    method : str
        A registered method name (``alens methods``).
    options : tuple of (name, value)
        The method's options as given (defaults are filled in by :meth:`resolved_options`);
        build with ``RunSettings(..., options={"steps": 32})``.
    classes : ClassSet
    lens : LensParams
    window : str or None
        The intensity-window request: ``None`` (the default for the file: ``dicom`` for
        DICOM, ``auto`` above 8 bits), ``"auto"``, ``"full"``, ``"dicom"`` or ``"C,W"``. Any
        front end's form is accepted and written one way: ``"default"`` is ``None``, a
        ``(center, width)`` pair, a ``Window`` or ``"40.0, 400"`` become ``"40,400"``.
    frame : int or None
        The frame of a multi-frame file (from 0).
    resize : str or None
        The input policy (:data:`INPUT_POLICIES`); ``None`` keeps the model's own.
    """

    method: str = "ixg"
    options: tuple[tuple[str, Any], ...] = ()
    classes: ClassSet = field(default_factory=ClassSet)
    lens: LensParams = AL
    window: str | None = None
    frame: int | None = None
    resize: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method:
            raise SettingsError(f"a method name is text; got {self.method!r}")
        object.__setattr__(self, "options", _freeze_options(self.options))
        if isinstance(self.lens, str):
            object.__setattr__(self, "lens", preset(self.lens))
        if not isinstance(self.lens, LensParams):
            raise SettingsError(f"lens must be LensParams or a preset name; got {type(self.lens).__name__}")
        if not isinstance(self.classes, ClassSet):
            raise SettingsError(f"classes must be a ClassSet; got {type(self.classes).__name__}")
        object.__setattr__(self, "window", _window_text(self.window))
        if self.frame is not None:
            _int(self.frame, "frame", 0, 1_000_000)
        if self.resize is not None and self.resize not in INPUT_POLICIES:
            raise SettingsError(f"the input policy is one of {', '.join(INPUT_POLICIES)}; got {self.resize!r}")

    # -- derived -------------------------------------------------------------------------------
    @property
    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def resolved_options(self) -> dict[str, Any]:
        """The method's options with defaults filled in and values checked (MethodError)."""
        from .methods.registry import get_method

        return get_method(self.method).resolve_options(self.option_dict)

    def check(self, num_classes: int | None = None) -> None:
        """Fail before any work: unknown method or option, a class set that cannot fit the model."""
        self.resolved_options()
        if num_classes is not None:
            self.classes.check(num_classes)

    def with_(self, **changes) -> RunSettings:
        """A copy with some fields changed (``options`` may be a dict)."""
        return replace(self, **changes)

    def explain_keywords(self) -> dict[str, Any]:
        """Keyword arguments for :meth:`Explainer.explain` (class set, lens, window, frame, options)."""
        kw = dict(self.classes.as_keywords())
        kw.update(lens=self.lens, window=self.window, frame=self.frame)
        kw.update(self.option_dict)
        return kw

    def describe(self, class_names: Sequence[str] | None = None) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options)
        parts = [self.method + (f" ({opts})" if opts else ""), self.classes.describe(class_names),
                 self.lens.describe()]
        if self.window:
            parts.append(f"window {self.window}")
        if self.resize:
            parts.append(f"input {self.resize}")
        return "; ".join(parts)

    # -- files and keys ------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in self.options},
            "classes": self.classes.to_json(),
            "lens": self.lens.as_dict(),
            "window": self.window,
            "frame": self.frame,
            "resize": self.resize,
        }

    @classmethod
    def from_json(cls, d: Any) -> RunSettings:
        """Inverse of :meth:`to_json`, validating every field (one :class:`SettingsError` line).

        Unknown methods and options are refused here too, so a file cannot name a method
        this version does not have.
        """
        if not isinstance(d, Mapping):
            raise SettingsError(f"run settings must be an object; got {type(d).__name__}")
        method = d.get("method", "ixg")
        if not isinstance(method, str) or len(method) > 100:
            raise SettingsError("the method must be a short text")
        options = d.get("options") or {}
        if not isinstance(options, Mapping) or len(options) > 64:
            raise SettingsError("the method options must be an object")
        lens = d.get("lens")
        try:
            if lens is None:
                lens_value = AL
            elif isinstance(lens, str):
                lens_value = preset(lens)
            elif isinstance(lens, Mapping):
                allowed = {"temperatures", "tau", "normalize", "softmax_input", "reduce"}
                if set(lens) - allowed:
                    raise SettingsError(f"unknown lens field {sorted(set(lens) - allowed)[0]!r}")
                temps = lens.get("temperatures", AL.temperatures)
                if not isinstance(temps, (list, tuple)) or not 0 < len(temps) <= 32 or not all(
                        isinstance(t, (int, float)) and not isinstance(t, bool) for t in temps):
                    raise SettingsError("the lens temperatures must be a list of up to 32 numbers")
                tau = lens.get("tau", 0.0)
                if isinstance(tau, bool) or not isinstance(tau, (int, float)):
                    raise SettingsError(f"tau must be a number; got {tau!r}")
                lens_value = LensParams(tuple(temps), tau, lens.get("normalize", "none"),
                                        lens.get("softmax_input", "signed"), lens.get("reduce", "sum"))
            else:
                raise SettingsError("the lens must be an object or a preset name")
            window = d.get("window")
            if window is not None and (not isinstance(window, str) or len(window) > 64):
                raise SettingsError("the window must be a short text")
            frame = d.get("frame")
            if frame is not None:
                _int(frame, "frame", 0, 1_000_000)
            resize = d.get("resize")
            if resize is not None and not isinstance(resize, str):
                raise SettingsError("the input policy must be text")
            for k, v in options.items():
                if isinstance(v, list) and (len(v) > 64 or not all(isinstance(x, (int, float, str)) for x in v)):
                    raise SettingsError(f"option {k} must be a short list of numbers or texts")
            out = cls(method, dict(options), ClassSet.from_json(d.get("classes", {})), lens_value,
                      window, frame, resize)
            out.resolved_options()
        except (LensError, ClassSetError, MethodError, WindowError) as exc:
            raise SettingsError(str(exc)) from exc
        return out

    def key(self) -> str:
        """A stable digest of everything that decides the result (for cache keys).

        Options are resolved (a default given explicitly is the same key as one left out), the
        window is in its one written form (see ``__post_init__``), frame 0 is the default frame
        and a class set's label (a caption) is left out; an unknown method keys on what was given.
        """
        try:
            opts = self.resolved_options()
        except AlensError:
            opts = self.option_dict
        doc = self.to_json()
        doc["classes"].pop("label", None)  # (a caption: the same classes are the same maps)
        doc["frame"] = self.frame or None  # (a file's first frame is its default)
        doc["options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(opts.items())}
        text = json.dumps(doc, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
