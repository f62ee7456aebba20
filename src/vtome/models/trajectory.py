"""Trajectory attention (Motionformer), as functions of the projected tensors. Shapes use B batch, h heads,
d head dim, C = h d channels, F token slots (frames), P patches per slot, N = F P patch tokens in frame-major
order (patch s sits in slot s // P), and L = 1 + N with the class token first.

1. class token: ordinary attention over all L tokens;
2. spatial step: each patch query attends to the patches of every slot separately (F softmaxes over P keys),
   giving a trajectory of F points per query: Y (B, h, F, N, d);
3. temporal step: the trajectory point in the query's own slot, projected, attends along the trajectory.

Additive biases (log sizes, for proportional attention) go to the class token's keys and to the spatial keys;
the temporal step has none (every query has exactly one point per slot). SDPA computes steps 1 and 2 unless
attention maps are wanted (eager).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from vtome.opaque import opaque


class AttentionMaps(NamedTuple):
    """The weights of one layer (eager only): cls (B, h, 1, L), spatial (B, h, N, F, P), temporal (B, h, N, F)."""

    cls: torch.Tensor
    spatial: torch.Tensor
    temporal: torch.Tensor


def class_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None, scale: float, eager: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """q (B, h, 1, d) the class query; k, v (B, h, L, d); bias (B, 1, 1, L) or None.
    Returns (B, h, 1, d) and, when eager, the weights (B, h, 1, L)."""
    if not eager:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale), None
    scores = (q * scale) @ k.transpose(-2, -1)
    if bias is not None:
        scores = scores + bias
    weights = scores.softmax(-1)
    return weights @ v, weights


def spatial_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None, scale: float, eager: bool,
    dropout: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """q (B, h, N, d) patch queries; k, v (B, h, F, P, d) patch keys and values per slot; bias (B, F, P) or None.

    Returns the trajectories Y (B, h, F, N, d) (Y[:, :, f, s] is query s's point in slot f) and, when eager, the
    weights (B, h, N, F, P). SDPA sees (B h) as its batch and the F slots as its heads, the slots sharing one copy
    of the queries (an expanded view).
    """
    batch, heads, n, dim = q.shape
    frames, per_frame = k.shape[2:4]
    if not eager:
        queries = q.reshape(batch * heads, 1, n, dim)
        keys, values = (t.reshape(batch * heads, frames, per_frame, dim) for t in (k, v))
        mask = None
        if bias is not None:
            mask = bias[:, None, :, None, :].expand(-1, heads, -1, -1, -1).reshape(batch * heads, frames, 1, per_frame)
        if dropout == 0 and opaque():
            out = slot_attention(queries, keys, values, mask, scale)
        else:
            out = _slot_attention(queries, keys, values, mask, scale, dropout)
        return out.view(batch, heads, frames, n, dim), None
    scores = q[:, :, None] @ k.transpose(-2, -1) * scale  # (B, h, F, N, P): one slot after the other
    if bias is not None:
        scores = scores + bias[:, None, :, None, :]
    weights = scores.softmax(-1)
    out = F.dropout(weights, p=dropout, training=dropout > 0) @ v
    return out, weights.transpose(2, 3)


def _slot_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float, dropout: float = 0.0
) -> torch.Tensor:
    """q (X, 1, N, d) queries shared by the F slots; k, v (X, F, P, d); mask (X, F, 1, P) or None -> (X, F, N, d)."""
    return F.scaled_dot_product_attention(q.expand(-1, k.shape[1], -1, -1), k, v, attn_mask=mask, dropout_p=dropout,
                                          scale=scale)


@torch.library.custom_op("vtome::slot_attention", mutates_args=())
def slot_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float
) -> torch.Tensor:
    """_slot_attention as one opaque operator for torch.compile: inductor's SDPA lowering copies the queries that
    the F slots share into F dense copies (X F N d floats per layer), which the SDPA kernel itself reads in place.
    """
    return _slot_attention(q, k, v, mask, scale)


@slot_attention.register_fake
def _(q, k, v, mask, scale):
    return _slot_attention(q, k, v, mask, scale)  # SDPA's own meta function: the real output's shape and strides


def own_slot(y: torch.Tensor) -> torch.Tensor:
    """y (B, N, F, C) trajectories with heads joined -> (B, N, C): each query's point in its own slot."""
    batch, n, frames, channels = y.shape
    diagonal = y.view(batch, frames, n // frames, frames, channels).diagonal(dim1=1, dim2=3)  # (B, P, C, F)
    return diagonal.permute(0, 3, 1, 2).reshape(batch, n, channels)


def temporal_attention(
    q: torch.Tensor, y: torch.Tensor, heads: int, key: tuple[torch.Tensor, torch.Tensor | None],
    value: tuple[torch.Tensor, torch.Tensor | None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The temporal step: each query's own-slot point (projected and scaled), q (B, N, C), attends along its
    trajectory y (B, N, F, C). key: proj_kv's key half (weight (C, C), bias (C,) or None); value: its value
    half, or None for the released models' values, the trajectory itself (upstream's use_original_code).

    The keys are never formed on the N F trajectory points. Per head, q . (W y + b) = (W^T q) . y + q . b: the
    projection moves to the N queries (N C^2 multiply-adds instead of N F C^2). Likewise a value projection
    moves after the weighted sum (the weights of a query sum to 1): sum_f w_f (V y_f + c) = V (sum_f w_f y_f) + c.

    Returns (B, N, C) and the weights (B, h, N, F): one softmax over the F slots per query and head.
    """
    batch, n, frames, channels = y.shape
    dim = channels // heads
    rows = batch * n
    q = q.reshape(rows, heads, dim)
    points = y.view(rows, frames, channels)
    weight, bias = key
    q_in = torch.einsum("xhd,hdc->xhc", q, weight.view(heads, dim, channels))  # W_h^T q_h, per head
    scores = points @ q_in.transpose(1, 2)  # (B N, F, h)
    if bias is not None:
        scores = scores + (q * bias.view(heads, dim)).sum(-1)[:, None, :]
    weights = scores.softmax(dim=1)
    if value is None:  # each head sums its own channels of the trajectory
        out = (weights[..., None] * points.view(rows, frames, heads, dim)).sum(1)
    else:
        weight, bias = value
        mixed = weights.transpose(1, 2) @ points  # (B N, h, C): every head's weighted sum, all channels
        out = torch.einsum("xhc,hdc->xhd", mixed, weight.view(heads, dim, channels))
        if bias is not None:
            out = out + bias.view(heads, dim)
    return out.reshape(batch, n, channels), weights.view(batch, n, frames, heads).permute(0, 3, 1, 2)
