"""vtome's Motionformer (trajectory attention): divided space-time merging, each frame on its own.

The patch tokens are frame-major (slot f holds tokens 1 + f P .. (f + 1) P), so the frames fold into the batch
with a plain reshape, (B, F P, C) -> (B F, P, C). Every frame removes the same r: trajectory attention needs
the same number of tokens in every slot (one softmax per slot, the own-slot diagonal), while the order within
a slot does not matter (positions were added at the input). The class token stays out of the merge. Metric:
the spatial step's patch keys, averaged over heads (or concatenated). Proportional attention adds log size to
the spatial logits of every slot and to the class token's logits; the temporal step has exactly one point per
slot and takes none. Tokens per slot come from the sequence length.

compat="paper" reproduces the paper's code: it groups with TimeSformer's "(s f)" pattern (position i of the
patch sequence goes to group i mod F), which on this layout puts tokens of every frame in every group and then
scrambles the frames of the next layer; and it adds log size in the spatial step only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vtome.attention import key_metric
from vtome.models.motionformer import drop_path
from vtome.partition import Layout
from vtome.patch.family import Family, swap_class
from vtome.patch.hf import video_grid
from vtome.patch.state import MergeState, Settings


def group(t: torch.Tensor, frames: int, paper: bool) -> torch.Tensor:
    """Patch tokens (B, F P, c) -> (B F, P, c): row b F + f is frame f (paper: positions f, f + F, f + 2F, ..)."""
    batch, n, width = t.shape
    if paper:
        return t.reshape(batch, n // frames, frames, width).transpose(1, 2).reshape(batch * frames, -1, width)
    return t.reshape(batch * frames, n // frames, width)


def ungroup(t: torch.Tensor, frames: int, paper: bool) -> torch.Tensor:
    """The inverse of group: (B F, P, c) -> (B, F P, c)."""
    rows, per_group, width = t.shape
    if paper:
        return t.reshape(rows // frames, frames, per_group, width).transpose(1, 2).reshape(rows // frames, -1, width)
    return t.reshape(rows // frames, frames * per_group, width)


class TrajectoryAttention:
    def forward(self, x: torch.Tensor, frames: int, output_attentions: bool = False, size=None):
        """x (B, 1 + F P, C); size (B, F P, 1) sizes of the patch tokens in sequence order, or None.
        Returns the output (B, 1 + F P, C), AttentionMaps or None, and the metric (B, F P, c)."""
        state: MergeState = self._vtome
        cls_bias = spatial_bias = None
        if size is not None:
            log = size[..., 0].log().to(x.dtype)  # (B, F P)
            spatial_bias = log.unflatten(1, (frames, -1))
            if not state.settings.paper:  # the paper's code leaves the class token's attention unweighted
                cls_bias = F.pad(log, (1, 0))[:, None, None, :]
        out, maps, keys = self.attend(x, frames, cls_bias, spatial_bias,
                                      eager=state.eager(self.eager) or output_attentions,
                                      patch_bias=lambda k: self._saliency_bias(k, frames))
        return out, maps, key_metric(keys, state.settings.head_aggregation)

    def _saliency_bias(self, keys: torch.Tensor, frames: int) -> torch.Tensor | None:
        """The auxiliary path's per-key bias (vtome.vtm) of patch keys (B, h, F P, d): (B, F P), or None. The
        saliency is read per merged row (frame), as the matching is."""
        state: MergeState = self._vtome
        batch, heads, n, width = keys.shape
        paper = state.settings.paper
        rows = group(keys.transpose(1, 2).reshape(batch, n, heads * width), frames, paper)  # (B F, P, h d)
        bias = state.key_bias(self._vtome_layer, rows.unflatten(2, (heads, width)).transpose(1, 2))
        return None if bias is None else ungroup(bias[..., None], frames, paper)[..., 0]


class Block:
    def forward(self, x: torch.Tensor, frames: int, output_attentions: bool = False):
        """x (B, 1 + F P, C), P any -> (B, 1 + F P', C), AttentionMaps or None."""
        state: MergeState = self._vtome
        layer, paper = self._vtome_layer, state.settings.paper
        batch, length, _ = x.shape
        per_frame = (length - 1) // frames
        size = state.enter(layer, x.new_empty(batch * frames, per_frame, 0))  # (B F, P, 1) or None
        if size is not None:
            size = ungroup(size, frames, paper)
        out, maps, metric = self.attn(self.norm1(x), frames, output_attentions, size=size)
        x = x + drop_path(out, self.drop_path_rate, self.training)
        patches = state.reduce(layer, group(x[:, 1:], frames, paper), group(metric, frames, paper))
        x = torch.cat([x[:, :1], ungroup(patches, frames, paper)], dim=1)
        x = x + drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)
        return x, maps


def _matches(model: nn.Module) -> bool:
    from vtome.models.motionformer import Motionformer

    return isinstance(model, Motionformer)


def _apply(model: nn.Module, settings: Settings) -> MergeState:
    config = model.config
    per_frame = (config.image_size // config.patch_size) ** 2
    state = MergeState(settings, len(model.blocks), protected=0, groups=config.temporal_resolution,
                       num_tokens=per_frame)
    for i, block in enumerate(model.blocks):
        swap_class(block, Block, state)
        swap_class(block.attn, TrajectoryAttention, state)
        block._vtome_layer = block.attn._vtome_layer = i
    return state


def _layout(model: nn.Module) -> Layout:
    # The merged rows are single token slots (frame-major groups); the class token stays out of them.
    return video_grid(model.config, model.config.tubelet_size, prefix=0, per_frame=True)


FAMILY = Family("motionformer", _matches, _apply, prop_attn=True, layout=_layout)
