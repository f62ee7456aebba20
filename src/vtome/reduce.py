"""Apply a Matching: merge (size-weighted average), drop, or a per-edge mix of both (hybrid).

Shapes: x (batch, N, C) tokens; size (batch, N, 1) float32, how many input tokens each token stands for;
assignment (batch, N0) long, for each input token the index of the current token holding it (-1 if dropped).
Every function returns the new sequence in the order [A[unm_idx], B].
"""

from __future__ import annotations

import torch

from vtome.matching import Matching


def _expand(idx: torch.Tensor, channels: int) -> torch.Tensor:
    return idx[..., None].expand(-1, -1, channels)


def _sum_into_b(t: torch.Tensor, m: Matching, weight: torch.Tensor | None) -> torch.Tensor:
    """Sum each leaving A row (times weight) into its B partner; (batch, N, C) -> (batch, N - r, C)."""
    a, b = t[:, ::2], t[:, 1::2]
    c = t.shape[-1]
    unm = a.gather(1, _expand(m.unm_idx, c))
    src = a.gather(1, _expand(m.src_idx, c))
    if weight is not None:
        src = src * weight[..., None]
    b = b.scatter_reduce(1, _expand(m.dst_idx, c), src, reduce="sum")
    return torch.cat([unm, b], dim=1)


def _keep(t: torch.Tensor, m: Matching) -> torch.Tensor:
    """Remove the leaving A rows; every other row is returned untouched."""
    a, b = t[:, ::2], t[:, 1::2]
    return torch.cat([a.gather(1, _expand(m.unm_idx, t.shape[-1])), b], dim=1)


def merge(
    x: torch.Tensor, size: torch.Tensor | None, m: Matching, merge_edge: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Size-weighted average of each B token and the A tokens that join it; sizes add up.

    merge_edge: optional (batch, r) bool; False drops that edge's A token instead of merging it (hybrid).
    Returns x (batch, N - r, C) in x's dtype and size (batch, N - r, 1) float32.
    """
    if size is None:
        size = torch.ones(*x.shape[:2], 1, device=x.device, dtype=torch.float32)
    weight = None if merge_edge is None else merge_edge.to(size.dtype)
    # Sums in float32 (size is float32) so bfloat16 models average exactly as float32 ones would.
    total = _sum_into_b(x * size, m, weight)
    size = _sum_into_b(size, m, weight)
    return (total / size).to(x.dtype), size


def drop(x: torch.Tensor, size: torch.Tensor | None, m: Matching) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Remove the chosen A tokens; the survivors (and their sizes) are unchanged."""
    return _keep(x, m), None if size is None else _keep(size, m)


def new_positions(m: Matching, n: int, dropped: torch.Tensor | None) -> torch.Tensor:
    """Where each of the n tokens goes in the reduced sequence: (batch, n) long, -1 for a dropped token.

    dropped: (batch, r) bool, which leaving A tokens are dropped rather than merged (None: all merged).
    """
    batch, r = m.src_idx.shape
    num_unm = m.unm_idx.shape[1]
    device = m.src_idx.device
    a_pos = torch.empty(batch, (n + 1) // 2, dtype=torch.long, device=device)
    a_pos.scatter_(1, m.unm_idx, torch.arange(num_unm, device=device).expand(batch, -1))
    dst_pos = num_unm + m.dst_idx
    if dropped is not None:
        dst_pos = dst_pos.masked_fill(dropped, -1)
    a_pos.scatter_(1, m.src_idx, dst_pos)
    pos = torch.empty(batch, n, dtype=torch.long, device=device)
    pos[:, ::2] = a_pos
    pos[:, 1::2] = num_unm + torch.arange(n // 2, device=device)
    return pos


def follow(assignment: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Update which token holds each input token after a reduction given by new_positions()."""
    moved = positions.gather(1, assignment.clamp(min=0))
    return moved.masked_fill(assignment < 0, -1)


def source_matrix(assignment: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """(batch, num_tokens, N0) bool: source[b, i, j] is True when current token i holds input token j."""
    tokens = torch.arange(num_tokens, device=assignment.device)
    return assignment[:, None, :] == tokens[None, :, None]
