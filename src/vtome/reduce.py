"""Apply a Matching: merge (weighted average), drop, or a per-edge mix of both (hybrid).

Shapes: x (batch, N, C) tokens; size (batch, N, 1) float32, how many input tokens each token stands for;
assignment (batch, N0) long, for each input token the index of the current token holding it (-1 if dropped).
Every function returns the new sequence in the order [A[unm_idx], B].
"""

from __future__ import annotations

import torch

from vtome.matching import Matching, Split
from vtome.opaque import opaque


def _a_rows(m: Matching, idx: torch.Tensor, n: int) -> torch.Tensor:
    """Rows of the flattened (batch * n, C) sequence holding the A tokens idx (batch, k)."""
    offset = torch.arange(idx.shape[0], device=idx.device)[:, None] * n
    pos = 2 * idx if m.split is None else m.split.a_pos.gather(1, idx)
    return (pos + offset).flatten()


def _b_tokens(t: torch.Tensor, m: Matching) -> torch.Tensor:
    """The B tokens of t (batch, N, C), in position order: (batch, |B|, C)."""
    if m.split is None:
        return t[:, 1::2]
    return t.gather(1, m.split.b_pos[..., None].expand(-1, -1, t.shape[-1]))


def _take(t: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """(batch, n, C), flat rows -> (len(rows), C). index_select copies whole rows: far faster than gather."""
    return t.reshape(-1, t.shape[-1]).index_select(0, rows)


def _needs_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _sum_into_b(
    t: torch.Tensor, m: Matching, w: torch.Tensor | None, edge_weight: torch.Tensor | None,
    b_weight: torch.Tensor | None,
) -> torch.Tensor:
    """[A[unm], B] of t * w with each leaving A row (times its edge_weight) added to its B partner.

    t: (batch, N, C); w: (batch, N, 1) float32 or None (weight 1); edge_weight: (batch, r) or None;
    b_weight: (batch, |B|, 1) or None, multiplies the B rows' own share. Returns (batch, |A| - r + |B|, C), float32
    when w is given (or wider), else t's dtype.
    """
    batch, n, width = t.shape
    num_unm, num_b = m.unm_idx.shape[1], m.num_b
    unm_rows, src_rows = _a_rows(m, m.unm_idx, n), _a_rows(m, m.src_idx, n)
    dst_rows = (num_unm + m.dst_idx + torch.arange(batch, device=t.device)[:, None] * (num_unm + num_b)).flatten()
    unm, b, src = _take(t, unm_rows).view(batch, num_unm, width), _b_tokens(t, m), _take(t, src_rows)
    if w is None:
        if b_weight is not None:
            b = b * b_weight
        out = torch.cat([unm, b], dim=1)
    else:
        unm_w, b_w = _take(w, unm_rows).view(batch, num_unm, 1), _b_tokens(w, m)
        if b_weight is not None:
            b_w = b_w * b_weight
        src = src * _take(w, src_rows)
        if _needs_grad(t, w) or torch.compiler.is_compiling():
            out = torch.cat([unm * unm_w, b * b_w], dim=1)
        else:
            # Eager without autograd: write the products straight into one buffer (no concatenation copy).
            dtype = torch.promote_types(t.dtype, w.dtype)
            out = torch.empty(batch, num_unm + num_b, width, device=t.device, dtype=dtype)
            torch.mul(unm, unm_w, out=out[:, :num_unm])
            torch.mul(b, b_w, out=out[:, num_unm:])
    if edge_weight is not None:
        src = src * edge_weight.reshape(-1, 1).to(src.dtype)
    # reshape, not view: when every A token leaves, out is B alone and keeps B's strides (a per-frame grouping's),
    # which the compiler's layouts need not make contiguous.
    return out.reshape(-1, width).index_add_(0, dst_rows, src.to(out.dtype)).view(batch, num_unm + num_b, width)


def merge(
    x: torch.Tensor,
    size: torch.Tensor | None,
    m: Matching,
    merge_edge: torch.Tensor | None = None,
    uniform: bool = False,
    drop_dst: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted average of each B token and the A tokens that join it; sizes add up.

    merge_edge: optional (batch, r) bool; False drops that edge's A token instead of merging it (hybrid).
    uniform: average the tokens with equal weights (VTM) instead of by size (ToMe); sizes still add up.
    drop_dst: optional (batch, |B|) bool; those B tokens leave their own share out, and the A tokens that join
        them take their place (the paper's code for hybrid, compat="paper"; see dropped_b).
    Returns x (batch, N - r, C) in x's dtype and size (batch, N - r, 1) float32.
    """
    if opaque():
        split = (None, None) if m.split is None else (m.split.a_pos, m.split.b_pos)
        return merge_op(x, size, m.unm_idx, m.src_idx, m.dst_idx, m.num_b, *split, merge_edge, uniform, drop_dst)
    return _merge(x, size, m, merge_edge, uniform, drop_dst)


def _merge(
    x: torch.Tensor, size: torch.Tensor | None, m: Matching, merge_edge: torch.Tensor | None, uniform: bool,
    drop_dst: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    if size is None:
        size = torch.ones(*x.shape[:2], 1, device=x.device, dtype=torch.float32)
    edge_weight = None if merge_edge is None else merge_edge.to(size.dtype)
    b_weight = None if drop_dst is None else (~drop_dst).to(size.dtype)[..., None]
    weight = torch.ones_like(size) if uniform else size
    # Sums in float32 (weights are float32) so bfloat16 models average exactly as float32 ones would.
    total = _sum_into_b(x, m, weight, edge_weight, b_weight)
    new_size = _sum_into_b(size, m, None, edge_weight, b_weight)
    count = _sum_into_b(weight, m, None, edge_weight, b_weight) if uniform else new_size
    total = total / count if _needs_grad(x) or torch.compiler.is_compiling() else total.div_(count)
    return total.to(x.dtype), new_size


@torch.library.custom_op("vtome::merge", mutates_args=())
def merge_op(
    x: torch.Tensor, size: torch.Tensor | None, unm_idx: torch.Tensor, src_idx: torch.Tensor, dst_idx: torch.Tensor,
    num_b: int, a_pos: torch.Tensor | None, b_pos: torch.Tensor | None, merge_edge: torch.Tensor | None,
    uniform: bool, drop_dst: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """merge as one operator under torch.compile (see vtome.opaque), the Matching given by its tensors."""
    split = None if a_pos is None else Split(a_pos, b_pos, limit=src_idx.shape[1])
    m = Matching(unm_idx, src_idx, dst_idx, score=torch.empty(0), num_b=num_b, split=split)  # merging reads no score
    return tuple(t.contiguous() for t in _merge(x, size, m, merge_edge, uniform, drop_dst))  # the fake's layout


@merge_op.register_fake
def _(x, size, unm_idx, src_idx, dst_idx, num_b, a_pos, b_pos, merge_edge, uniform, drop_dst):
    batch, _, width = x.shape
    tokens = unm_idx.shape[1] + num_b
    return x.new_empty(batch, tokens, width), x.new_empty(batch, tokens, 1, dtype=torch.float32)


def dropped_b(m: Matching, merge_edge: torch.Tensor) -> torch.Tensor:
    """(batch, |B|) bool: B tokens that an edge with merge_edge False points to (the paper's hybrid drops them)."""
    below = (~merge_edge).to(torch.int32)
    hits = torch.zeros(m.dst_idx.shape[0], m.num_b, dtype=torch.int32, device=below.device)
    return hits.scatter_add_(1, m.dst_idx, below) > 0


def _keep(t: torch.Tensor, m: Matching) -> torch.Tensor:
    """Remove the leaving A rows; every other row is returned untouched."""
    batch, n, c = t.shape
    num_unm = m.unm_idx.shape[1]
    unm = _take(t, _a_rows(m, m.unm_idx, n)).view(batch, num_unm, c)
    if torch.compiler.is_compiling():
        return torch.cat([unm, _b_tokens(t, m)], dim=1)
    out = torch.empty(batch, num_unm + m.num_b, c, device=t.device, dtype=t.dtype)
    out[:, :num_unm] = unm
    out[:, num_unm:] = _b_tokens(t, m)
    return out


def drop(x: torch.Tensor, size: torch.Tensor | None, m: Matching) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Remove the chosen A tokens; the survivors (and their sizes) are unchanged."""
    return _keep(x, m), None if size is None else _keep(size, m)


def take(t: torch.Tensor, m: Matching) -> torch.Tensor:
    """The tokens a reduction keeps, in its output order, without merging: (batch, N - r, ...) (e.g. anchors:
    a merged token keeps its target's)."""
    return _keep(t[..., None], m)[..., 0] if t.dim() == 2 else _keep(t, m)


def new_positions(
    m: Matching, n: int, dropped: torch.Tensor | None, dropped_dst: torch.Tensor | None = None
) -> torch.Tensor:
    """Where each of the n tokens goes in the reduced sequence: (batch, n) long, -1 for a dropped token.

    dropped: (batch, r) bool, which leaving A tokens are dropped rather than merged (None: all merged).
    dropped_dst: (batch, |B|) bool, B tokens dropped while their A partners join (the paper's hybrid).
    """
    batch, r = m.src_idx.shape
    num_unm = m.unm_idx.shape[1]
    device = m.src_idx.device
    num_a = num_unm + r
    a_new = torch.empty(batch, num_a, dtype=torch.long, device=device)
    a_new.scatter_(1, m.unm_idx, torch.arange(num_unm, device=device).expand(batch, -1))
    dst_pos = num_unm + m.dst_idx
    if dropped is not None:
        dst_pos = dst_pos.masked_fill(dropped, -1)
    a_new.scatter_(1, m.src_idx, dst_pos)
    b_new = (num_unm + torch.arange(m.num_b, device=device)).expand(batch, -1)
    if dropped_dst is not None:
        b_new = b_new.masked_fill(dropped_dst, -1)
    pos = torch.empty(batch, n, dtype=torch.long, device=device)
    if m.split is None:
        pos[:, ::2] = a_new
        pos[:, 1::2] = b_new
    else:
        pos.scatter_(1, m.split.a_pos, a_new)
        pos.scatter_(1, m.split.b_pos, b_new)
    return pos


def follow(assignment: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Update which token holds each input token after a reduction given by new_positions()."""
    moved = positions.gather(1, assignment.clamp(min=0))
    return moved.masked_fill(assignment < 0, -1)


def source_matrix(assignment: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """(batch, num_tokens, N0) bool: source[b, i, j] is True when current token i holds input token j."""
    tokens = torch.arange(num_tokens, device=assignment.device)
    return assignment[:, None, :] == tokens[None, :, None]
