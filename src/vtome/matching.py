"""Bipartite soft matching: which tokens go where.

The sequence is split into A (sources: may leave) and B (targets: stay and receive). ToMe's split, the default,
is alternate: A = even positions, B = odd positions. A partition strategy (`partition.py`) may give any other
split as position lists. Every A token picks its most similar B token; the r best edges are kept. This module
only decides; `reduce.py` moves the tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vtome import rand
from vtome.opaque import opaque


@dataclass
class Split:
    """Which positions of a (batch, N) sequence are sources (A) and targets (B); both ascending, rectangular.

    a_pos: (batch, |A|) long. A protected class token is A's first entry (position 0).
    b_pos: (batch, |B|) long.
    limit: the most A tokens that may leave in one layer (the partition's cap; ToMe's is (N - protected) // 2).
    """

    a_pos: torch.Tensor
    b_pos: torch.Tensor
    limit: int


@dataclass
class Matching:
    """The outcome of matching a batch of N-token sequences.

    unm_idx: (batch, |A| - r) A tokens that stay, in output order
    src_idx: (batch, r)       A tokens that leave (merged into, or dropped next to, their B partner)
    dst_idx: (batch, r)       the B partner of each leaving A token
    score:   (batch, r)       the similarity of each kept edge (cosine; random numbers for random modes)
    num_b:   |B|
    split:   where A and B sit in the sequence; None: the alternate split (A even, B odd positions)

    After reduction the sequence is [A[unm_idx], B]: that order is what the next layer partitions.
    """

    unm_idx: torch.Tensor
    src_idx: torch.Tensor
    dst_idx: torch.Tensor
    score: torch.Tensor
    num_b: int
    split: Split | None = None

    @property
    def r(self) -> int:
        return self.src_idx.shape[1]


def repeat(m: Matching, times: int) -> Matching:
    """The same matching for `times` copies of the batch stacked along the batch dimension."""
    split = m.split and Split(m.split.a_pos.repeat(times, 1), m.split.b_pos.repeat(times, 1), m.split.limit)
    index = (t.repeat(times, 1) for t in (m.unm_idx, m.src_idx, m.dst_idx, m.score))
    return Matching(*index, num_b=m.num_b, split=split)


@dataclass(frozen=True)
class RandomDraw:
    """Random pairing and edge choice (random_merge / random_drop) instead of similarities.

    seed, layer: the stream of vtome.rand: one pattern per layer, the same in every recomputation.
    groups: how many consecutive rows of the batch make one clip (frames folded into it); every clip gets the
        same pattern per group, so results do not depend on batching.
    per_row: draw for every row from the global RNG instead (the paper's code; compat="paper").
    """

    seed: int
    layer: int
    groups: int = 1
    per_row: bool = False


def random_edges(draw: RandomDraw, batch: int, num_a: int, num_b: int, device: torch.device):
    """Random best partners and random edge strengths: best_score (batch, num_a), best_b (batch, num_a)."""
    if draw.per_row:
        return torch.rand(batch, num_a, device=device), torch.randint(num_b, (batch, num_a), device=device)
    shape = (draw.groups, num_a)
    best_score = rand.uniform(shape, draw.seed, draw.layer, 0, device=device)
    best_b = rand.integers(num_b, shape, draw.seed, draw.layer, 1, device=device)
    repeat = batch // draw.groups
    return best_score.repeat(repeat, 1), best_b.repeat(repeat, 1)


def bipartite_match(
    metric: torch.Tensor,
    r: int,
    protected: int = 0,
    random: RandomDraw | None = None,
    split: Split | None = None,
) -> Matching | None:
    """Match A tokens to B tokens and keep the r most similar edges.

    metric: (batch, N, C) the keys; similarity is cosine, computed in float32.
    r: edges to keep, clamped to ToMe's (N - protected) // 2 for the alternate split, to split.limit otherwise.
        Returns None when that is 0.
    protected: 1 when position 0 is a class token that must never leave (0 or 1).
    random: if given, pairing and edge choice are random (random_merge / random_drop) instead.
    split: the partition (None: alternate).
    """
    if protected not in (0, 1):
        raise ValueError("only a single protected token (the class token at position 0) is supported")
    n = metric.shape[1]
    num_b = _sides(n, split)[1]
    r = min(r, (n - protected) // 2 if split is None else split.limit)
    if r <= 0:
        return None

    if opaque():
        draw = None if random is None else [random.seed, random.layer, random.groups, int(random.per_row)]
        a_pos, b_pos = (None, None) if split is None else (split.a_pos, split.b_pos)
        edges = match_op(metric, r, protected, draw, a_pos, b_pos)
    else:
        edges = _edges(metric, r, protected, random, split)
    return Matching(*edges, num_b=num_b, split=split)


@torch.no_grad()
def _edges(
    metric: torch.Tensor, r: int, protected: int, random: RandomDraw | None, split: Split | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """bipartite_match's tensors, r >= 1 already clamped: unm_idx, src_idx, dst_idx, score."""
    batch, n, _ = metric.shape
    num_a, num_b = _sides(n, split)
    if random is None:
        metric = metric.float()
        metric = metric / metric.norm(dim=-1, keepdim=True)
        if split is None:
            a, b = metric[:, ::2], metric[:, 1::2]
        else:
            a, b = _gather_rows(metric, split.a_pos), _gather_rows(metric, split.b_pos)
        scores = a @ b.transpose(1, 2)  # (batch, |A|, |B|)
        if protected:
            scores[:, 0, :] = -math.inf
        best_score, best_b = scores.max(dim=-1)
    else:
        best_score, best_b = random_edges(random, batch, num_a, num_b, metric.device)
        if protected:
            best_score[:, 0] = -math.inf

    order = best_score.argsort(dim=-1, descending=True)
    unm_idx = order[:, r:]
    src_idx = order[:, :r]
    if protected:
        # Keep the class token first (and the other survivors in position order), as ToMe does.
        unm_idx = unm_idx.sort(dim=1).values
    return unm_idx, src_idx, best_b.gather(1, src_idx), best_score.gather(1, src_idx)


@torch.library.custom_op("vtome::match", mutates_args=())
def match_op(
    metric: torch.Tensor, r: int, protected: int, draw: list[int] | None, a_pos: torch.Tensor | None,
    b_pos: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """_edges as one operator under torch.compile (see vtome.opaque). draw: a RandomDraw's fields, or None;
    a_pos, b_pos: the split's positions, or None for the alternate split."""
    random = None if draw is None else RandomDraw(*draw[:3], per_row=bool(draw[3]))
    split = None if a_pos is None else Split(a_pos, b_pos, limit=r)
    return tuple(t.clone() for t in _edges(metric, r, protected, random, split))  # outputs may not share memory


@match_op.register_fake
def _(metric, r, protected, draw, a_pos, b_pos):
    batch, n, _ = metric.shape
    num_a = _sides(n, None if a_pos is None else Split(a_pos, b_pos, r))[0]
    index = metric.new_empty(batch, r, dtype=torch.long)
    return metric.new_empty(batch, num_a - r, dtype=torch.long), index, index.clone(), index.float()


def _sides(n: int, split: Split | None) -> tuple[int, int]:
    """|A| and |B| of an n-token sequence."""
    return ((n + 1) // 2, n // 2) if split is None else (split.a_pos.shape[1], split.b_pos.shape[1])


def _gather_rows(t: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """t (batch, N, C), pos (batch, k) -> (batch, k, C)."""
    return t.gather(1, pos[..., None].expand(-1, -1, t.shape[-1]))
