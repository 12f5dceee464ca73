"""Vision Transformer methods: attention rollout, Grad-Rollout, T-Attn, Bi-Attn, InFlow, Transformer-LRP.

Supported models are timm ``VisionTransformer``s (any patch size, with or without a
class token, register tokens counted through ``num_prefix_tokens``, non-square inputs
when the model was built with ``dynamic_img_size=True``), torchvision's
``VisionTransformer`` (``vit_b_16`` ...; fixed input size) and Hugging Face ViT-style
classifiers loaded with ``hf:DIR`` (``ViTForImageClassification`` and models of the same
layout: a list of layers with ``attention``, ``layernorm_before`` and ``layernorm_after``;
class, distillation and register tokens counted; fixed input size). Grad-CAM on ViTs is the
ordinary ``gradcam`` method: its layer is the last block (its first LayerNorm) and its token-to-grid reshape
is done here (:func:`vit_cam_layer`, :func:`tokens_to_grid`). The gradient methods
(saliency, ixg, ig, smoothgrad) need nothing special.

Attention weights are read without changing the model's outputs: timm's fused
scaled-dot-product attention is switched off for the duration of a call and the
softmax output is read at ``attn_drop``; torchvision's ``nn.MultiheadAttention`` (called
with ``need_weights=False``) gets a temporary ``forward`` computing the same attention
explicitly; a Hugging Face model's ``config._attn_implementation`` names, for the call, an
attention function registered with ``transformers``' ``AttentionInterface`` that computes
eager attention and keeps its weights. Everything is restored in ``finally`` blocks, also
on errors or cancel.

Every method returns a patch-grid map ``(K, 1, h, w)`` that ``compute_base`` upsamples.
All K classes share the forward passes: one forward, then one backward per class.

How the methods are defined here
--------------------------------
Written from the papers' definitions (no code taken from their repositories):

* ``rollout``: R = prod_l rownorm(A_l / 2 + I / 2), heads averaged (Abnar & Zuidema).
* ``grad_rollout``: R <- R + mean_h[(dy/dA_l * A_l)+] R, from R = I (gradient-weighted rollout).
* ``tattn``: Markov-chain state s = A_L[q], s <- s + s A_l for earlier blocks, times the
  positive integrated gradient (from the black image) of the last attention (Yuan et al.).
* ``biattn``: Chen et al. 2023, head-wise form, following the structure of the
  authors' reference code: perception R <- R + (sum_h w_h A_h) R over blocks
  ``start_layer``..L (default 3, i.e. the reference's ``start_layer=4``), with
  w_h = mean |A_h^T dy/dA_h| at the input, normalised to sum 1 per block; feedback = the
  positive part of the last block's attention gradient averaged over ``steps`` inputs
  from zero to x (both ends included), head mean; map = feedback * perception.
* ``inflow``: per block, the skip and attention paths are mixed in proportion to the
  token norms they carry (the MLP path is token-wise), rolled out, and multiplied by the
  positive gradient x patch embedding entering the first block (our reading of the
  algebra of Walker et al. 2025, which combines transition matrices with patch embeddings).
* ``transformer_lrp``: Chefer et al. 2021's R <- R + mean_h[(dy/dA * R_A)+] R, with the
  attention relevance R_A computed by LRP-0 in gradient x input form under the
  conservative LayerNorm and attention rules (the paper uses the alpha-beta rule).

Running the grid pointing game on a ViT
---------------------------------------
Random weights give shapes, not meaning: the grid game needs trained weights. No model
hub is reachable from this project's machines, so either

* have the weights in the timm / Hugging Face cache (``~/.cache/huggingface``) and load
  ``--model timm:vit_base_patch16_224`` (or ``torchvision:vit_b_16`` with the torch hub
  cache in ``~/.cache/torch/hub/checkpoints``), or
* save a state dict (``.pth`` / ``.safetensors``) and load it with
  ``--model PATH --arch timm:vit_base_patch16_224`` (any timm ViT name; the number of
  classes is read from the checkpoint, class names from ``--labels`` or ImageNet).

The grid is built at the model's input size (224 for the ViTs above), so tiles are 112
pixels and each tile covers 7 x 7 patches of 16 pixels.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MethodError
from ..progress import Progress
from .hooks import hooks

#: Module class names that mark a transformer although "Attention" is not in them (timm's
#: class-attention, twins, XCiT, halo/bottleneck self-attention, ConViT; torchvision's ViT block).
_TRANSFORMER_TYPES = (
    "VisionTransformer", "EncoderBlock", "ClassAttn", "TalkingHeadAttn", "LocallyGroupedAttn",
    "GlobalSubSampleAttn", "CrossCovarianceAttn", "HaloAttn", "BottleneckAttn", "GPSA", "MHSA",
)


@dataclass
class ViTInfo:
    """What the ViT methods need to know about a Vision Transformer."""

    kind: str  # "timm" | "torchvision" | "hf"
    model: nn.Module
    blocks: list[nn.Module]
    block_names: list[str]
    attentions: list[nn.Module]
    num_prefix: int
    has_cls: bool
    patch_size: tuple[int, int]
    config: object = None  # "hf": the transformers config whose attention implementation is switched

    def norm_names(self) -> tuple[str, str]:
        """The blocks' LayerNorms before attention and before the MLP."""
        return {"timm": ("norm1", "norm2"), "torchvision": ("ln_1", "ln_2"),
                "hf": ("layernorm_before", "layernorm_after")}[self.kind]

    def grid(self, x: torch.Tensor) -> tuple[int, int]:
        """The patch grid (h, w) for an input of the shape of ``x``."""
        hh, ww = int(x.shape[-2]), int(x.shape[-1])
        if self.kind == "timm":
            pe = self.model.patch_embed
            if getattr(self.model, "dynamic_img_size", False) and hasattr(pe, "dynamic_feat_size"):
                return tuple(int(v) for v in pe.dynamic_feat_size((hh, ww)))
            if getattr(pe, "grid_size", None) is not None:
                return tuple(int(v) for v in pe.grid_size)
        return hh // self.patch_size[0], ww // self.patch_size[1]


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def vit_info(model: nn.Module) -> ViTInfo | None:
    """A :class:`ViTInfo` for a timm or torchvision ViT; ``None`` for anything else."""
    names = {id(m): n for n, m in model.named_modules()}
    if hasattr(model, "blocks") and hasattr(model, "patch_embed") and hasattr(model, "num_prefix_tokens"):
        blocks = list(model.blocks)
        attns = [getattr(b, "attn", None) for b in blocks]
        if not blocks or any(a is None or not hasattr(a, "attn_drop") or not hasattr(a, "fused_attn") for a in attns):
            return None
        return ViTInfo(
            "timm", model, blocks, [names[id(b)] for b in blocks], attns, int(model.num_prefix_tokens),
            getattr(model, "cls_token", None) is not None, _pair(model.patch_embed.patch_size),
        )
    hf = _hf_vit_info(model, names)
    if hf is not None:
        return hf
    enc = getattr(model, "encoder", None)
    if enc is not None and hasattr(enc, "layers") and hasattr(model, "conv_proj") and hasattr(model, "class_token"):
        blocks = list(enc.layers)
        attns = [getattr(b, "self_attention", None) for b in blocks]
        if not blocks or any(not isinstance(a, nn.MultiheadAttention) for a in attns):
            return None
        return ViTInfo(
            "torchvision", model, blocks, [names[id(b)] for b in blocks], attns, 1, True,
            _pair(model.patch_size),
        )
    return None


