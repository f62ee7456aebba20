"""Self-attention with proportional attention: softmax(QK^T * scale + log size [+ key_bias]).

log(size) goes to scaled_dot_product_attention as an additive float mask (one value per key), so merged models
keep the fused kernel. The explicit matmul + softmax path is used only when attention maps are wanted. key_bias is
any further per-key bias (VTM's saliency-guided attention in the auxiliary path of vtome.vtm training).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def size_bias(size: torch.Tensor | None, dtype: torch.dtype, skip_first_query: bool = False) -> torch.Tensor | None:
    """(batch, N, 1) sizes -> (batch, 1, 1, N) additive mask, or None when there is nothing to add.

    skip_first_query: no bias in the first query's row (batch, 1, N, N): the paper's TimeSformer code leaves the
    class token's row out.
    """
    if size is None:
        return None
    bias = size.log().to(dtype)[:, None, None, :, 0]
    if skip_first_query:
        n = size.shape[1]
        rows = torch.ones(n, 1, dtype=dtype, device=size.device)
        rows[0] = 0
        bias = bias * rows
    return bias


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    size: torch.Tensor | None,
    scale: float,
    dropout: float = 0.0,
    eager: bool = False,
    skip_first_query: bool = False,
    key_bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """q, k, v: (batch, heads, N, head_dim); size: (batch, N, 1) or None (see size_bias for skip_first_query).
    key_bias: (batch, N) or None, added to every query's logit for key j after the scaling (differentiable).

    Returns the attention output (batch, heads, N, head_dim) and, when eager, the weights
    (batch, heads, N, N).
    """
    bias = size_bias(size, q.dtype, skip_first_query)
    if key_bias is not None:
        extra = key_bias.to(q.dtype)[:, None, None, :]
        bias = extra if bias is None else bias + extra
    if not eager:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout, scale=scale)
        return out, None
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    if bias is not None:
        scores = scores + bias
    weights = scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype)
    weights = F.dropout(weights, p=dropout, training=dropout > 0)
    return torch.matmul(weights, v), weights


def key_metric(k: torch.Tensor, head_aggregation: str) -> torch.Tensor:
    """The matching metric from keys (batch, heads, N, head_dim): mean over heads, or heads concatenated."""
    if head_aggregation == "mean":
        return k.mean(dim=1)
    return k.transpose(1, 2).flatten(2)
