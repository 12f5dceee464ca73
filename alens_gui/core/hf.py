"""Hugging Face ``transformers`` image classifiers from a local folder (``--model hf:DIR``).

A folder written by ``model.save_pretrained(DIR)`` (and, usually, the image processor's
``save_pretrained(DIR)``) holds ``config.json`` (architecture, ``id2label`` class names,
``problem_type``), the weights (``model.safetensors``, or ``pytorch_model.bin``) and
``preprocessor_config.json`` (the image processor: size, crop, interpolation, mean and std).

What is read, and how
---------------------
* ``config.json`` and ``preprocessor_config.json`` through :func:`~.safeio.read_json` (a
  regular file, a size and nesting limit) before ``transformers`` reads them.
* Weights only from safetensors, or from ``pytorch_model.bin`` with ``torch.load(...,
  weights_only=True)`` (``transformers``' own ``weights_only``; a version without it gets
  safetensors only).
* Never the network (``local_files_only=True``).
* Custom model code (``auto_map`` in ``config.json``, which ``transformers`` runs with
  ``trust_remote_code=True``) only when the caller says so: :func:`custom_code` names it for
  :func:`~.models.code_needed`, and :func:`load_hf_folder` refuses it otherwise.

The model is loaded with eager attention, so that the attention methods can read the
attention weights (:mod:`.methods.vit`), and wrapped in :class:`HFImageClassifier`, whose
``forward(x)`` returns the logits tensor the rest of the program expects.

The image processor's config becomes the model's :class:`~.geometry.InputTransform` (the
``model`` input policy), mean and std; ``problem_type = "multi_label_classification"`` makes
the output a sigmoid per class.
"""

from __future__ import annotations

import inspect
import logging
import re
from pathlib import Path

import torch
from torch import nn

from . import safeio
from .errors import ModelLoadError
from .geometry import InputTransform

log = logging.getLogger(__name__)

#: Largest config.json / preprocessor_config.json read (a 22k-class id2label is ~1 MB).
MAX_CONFIG_BYTES = 16 * 1024 * 1024
#: PIL's resampling filters by number, as image processors store them.
_PIL_RESAMPLE = {0: "nearest", 1: "bicubic", 2: "bilinear", 3: "bicubic", 4: "bilinear", 5: "bilinear"}


def hf_folder(spec: str) -> Path:
    """The folder of an ``hf:DIR`` spec."""
    return Path(spec[3:].strip()).expanduser()


def read_config(folder: Path, name: str = "config.json", required: bool = True) -> dict | None:
    """A JSON config of the folder, read with the size and depth limits (``None`` when absent)."""
    path = folder / name
    if not path.exists() and not required:
        return None
    data = safeio.read_json(path, f"{folder.name}/{name}", ModelLoadError, max_bytes=MAX_CONFIG_BYTES,
                            what="model configuration")
    if not isinstance(data, dict):
        raise ModelLoadError(f"{folder.name}/{name}: expected a JSON object")
    return data


def custom_code(folder: Path) -> str | None:
    """The custom model code a folder's ``config.json`` asks ``transformers`` to run, in words.

    ``None`` when the folder names a plain ``transformers`` architecture (or has no readable
    config: loading then fails with its own message, running nothing).
    """
    try:
        cfg = read_config(folder)
    except ModelLoadError:
        return None
    auto_map = cfg.get("auto_map")
    if not auto_map:
        return None
    target = auto_map.get("AutoModelForImageClassification") if isinstance(auto_map, dict) else None
    what = f" ({target})" if isinstance(target, str) else ""
    return f"the model code named in {folder.name}/config.json auto_map{what}"


class HFImageClassifier(nn.Module):
    """A ``transformers`` image classifier as a plain ``x -> logits`` module.

    Attributes
    ----------
    hf : transformers.PreTrainedModel
        The wrapped model (``hf.config`` holds its configuration).
    """

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hf(pixel_values=x).logits


