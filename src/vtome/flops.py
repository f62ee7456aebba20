"""Analytic FLOPs of a (patched or unpatched) model from its per-layer token counts.

    tokens = vtome.info(model)["tokens"]          # after a forward pass of the patched model
    model_flops(model, tokens).total              # FLOPs per clip
    flop_speedup(model, tokens)                   # FLOPs unmerged / FLOPs merged: the ideal speedup

FLOPs count 2 per multiply-add (torch.utils.flop_counter's convention; fvcore and most papers quote
multiply-adds, half these numbers). Counted, as torch's counter does: linear layers, the patch-embedding
convolution, the two attention matmuls (QK^T and AV) and the matching's similarity matmul. Not counted:
softmax, norms, activations, additions, gathers and scatters.

Joint space-time (ViViT, VideoMAE, timm ViT), layer i with n tokens in and n' out (merging sits between the
attention and the MLP):  qkv + proj 8 n D^2,  attention 4 n^2 D,  matching 2 |A| |B| c,  MLP 4 n' D M.
Divided space-time (TimeSformer), s tokens per frame in, s' out, T frames, one class token:
temporal attention over frames (s sequences of T: qkv + proj + temporal_dense 10 s T D^2, attention 4 s T^2 D),
spatial attention per frame with the class token (T sequences of s + 1: 8 T (s+1) D^2 + 4 T (s+1)^2 D),
matching per frame 2 T |A| |B| c, MLP on the class token and every patch 4 (1 + s' T) D M.
Motionformer (trajectory attention, vtome.models.motionformer), N = F s patch tokens in F slots, one class token,
h heads: qkv + proj 8 (1 + N) D^2, the class token's attention 4 (1 + N) D, the spatial step 4 N^2 D (every query
against every slot), the own-slot query projection and its key projection 4 N D^2, the temporal scores 2 N F D h
(with the fixed value projection also 2 N F D h + 2 N D^2), matching per frame as above, MLP 4 (1 + F s') D M.
V-JEPA 2 (joint; rotary positions are elementwise: not counted) adds its attentive pooler to the head, on the n
tokens the encoder leaves: per self-attention layer 8 n D^2 + 4 n^2 D + 4 n D M' (M' = 4 D, the pooler's own MLP
width), then one query cross-attending (keys and values 4 n D^2, attention 4 n D; its query projection and MLP
are constant). Its predictor is not counted (the classifier never runs it; call a VJEPA2Model with
skip_predictor=True).
c is the matching metric's width (head_dim for keys averaged over heads, D for heads concatenated). |A| and |B|
are the sources and targets of the partition (`split_sizes`): ceil(n/2) and floor(n/2) for ToMe's alternate split;
for a Video Token Merging partition with factor gamma about n/gamma targets, so the similarity matmul costs
2 n^2 c (1 - 1/gamma) / gamma instead of n^2 c / 2. The saliency partition adds its scores s = K u: 2 n c (a
matrix-vector product, which `counted_flops` registers with torch's counter).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vtome.partition import max_leaving, num_targets
from vtome.schedule import layer_r


@dataclass(frozen=True)
class Arch:
    """What the FLOP count needs to know about a model."""

    family: str  # "vivit" | "videomae" | "timesformer" | "motionformer" | "vjepa2" | "timm-vit"
    divided: bool  # divided space-time (TimeSformer, Motionformer): tokens per frame, without the class token
    layers: int
    dim: int  # D
    mlp_dim: int  # M
    heads: int
    frames: int  # T of a divided model (1 otherwise)
    prefix: int  # class tokens in the sequence (joint) or beside the frames (divided)
    patches: int  # input patches per clip (per frame x frames for divided models)
    embed_flops: int  # patch embedding, per clip
    head_flops: int  # linears applied once per clip after the encoder (classifier, pooler)
    pooler_layers: int | None = None  # V-JEPA 2's attentive pooler: its self-attention layers (None: no such pooler)
    pooler_mlp_dim: int = 0  # ... and their MLP width (4 D whatever the encoder's)
    projected_values: bool = False  # Motionformer with upstream's fixed code: the value half of proj_kv is used


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one clip: embedding, each layer, head, and the matching (included in the layers)."""

    embed: int
    layers: list[int]
    head: int
    matching: int

    @property
    def total(self) -> int:
        return self.embed + sum(self.layers) + self.head

    @property
    def gflops(self) -> float:
        return self.total / 1e9


