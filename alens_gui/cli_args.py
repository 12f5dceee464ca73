"""Argument types and model options shared by the ``alens`` sub-commands (:mod:`.cli`,
:mod:`.cli_evaluate`): its own module, so neither command module imports the other's."""

from __future__ import annotations

import argparse


def _floats(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.replace(";", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not vals:
        raise argparse.ArgumentTypeError("expected at least one number")
    return vals


def _option(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"method options look like name=value, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v.strip()


def _size(text: str) -> tuple[int, int]:
    vals = _floats(text.lower().replace("x", ","))
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or any(v < 1 or v != int(v) for v in vals):
        raise argparse.ArgumentTypeError(f"expected a size like 224 or 256,192 (height,width); got {text!r}")
    return int(vals[0]), int(vals[1])


def _three(text: str) -> tuple[float, ...]:
    vals = _floats(text)
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise argparse.ArgumentTypeError(f"expected one number or three (R,G,B); got {text!r}")
    return vals


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The model options shared by every sub-command that loads a model."""
    g = p.add_argument_group("model")
    g.add_argument("--model", default="default",
                   help="default | torchvision:NAME | timm:NAME (also timm:hf-hub:ORG/NAME from the Hugging Face "
                        "cache, timm:local-dir:DIR) | hf:DIR (a transformers image-classification folder) | "
                        "PATH to a checkpoint (default: %(default)s)")
    g.add_argument("--arch", help="architecture of a state-dict checkpoint: timm:NAME, torchvision:NAME, or your own "
                                  "as FILE.py:NAME or module:NAME (a class or function; it runs, so trust the file)")
    g.add_argument("--torchscript", action="store_true",
                   help="the checkpoint is a TorchScript program: load it as one (it runs the code inside it, "
                        "so trust its author); without this flag a TorchScript file is refused")
    g.add_argument("--trust-remote-code", action="store_true",
                   help="an hf:DIR folder whose config.json names its own model code (auto_map): run that code "
                        "(trust its author); without this flag such a folder is refused")
    g.add_argument("--labels", help="class names: a text file (one per line) or JSON")
    g.add_argument("--input-size", type=_size, metavar="H[,W]",
                   help="the model's input size (default: the model's own, else 224)")
    g.add_argument("--mean", type=_three, metavar="M[,M,M]", help="input normalisation mean (default: the model's own)")
    g.add_argument("--std", type=_three, metavar="S[,S,S]", help="input normalisation std (default: the model's own)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    g.add_argument("--no-pretrained", action="store_true", help="random weights for torchvision/timm names")
    g.add_argument("--resize", choices=("model", "stretch", "center-crop", "pad"), default="model",
                   help="fit images to the model's input: model (default) = the model's own resize and crop "
                        "(timm's data config, torchvision's weights.transforms(), a Hugging Face image processor; "
                        "a stretch for the default model and for state dicts), stretch the whole image (grids stay "
                        "whole), scale the short side and crop the centre (maps are NaN outside the crop), or "
                        "scale the long side and pad (the padding is cut from the maps)")
    g.add_argument("--output", choices=("softmax", "sigmoid"),
                   help="how the model's logits become probabilities: softmax over all classes, or sigmoid per "
                        "class for multi-label models (default: what the model says, e.g. a Hugging Face "
                        "problem_type of multi_label_classification, else softmax)")


def model_kwargs(args) -> dict:
    """The keywords of :func:`~.core.models.load_model` that the model options describe (plain values,
    so a Ray actor can load the same model)."""
    return dict(source=args.model, arch=args.arch, labels=args.labels, device=args.device,
                pretrained=not args.no_pretrained, resize=getattr(args, "resize", "model"),
                input_size=getattr(args, "input_size", None), mean=getattr(args, "mean", None),
                std=getattr(args, "std", None), torchscript=getattr(args, "torchscript", False),
                output=getattr(args, "output", None), trust_remote_code=getattr(args, "trust_remote_code", False))


def load_from_args(args):
    from .core.models import load_model

    kw = model_kwargs(args)
    return load_model(kw.pop("source"), **kw)


class _Usage(Exception):
    pass


class _Failed(Exception):
    """One line for stderr (``alens: error: ...``) and exit status 1."""


def _batch_size(text: str):
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a batch size is a whole number or auto, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a batch size is at least 1, got {value}")
    return value