def is_attention_module(module: nn.Module) -> bool:
    """Whether a module mixes tokens by attention (the one rule for "this is a transformer")."""
    name = type(module).__name__
    return isinstance(module, nn.MultiheadAttention) or "Attention" in name or name in _TRANSFORMER_TYPES


def _hf_vit_info(model: nn.Module, names: dict) -> ViTInfo | None:
    """A :class:`ViTInfo` for a ViT-style ``transformers`` model inside ``HFImageClassifier``."""
    hf = getattr(model, "hf", None)
    config = getattr(hf, "config", None)
    if hf is None or config is None or not hasattr(config, "_attn_implementation"):
        return None
    base = getattr(hf, str(getattr(hf, "base_model_prefix", "") or ""), None)
    if base is None:
        return None
    layers = getattr(base, "layers", None)  # transformers 5; 4.x keeps them in encoder.layer
    if layers is None:
        layers = getattr(getattr(base, "encoder", None), "layer", None)
    emb = getattr(base, "embeddings", None)
    if layers is None or emb is None or not len(layers):
        return None
    blocks = list(layers)
    attns = [getattr(b, "attention", None) for b in blocks]
    if any(a is None or not hasattr(b, "layernorm_before") or not hasattr(b, "layernorm_after")
           for a, b in zip(attns, blocks)):
        return None
    prefix = sum(getattr(emb, t, None) is not None for t in ("cls_token", "distillation_token"))
    registers = getattr(emb, "register_tokens", None)
    if isinstance(registers, torch.Tensor):
        prefix += int(registers.shape[1])
    patch = getattr(config, "patch_size", None)
    if patch is None:
        return None
    return ViTInfo("hf", model, blocks, [names[id(b)] for b in blocks], attns, prefix,
                   getattr(emb, "cls_token", None) is not None, _pair(patch), config)


