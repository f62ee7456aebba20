"""timm VisionTransformer (images), for comparison with ToMe. The class token, if any, is protected; 'avg'
pooling is size-weighted."""

from __future__ import annotations

import torch
from torch import nn

from vtome.attention import attend, key_metric
from vtome.partition import Layout
from vtome.patch.family import Family, swap_class
from vtome.patch.state import MergeState, Settings


class Attention:
    def forward(self, x: torch.Tensor, attn_mask=None, is_causal: bool = False, size=None):
        """(batch, N, D) -> output (batch, N, D), metric (batch, N, C)."""
        if attn_mask is not None or is_causal:
            raise ValueError("vtome: attention masks are not supported on a patched timm ViT")
        state: MergeState = self._vtome
        batch, n, _ = x.shape
        gate = self.gate(x).sigmoid() if self.gate is not None else None
        q, k, v = self.qkv(x).reshape(batch, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        out, _ = attend(
            q, k, v, size, self.scale,
            dropout=self.attn_drop.p if self.training else 0.0,
            eager=state.eager(not self.fused_attn),
            key_bias=state.key_bias(self._vtome_layer, k),
        )
        out = self.norm(out.transpose(1, 2).reshape(batch, n, self.attn_dim))
        if gate is not None:
            out = out * gate
        out = self.proj_drop(self.proj(out))
        return out, key_metric(k, state.settings.head_aggregation)


class Block:
    def forward(self, x: torch.Tensor, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        state: MergeState = self._vtome
        size = state.enter(self._vtome_layer, x)
        out, metric = self.attn(self.norm1(x), attn_mask=attn_mask, is_causal=is_causal, size=size)
        x = x + self.drop_path1(self.ls1(out))
        x = state.reduce(self._vtome_layer, x, metric)
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class VisionTransformer:
    def pool(self, x: torch.Tensor, pool_type: str | None = None) -> torch.Tensor:
        pool_type = self.global_pool if pool_type is None else pool_type
        size = self._vtome.pool_size() if "_vtome" in self.__dict__ else None
        if pool_type == "avg" and self.attn_pool is None and size is not None:
            start = 0 if self.pool_include_prefix else self.num_prefix_tokens
            x, size = x[:, start:], size[:, start:]
            return ((x * size).sum(1) / size.sum(1)).to(x.dtype)
        return super().pool(x, pool_type)


def _matches(model: nn.Module) -> bool:
    from timm.models.vision_transformer import VisionTransformer

    return isinstance(model, VisionTransformer)


def _apply(model: nn.Module, settings: Settings) -> MergeState:
    from timm.layers import Attention as TimmAttention
    from timm.models.vision_transformer import Block as TimmBlock

    if model.num_prefix_tokens > 1 or (model.num_prefix_tokens == 1 and not model.has_class_token):
        raise TypeError(
            "vtome patches timm ViTs with a class token or no prefix token at all; this one has "
            f"{model.num_prefix_tokens} prefix tokens (register or distillation tokens are not supported)"
        )
    blocks = list(model.blocks)
    for block in blocks:
        if type(block) is not TimmBlock or type(block.attn) is not TimmAttention:
            raise TypeError(
                f"vtome patches timm ViTs made of timm Block/Attention; found {type(block).__name__} with "
                f"{type(block.attn).__name__}"
            )
    num_tokens = model.patch_embed.num_patches + model.num_prefix_tokens
    state = MergeState(settings, len(blocks), protected=model.num_prefix_tokens, groups=1, num_tokens=num_tokens)
    swap_class(model, VisionTransformer, state)
    for i, block in enumerate(blocks):
        swap_class(block, Block, state)
        swap_class(block.attn, Attention, state)
        block._vtome_layer = block.attn._vtome_layer = i
    return state


def _layout(model: nn.Module) -> Layout:
    height, width = model.patch_embed.grid_size
    return Layout(1, height, width, prefix=model.num_prefix_tokens)


FAMILY = Family("timm-vit", _matches, _apply, prop_attn=True, layout=_layout)
