"""HF V-JEPA 2: joint space-time attention with 3-D rotary positions, no class token, an attentive pooler head.

Rotary positions. V-JEPA 2 rotates queries and keys by each token's (frame, row, column) in the tubelet grid,
which transformers derives from the token's index. After a merge the index no longer says where a token is, so
the positions travel with the tokens (MergeState carries them): the layer-1 tokens start at their grid positions,
and a merged token sits at the size-weighted mean of its members' (patch(position="mean"); or its target's, or
its joined sources'). RoPE's angle is linear in the position, so a fractional position is well defined.

The matching metric is the keys before rotation: two tokens that hold the same content at different places are
redundant, and their rotated keys would differ by where they are.

The attentive pooler (self-attention layers over the encoder tokens, then one learned query cross-attending to
them) runs on the merged tokens, with proportional attention: log(size) on its keys in every pooler layer.

Only the encoder is patched: the predictor and its context / target masks index the unmerged tokens, so a patched
VJEPA2Model must be called with skip_predictor=True and without masks (a clear error otherwise).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.utils.generic import can_return_tuple

from vtome.attention import attend, key_metric
from vtome.partition import Layout
from vtome.patch.family import Family, swap_class
from vtome.patch.hf import is_patched, wants_attentions
from vtome.patch.state import MergeState, Settings


def grid(config, frames: int | None = None) -> tuple[int, int, int]:
    """(T', H', W'): the tubelet grid of a clip of `frames` frames (default config.frames_per_clip). The tokens
    entering layer 1 are this grid flattened, time slowest: token i sits at (i // (H'W'), i // W' % H', i % W')."""
    frames = config.frames_per_clip if frames is None else frames
    side = config.crop_size // config.patch_size
    return frames // config.tubelet_size, side, side


def grid_positions(config, num_tokens: int, device: torch.device | None = None) -> torch.Tensor:
    """(num_tokens, 3) float32 (frame, row, column) of the layer-1 tokens, as transformers computes them from the
    token index (get_position_ids)."""
    _, rows, columns = grid(config)
    index = torch.arange(num_tokens, device=device)
    per_frame = rows * columns
    return torch.stack([index // per_frame, index % per_frame // columns, index % columns], dim=-1).float()


def check_clip(config, pixel_values_videos: torch.Tensor | None) -> None:
    """Raise a clear ValueError unless the clip is (batch, frames, channels, crop, crop) with frames a multiple of
    the tubelet size (the frame count is otherwise free: V-JEPA 2's positions do not depend on it)."""
    if pixel_values_videos is None:
        raise ValueError("pixel_values_videos is required")
    tube, crop, channels = config.tubelet_size, config.crop_size, config.in_chans
    shape = tuple(pixel_values_videos.shape)
    expected = f"(batch, frames (a multiple of {tube}), {channels} channels, {crop}, {crop})"
    if pixel_values_videos.dim() != 5:
        raise ValueError(f"pixel_values_videos must be 5-D {expected}; got shape {shape}")
    if shape[1] < tube or shape[1] % tube:
        raise ValueError(f"this V-JEPA 2 takes a multiple of {tube} frames per clip (tubelet size {tube}); got "
                         f"{shape[1]} (pixel_values_videos {shape}, expected {expected})")
    if shape[2] != channels:
        raise ValueError(f"pixel_values_videos must have {channels} channels in dim 2; got shape {shape}, expected "
                         f"{expected}")
    if shape[3:] != (crop, crop):
        raise ValueError(f"this V-JEPA 2 takes {crop}x{crop} frames (its rotary positions assume config.crop_size); "
                         f"got {shape[3]}x{shape[4]} (pixel_values_videos {shape}, expected {expected})")


def rotary_ids(position: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """(batch, N, 3) positions -> (frame, row, column) ids of shape (batch, 1, N), as transformers'
    apply_rotary_embeddings takes them (the 1 broadcasts over heads)."""
    return tuple(position[..., i].unsqueeze(1).to(dtype) for i in range(3))


class VJEPA2RopeAttention:
    def forward(self, hidden_states: torch.Tensor, position_mask=None, position=None, size=None, **kwargs):
        """(batch, N, D), position (batch, N, 3) -> output (batch, N, D), weights or None, metric (batch, N, C)."""
        state: MergeState = self._vtome
        shape = (*hidden_states.shape[:-1], -1, self.attention_head_size)
        q = self.query(hidden_states).view(shape).transpose(1, 2)
        k = self.key(hidden_states).view(shape).transpose(1, 2)
        v = self.value(hidden_states).view(shape).transpose(1, 2)
        # One rotation of queries and keys together (transformers' own function, elementwise: the same numbers).
        qk = self.apply_rotary_embeddings(torch.cat([q, k], dim=1), rotary_ids(position, q.dtype))
        rotated_q, rotated_k = qk.chunk(2, dim=1)
        out, weights = attend(
            rotated_q, rotated_k, v, size, self.scaling,
            dropout=self.dropout_prob if self.training else 0.0,
            eager=state.eager(self.config._attn_implementation == "eager") or wants_attentions(self.config, kwargs),
            key_bias=state.key_bias(self._vtome_layer, k),  # saliency from the unrotated keys, as the metric
        )
        out = self.proj(out.transpose(1, 2).reshape(*hidden_states.shape[:-1], self.all_head_size))
        return out, weights, key_metric(k, state.settings.head_aggregation)


class VJEPA2Layer:
    def forward(self, hidden_states: torch.Tensor, position_mask=None, **kwargs):
        if position_mask is not None:  # only the predictor passes position masks; its layers are not patched
            raise ValueError("vtome: position_mask is not supported on a patched V-JEPA 2 encoder layer")
        state: MergeState = self._vtome
        layer = self._vtome_layer
        start = grid_positions(self.config, hidden_states.shape[1], hidden_states.device) if layer == 0 else None
        size = state.enter(layer, hidden_states, position=start)
        residual = hidden_states
        attention, weights, metric = self.attention(
            self.norm1(hidden_states), position=state.position(layer), size=size, **kwargs
        )
        hidden_states = self.drop_path(attention) + residual
        hidden_states = state.reduce(layer, hidden_states, metric)

        residual = hidden_states
        hidden_states = self.drop_path(self.mlp(self.norm2(hidden_states))) + residual
        return hidden_states, weights


class VJEPA2Model:
    def forward(self, pixel_values_videos=None, context_mask=None, target_mask=None, skip_predictor=False,
                **kwargs):
        if is_patched(self):
            check_clip(self.config, pixel_values_videos)
            if context_mask is not None or target_mask is not None:
                raise ValueError("vtome: context_mask / target_mask are not supported on a patched V-JEPA 2 (they "
                                 "index the unmerged tokens); call it without masks, with skip_predictor=True")
            if not skip_predictor:
                raise ValueError("vtome: a patched V-JEPA 2 runs its encoder only (the predictor needs the unmerged "
                                 "tokens); call it with skip_predictor=True, or vtome.unpatch it first")
        return super().forward(pixel_values_videos, context_mask, target_mask, skip_predictor, **kwargs)


# --- the attentive pooler: proportional attention on the merged tokens ---------------------------------------


class VJEPA2PoolerSelfAttention:
    def forward(self, hidden_states: torch.Tensor, attention_mask=None, size=None):
        """(batch, N, D), size (batch, N, 1) or None -> (batch, N, D), weights or None."""
        if attention_mask is not None:
            raise ValueError("vtome: attention masks are not supported in a patched V-JEPA 2 pooler")
        shape = (*hidden_states.shape[:-1], -1, self.head_dim)
        q = self.q_proj(hidden_states).view(shape).transpose(1, 2)
        k = self.k_proj(hidden_states).view(shape).transpose(1, 2)
        v = self.v_proj(hidden_states).view(shape).transpose(1, 2)
        out, weights = attend(
            q, k, v, size, self.scale, dropout=self.dropout if self.training else 0.0,
            eager=self._vtome.eager(self.config._attn_implementation == "eager"),
        )
        return self.out_proj(out.transpose(1, 2).reshape(*hidden_states.shape[:-1], -1)), weights


class VJEPA2PoolerCrossAttention:
    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, attention_mask=None,
                size=None):
        """queries (batch, Q, D), keys and values (batch, N, D), size (batch, N, 1) or None -> (batch, Q, D),
        weights or None."""
        if attention_mask is not None:
            raise ValueError("vtome: attention masks are not supported in a patched V-JEPA 2 pooler")
        batch = queries.shape[0]
        q = self.q_proj(queries).view(batch, -1, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(keys).view(batch, -1, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(values).view(batch, -1, self.num_heads, self.head_dim).transpose(1, 2)
        out, weights = attend(
            q, k, v, size, self.scale, dropout=self.dropout if self.training else 0.0,
            eager=self._vtome.eager(self.config._attn_implementation == "eager"),
        )
        return out.transpose(1, 2).reshape(*queries.shape), weights


class VJEPA2PoolerSelfAttentionLayer:
    def forward(self, hidden_states: torch.Tensor, attention_mask=None, size=None):
        residual = hidden_states
        hidden_states, weights = self.self_attn(self.layer_norm1(hidden_states), attention_mask, size=size)
        hidden_states = residual + hidden_states
        hidden_states = hidden_states + self.mlp(self.layer_norm2(hidden_states))
        return hidden_states, weights


class VJEPA2PoolerCrossAttentionLayer:
    def forward(self, queries: torch.Tensor, hidden_state: torch.Tensor, attention_mask=None, size=None):
        hidden_state = self.layer_norm1(hidden_state)
        hidden_state, weights = self.cross_attn(queries, hidden_state, hidden_state, attention_mask, size=size)
        hidden_state = queries + hidden_state
        hidden_state = hidden_state + self.mlp(self.layer_norm2(hidden_state))
        return hidden_state, weights


class VJEPA2AttentivePooler:
    def forward(self, hidden_state: torch.Tensor, size: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, N, D) tokens, size (batch, N, 1) or None (no proportional attention) -> (batch, D)."""
        for layer in self.self_attention_layers:
            hidden_state = layer(hidden_state, attention_mask=None, size=size)[0]
        queries = self.query_tokens.repeat(hidden_state.shape[0], 1, 1)
        return self.cross_attention_layer(queries, hidden_state, size=size)[0].squeeze(1)


def pooler_size(state: MergeState) -> torch.Tensor | None:
    """The sizes the pooler weighs its keys by: the encoder's final ones, when proportional attention is on and
    something merged (else None: log 1 adds nothing)."""
    final = state.final
    if final is None or not final.merged or not state.settings.prop_attn:
        return None
    return final.size


class VJEPA2ForVideoClassification:
    @can_return_tuple
    def forward(self, pixel_values_videos=None, labels=None, **kwargs):
        if not is_patched(self):  # an instance made by from_pretrained of the patched class
            return super().forward(pixel_values_videos, labels, **kwargs)
        outputs = self.vjepa2(pixel_values_videos=pixel_values_videos, skip_predictor=True, **kwargs)
        pooled = self.pooler(outputs.last_hidden_state, size=pooler_size(self._vtome))
        logits = self.classifier(pooled)
        loss = None if labels is None else self.loss_function(pooled_logits=logits, labels=labels, config=self.config)
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


def _matches(model: nn.Module) -> bool:
    from transformers import VJEPA2ForVideoClassification, VJEPA2Model

    return isinstance(model, VJEPA2Model | VJEPA2ForVideoClassification)


def _apply(model: nn.Module, settings: Settings) -> MergeState:
    base = getattr(model, "vjepa2", model)
    layers = base.encoder.layer
    t, h, w = grid(base.config)
    state = MergeState(settings, len(layers), protected=0, groups=1, num_tokens=t * h * w)
    if base is not model:
        swap_class(model, VJEPA2ForVideoClassification, state)
        pooler = model.pooler
        swap_class(pooler, VJEPA2AttentivePooler, state)
        for layer in pooler.self_attention_layers:
            swap_class(layer, VJEPA2PoolerSelfAttentionLayer, state)
            swap_class(layer.self_attn, VJEPA2PoolerSelfAttention, state)
        swap_class(pooler.cross_attention_layer, VJEPA2PoolerCrossAttentionLayer, state)
        swap_class(pooler.cross_attention_layer.cross_attn, VJEPA2PoolerCrossAttention, state)
    swap_class(base, VJEPA2Model, state)
    for i, layer in enumerate(layers):
        swap_class(layer, VJEPA2Layer, state)
        swap_class(layer.attention, VJEPA2RopeAttention, state)
        layer._vtome_layer = layer.attention._vtome_layer = i
    return state


def _layout(model: nn.Module) -> Layout:
    return Layout(*grid(getattr(model, "vjepa2", model).config), prefix=0)


FAMILY = Family("vjepa2", _matches, _apply, prop_attn=True, layout=_layout)