def model_architecture(model: nn.Module) -> str:
    """``"vit"`` for transformers (supported by the attention methods or not), ``"cnn"`` otherwise.

    The program's one architecture rule (:func:`~alens_gui.core.models.load_model` records it
    and :func:`~.base.compute_base` checks methods against it): a model is a transformer when
    any of its modules is an attention module (:func:`is_attention_module`): ViT, DeiT, Swin
    (``WindowAttention``), MaxViT, CoAtNet, EVA, PVT, Hugging Face ``ViTSelfAttention``, ...
    Methods written for CNNs (Guided Backprop, DeepLift, LRP) are then refused; the gradient
    and CAM methods run on both.
    """
    if vit_info(model) is not None:
        return "vit"
    if any(is_attention_module(m) for m in model.modules()):
        return "vit"
    return "cnn"


def require_vit(model: nn.Module, label: str) -> ViTInfo:
    """The model's :class:`ViTInfo` or a :class:`MethodError` naming the method."""
    info = vit_info(model)
    if info is None:
        raise MethodError(
            f"{label} needs a Vision Transformer (timm or torchvision VisionTransformer); "
            f"this model ({type(model).__name__}) has no supported attention blocks"
        )
    return info


def vit_cam_layer(model: nn.Module) -> str | None:
    """The Grad-CAM layer of a ViT (``None`` for other models).

    It is the last block's first LayerNorm (``norm1`` / ``ln_1``): with class-token
    pooling, the gradient of the block's *output* is zero on every patch token, while
    at the block's attention input it reaches all of them.
    """
    info = vit_info(model)
    if info is None:
        return None
    last = info.blocks[-1]
    sub = info.norm_names()[0]
    if isinstance(getattr(last, sub, None), nn.Module):
        return f"{info.block_names[-1]}.{sub}"
    return info.block_names[-1]


