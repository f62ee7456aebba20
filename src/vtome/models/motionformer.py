"""Motionformer (Patrick et al., "Keeping Your Eye on the Ball: Trajectory Attention in Video Transformers",
NeurIPS 2021), written from its math. Attribute names reproduce the official checkpoints' state_dict keys, so
`load_state_dict(strict=True)` takes their `model_state` (see vtome.models.pyth). Nothing is downloaded.

    model = Motionformer(MotionformerConfig()).eval()     # Motionformer-B 16x4, random weights
    logits = model(pixel_values=clip).logits               # clip (batch, 16, 3, 224, 224) -> (batch, 400)

Input: (batch, frames, channels, height, width), like the HF video models. A Conv3d makes tubelets of
tubelet_size x patch x patch pixels, in frame-major order: token 1 + f P + n is slot f, patch n (P per slot).
Numerics are those of the released checkpoints (upstream's use_original_code=True: the temporal step's values
are the raw trajectory, so only the key half of proj_kv is computed; LayerNorm eps 1e-6; exact GELU; tanh
pre-logits). The output holds logits; upstream's eval forward returns their softmax. With several class heads
(EPIC-KITCHENS: verbs, nouns) the logits are concatenated in head order.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vtome.models.motionformer_config import MotionformerConfig
from vtome.models.trajectory import (
    AttentionMaps,
    class_attention,
    own_slot,
    spatial_attention,
    temporal_attention,
)

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class MotionformerOutput(NamedTuple):
    """logits (batch, num_labels); attentions: one AttentionMaps per layer when asked for."""

    logits: torch.Tensor
    attentions: tuple[AttentionMaps, ...] | None = None


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples of a residual branch with probability p (training only)."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - p)
    return x * keep / (1 - p)


class PatchEmbed(nn.Module):
    """The 2D stem of the image ViT the model was initialised from. Never used on video; kept (frozen) so that
    the official checkpoints load strictly."""

    def __init__(self, channels: int, dim: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, patch)
        self.proj.requires_grad_(False)


class PatchEmbed3D(nn.Module):
    def __init__(self, channels: int, dim: int, patch: int, tubelet: int):
        super().__init__()
        self.proj = nn.Conv3d(channels, dim, (tubelet, patch, patch), (tubelet, patch, patch))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TrajectoryAttention(nn.Module):
    def __init__(self, config: MotionformerConfig):
        super().__init__()
        dim, bias = config.hidden_size, config.qkv_bias
        self.num_heads = config.num_attention_heads
        self.head_dim = dim // self.num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.proj_q = nn.Linear(dim, dim, bias=bias)
        self.proj_kv = nn.Linear(dim, 2 * dim, bias=bias)  # rows [k | v]
        self.proj = nn.Linear(dim, dim)
        self.attention_dropout = config.attention_dropout
        self.use_original_code = config.use_original_code
        self.eager = config.attn_implementation == "eager"

    def forward(self, x: torch.Tensor, frames: int, output_attentions: bool = False):
        """x (B, 1 + F P, C) -> (B, 1 + F P, C), AttentionMaps (eager) or None."""
        out, maps, _ = self.attend(x, frames, eager=self.eager or output_attentions)
        return out, maps

    def attend(
        self, x: torch.Tensor, frames: int, cls_bias: torch.Tensor | None = None,
        spatial_bias: torch.Tensor | None = None, eager: bool = False, patch_bias=None,
    ) -> tuple[torch.Tensor, AttentionMaps | None, torch.Tensor]:
        """x (B, 1 + F P, C), the class token first and P patches per slot (any P).

        cls_bias: (B, 1, 1, 1 + F P) added to the class token's logits; spatial_bias: (B, F, P) added to the
        spatial logits of each slot's keys; patch_bias: a function of the patch keys (B, h, F P, d) giving a further
        bias (B, F P) of every patch key, or None, added to both (vtome.vtm's saliency-guided attention). Returns
        the output (B, 1 + F P, C), the weights when eager, and the patch keys (B, h, F P, d) of the spatial step.
        """
        batch, length, channels = x.shape
        n = length - 1
        if n % frames:
            raise ValueError(f"Motionformer attention: {n} patch tokens do not split into {frames} slots")
        per_frame = n // frames
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        extra = None if patch_bias is None else patch_bias(k[:, :, 1:])
        if extra is not None:
            spatial_bias = extra.unflatten(1, (frames, per_frame)) + (0 if spatial_bias is None else spatial_bias)
            cls_bias = F.pad(extra, (1, 0))[:, None, None, :] + (0 if cls_bias is None else cls_bias)
        cls_out, cls_maps = class_attention(q[:, :, :1], k, v, cls_bias, self.scale, eager)
        patch_k = k[:, :, 1:]
        y, spatial_maps = spatial_attention(
            q[:, :, 1:], patch_k.unflatten(2, (frames, per_frame)), v[:, :, 1:].unflatten(2, (frames, per_frame)),
            spatial_bias, self.scale, eager, self.attention_dropout if self.training else 0.0,
        )
        y = y.permute(0, 3, 2, 1, 4).reshape(batch, n, frames, channels)  # (B, N, F, C): heads joined
        q2 = self.proj_q(own_slot(y)) * self.scale
        value = None if self.use_original_code else self._kv_half(1)  # the released models: values are y itself
        out, temporal_maps = temporal_attention(q2, y, self.num_heads, self._kv_half(0), value)
        cls_out = cls_out.transpose(1, 2).reshape(batch, 1, channels)
        out = self.proj(torch.cat([cls_out, out], dim=1))
        maps = AttentionMaps(cls_maps, spatial_maps, temporal_maps) if eager else None
        return out, maps, patch_k

    def _kv_half(self, half: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(weight (C, C), bias (C,) or None) of proj_kv's key (0) or value (1) half."""
        channels = self.proj.in_features
        rows = slice(half * channels, (half + 1) * channels)
        return self.proj_kv.weight[rows], None if self.proj_kv.bias is None else self.proj_kv.bias[rows]


class Block(nn.Module):
    def __init__(self, config: MotionformerConfig, drop_path_rate: float):
        super().__init__()
        dim = config.hidden_size
        self.norm1 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.attn = TrajectoryAttention(config)
        self.norm2 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.mlp = Mlp(dim, config.intermediate_size)
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor, frames: int, output_attentions: bool = False):
        """x (B, 1 + F P, C) -> (B, 1 + F P, C), AttentionMaps or None."""
        out, maps = self.attn(self.norm1(x), frames, output_attentions)
        x = x + drop_path(out, self.drop_path_rate, self.training)
        x = x + drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)
        return x, maps


