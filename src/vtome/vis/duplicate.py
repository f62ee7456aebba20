"""Layer duplication (paper Fig. 7): merge only with one layer's keys, applied Q times.

The model is stripped to Q merge-only copies of layer L: each copy computes the keys of its layer L on the
current tokens (layer norm, attention keys, averaged over heads as configured) and merges by them; no attention
residual, no MLP, so tokens are only ever averaged. Works for any L and any depth Q.

The copies start from the embeddings (the paper's setting) or, with start="layer", from the tokens that enter
layer L in the unmerged model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import vtome
from vtome.patch.registry import find_family
from vtome.patch.state import MergeState
from vtome.vis.trace import Trace

STARTS = ("embeddings", "layer")


# Keys of one layer as the matching metric, per family: (layer module, tokens (rows, N, D)) -> (rows, N, C).
# The patched attention modules return the metric with their output; the output is not used.
_METRICS: dict[str, Callable[[nn.Module, torch.Tensor], torch.Tensor]] = {
    "vivit": lambda layer, x: layer.attention(layer.layernorm_before(x))[2],
    "videomae": lambda layer, x: layer.attention.attention(layer.layernorm_before(x))[2],
    # Per-frame patches only: the class token takes part in attention but not in the metric.
    "timesformer": lambda layer, x: layer.attention.attention(layer.layernorm_before(x))[2],
    # One slot at a time behind a blank class token: the keys of its patches (a key depends on its own token only).
    "motionformer": lambda block, x: block.attn(block.norm1(F.pad(x, (0, 0, 1, 0))), 1)[2],
    "timm-vit": lambda block, x: block.attn(block.norm1(x))[1],
    # The metric is the keys before rotation: any positions do (zeros here); only the unused output depends on them.
    "vjepa2": lambda layer, x: layer.attention(layer.norm1(x), position=x.new_zeros(*x.shape[:2], 3))[2],
}


class _Captured(Exception):
    def __init__(self, tokens: torch.Tensor):
        self.tokens = tokens


def layers_of(model: nn.Module) -> list[nn.Module]:
    """The transformer layers of a patched model, in order (a layer's attention carries its index too: modules()
    lists the layer first)."""
    found: dict[int, nn.Module] = {}
    for m in model.modules():
        if "_vtome_layer" in m.__dict__:
            found.setdefault(m._vtome_layer, m)
    return [found[i] for i in range(len(found))]


def model_depth(model: nn.Module) -> int:
    """How many layers vtome merges in (the model is left unpatched)."""
    vtome.patch(model, r=0)
    depth = model._vtome.num_layers
    vtome.unpatch(model)
    return depth


def layer_input(model: nn.Module, layer: int, x: torch.Tensor) -> torch.Tensor:
    """The hidden states entering `layer` (0-based) of a patched model, without running the later layers."""

    def hook(module, args, kwargs):
        raise _Captured(args[0] if args else kwargs["hidden_states"] if "hidden_states" in kwargs else kwargs["x"])

    handle = layers_of(model)[layer].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.inference_mode():
            model(x)
    except _Captured as captured:
        return captured.tokens
    finally:
        handle.remove()
    raise RuntimeError(f"layer {layer} was not reached")


def _per_frame(tokens: torch.Tensor, frames: int, frame_major: bool = False) -> torch.Tensor:
    """Divided models' hidden states (batch, 1 + S * T, D) -> patches (batch * T, S, D). TimeSformer's frame index
    runs fastest; Motionformer's slowest (frame_major)."""
    batch, length, dim = tokens.shape
    slots = (length - 1) // frames
    if frame_major:
        return tokens[:, 1:].reshape(batch * frames, slots, dim)
    return tokens[:, 1:].reshape(batch, slots, frames, dim).transpose(1, 2).reshape(batch * frames, slots, dim)


def duplicate_layer(model: nn.Module, x: torch.Tensor, layer: int, copies: int, r: int | float,
                    schedule="constant", mode: str = "merge", start: str = "embeddings", **patch_kwargs) -> Trace:
    """Merge x's tokens with `copies` merge-only copies of `layer` (1-based) and return where they went.

    r, schedule: per copy, as in vtome.patch (a schedule spreads over the copies); mode, patch_kwargs
    (threshold, seed, head_aggregation): as in vtome.patch. The model is left unpatched.
    Returns a Trace with the assignment after the last copy and the tokens after each copy.
    """
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}; got {start!r}")
    if copies < 1:
        raise ValueError(f"copies must be at least 1; got {copies}")
    family = find_family(model).name
    vtome.patch(model, r=0, mode=mode, **patch_kwargs)
    try:
        outer: MergeState = model._vtome
        depth = outer.num_layers
        if not 1 <= layer <= depth:
            raise ValueError(f"layer must be in 1..{depth}; got {layer}")
        tokens = layer_input(model, 0 if start == "embeddings" else layer - 1, x)
        if family == "timesformer":
            tokens = _per_frame(tokens, model.config.num_frames)
        elif family == "motionformer":
            tokens = _per_frame(tokens, model.config.temporal_resolution, frame_major=True)
        settings = dataclasses.replace(outer.settings, r=r, schedule=schedule, trace_source=True)
        state = MergeState(settings, copies, outer.protected, outer.groups, tokens.shape[1])
        module, metric = layers_of(model)[layer - 1], _METRICS[family]
        with torch.inference_mode():
            for copy in range(copies):
                state.enter(copy, tokens)
                tokens = state.reduce(copy, tokens, metric(module, tokens))
    finally:
        vtome.unpatch(model)
    return Trace(state.assignment.cpu(), state.tokens, copies)  # drawn with numpy