def _size_of(value, what: str) -> tuple[str, tuple[int, int]] | None:
    """An image processor's ``size`` / ``crop_size`` as ``("exact"|"short", (h, w))``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ModelLoadError(f"preprocessor_config.json: {what} must be a number or an object")
    if isinstance(value, (int, float)):
        return "exact", (int(value), int(value))
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return "exact", (int(value[0]), int(value[1]))
    if isinstance(value, dict):
        if "height" in value and "width" in value:
            return "exact", (int(value["height"]), int(value["width"]))
        if "shortest_edge" in value:
            s = int(value["shortest_edge"])
            return "short", (s, s)
    raise ModelLoadError(f"preprocessor_config.json: {what} {value!r} is not a size this program understands "
                         "(height/width or shortest_edge)")


def _triple(value, default) -> tuple[float, float, float]:
    if value is None:
        return tuple(default)
    vals = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise ModelLoadError(f"preprocessor_config.json: expected 3 values for mean/std, got {value!r}")
    return tuple(vals)


def preprocessing_from_processor(proc: dict, image_size: int | None = None) -> dict:
    """``transform``, ``mean``, ``std`` and ``input_size`` from an image processor's config.

    Follows what ``transformers``' image processors do at inference: an optional resize
    (``size``: height/width, or ``shortest_edge``; ConvNeXt's ``crop_pct`` below 384), an
    optional centre crop (``do_center_crop``, ``crop_size``), ``rescale_factor`` and
    ``image_mean`` / ``image_std``; ``resample`` is PIL's filter number. The mean and std
    returned are for pixels in [0, 1].
    """
    interp = _PIL_RESAMPLE.get(int(proc.get("resample", 2)) if str(proc.get("resample", 2)).isdigit() else 2,
                               "bilinear")
    size = _size_of(proc.get("size"), "size") if proc.get("do_resize", True) else None
    crop = _size_of(proc.get("crop_size"), "crop_size") if proc.get("do_center_crop", False) else None
    if size is None:
        s = int(image_size or 224)
        size = ("exact", (s, s))
    kind, (sh, sw) = size
    crop_pct = proc.get("crop_pct")
    if kind == "short" and isinstance(crop_pct, (int, float)) and not isinstance(crop_pct, bool) and crop is None:
        # ConvNeXt's processor: below 384 the short side goes to size / crop_pct and the centre
        # square of `size` is cropped; from 384 on the image is warped to the square.
        if sh < 384 and 0 < crop_pct <= 1:
            transform = InputTransform((sh, sh), "cover", (int(sh / crop_pct),) * 2, interp)
        else:
            transform = InputTransform((sh, sh), "exact", (sh, sh), interp)
    elif kind == "short":
        target = crop[1] if crop else (sh, sw)
        transform = InputTransform(target, "cover", (sh, sh), interp) if target[0] <= sh and target[1] <= sh \
            else InputTransform(target, "exact", target, interp)
    else:
        target = crop[1] if crop else (sh, sw)
        if target[0] > sh or target[1] > sw:  # a crop larger than the image is padding: not supported
            target = (sh, sw)
        transform = InputTransform(target, "exact", (sh, sw), interp)
    transform = InputTransform(transform.size, transform.mode, transform.scale, transform.interpolation,
                               "its image processor (preprocessor_config.json)")
    rescale = float(proc.get("rescale_factor", 1 / 255)) if proc.get("do_rescale", True) else 1.0
    if proc.get("do_normalize", True):
        mean = _triple(proc.get("image_mean"), (0.5, 0.5, 0.5))
        std = _triple(proc.get("image_std"), (0.5, 0.5, 0.5))
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    # The processor computes (pixel_255 * rescale - mean) / std; our pixels are pixel_255 / 255.
    k = 255.0 * rescale
    if k <= 0 or any(v <= 0 for v in std):
        raise ModelLoadError("preprocessor_config.json: rescale_factor and image_std must be positive")
    mean = tuple(m / k for m in mean)
    std = tuple(s / k for s in std)
    return {"transform": transform, "mean": mean, "std": std, "input_size": transform.size}


def class_names_from_config(cfg: dict, n: int) -> list[str] | None:
    """``id2label`` as a list of ``n`` names, or ``None`` for transformers' ``LABEL_i`` placeholders."""
    raw = cfg.get("id2label")
    if not isinstance(raw, dict) or len(raw) != n:
        return None
    try:
        items = sorted((int(k), str(v)) for k, v in raw.items())
    except (TypeError, ValueError):
        return None
    if [i for i, _ in items] != list(range(n)):
        return None
    names = [v for _, v in items]
    if all(re.fullmatch(r"LABEL_\d+", v) for v in names):
        return None
    return names


def _weights_file(folder: Path) -> tuple[Path | None, bool]:
    """The folder's weights and whether they are safetensors."""
    for name in ("model.safetensors", "model.safetensors.index.json"):
        if (folder / name).exists():
            return folder / name, True
    for name in ("pytorch_model.bin", "pytorch_model.bin.index.json"):
        if (folder / name).exists():
            return folder / name, False
    return None, False


def load_hf_folder(folder: Path, trust_remote_code: bool = False) -> tuple[nn.Module, dict]:
    """Load ``folder`` as a ``transformers`` image classifier (see the module docstring).

    Returns
    -------
    model : HFImageClassifier
    meta : dict
        ``mean``, ``std``, ``input_size``, ``transform``, ``class_names`` (or ``None``),
        ``output`` (``"sigmoid"`` for ``problem_type = "multi_label_classification"``).
    """
    if not folder.is_dir():
        raise ModelLoadError(f"hf:{folder}: no such folder (hf:DIR names a folder written by save_pretrained)")
    cfg = read_config(folder)
    code = custom_code(folder)
    if code and not trust_remote_code:
        raise ModelLoadError(
            f"{folder.name} needs its own Python code to build the model ({code}); loading it runs that code. "
            "If you trust its author, load it on purpose with --trust-remote-code (API trust_remote_code=True)"
        )
    weights, safe = _weights_file(folder)
    if weights is None:
        raise ModelLoadError(f"{folder.name}: no weights (model.safetensors or pytorch_model.bin) in the folder")
    proc = read_config(folder, "preprocessor_config.json", required=False)
    try:
        import transformers
        from transformers import AutoModelForImageClassification
    except ImportError as exc:
        raise ModelLoadError(
            "hf:DIR models need the transformers package: pip install 'alens-gui[hf]' (or pip install transformers)"
        ) from exc
    kwargs = {"local_files_only": True, "attn_implementation": "eager", "trust_remote_code": bool(trust_remote_code)}
    if safe:
        kwargs["use_safetensors"] = True
    elif "weights_only" in inspect.signature(transformers.PreTrainedModel.from_pretrained).parameters:
        kwargs["weights_only"] = True  # torch.load(..., weights_only=True) inside transformers
    else:
        raise ModelLoadError(
            f"{folder.name}: this transformers ({transformers.__version__}) cannot promise to read "
            f"{weights.name} without running code; save the model with safetensors (save_pretrained's default)"
        )
    try:
        transformers.utils.logging.disable_progress_bar()  # its weight-loading bar is noise on our stderr
    except AttributeError:  # pragma: no cover - older transformers
        pass
    try:
        hf = AutoModelForImageClassification.from_pretrained(str(folder), **kwargs)
    except Exception as exc:
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{folder.name}: not a transformers image classifier that loads here: {text}") from exc
    hf = hf.float().eval()
    n = int(getattr(hf.config, "num_labels", 0) or 0)
    meta = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
    image_size = getattr(hf.config, "image_size", None)
    image_size = image_size[0] if isinstance(image_size, (list, tuple)) else image_size
    if proc is not None:
        meta.update(preprocessing_from_processor(proc, image_size if isinstance(image_size, int) else None))
    else:
        s = int(image_size) if isinstance(image_size, int) else 224
        log.warning("%s has no preprocessor_config.json: inputs are stretched to %d x %d with mean/std 0.5",
                    folder.name, s, s)
        meta.update(input_size=(s, s), transform=None)
    meta["class_names"] = class_names_from_config(cfg, n)
    problem = cfg.get("problem_type")
    meta["output"] = "sigmoid" if problem == "multi_label_classification" else None
    return HFImageClassifier(hf), meta
