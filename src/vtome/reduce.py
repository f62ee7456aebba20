"""Apply a Matching: merge (size-weighted average), drop, or a per-edge mix of both (hybrid).

Shapes: x (batch, N, C) tokens; size (batch, N, 1) float32, how many input tokens each token stands for;
assignment (batch, N0) long, for each input token the index of the current token holding it (-1 if dropped).
Every function returns the new sequence in the order [A[unm_idx], B].
"""

from __future__ import annotations

import torch

from vtome.matching import Matching


def _a_rows(idx: torch.Tensor, n: int) -> torch.Tensor:
    """Rows of the flattened (batch * n, C) sequence holding the A tokens idx (batch, k) (A = even positions)."""
    offset = torch.arange(idx.shape[0], device=idx.device)[:, None] * n
    return (2 * idx + offset).flatten()


def _take(t: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """(batch, n, C), flat rows -> (len(rows), C). index_select copies whole rows: far faster than gather."""
    return t.reshape(-1, t.shape[-1]).index_select(0, rows)


def _needs_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _weighted_into_b(
    x: torch.Tensor, size: torch.Tensor, m: Matching, weight: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """[A[unm], B] of x * size with each leaving A row (times weight) added to its B partner; and the same sums
    of size. Returns (batch, N - r, C) float32 (or wider) and (batch, N - r, 1) float32, before the division.

    The values are those of gathering and scatter-adding x * size; without autograd the products are written
    straight into one output buffer.
    """
    batch, n, _ = x.shape
    num_unm, r = m.unm_idx.shape[1], m.r
    unm_rows, src_rows = _a_rows(m.unm_idx, n), _a_rows(m.src_idx, n)
    dst_rows = (num_unm + m.dst_idx + torch.arange(batch, device=x.device)[:, None] * (n - r)).flatten()
    grad = _needs_grad(x, size)
    sums = []
    for t, s in ((x, size), (size, None)):
        width = t.shape[-1]
        unm, b, src = _take(t, unm_rows).view(batch, num_unm, width), t[:, 1::2], _take(t, src_rows)
        if s is None:
            out = torch.cat([unm, b], dim=1)
        else:
            unm_size, b_size = _take(s, unm_rows).view(batch, num_unm, 1), s[:, 1::2]
            src = src * _take(s, src_rows)
            if grad:
                out = torch.cat([unm * unm_size, b * b_size], dim=1)
            else:
                out = torch.empty(batch, n - r, width, device=x.device, dtype=torch.promote_types(t.dtype, s.dtype))
                torch.mul(unm, unm_size, out=out[:, :num_unm])
                torch.mul(b, b_size, out=out[:, num_unm:])
        if weight is not None:
            src = src * weight.reshape(-1, 1)
        sums.append(out.view(-1, width).index_add_(0, dst_rows, src).view(batch, n - r, width))
    return sums[0], sums[1]


def _keep(t: torch.Tensor, m: Matching) -> torch.Tensor:
    """Remove the leaving A rows; every other row is returned untouched."""
    batch, n, c = t.shape
    num_unm = m.unm_idx.shape[1]
    out = torch.empty(batch, num_unm + n // 2, c, device=t.device, dtype=t.dtype)
    out[:, :num_unm] = _take(t, _a_rows(m.unm_idx, n)).view(batch, num_unm, c)
    out[:, num_unm:] = t[:, 1::2]
    return out


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
    total, new_size = _weighted_into_b(x, size, m, weight)
    total = total / new_size if _needs_grad(x, size) else total.div_(new_size)
    return total.to(x.dtype), new_size


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
