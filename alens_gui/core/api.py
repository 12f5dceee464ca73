"""The Python API: three lines from an image to lensed maps.

>>> from alens_gui import Explainer
>>> ex = Explainer.default()
>>> result = ex.explain("cat.jpg", method="ixg", top_k=3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from .errors import ClassSetError
from .explanation import Explanation
from .geometry import Geometry
from .images import load_image
from .lens import AL, LensParams, preset
from .methods.base import PendingClasses, compute_base, get_method
from .models import LoadedModel, load_model
from .progress import Progress, ensure_progress
from .settings import ClassSet, RunSettings


def resolve_lens(lens: LensParams | str | None) -> LensParams:
    if lens is None:
        return AL
    if isinstance(lens, str):
        return preset(lens)
    return lens


@dataclass(frozen=True)
class Prepared:
    """An image ready to explain: display image, its geometry, model input, probabilities, class set,
    and its provenance (:meth:`~alens_gui.core.images.ImageInput.provenance`)."""

    display: np.ndarray
    x: torch.Tensor
    probs: np.ndarray
    classes: list[int]
    geometry: Geometry | None = None
    source: dict | None = None


class Explainer:
    """A loaded model plus everything needed to explain images with it."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded

    @classmethod
    def default(cls, device=None) -> Explainer:
        """The offline EfficientNet-Lite0 ImageNet model."""
        return cls(load_model("default", device=device))

    @classmethod
    def from_spec(cls, spec: str = "default", **kwargs) -> Explainer:
        """Any model :func:`~alens_gui.core.models.load_model` accepts."""
        return cls(load_model(spec, **kwargs))

    @property
    def model(self) -> torch.nn.Module:
        return self.loaded.model

    @property
    def class_names(self) -> list[str]:
        return self.loaded.class_names

    @property
    def normalization(self) -> dict[str, tuple[float, ...]]:
        """The model's input normalisation, ``{"mean": (...), "std": (...)}`` per channel: a model
        input is ``(image in [0, 1] - mean) / std`` at :attr:`input_size` (for evaluators that feed
        the model their own images)."""
        return {"mean": tuple(float(v) for v in self.loaded.mean), "std": tuple(float(v) for v in self.loaded.std)}

    @property
    def input_size(self) -> tuple[int, int]:
        """The model's input (height, width)."""
        return tuple(int(v) for v in self.loaded.input_size)

    def predict(self, image) -> np.ndarray:
        """The model's probabilities over all classes for an image (softmax, or sigmoid per class)."""
        return self.loaded.predict(image)

    def choose_classes(
        self,
        probs: np.ndarray,
        classes: Sequence[int] | str | None = None,
        top_k: int | None = None,
        with_lowest: bool = False,
        best_vs_worst: bool = False,
    ) -> list[int]:
        """Resolve a class-set request (a :class:`ClassSet` or the keyword form); default top-3."""
        request = ClassSet.from_request(classes, top_k, with_lowest, best_vs_worst, self.class_names)
        return request.resolve(probs, self.loaded.num_classes)

    def explain(
        self,
        image,
        method: str | RunSettings = "ixg",
        *,
        classes: Sequence[int] | str | None = None,
        top_k: int | None = None,
        with_lowest: bool = False,
        best_vs_worst: bool = False,
        lens: LensParams | str | None = None,
        progress: Progress | None = None,
        on_partial=None,
        on_classes=None,
        window=None,
        frame: int | None = None,
        include_identifiers: bool = False,
        **method_options,
    ) -> Explanation:
        """Explain an image for a class set with a base method and the lens.

        One forward pass end to end: the model runs once at the image with gradients
        enabled; the probabilities (and, for ``top_k`` / ``best_vs_worst``, the class set)
        come from those logits, and the method's K backward passes run on the same graph
        (methods marked ``shares_forward``: Saliency, Input × Gradient, Guided Backprop,
        Grad-CAM, LayerCAM, Guided Grad-CAM). Other methods (IG, SmoothGrad, perturbation,
        attention methods, ...) never run the model at the image itself with gradients, so
        the class set costs them one plain forward pass first.

        Parameters
        ----------
        image : path, ImageInput, array, PIL image or tensor
        method : str or RunSettings
            A registered method name (see ``alens methods``), or a whole
            :class:`~alens_gui.core.settings.RunSettings` (method, options, class set, lens,
            window, frame and input policy in one value; then give none of those keywords).
        classes, top_k, with_lowest, best_vs_worst
            The class set (one of them; default top-3).
        lens : LensParams or "al" / "var"
        progress : Progress, optional
            Receives progress and can cancel the run.
        on_partial : callable, optional
            Called with an :class:`Explanation` of the running estimate whenever the
            method has one (Integrated Gradients and SmoothGrad after each batch).
        on_classes : callable, optional
            Called once with a :class:`Prepared` (display image, geometry, probabilities
            over all classes, the chosen classes) as soon as the forward pass has chosen
            the class set, before the backward passes: a front end shows the classes
            while the long part runs. Called from the computing thread.
        window : str, (center, width) or Window, optional
            The intensity window for data above 8 bits and DICOM: ``"auto"``, ``"full"``,
            ``"dicom"`` or ``"C,W"`` (see :func:`~alens_gui.core.images.load_image`).
        frame : int, optional
            The frame of a multi-frame DICOM file, from 0.
        include_identifiers : bool
            Copy DICOM patient/study identifiers into ``Explanation.source`` (and so into
            the npz and reports). Off by default: identifiers never leave the program.
        **method_options
            Passed to the method (e.g. ``steps=32`` for IG).
        """
        loaded = self.loaded
        if isinstance(method, RunSettings):
            given = [k for k, v in (("classes", classes), ("top_k", top_k), ("lens", lens), ("window", window),
                                    ("frame", frame)) if v is not None]
            given += [k for k, v in (("with_lowest", with_lowest), ("best_vs_worst", best_vs_worst)) if v]
            if given or method_options:
                raise ClassSetError(f"give either RunSettings or {', '.join(given or sorted(method_options))}, "
                                    "not both")
            settings = method
            method, method_options = settings.method, settings.option_dict
            lens, window, frame = settings.lens, settings.window, settings.frame
            request = settings.classes
            if settings.resize and settings.resize != loaded.resize:
                loaded = replace(loaded, resize=settings.resize)
        else:
            request = ClassSet.from_request(classes, top_k, with_lowest, best_vs_worst, self.class_names)
        info = get_method(method)
        opts = info.resolve_options(method_options)  # bad options and class sets fail before any work
        request.check(loaded.num_classes)
        src = load_image(image, window=window, frame=frame)
        display, geometry, x = loaded.fit(src.pixels)
        source = src.provenance(include_identifiers)
        found: dict[str, Prepared] = {}

        def choose(logits: torch.Tensor) -> list[int]:
            probs = self.loaded.to_probabilities(logits)[0].cpu().numpy()
            chosen = request.resolve(probs, loaded.num_classes)
            found["prepared"] = Prepared(display, x, probs, chosen, geometry, source)
            if on_classes is not None:
                on_classes(found["prepared"])
            return chosen

        return self._run(x, PendingClasses(choose), found, info, opts, resolve_lens(lens), progress, on_partial)

    def prepare(
        self,
        image,
        classes: Sequence[int] | str | None = None,
        top_k: int | None = None,
        with_lowest: bool = False,
        best_vs_worst: bool = False,
        *,
        window=None,
        frame: int | None = None,
        include_identifiers: bool = False,
    ) -> Prepared:
        """Read and window, resize, classify (one plain forward pass), choose the class set.

        With :meth:`explain_prepared` this is the two-call form of :meth:`explain`; it
        costs one forward pass more than ``explain(..., on_classes=...)``, which also
        shows the classes before the backward passes. ``image`` may be an
        :class:`~alens_gui.core.images.ImageInput` the front end already holds (read once,
        re-windowed without reading again).
        """
        src = load_image(image, window=window, frame=frame)
        display, geometry, x = self.loaded.fit(src.pixels)
        probs = self.loaded.probabilities(x)
        chosen = self.choose_classes(probs, classes, top_k, with_lowest, best_vs_worst)
        return Prepared(display, x, probs, chosen, geometry, src.provenance(include_identifiers))

    def explain_prepared(
        self,
        prepared: Prepared,
        method: str = "ixg",
        *,
        lens: LensParams | str | None = None,
        progress: Progress | None = None,
        on_partial=None,
        **method_options,
    ) -> Explanation:
        """Run the method on a :class:`Prepared` input (see :meth:`prepare`)."""
        info = get_method(method)
        opts = info.resolve_options(method_options)
        return self._run(prepared.x, prepared.classes, {"prepared": prepared}, info, opts, resolve_lens(lens),
                         progress, on_partial)

    def _run(self, x, classes, found: dict, info, opts: dict, params: LensParams, progress, on_partial) -> Explanation:
        """Run the method (``found["prepared"]`` is there once the class set is known) and lens it."""
        progress = ensure_progress(progress)
        sink = progress.on_partial
        if on_partial is not None:
            def to_explanation(raw):
                on_partial(self._build(found["prepared"], raw.cpu().numpy(), params, info, opts, partial=True))

            progress.on_partial = to_explanation
        try:
            raw = compute_base(self.model, x, classes, info, progress, self.loaded.context(), **opts)
        finally:
            progress.on_partial = sink
        return self._build(found["prepared"], raw.cpu().numpy(), params, info, opts)

    def _build(self, prepared: Prepared, raw, params, info, options: dict, partial: bool = False) -> Explanation:
        all_probs, cls = prepared.probs, prepared.classes
        top = np.argsort(-all_probs)[:5]
        return Explanation.from_raw(
            prepared.display, cls, [self.class_names[c] for c in cls], all_probs[cls], raw, params,
            geometry=prepared.geometry,
            method=info.name, method_label=info.label,
            method_options=dict(options),
            model_name=self.loaded.name,
            top5=[(int(c), self.class_names[c], float(all_probs[c])) for c in top],
            source=dict(prepared.source or {}),
            partial=partial,
            output=self.loaded.output,
        )

