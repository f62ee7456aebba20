"""HF TimeSformer, divided space-time attention.

Frames are folded into the batch and each frame merges on its own, every frame removing the same r, so the
temporal attention (same slot across frames) stays aligned. The class token stays out of the merged sequence,
as in the paper's code: its key is excluded from the metric. The layer works from the actual tokens per frame
and so no longer assumes a square patch grid.
"""

from __future__ import annotations

import torch
from torch import nn

from vtome.attention import attend, key_metric
from vtome.partition import Layout
from vtome.patch.family import Family, swap_class
from vtome.patch.hf import check_video, is_patched, video_grid
from vtome.patch.state import MergeState, Settings


class TimesformerSelfAttention:
    def forward(self, hidden_states: torch.Tensor, output_attentions: bool = False, size=None):
        """(batch, N, D) -> context (batch, N, D), weights or None, metric (batch, N, C)."""
        state: MergeState = self._vtome
        batch, n, dim = hidden_states.shape
        q, k, v = self.qkv(hidden_states).reshape(batch, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        out, weights = attend(
            q, k, v, size, self.scale,
            dropout=self.attn_drop.p if self.training else 0.0,
            eager=state.eager(False) or output_attentions,
            skip_first_query=state.settings.paper,
            key_bias=state.key_bias(self.__dict__.get("_vtome_layer"), k, prefix=1),  # None in temporal attention
        )
        return out.transpose(1, 2).reshape(batch, n, dim), weights, key_metric(k, state.settings.head_aggregation)


class TimesformerLayer:
    def forward(self, hidden_states: torch.Tensor, output_attentions: bool = False):
        """hidden_states: (batch, 1 + S * T, D), the class token then S slots x T frames (frame index fastest)."""
        state: MergeState = self._vtome
        frames = self.config.num_frames
        batch, length, dim = hidden_states.shape
        slots = (length - 1) // frames
        cls, patches = hidden_states[:, :1], hidden_states[:, 1:]

        # Temporal attention: each slot across the frames.
        temporal = patches.reshape(batch * slots, frames, dim)
        context, _, _ = self.temporal_attention.attention(self.temporal_layernorm(temporal))
        residual = self.drop_path(self.temporal_attention.output(context))
        patches = patches + self.temporal_dense(residual.reshape(batch, slots * frames, dim))

        # Spatial attention: frames folded into the batch, each with a copy of the class token.
        per_frame = patches.reshape(batch, slots, frames, dim).transpose(1, 2).reshape(batch * frames, slots, dim)
        spatial = torch.cat([cls.repeat(1, frames, 1).reshape(batch * frames, 1, dim), per_frame], dim=1)
        size = state.enter(self._vtome_layer, per_frame)
        if size is not None:
            size = torch.cat([torch.ones_like(size[:, :1]), size], dim=1)
        context, weights, metric = self.attention.attention(
            self.layernorm_before(spatial), output_attentions, size=size
        )
        residual = self.drop_path(self.attention.output(context))
        cls = cls + residual[:, 0].reshape(batch, frames, dim).mean(1, keepdim=True)
        per_frame = per_frame + residual[:, 1:]

        # Merge within each frame, the same number of tokens in every frame.
        per_frame = state.reduce(self._vtome_layer, per_frame, metric[:, 1:])
        slots = per_frame.shape[1]
        patches = per_frame.reshape(batch, frames, slots, dim).transpose(1, 2).reshape(batch, slots * frames, dim)

        hidden_states = torch.cat([cls, patches], dim=1)
        layer_output = self.output(self.intermediate(self.layernorm_after(hidden_states)))
        layer_output = hidden_states + self.drop_path(layer_output)
        return (layer_output, weights) if output_attentions else (layer_output,)


class TimesformerModel:
    def forward(self, pixel_values=None, *args, **kwargs):
        # Any resolution: the embeddings interpolate and the patched layers take any number of slots.
        if is_patched(self):
            check_video(self.config, pixel_values, any_resolution=True)
        return super().forward(pixel_values, *args, **kwargs)


def _matches(model: nn.Module) -> bool:
    from transformers import TimesformerForVideoClassification, TimesformerModel

    return isinstance(model, TimesformerModel | TimesformerForVideoClassification)


def _apply(model: nn.Module, settings: Settings) -> MergeState:
    base = getattr(model, "timesformer", model)
    if base.config.attention_type != "divided_space_time":
        raise TypeError(
            f"vtome patches TimeSformer with divided_space_time attention; this one uses "
            f"{base.config.attention_type!r}"
        )
    layers = base.encoder.layer
    state = MergeState(
        settings, len(layers), protected=0, groups=base.config.num_frames,
        num_tokens=base.embeddings.num_patches,
    )
    swap_class(base, TimesformerModel, state)
    for i, layer in enumerate(layers):
        swap_class(layer, TimesformerLayer, state)
        swap_class(layer.attention.attention, TimesformerSelfAttention, state)
        swap_class(layer.temporal_attention.attention, TimesformerSelfAttention, state)
        layer._vtome_layer = layer.attention.attention._vtome_layer = i
    return state


def _layout(model: nn.Module) -> Layout:
    # The merged rows are single frames of the configured patch grid (the class token stays out of them).
    return video_grid(getattr(model, "timesformer", model).config, 1, prefix=0, per_frame=True)


FAMILY = Family("timesformer", _matches, _apply, prop_attn=True, layout=_layout)