_ACTS = {"tanh": nn.Tanh, "gelu": nn.GELU, "relu": nn.ReLU}


class Motionformer(nn.Module):
    def __init__(self, config: MotionformerConfig | None = None):
        super().__init__()
        self.config = config = config or MotionformerConfig()
        dim, slots = config.hidden_size, config.temporal_resolution
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + config.pos_grid**2, dim))  # class token, then the grid
        self.temp_embed = nn.Parameter(torch.zeros(1, slots, dim))
        self.patch_embed = PatchEmbed(config.num_channels, dim, config.patch_size)
        self.patch_embed_3d = PatchEmbed3D(config.num_channels, dim, config.patch_size, config.tubelet_size)
        depth = config.num_hidden_layers
        rates = [config.drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(Block(config, rate) for rate in rates)
        self.norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        if config.use_mlp:
            self.pre_logits = nn.Sequential(OrderedDict(fc=nn.Linear(dim, dim), act=_ACTS[config.head_act]()))
        else:
            self.pre_logits = nn.Identity()
        if config.class_heads is None:
            self.head = nn.Linear(dim, config.num_labels)
        else:
            for i, classes in enumerate(config.class_heads):
                self.add_module(f"head{i}", nn.Linear(dim, classes))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Random weights as upstream initialises a new model (truncated normal, std 0.02; zero biases)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for table in (self.cls_token, self.pos_embed, self.temp_embed):
            nn.init.trunc_normal_(table, std=0.02)

    def set_attn_implementation(self, implementation: str) -> None:
        """"sdpa" (fused attention) or "eager" (explicit softmax, attention maps available)."""
        if implementation not in ("sdpa", "eager"):
            raise ValueError(f"attn_implementation must be 'sdpa' or 'eager'; got {implementation!r}")
        self.config.attn_implementation = implementation
        for block in self.blocks:
            block.attn.eager = implementation == "eager"

    # --- forward ------------------------------------------------------------------------------------------------

    def check_input(self, pixel_values: torch.Tensor | None) -> None:
        """Raise a one-line ValueError unless pixel_values is (batch, frames, channels, H, W) as configured."""
        c = self.config
        expected = f"(batch, {c.num_frames} frames, {c.num_channels} channels, height, width)"
        if pixel_values is None:
            raise ValueError(f"pixel_values is required: a tensor {expected}")
        shape = tuple(pixel_values.shape)
        if pixel_values.dim() != 5:
            raise ValueError(f"pixel_values must be 5-D {expected}; got shape {shape}")
        if shape[1] != c.num_frames:
            raise ValueError(f"this Motionformer takes {c.num_frames} frames per clip ({c.temporal_resolution} slots "
                             f"of {c.tubelet_size} frames); got {shape[1]} (pixel_values {shape}, expected {expected})")
        if shape[2] != c.num_channels:
            raise ValueError(f"pixel_values must have {c.num_channels} channels in dim 2; got shape {shape}, "
                             f"expected {expected}")
        if min(shape[3:]) < c.patch_size:
            raise ValueError(f"frames of {shape[3]}x{shape[4]} pixels hold no {c.patch_size}-pixel patch")

    def position_embedding(self, rows: int, cols: int) -> torch.Tensor:
        """(1, 1 + F rows cols, C): the class token's row, then space + time for every patch (frame-major). The
        spatial table is resized (bicubic, as upstream) when the patch grid is not the stored one."""
        grid, dim = self.config.pos_grid, self.pos_embed.shape[-1]
        spatial = self.pos_embed[:, 1:]
        if (rows, cols) != (grid, grid):
            table = spatial.reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
            scale = math.sqrt(rows * cols / grid**2)
            if rows == cols and math.floor(grid * scale) == rows:  # upstream's call: the same numbers
                table = F.interpolate(table, scale_factor=scale, mode="bicubic")
            else:
                table = F.interpolate(table, size=(rows, cols), mode="bicubic")
            spatial = table.permute(0, 2, 3, 1).reshape(1, rows * cols, dim)
        slots = self.temp_embed.shape[1]
        patches = spatial.repeat(1, slots, 1) + self.temp_embed.repeat_interleave(rows * cols, dim=1)
        return torch.cat([self.pos_embed[:, :1], patches], dim=1)

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) -> tokens (B, 1 + F P, D) with positions added."""
        tokens = self.patch_embed_3d.proj(pixel_values.transpose(1, 2))  # (B, D, F, rows, cols)
        rows, cols = tokens.shape[-2:]
        tokens = tokens.flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1) + self.position_embedding(rows, cols)

    def classify(self, cls: torch.Tensor) -> torch.Tensor:
        """The final class token (B, D) -> logits (B, num_labels)."""
        features = self.pre_logits(self.norm(cls))
        if self.config.class_heads is None:
            return self.head(features)
        return torch.cat([getattr(self, f"head{i}")(features) for i in range(len(self.config.class_heads))], dim=-1)

    def forward(self, pixel_values: torch.Tensor | None = None, output_attentions: bool = False) -> MotionformerOutput:
        """pixel_values (B, T, C, H, W) -> logits (B, num_labels) (and per-layer AttentionMaps if asked)."""
        self.check_input(pixel_values)
        x = self.embed(pixel_values)
        maps = []
        for block in self.blocks:
            x, layer_maps = block(x, self.config.temporal_resolution, output_attentions)
            maps.append(layer_maps)
        return MotionformerOutput(self.classify(x[:, 0]), tuple(maps) if output_attentions else None)

    # --- a directory of its own: config.json + model.safetensors -----------------------------------------------

    def save_pretrained(self, path: str | Path) -> None:
        """Write config.json and model.safetensors to the directory path (read back by `from_pretrained`)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, path / WEIGHTS, metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Motionformer:
        """A directory written by save_pretrained; weights loaded strictly. Eval mode."""
        from safetensors.torch import load_file

        path = Path(path)
        config = MotionformerConfig.from_dict(json.loads((path / CONFIG).read_text()))
        config.name_or_path = str(path)
        model = cls(config)
        model.load_state_dict(load_file(path / WEIGHTS), strict=True)
        return model.eval()
