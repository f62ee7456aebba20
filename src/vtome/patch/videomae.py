"""HF VideoMAE: joint space-time attention, no class token. The classifier's mean pooling is size-weighted,
so a merged token counts for every patch it holds."""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.utils.generic import can_return_tuple

from vtome.attention import attend, key_metric
from vtome.partition import Layout
from vtome.patch.family import Family, swap_class
from vtome.patch.hf import CheckedInput, is_patched, video_grid, wants_attentions
from vtome.patch.state import MergeState, Settings


class VideoMAESelfAttention:
    def forward(self, hidden_states: torch.Tensor, size=None, **kwargs):
        """(batch, N, D) -> context (batch, N, D), weights or None, metric (batch, N, C)."""
        state: MergeState = self._vtome
        shape = (*hidden_states.shape[:-1], -1, self.attention_head_size)
        k = self.key(hidden_states).view(shape).transpose(1, 2)
        v = self.value(hidden_states).view(shape).transpose(1, 2)
        q = self.query(hidden_states).view(shape).transpose(1, 2)
        out, weights = attend(
            q, k, v, size, self.scaling,
            dropout=self.dropout_prob if self.training else 0.0,
            eager=state.eager(self.config._attn_implementation == "eager") or wants_attentions(self.config, kwargs),
            key_bias=state.key_bias(self._vtome_layer, k),
        )
        out = out.transpose(1, 2).reshape(*hidden_states.shape[:-1], self.all_head_size)
        return out, weights, key_metric(k, state.settings.head_aggregation)


class VideoMAELayer:
    def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
        state: MergeState = self._vtome
        size = state.enter(self._vtome_layer, hidden_states)
        normed = self.layernorm_before(hidden_states)
        context, _, metric = self.attention.attention(normed, size=size, **kwargs)
        hidden_states = self.attention.output(context, normed) + hidden_states
        hidden_states = state.reduce(self._vtome_layer, hidden_states, metric)
        layer_output = self.intermediate(self.layernorm_after(hidden_states))
        return self.output(layer_output, hidden_states)


class VideoMAEModel(CheckedInput):
    pass


def weighted_mean(tokens: torch.Tensor, size: torch.Tensor | None) -> torch.Tensor:
    """(batch, N, D) tokens, (batch, N, 1) sizes -> (batch, D): the mean over the input patches."""
    if size is None:
        return tokens.mean(1)
    return ((tokens * size).sum(1) / size.sum(1)).to(tokens.dtype)


class VideoMAEForVideoClassification:
    @can_return_tuple
    def forward(self, pixel_values=None, labels=None, **kwargs):
        if not is_patched(self):  # an instance made by from_pretrained of the patched class
            return super().forward(pixel_values, labels, **kwargs)
        outputs = self.videomae(pixel_values, **kwargs)
        sequence_output = outputs.last_hidden_state
        if self.fc_norm is not None:
            pooled = self.fc_norm(weighted_mean(sequence_output, self._vtome.pool_size()))
        else:
            pooled = sequence_output[:, 0]
        logits = self.classifier(pooled)
        loss = None if labels is None else self.loss_function(labels, logits, self.config, **kwargs)
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


def _matches(model: nn.Module) -> bool:
    from transformers import VideoMAEForVideoClassification, VideoMAEModel

    return isinstance(model, VideoMAEModel | VideoMAEForVideoClassification)


def _apply(model: nn.Module, settings: Settings) -> MergeState:
    base = getattr(model, "videomae", model)
    layers = base.encoder.layer
    state = MergeState(settings, len(layers), protected=0, groups=1, num_tokens=base.embeddings.num_patches)
    if base is not model:
        swap_class(model, VideoMAEForVideoClassification, state)
    swap_class(base, VideoMAEModel, state)
    for i, layer in enumerate(layers):
        swap_class(layer, VideoMAELayer, state)
        swap_class(layer.attention.attention, VideoMAESelfAttention, state)
        layer._vtome_layer = layer.attention.attention._vtome_layer = i
    return state


def _layout(model: nn.Module) -> Layout:
    config = getattr(model, "videomae", model).config
    return video_grid(config, config.tubelet_size, prefix=0)


FAMILY = Family("videomae", _matches, _apply, prop_attn=False, layout=_layout)
