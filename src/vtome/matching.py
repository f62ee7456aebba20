"""Bipartite soft matching: which tokens go where.

The sequence is split alternately into A (even positions) and B (odd positions). Every A token picks its most
similar B token; the r best edges are kept. This module only decides; `reduce.py` moves the tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class Matching:
    """The outcome of matching a batch of N-token sequences (A = even positions, B = odd positions).

    unm_idx: (batch, |A| - r) A tokens that stay, in output order
    src_idx: (batch, r)       A tokens that leave (merged into, or dropped next to, their B partner)
    dst_idx: (batch, r)       the B partner of each leaving A token
    score:   (batch, r)       the similarity of each kept edge (cosine; random numbers for random modes)

    After reduction the sequence is [A[unm_idx], B]: that order is what the next layer partitions.
    """

    unm_idx: torch.Tensor
    src_idx: torch.Tensor
    dst_idx: torch.Tensor
    score: torch.Tensor

    @property
    def r(self) -> int:
        return self.src_idx.shape[1]


def random_edges(
    generator: torch.Generator, groups: int, batch: int, num_a: int, num_b: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random pairing and random edge strengths, in place of similarities.

    One draw per group (frames of a divided model, or 1), shared by every clip in the batch so that results do
    not depend on how clips are batched. Drawn on the CPU from `generator`: the global RNG is never touched.

    Returns best_score (batch, num_a) and best_b (batch, num_a).
    """
    best_b = torch.randint(num_b, (groups, num_a), generator=generator)
    best_score = torch.rand((groups, num_a), generator=generator)
    repeat = batch // groups
    return best_score.repeat(repeat, 1).to(device), best_b.repeat(repeat, 1).to(device)


def bipartite_match(
    metric: torch.Tensor,
    r: int,
    protected: int = 0,
    generator: torch.Generator | None = None,
    groups: int = 1,
) -> Matching | None:
    """Match A tokens to B tokens and keep the r most similar edges.

    metric: (batch, N, C) the keys; similarity is cosine, computed in float32.
    r: edges to keep, clamped to (N - protected) // 2. Returns None when that is 0.
    protected: 1 when position 0 is a class token that must never leave (0 or 1).
    generator: if given, pairing and edge choice are random (random_merge / random_drop) instead.
    groups: for random draws, how many consecutive rows of the batch make one clip (frames folded into it).
    """
    if protected not in (0, 1):
        raise ValueError("only a single protected token (the class token at position 0) is supported")
    batch, n, _ = metric.shape
    r = min(r, (n - protected) // 2)
    if r <= 0:
        return None

    with torch.no_grad():
        if generator is None:
            metric = metric.float()
            metric = metric / metric.norm(dim=-1, keepdim=True)
            scores = metric[:, ::2] @ metric[:, 1::2].transpose(1, 2)  # (batch, |A|, |B|)
            if protected:
                scores[:, 0, :] = -math.inf
            best_score, best_b = scores.max(dim=-1)
        else:
            best_score, best_b = random_edges(generator, groups, batch, (n + 1) // 2, n // 2, metric.device)
            if protected:
                best_score[:, 0] = -math.inf

        order = best_score.argsort(dim=-1, descending=True)
        unm_idx = order[:, r:]
        src_idx = order[:, :r]
        if protected:
            # Keep the class token first (and the other survivors in position order), as ToMe does.
            unm_idx = unm_idx.sort(dim=1).values
        return Matching(
            unm_idx=unm_idx,
            src_idx=src_idx,
            dst_idx=best_b.gather(1, src_idx),
            score=best_score.gather(1, src_idx),
        )