def _first_conv(model: nn.Module) -> nn.Module:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Conv3d))


def _outer_linear_flops(model: nn.Module, layers: nn.Module) -> int:
    """2 * in * out for every linear outside the encoder layers (each runs once per clip)."""
    inside = {id(m) for m in layers.modules()}
    return sum(2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear)
               and id(m) not in inside)


def arch(model: nn.Module) -> Arch:
    """Describe a supported model (HF ViViT / VideoMAE / TimeSformer / V-JEPA 2, Motionformer, timm ViT), patched or
    not."""
    from vtome.patch.registry import find_family

    family = find_family(model).name
    if family == "motionformer":
        c = model.config
        patches = (c.image_size // c.patch_size) ** 2 * c.temporal_resolution
        return Arch(
            family, True, len(model.blocks), c.hidden_size, c.intermediate_size, c.num_attention_heads,
            c.temporal_resolution, 1, patches, 2 * patches * model.patch_embed_3d.proj.weight.numel(),
            _outer_linear_flops(model, model.blocks), projected_values=not c.use_original_code,
        )
    if family == "timm-vit":
        blocks = model.blocks
        patches = model.patch_embed.num_patches
        return Arch(
            family, False, len(blocks), model.embed_dim, blocks[0].mlp.fc1.out_features, blocks[0].attn.num_heads,
            1, model.num_prefix_tokens, patches, 2 * patches * _first_conv(model).weight.numel(),
            _outer_linear_flops(model, blocks),
        )
    if family == "vjepa2":
        return _vjepa2_arch(model)
    base = getattr(model, family, model)
    config = base.config
    if family == "vivit":
        layers, prefix, frames = base.layers, 1, 1
        patches = base.embeddings.patch_embeddings.num_patches
    elif family == "videomae":
        layers, prefix, frames = base.encoder.layer, 0, 1
        patches = base.embeddings.num_patches
    else:
        layers, prefix, frames = base.encoder.layer, 1, config.num_frames
        patches = base.embeddings.patch_embeddings.num_patches * frames
    return Arch(
        family, family == "timesformer", len(layers), config.hidden_size, config.intermediate_size,
        config.num_attention_heads, frames, prefix, patches, 2 * patches * _first_conv(model).weight.numel(),
        _outer_linear_flops(model, layers),
    )


def _vjepa2_arch(model: nn.Module) -> Arch:
    from vtome.patch.vjepa2 import grid

    base = getattr(model, "vjepa2", model)
    config, layers = base.config, base.encoder.layer
    t, h, w = grid(config)
    d, m = config.hidden_size, layers[0].mlp.fc1.out_features
    pooler = getattr(model, "pooler", None)  # None: the encoder alone (VJEPA2Model)
    pooler_layers, pooler_mlp, head = None, 0, 0
    if pooler is not None:  # classifier, cross-attention query projection and MLP: once per clip
        pooler_layers, pooler_mlp = len(pooler.self_attention_layers), pooler.cross_attention_layer.mlp.fc1.out_features
        head = 2 * d * model.classifier.out_features + 2 * d * d + 4 * d * pooler_mlp
    patches = t * h * w
    return Arch("vjepa2", False, len(layers), d, m, config.num_attention_heads, 1, 0, patches,
                2 * patches * _first_conv(model).weight.numel(), head, pooler_layers, pooler_mlp)


def pooler_flops(a: Arch, n: int) -> int:
    """V-JEPA 2's attentive pooler on n tokens, less its constant part (in head_flops); 0 without a pooler."""
    if a.pooler_layers is None:
        return 0
    d, m = a.dim, a.pooler_mlp_dim
    return a.pooler_layers * (8 * n * d * d + 4 * n * n * d + 4 * n * d * m) + 4 * n * d * d + 4 * n * d


def unmerged_tokens(a: Arch) -> list[int]:
    """Tokens entering layer 1 and after each layer without merging (vtome.info's convention)."""
    n = a.patches // a.frames if a.divided else a.patches + a.prefix
    return [n] * (a.layers + 1)


@dataclass(frozen=True)
class SplitRule:
    """Which tokens are targets (see vtome.partition): the partition's name and factor gamma."""

    partition: str = "alternate"
    gamma: int = 2


ALTERNATE = SplitRule()


def split_sizes(n: int, rule: SplitRule = ALTERNATE, protected: int = 0) -> tuple[int, int]:
    """(|A| sources, |B| targets) of a sequence of n tokens under a partition, as vtome.partition splits it."""
    if rule.partition == "alternate":
        return (n + 1) // 2, n // 2
    targets = n // rule.gamma if rule.partition == "stride" else num_targets(n, rule.gamma, protected)
    return n - targets, targets


def leave_cap(n: int, rule: SplitRule = ALTERNATE, protected: int = 0) -> int:
    """The most tokens one layer can remove from n under a partition (r is clamped to it at run time)."""
    if rule.partition == "alternate":
        return (n - protected) // 2
    sources, targets = split_sizes(n, rule, protected)
    return min(sources - protected, max_leaving(n, rule.gamma, protected)) if targets else 0


def matching_flops(n: int, metric_dim: int, rule: SplitRule = ALTERNATE, protected: int = 0) -> int:
    """The similarity matmul of one sequence of n tokens, (|A|, c) @ (c, |B|), and the saliency scores (n, c) @ (c,)
    of the saliency partition."""
    sources, targets = split_sizes(n, rule, protected)
    scores = 2 * n * metric_dim if rule.partition == "saliency" else 0
    return 2 * sources * targets * metric_dim + scores


def joint_layer_flops(a: Arch, n_in: int, n_out: int, metric_dim: int | None,
                      rule: SplitRule = ALTERNATE) -> tuple[int, int]:
    """(layer FLOPs, of which matching) of one joint space-time layer; metric_dim None: no matmul matching."""
    d, m = a.dim, a.mlp_dim
    match = matching_flops(n_in, metric_dim, rule, a.prefix) if metric_dim and n_out < n_in else 0
    return 8 * n_in * d * d + 4 * n_in * n_in * d + match + 4 * n_out * d * m, match


def divided_layer_flops(a: Arch, s_in: int, s_out: int, metric_dim: int | None,
                        rule: SplitRule = ALTERNATE) -> tuple[int, int]:
    """(layer FLOPs, of which matching) of one divided space-time layer (s tokens per frame, no class token)."""
    d, m, t, p = a.dim, a.mlp_dim, a.frames, a.prefix
    temporal = 10 * s_in * t * d * d + 4 * s_in * t * t * d
    spatial = t * (8 * (s_in + p) * d * d + 4 * (s_in + p) ** 2 * d)
    match = t * matching_flops(s_in, metric_dim, rule) if metric_dim and s_out < s_in else 0
    return temporal + spatial + match + 4 * (p + s_out * t) * d * m, match


def motionformer_layer_flops(a: Arch, s_in: int, s_out: int, metric_dim: int | None,
                             rule: SplitRule = ALTERNATE) -> tuple[int, int]:
    """(layer FLOPs, of which matching) of one Motionformer layer (s tokens per slot, no class token).

    The temporal step's keys are projected on the N queries, not on the N F trajectory points (see
    vtome.models.trajectory.temporal_attention): 2 N D^2 instead of 2 N F D^2.
    """
    d, m, f, h = a.dim, a.mlp_dim, a.frames, a.heads
    n = f * s_in
    length = 1 + n
    attention = 8 * length * d * d + 4 * length * d + 4 * n * n * d  # qkv + proj, class token, spatial step
    temporal = 4 * n * d * d + 2 * n * f * d * h  # proj_q, the key projection moved to the query, scores
    if a.projected_values:
        temporal += 2 * n * f * d * h + 2 * n * d * d
    match = f * matching_flops(s_in, metric_dim, rule) if metric_dim and s_out < s_in else 0
    return attention + temporal + match + 4 * (1 + f * s_out) * d * m, match


def _metric_dim(model: nn.Module, a: Arch) -> int | None:
    """Width of the matching metric of a patched model (None for random modes, which use no matmul)."""
    state = getattr(model, "_vtome", None)
    settings = getattr(state, "settings", None)
    if settings is None:
        return a.dim // a.heads
    if settings.random:
        return None
    return a.dim if settings.head_aggregation == "concat" else a.dim // a.heads


def split_rule(model: nn.Module) -> SplitRule:
    """The partition of a patched model (ToMe's alternate split when unpatched)."""
    settings = getattr(getattr(model, "_vtome", None), "settings", None)
    return ALTERNATE if settings is None else SplitRule(settings.partition, settings.gamma)


def model_flops(model: nn.Module, tokens: list[int] | None = None, rule: SplitRule | None = None) -> FlopCount:
    """FLOPs per clip for the given per-layer token counts (L + 1 values, as `vtome.info(model)["tokens"]`).

    tokens None: the counts of the patched model's last forward pass, or the unmerged counts.
    rule: the partition that sets the matching's size (default: the patched model's, else alternate).
    """
    a = arch(model)
    if tokens is None:
        state = getattr(model, "_vtome", None)
        tokens = list(state.tokens) if state is not None and state.tokens else unmerged_tokens(a)
    if len(tokens) != a.layers + 1:
        raise ValueError(f"tokens must hold {a.layers + 1} counts (input, then after each layer); got {len(tokens)}")
    layer = {"motionformer": motionformer_layer_flops, "timesformer": divided_layer_flops}.get(a.family,
                                                                                              joint_layer_flops)
    metric_dim = _metric_dim(model, a)
    rule = split_rule(model) if rule is None else rule
    counts = [layer(a, n_in, n_out, metric_dim, rule) for n_in, n_out in zip(tokens[:-1], tokens[1:], strict=True)]
    head = a.head_flops + pooler_flops(a, tokens[-1])
    return FlopCount(a.embed_flops, [c[0] for c in counts], head, sum(c[1] for c in counts))


def flop_speedup(model: nn.Module, tokens: list[int] | None = None, layers_only: bool = False,
                 rule: SplitRule | None = None) -> float:
    """The ideal speedup: FLOPs without merging / FLOPs with these token counts.

    layers_only: count only the encoder layers without the matching (the convention of the FLOP-ideal numbers
    in DESIGN.md); by default the whole forward pass, matching included, which is what a timing can reach.
    """
    base, merged = model_flops(model, unmerged_tokens(arch(model))), model_flops(model, tokens, rule)
    if layers_only:
        return sum(base.layers) / (sum(merged.layers) - merged.matching)
    return base.total / merged.total


def _cpu_flash_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """(batch, heads, n, d) q, k, v: QK^T and AV, as torch counts its GPU attention kernels."""
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _mv_flops(matrix_shape, vector_shape, *args, **kwargs) -> int:
    return 2 * matrix_shape[0] * matrix_shape[1]


def counted_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of model(x) as torch.utils.flop_counter counts them (the whole batch).

    torch's counter does not know the CPU flash-attention kernel; it is added here with the formula torch uses
    for its GPU kernels.
    """
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    extra = {aten.mv: _mv_flops}  # torch's counter leaves matrix-vector products out (the saliency scores)
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        extra[aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_flash_flops
    counter = FlopCounterMode(display=False, custom_mapping=extra)
    with counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops()


def planned_tokens(a: Arch, r_per_layer: list[int], rule: SplitRule = ALTERNATE) -> list[int]:
    """Token counts a forward pass will have for r per layer (clamped as the partition clamps it: half the
    mergeable tokens for the alternate split), without running the model. Same convention as
    `vtome.info(model)["tokens"]`."""
    protected = 0 if a.divided else a.prefix
    tokens = unmerged_tokens(a)[:1]
    for r in r_per_layer:
        n = tokens[-1]
        tokens.append(n - min(r, leave_cap(n, rule, protected)))
    return tokens


def schedule_tokens(a: Arch, r: int | float, schedule: str | list[int], rule: SplitRule = ALTERNATE) -> list[int]:
    """Token counts of a forward pass patched with r (a count, per frame for divided models, or a fraction) under
    a schedule, without running the model. Same convention as `vtome.info(model)["tokens"]`."""
    mergeable = unmerged_tokens(a)[0] - (0 if a.divided else a.prefix)
    r_per_layer = layer_r(r, schedule, a.layers, mergeable, 1 - 1 / rule.gamma)
    return planned_tokens(a, r_per_layer, rule)