def tokens_to_grid(model: nn.Module, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Drop class/register tokens and reshape ``(..., N, D)`` tokens to ``(..., D, h, w)``."""
    info = require_vit(model, "Grad-CAM")
    h, w = info.grid(x)
    n = tokens.shape[-2]
    if n - info.num_prefix != h * w:
        raise MethodError(
            f"cannot map {n} tokens to a {h} x {w} patch grid with {info.num_prefix} class/register tokens"
        )
    patches = tokens[..., info.num_prefix:, :]
    return patches.reshape(*patches.shape[:-2], h, w, patches.shape[-1]).movedim(-1, -3)


# ---------------------------------------------------------------------------------
# Reading attention weights
# ---------------------------------------------------------------------------------
def _mha_forward(mha: nn.MultiheadAttention, store: list, detach: bool, query, key, value,
                 key_padding_mask=None, need_weights=True, attn_mask=None, average_attn_weights=True,
                 is_causal=False):
    """Self-attention as ``nn.MultiheadAttention`` computes it, with the weights kept."""
    if key_padding_mask is not None or attn_mask is not None or is_causal:
        raise MethodError("attention masks are not supported by the ViT methods")
    if not (query is key and key is value) or not mha._qkv_same_embed_dim or mha.bias_k is not None:
        raise MethodError("the ViT methods support plain self-attention only")
    x = query if mha.batch_first else query.transpose(0, 1)
    b, n, e = x.shape
    h = mha.num_heads
    qkv = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).reshape(b, n, 3, h, e // h).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    attn = ((q * (e // h) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
    if detach:
        attn = attn.detach().requires_grad_(True)
    store.append(attn)
    out = mha.out_proj((attn @ v).transpose(1, 2).reshape(b, n, e))
    return (out if mha.batch_first else out.transpose(0, 1)), None


def _ln_rule(m: nn.LayerNorm, inp, _out):
    # LRP's LN rule: the same output, but the standard deviation is a constant for backward.
    x = inp[0]
    mu = x.mean(dim=-1, keepdim=True)
    std = (x.var(dim=-1, unbiased=False, keepdim=True) + m.eps).sqrt().detach()
    y = (x - mu) / std
    if m.weight is not None:
        y = y * m.weight
    if m.bias is not None:
        y = y + m.bias
    return y


#: The attention function name registered with transformers' AttentionInterface.
_HF_CAPTURE = "alens_capture"
_hf_state = threading.local()


def _hf_capture_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **_kwargs):
    """transformers' eager attention, keeping the weights for :func:`capture_attention`.

    Registered once under :data:`_HF_CAPTURE`; a model's config names it only inside
    :func:`capture_attention`, on the thread that holds the model's lock.
    """
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = F.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    store, detach = getattr(_hf_state, "target", (None, False))
    if detach:
        weights = weights.detach().requires_grad_(True)
    if store is not None:
        store.append(weights)
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return out, weights


def _register_hf_capture() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(_HF_CAPTURE, _hf_capture_attention)


@contextlib.contextmanager
def capture_attention(info: ViTInfo, *, detach: bool = False, ln_rule: bool = False) -> Iterator[list]:
    """Collect every block's attention weights ``(B, heads, N, N)`` of each forward pass.

    Parameters
    ----------
    detach : bool
        Store the weights as leaves of the graph: gradients reach them but do not flow
        through the softmax to earlier layers (LRP's rule for attention).
    ln_rule : bool
        Treat the LayerNorm standard deviation as a constant in backward (LRP).

    The caller clears the yielded list before each forward pass. Outputs are unchanged
    up to floating-point rounding; the model is restored on exit.
    """
    store: list[torch.Tensor] = []
    saved_fused: list[tuple[nn.Module, bool]] = []
    patched: list[nn.Module] = []

    def keep(_m, _i, out):
        if detach:
            out = out.detach().requires_grad_(True)
        store.append(out)
        return out

    hf_saved = None
    with hooks() as handles:
        try:
            if info.kind == "hf":
                _register_hf_capture()
                hf_saved = info.config._attn_implementation
                info.config._attn_implementation = _HF_CAPTURE
                _hf_state.target = (store, detach)
            for a in info.attentions:
                if info.kind == "timm":
                    saved_fused.append((a, a.fused_attn))
                    a.fused_attn = False
                    handles.append(a.attn_drop.register_forward_hook(keep))
                elif info.kind == "torchvision":
                    a.forward = functools.partial(_mha_forward, a, store, detach)
                    patched.append(a)
            if ln_rule:
                for m in info.model.modules():
                    if isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1:
                        handles.append(m.register_forward_hook(_ln_rule))
            yield store
        finally:
            for a, fused in saved_fused:
                a.fused_attn = fused
            for a in patched:
                del a.forward
            if info.kind == "hf":
                _hf_state.target = (None, False)
                if hf_saved is not None:
                    info.config._attn_implementation = hf_saved


def _check_tokens(info: ViTInfo, x: torch.Tensor, n: int) -> None:
    h, w = info.grid(x)
    if n - info.num_prefix != h * w:
        raise MethodError(f"{n} tokens do not fit a {h} x {w} patch grid with {info.num_prefix} prefix tokens")


@torch.no_grad()
def attention_maps(model: nn.Module, info: ViTInfo, x: torch.Tensor) -> torch.Tensor:
    """Attention weights of one input, ``(L, heads, N, N)``."""
    with capture_attention(info) as store:
        model(x)
        attns = torch.stack([a[0].detach() for a in store])
    if len(attns) != len(info.blocks):
        raise MethodError(f"read {len(attns)} attention maps from {len(info.blocks)} blocks")
    _check_tokens(info, x, attns.shape[-1])
    return attns


def attention_gradients(
    model: nn.Module,
    info: ViTInfo,
    inputs: torch.Tensor,
    classes: Sequence[int],
    progress: Progress,
    *,
    batch_size: int = 16,
    detach: bool = False,
    ln_rule: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of K class logits w.r.t. every block's attention weights.

    One forward pass per batch of ``inputs`` and one backward pass per class.

    Returns
    -------
    grads : tensor (K, L, heads, N, N), averaged over the inputs
    attns : tensor (L, heads, N, N), the attention weights of the last input
    """
    total = None
    attns = None
    k = len(classes)
    with capture_attention(info, detach=detach, ln_rule=ln_rule) as store:
        for start in range(0, inputs.shape[0], batch_size):
            store.clear()
            xb = inputs[start:start + batch_size].detach().clone().requires_grad_(True)
            out = model(xb)
            if out.ndim != 2:
                raise MethodError(f"the model must return logits of shape (batch, classes); got {tuple(out.shape)}")
            targets = list(store)
            if len(targets) != len(info.blocks):
                raise MethodError(f"read {len(targets)} attention maps from {len(info.blocks)} blocks")
            per_class = []
            for i, c in enumerate(classes):
                progress.check()
                gs = torch.autograd.grad(out[:, c].sum(), targets, retain_graph=i < k - 1, allow_unused=True)
                per_class.append(torch.stack([
                    torch.zeros_like(t[0]) if g is None else g.detach().sum(0) for g, t in zip(gs, targets)
                ]))
                progress.advance(1, f"class {i + 1}/{k}")
            chunk = torch.stack(per_class)
            total = chunk if total is None else total + chunk
            attns = torch.stack([t[-1].detach() for t in targets])
            del out
    _check_tokens(info, inputs, attns.shape[-1])
    return total / inputs.shape[0], attns


def _query_row(info: ViTInfo, x: torch.Tensor, mat: torch.Tensor, query: str) -> torch.Tensor:
    """Read the query token's row of ``(..., N, N)`` relevance as ``(..., 1, h, w)`` patch maps."""
    h, w = info.grid(x)
    p = info.num_prefix
    q = query.strip().lower()
    if q == "auto":
        q = "cls" if info.has_cls else "mean"
    if q == "cls":
        if not info.has_cls:
            raise MethodError("this ViT has no class token; use query=mean or patch coordinates")
        row = mat[..., 0, :]
    elif q == "mean":
        row = mat[..., p:, :].mean(dim=-2)
    else:
        idx = []
        try:
            for part in q.replace(" ", "").split(";"):
                r, c = (int(v) for v in part.split(","))
                if not (0 <= r < h and 0 <= c < w):
                    raise MethodError(f"query patch {r},{c} is outside the {h} x {w} patch grid")
                idx.append(p + r * w + c)
        except ValueError:
            raise MethodError(f"query must be auto, cls, mean or 'row,col;row,col' patch coordinates; got {query!r}") from None
        row = mat[..., idx, :].mean(dim=-2)
    return row[..., p:].reshape(*row.shape[:-1], 1, h, w)


def _eye_like(a: torch.Tensor) -> torch.Tensor:
    return torch.eye(a.shape[-1], dtype=a.dtype, device=a.device).expand_as(a)


def _rows_normalized(a: torch.Tensor) -> torch.Tensor:
    return a / a.sum(dim=-1, keepdim=True).clamp(min=1e-12)


def _fuse_heads(a: torch.Tensor, how: str) -> torch.Tensor:
    if how == "mean":
        return a.mean(dim=-3)
    if how == "max":
        return a.amax(dim=-3)
    if how == "min":
        return a.amin(dim=-3)
    raise MethodError(f"head_fusion must be mean, max or min; got {how!r}")


def _ig_path(x: torch.Tensor, steps: int, ctx) -> torch.Tensor:
    # Integrated gradients path from the black image (midpoint rule), as for ``ig``.
    ref = ctx.black.to(x.device, x.dtype).expand_as(x) if ctx is not None else torch.zeros_like(x)
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
    return ref + alphas.view(-1, 1, 1, 1) * (x - ref)


def attention_rollout(model, x, classes, progress: Progress, ctx=None, head_fusion="mean", query="auto"):
    info = require_vit(model, "Attention rollout")
    progress.add_total(1)
    attns = _fuse_heads(attention_maps(model, info, x), head_fusion)  # (L, N, N)
    eye = _eye_like(attns[0])
    rel = eye.clone()
    for a in attns:
        rel = _rows_normalized(0.5 * a + 0.5 * eye) @ rel
    progress.advance(1)
    return _query_row(info, x, rel, query).unsqueeze(0).expand(len(classes), 1, -1, -1).clone()


def _relevance_update(weighted: torch.Tensor) -> torch.Tensor:
    """R = (I + W_L) ... (I + W_1) for per-class, per-block weighted attention (K, L, N, N)."""
    eye = _eye_like(weighted[:, 0])
    rel = eye.clone()
    for layer in range(weighted.shape[1]):
        rel = rel + weighted[:, layer] @ rel
    return rel


def grad_rollout(model, x, classes, progress: Progress, ctx=None, query="auto"):
    info = require_vit(model, "Grad-Rollout")
    progress.add_total(len(classes))
    grads, attns = attention_gradients(model, info, x, classes, progress)
    weighted = (grads * attns.unsqueeze(0)).clamp(min=0).mean(dim=2)  # (K, L, N, N)
    return _query_row(info, x, _relevance_update(weighted), query)


def transition_attention(model, x, classes, progress: Progress, ctx=None, steps=20, batch_size=10,
                         start_layer=0, query="auto"):
    info = require_vit(model, "T-Attn")
    n_layers = len(info.blocks)
    if start_layer >= n_layers:
        raise MethodError(f"start_layer must be below the number of blocks ({n_layers})")
    progress.add_total(len(classes) * -(-steps // batch_size))
    attns = attention_maps(model, info, x).mean(dim=1)  # (L, N, N)
    grads, _ = attention_gradients(model, info, _ig_path(x, steps, ctx), classes, progress, batch_size=batch_size)
    # The chain's state starts at the last block's attention and moves back block by block,
    # keeping what the residual connection carries: s <- s + s A.
    state = attns[-1]
    for layer in range(n_layers - 2, start_layer - 1, -1):
        state = state + state @ attns[layer]
    weight = grads[:, -1].clamp(min=0).mean(dim=1)  # (K, N, N)
    return _query_row(info, x, state.unsqueeze(0) * weight, query)


def bidirectional_attention(model, x, classes, progress: Progress, ctx=None, steps=20, batch_size=10,
                            start_layer=3, query="auto"):
    info = require_vit(model, "Bi-Attn")
    n_layers = len(info.blocks)
    if start_layer >= n_layers:
        raise MethodError(f"start_layer must be below the number of blocks ({n_layers})")
    progress.add_total(len(classes) * (1 + -(-steps // batch_size)))
    grads, attns = attention_gradients(model, info, x, classes, progress)  # (K, L, H, N, N), (L, H, N, N)
    # Attention perception: each head weighted by the mean magnitude of A_h^T dy/dA_h,
    # the weights summing to 1 per block; the fused attention accumulates as R <- R + A R.
    heads = (attns.transpose(-2, -1).unsqueeze(0) @ grads).abs().mean(dim=(-2, -1))  # (K, L, H)
    heads = heads / heads.sum(dim=-1, keepdim=True).clamp(min=1e-30)
    fused = torch.einsum("klh,lhij->klij", heads, attns)
    eye = _eye_like(fused[:, 0])
    perception = eye.clone()
    for layer in range(start_layer, n_layers):
        perception = perception + fused[:, layer] @ perception
    # Reasoning feedback: the last block's attention gradients averaged along the straight
    # path from the zero input (steps points from 0 to 1, both ends included), positive part, head mean.
    alphas = torch.linspace(0.0, 1.0, steps, dtype=x.dtype, device=x.device)
    path = alphas.view(-1, 1, 1, 1) * x
    path_grads, _ = attention_gradients(model, info, path, classes, progress, batch_size=batch_size)
    feedback = path_grads[:, -1].clamp(min=0).mean(dim=1)  # (K, N, N)
    return _query_row(info, x, feedback * perception, query)


def inflow(model, x, classes, progress: Progress, ctx=None, query="auto"):
    info = require_vit(model, "InFlow")
    progress.add_total(len(classes))
    ins: list[torch.Tensor] = []
    mids: list[torch.Tensor] = []
    with hooks() as handles, capture_attention(info) as store:
        for blk in info.blocks:
            mid_norm = getattr(blk, info.norm_names()[1], None)
            if mid_norm is None:
                raise MethodError("InFlow needs pre-norm transformer blocks (norm2 / ln_2 / layernorm_after)")
            handles.append(blk.register_forward_pre_hook(lambda _m, a: ins.append(a[0])))
            handles.append(mid_norm.register_forward_pre_hook(lambda _m, a: mids.append(a[0])))
        logits = model(x.detach().clone().requires_grad_(True))
        if len(ins) != len(info.blocks) or len(mids) != len(info.blocks) or len(store) != len(info.blocks):
            raise MethodError("InFlow could not read the residual stream of every block")
        attns = torch.stack([a[0].detach().mean(dim=0) for a in store])  # (L, N, N)
        # Class relevance of the patch embeddings entering the first block (gradient x embedding).
        rel = []
        for i, c in enumerate(classes):
            progress.check()
            (g,) = torch.autograd.grad(logits[0, c], ins[0], retain_graph=i < len(classes) - 1)
            rel.append((g[0] * ins[0][0]).sum(dim=-1).clamp(min=0).detach())
            progress.advance(1, f"class {i + 1}/{len(classes)}")
    _check_tokens(info, x, attns.shape[-1])
    token_rel = torch.stack(rel)  # (K, N)
    # Converging paths (skip + attention) at each block, weighted by the token norms they
    # carry; the MLP branch is token-wise and leaves the transition unchanged.
    eye = _eye_like(attns[0])
    flow = eye.clone()
    for layer in range(len(info.blocks)):
        skip = ins[layer][0].detach().norm(dim=-1)  # (N,)
        branch = (mids[layer][0] - ins[layer][0]).detach().norm(dim=-1)
        trans = (skip[:, None] * eye + branch[:, None] * attns[layer]) / (skip + branch).clamp(min=1e-12)[:, None]
        flow = trans @ flow
    return _query_row(info, x, flow.unsqueeze(0) * token_rel[:, None, :], query)


def transformer_lrp(model, x, classes, progress: Progress, ctx=None, query="auto"):
    info = require_vit(model, "Transformer-LRP")
    progress.add_total(2 * len(classes))
    grads, attns = attention_gradients(model, info, x, classes, progress)
    # LRP-0 relevance of the attention weights, in gradient x input form: LayerNorm's
    # scale and the attention weights are constants for the backward pass (conservative rules).
    lrp_grads, _ = attention_gradients(model, info, x, classes, progress, detach=True, ln_rule=True)
    relevance = lrp_grads * attns.unsqueeze(0)
    weighted = (grads * relevance).clamp(min=0).mean(dim=2)  # (K, L, N, N)
    return _query_row(info, x, _relevance_update(weighted), query)
