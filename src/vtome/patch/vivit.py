"""HF ViViT: joint space-time attention over all frames; the class token (position 0) is protected."""

from __future__ import annotations

import torch
from torch import nn

from vtome.attention import attend, key_metric
from vtome.partition import Layout
from vtome.patch.family import Family, swap_class
from vtome.patch.hf import CheckedInput, is_patched, video_grid, wants_attentions
from vtome.patch.state import MergeState, Settings


class VivitAttention:
    def forward(self, hidden_states: torch.Tensor, attention_mask=None, size=None, **kwargs):
        """(batch, N, D) -> output (batch, N, D), weights (when asked for or eager) or None, metric (batch, N, C)."""
        state: MergeState = self._vtome
        shape = (*hidden_states.shape[:-1], -1, self.head_dim)
        q = self.q_proj(hidden_states).view(shape).transpose(1, 2)
        k = self.k_proj(hidden_states).view(shape).transpose(1, 2)
        v = self.v_proj(hidden_states).view(shape).transpose(1, 2)
        out, weights = attend(
            q, k, v, size, self.scaling,
            dropout=self.attention_dropout if self.training else 0.0,
            eager=state.eager(self.config._attn_implementation == "eager") or wants_attentions(self.config, kwargs),
            key_bias=state.key_bias(self._vtome_layer, k),
        )
        out = self.o_proj(out.transpose(1, 2).reshape(*hidden_states.shape[:-1], -1))
        return out, weights, key_metric(k, state.settings.head_aggregation)


class VivitLayer:
    def forward(self, hidden_states: torch.Tensor, attention_mask=None, **kwargs) -> torch.Tensor:
        # attention_mask is what VivitModel made from the user's (refused there): None, or all-attend under export.
        state: MergeState = self._vtome
        size = state.enter(self._vtome_layer, hidden_states)
        residual = hidden_states
        hidden_states, _, metric = self.attention(self.layernorm_before(hidden_states), size=size, **kwargs)
        hidden_states = self.dropout(hidden_states) + residual
        hidden_states = state.reduce(self._vtome_layer, hidden_states, metric)

        residual = hidden_states
        hidden_states = self.dropout(self.mlp(self.layernorm_after(hidden_states)))
        return hidden_states + residual


class VivitModel(CheckedInput):
    def forward(self, pixel_values=None, *args, **kwargs):
        mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        if mask is not None and is_patched(self):
            raise ValueError("vtome: attention_mask is not supported on a patched ViViT (merging changes the tokens)")
        return super().forward(pixel_values, *args, **kwargs)


def _matches(model: nn.Module) -> bool:
    from transformers import VivitForVideoClassification, VivitModel

    return isinstance(model, VivitModel | VivitForVideoClassification)


def _apply(model: nn.Module, settings: Settings) -> MergeState:
    base = getattr(model, "vivit", model)
    state = MergeState(
        settings, len(base.layers), protected=1, groups=1,
        num_tokens=base.embeddings.patch_embeddings.num_patches + 1,
    )
    swap_class(base, VivitModel, state)
    for i, layer in enumerate(base.layers):
        swap_class(layer, VivitLayer, state)
        swap_class(layer.attention, VivitAttention, state)
        layer._vtome_layer = layer.attention._vtome_layer = i
    return state


def _layout(model: nn.Module) -> Layout:
    config = getattr(model, "vivit", model).config
    return video_grid(config, config.tubelet_size[0], prefix=1)


FAMILY = Family("vivit", _matches, _apply, prop_attn=True, layout=_layout)
