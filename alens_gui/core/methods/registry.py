"""The method registry: every attribution method's name, label, description, options,
family, architectures and aliases, importable without torch.

The GUI builds its method picker and option forms from :func:`list_methods` before torch
has loaded; the implementation of a method (``MethodInfo.fn``, a function in one of the
sibling modules ``gradient``, ``cam``, ``vit``, ``lrp``, ``perturbation``) is imported
only when the method runs. Registering a method once makes it available to the API, the
CLI, the GUI picker, the benchmark and the evaluation suite: built-in methods are
declared in this file; :func:`register_method` adds your own.

A method is a function ``fn(model, x, classes, progress, ctx=None, **options)`` that
returns a tensor of shape ``(K, C, H, W)`` (pixel-space) or ``(K, 1, h, w)`` (CAM-style,
any resolution); :func:`~.base.compute_base` runs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import MethodError


@dataclass(frozen=True)
class Option:
    """One user-settable option of a method (shown in the GUI, parsed by the CLI)."""

    default: Any
    help: str = ""
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None

    def coerce(self, name: str, value: Any) -> Any:
        kind = type(self.default)
        try:
            if kind is bool and isinstance(value, str):
                value = value.strip().lower() in ("1", "true", "yes", "on")
            elif self.default is not None:
                value = kind(value)
        except (TypeError, ValueError):
            raise MethodError(f"option {name} expects a {kind.__name__}, got {value!r}") from None
        if self.choices is not None and value not in self.choices:
            raise MethodError(f"option {name} must be one of {', '.join(map(str, self.choices))}; got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise MethodError(f"option {name} must be >= {self.minimum}; got {value}")
        if self.maximum is not None and value > self.maximum:
            raise MethodError(f"option {name} must be <= {self.maximum}; got {value}")
        return value



@dataclass(frozen=True)
class MethodInfo:
    """A registered attribution method.

    ``impl`` is the implementation: a callable, or ``"module:function"`` naming a
    function in a module of :mod:`alens_gui.core.methods`, imported on first use of
    :attr:`fn` (so listing methods and their options never imports torch).
    """

    name: str
    label: str
    impl: Callable[..., Any] | str
    description: str = ""
    family: str = "gradient"  # gradient | cam | perturbation | attention
    architectures: tuple[str, ...] = ("cnn", "vit")
    options: dict[str, Option] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    #: The method's work starts with a gradient-enabled forward pass at the input, whose
    #: logits also choose the class set (:class:`~.base.PendingClasses`): one forward pass
    #: end to end. Other methods get one plain forward pass for the class set first.
    shares_forward: bool = False

    @property
    def fn(self) -> Callable[..., Any]:
        """The implementation (its module is imported now if it was not yet)."""
        if callable(self.impl):
            return self.impl
        module, _, name = self.impl.partition(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)

    def resolve_options(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults merged with ``given``; unknown option names are an error."""
        given = {k: v for k, v in (given or {}).items() if v is not None}
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise MethodError(f"method {self.name} has no option {unknown[0]!r} (options: {known})")
        return {k: opt.coerce(k, given.get(k, opt.default)) for k, opt in self.options.items()}


_REGISTRY: dict[str, MethodInfo] = {}
_ALIASES: dict[str, str] = {}


def _declare(
    name: str,
    label: str,
    impl: Callable[..., Any] | str,
    *,
    description: str = "",
    family: str = "gradient",
    architectures: Sequence[str] = ("cnn", "vit"),
    options: dict[str, Option] | None = None,
    aliases: Sequence[str] = (),
    shares_forward: bool = False,
) -> MethodInfo:
    if name in _REGISTRY or name in _ALIASES:
        raise ValueError(f"method {name!r} registered twice (or as another method's alias)")
    clash = [a for a in aliases if a in _REGISTRY or a in _ALIASES]
    if clash:
        raise ValueError(f"alias {clash[0]!r} of method {name!r} is already taken")
    info = MethodInfo(name, label, impl, description, family, tuple(architectures), dict(options or {}),
                      tuple(aliases), shares_forward)
    _REGISTRY[name] = info
    for a in aliases:
        _ALIASES[a] = name
    return info


def register_method(
    name: str,
    label: str,
    *,
    description: str = "",
    family: str = "gradient",
    architectures: Sequence[str] = ("cnn", "vit"),
    options: dict[str, Option] | None = None,
    aliases: Sequence[str] = (),
) -> Callable:
    """Decorator registering your own ``fn(model, x, classes, progress, ctx=None, **options)``."""

    def deco(fn: Callable) -> Callable:
        _declare(name, label, fn, description=description, family=family, architectures=architectures,
                 options=options, aliases=aliases)
        return fn

    return deco


def get_method(name: str) -> MethodInfo:
    """Look a method up by name or alias (case-insensitive; ``-`` and ``_`` alike)."""
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise MethodError(f"unknown method {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def list_methods() -> list[MethodInfo]:
    """All registered methods, in registration order."""
    return list(_REGISTRY.values())


# ---------------------------------------------------------------------------------
# The built-in methods (implementations in the sibling modules named by ``impl``)
# ---------------------------------------------------------------------------------
_QUERY = {"query": Option("auto", "token whose relevance is shown: auto, cls, mean or patch 'row,col;row,col'")}
_VIT = ("vit",)

_IG_OPTS = {
    "steps": Option(20, "integrated-gradient steps", minimum=1, maximum=500),
    "batch_size": Option(10, "steps per forward pass (memory)", minimum=1, maximum=500),
}

_LAYER_OPT = {"layer": Option("", "module name of the feature map (empty: automatic)")}

_BASELINE = {"baseline": Option("black", "what replaces a removed feature", choices=("black", "blurred", "zero"))}

_BATCH = {"batch_size": Option(32, "perturbed images per forward pass", minimum=1, maximum=1024)}

_SLIC = {
    "segments": Option(100, "SLIC superpixels (approximate number)", minimum=2, maximum=2000),
    "compactness": Option(10.0, "SLIC compactness", minimum=0.01, maximum=1000.0),
}
_ALL = ("cnn", "vit")


_declare(
    "saliency", "Saliency (gradient)", "gradient:saliency",
    description="Gradient of the class logit w.r.t. the input (Simonyan et al.).",
    options={"abs": Option(True, "take |gradient| (captum's default)")},
    aliases=("gradient", "grad"),
    shares_forward=True,
)

_declare(
    "ixg", "Input × Gradient", "gradient:input_x_gradient",
    description="Input times the gradient of the class logit (Shrikumar et al.).",
    aliases=("input_x_gradient", "inputxgradient"),
    shares_forward=True,
)

_declare(
    "ig", "Integrated Gradients", "gradient:integrated_gradients",
    description="Path integral of gradients from a baseline (Sundararajan et al.); midpoint Riemann sum.",
    options={
        "steps": Option(50, "integration steps", minimum=1, maximum=1000),
        "baseline": Option("black", "reference image", choices=("black", "blurred", "zero")),
        "batch_size": Option(25, "steps per forward pass (memory)", minimum=1, maximum=1000),
    },
    aliases=("integrated_gradients",),
)

_declare(
    "smoothgrad", "SmoothGrad", "gradient:smoothgrad",
    description="Saliency averaged over noisy copies of the input (Smilkov et al.).",
    options={
        "samples": Option(25, "noisy samples", minimum=1, maximum=500),
        "noise": Option(0.15, "noise std as a fraction of the input range", minimum=0.0, maximum=2.0),
        "abs": Option(True, "average |gradient|"),
        "seed": Option(0, "random seed"),
        "batch_size": Option(25, "samples per forward pass", minimum=1, maximum=500),
    },
)

_declare(
    "guided_backprop", "Guided Backprop", "gradient:guided_backprop",
    description="Gradient with negative signals zeroed at every ReLU (Springenberg et al.).",
    architectures=("cnn",),
    aliases=("gbp", "guided_backpropagation"),
    shares_forward=True,
)

_declare(
    "deeplift", "DeepLift", "gradient:deeplift",
    description="DeepLift (rescale rule) via captum, classes batched along the batch axis.",
    architectures=("cnn",),
    options={"baseline": Option("black", "reference image", choices=("black", "blurred", "zero"))},
)

_declare(
    "rollout", "Attention rollout", "vit:attention_rollout",
    description="Product over blocks of head-averaged attention plus identity (Abnar & Zuidema 2020); "
                "class-agnostic: the same map for every class, so the lens has no competition to "
                "resolve and keeps nothing (a reference for the class-specific methods).",
    family="attention", architectures=_VIT,
    options={"head_fusion": Option("mean", "how heads are combined", choices=("mean", "max", "min")), **_QUERY},
    aliases=("attention_rollout",),
)

_declare(
    "grad_rollout", "Grad-Rollout", "vit:grad_rollout",
    description="Rollout of gradient-weighted attention: blocks' head means of (attention x gradient)+ "
                "accumulated as R <- R + A R (gradient-weighted attention rollout, Chefer et al. 2021b).",
    family="attention", architectures=_VIT, options=dict(_QUERY), aliases=("gradient_rollout",),
)

_declare(
    "tattn", "T-Attn", "vit:transition_attention",
    description="Attention as a Markov chain's transition matrices, the chain's state read at the query "
                "token and weighted by the integrated gradient of the last block's attention (Yuan et al. 2021).",
    family="attention", architectures=_VIT,
    options={**_IG_OPTS, "start_layer": Option(0, "first block the chain passes through", minimum=0), **_QUERY},
    aliases=("t_attn", "transition_attention"),
)

_declare(
    "biattn", "Bi-Attn", "vit:bidirectional_attention",
    description="Chen et al. 2023 (head-wise): attention perception R <- R + (sum_h w_h A_h) R from block "
                "start_layer on, head weights w_h from |A_h^T dy/dA_h| at the input, times the reasoning feedback "
                "(integrated gradient of the last block's attention from a zero input, positive part, head mean).",
    family="attention", architectures=_VIT,
    options={**_IG_OPTS,
             "start_layer": Option(3, "first block (0-based) of the perception rollout", minimum=0),
             **_QUERY},
    aliases=("bi_attn",),
)

_declare(
    "inflow", "InFlow", "vit:inflow",
    description="Token-to-token transition matrices whose skip and attention paths are weighted by the norms "
                "of what each path carries, rolled out and combined with the class relevance of the patch "
                "embeddings (gradient x embedding) (after Walker et al. 2025).",
    family="attention", architectures=_VIT, options=dict(_QUERY),
)

_declare(
    "transformer_lrp", "Transformer-LRP", "vit:transformer_lrp",
    description="Chefer et al. 2021: blocks' head means of (attention gradient x attention relevance)+ "
                "accumulated as R <- R + A R; relevances by LRP with the LayerNorm and attention rules.",
    family="attention", architectures=_VIT, options=dict(_QUERY), aliases=("tlrp", "t_lrp", "chefer"),
)

_declare(
    "gradcam", "Grad-CAM", "cam:gradcam",
    description="Feature maps weighted by their spatially averaged gradients, ReLU (Selvaraju et al.).",
    family="cam", architectures=("cnn", "vit"), options=dict(_LAYER_OPT), aliases=("grad_cam",),
    shares_forward=True,
)

_declare(
    "layercam", "LayerCAM", "cam:layercam",
    description="Feature maps weighted element-wise by their positive gradients, ReLU (Jiang et al.).",
    family="cam", architectures=("cnn", "vit"), options=dict(_LAYER_OPT), aliases=("layer_cam",),
    shares_forward=True,
)

_declare(
    "guided_gradcam", "Guided Grad-CAM", "cam:guided_gradcam",
    description="Guided Backprop multiplied by the upsampled Grad-CAM map.",
    family="gradient", architectures=("cnn",), options=dict(_LAYER_OPT), aliases=("guided_grad_cam",),
    shares_forward=True,
)

_declare(
    "lrp", "LRP (ε-rule)", "lrp:lrp",
    description="Layer-wise Relevance Propagation, epsilon rule with epsilon -> 0 (Bach et al. 2015), as input x "
                "modified gradient (Ancona et al. 2018); residual additions split relevance in proportion. "
                "CNNs of convolutions, linear, batch-norm, pooling and ReLU/ReLU6/LeakyReLU layers, "
                "including the default EfficientNet-Lite0 and ResNets.",
    family="gradient", architectures=("cnn",),
    aliases=("layerwise_relevance_propagation",),
)

_declare(
    "occlusion", "Occlusion", "perturbation:occlusion",
    description="Change of each class logit when a sliding window is set to the baseline, averaged over the "
                "windows covering a pixel (Zeiler & Fergus); 15 x 15 windows, stride 8.",
    family="perturbation", architectures=_ALL,
    options={
        "window": Option(15, "window size in pixels", minimum=1, maximum=4096),
        "stride": Option(8, "window stride in pixels", minimum=1, maximum=4096),
        **_BASELINE, **_BATCH,
    },
)

_declare(
    "feature_ablation", "Feature Ablation", "perturbation:feature_ablation",
    description="Change of each class logit when one SLIC superpixel at a time is set to the baseline.",
    family="perturbation", architectures=_ALL, options={**_SLIC, **_BASELINE, **_BATCH},
    aliases=("ablation",),
)

_declare(
    "shapley_sampling", "Shapley Value Sampling", "perturbation:shapley_sampling",
    description="Shapley values of SLIC superpixels estimated from random permutations (Castro et al. 2009): "
                "each permutation adds the superpixels one by one to the baseline image.",
    family="perturbation", architectures=_ALL,
    options={"samples": Option(25, "random permutations", minimum=1, maximum=10000),
             "seed": Option(0, "random seed"), **_SLIC, **_BASELINE, **_BATCH},
    aliases=("shapley_value_sampling", "svs"),
)

_declare(
    "kernel_shap", "KernelSHAP", "perturbation:kernel_shap",
    description="Shapley values of SLIC superpixels by weighted linear regression on random coalitions "
                "sampled from the Shapley kernel (Lundberg & Lee 2017).",
    family="perturbation", architectures=_ALL,
    options={"samples": Option(200, "random coalitions", minimum=2, maximum=100000),
             "seed": Option(0, "random seed"), **_SLIC, **_BASELINE, **_BATCH},
    aliases=("kernelshap", "shap"),
)

_declare(
    "lime", "LIME", "perturbation:lime",
    description="Weighted linear surrogate on random on/off SLIC superpixels, weighted by an exponential "
                "kernel on the cosine distance to the full image (Ribeiro et al. 2016).",
    family="perturbation", architectures=_ALL,
    options={"samples": Option(200, "random perturbations", minimum=2, maximum=100000),
             "kernel_width": Option(0.25, "width of the similarity kernel (cosine distance)", minimum=1e-3),
             "ridge": Option(1.0, "ridge penalty of the linear surrogate", minimum=0.0),
             "seed": Option(0, "random seed"), **_SLIC, **_BASELINE, **_BATCH},
)
