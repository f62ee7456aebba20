"""Which tokens are targets: partition strategies of Video Token Merging (Lee et al., NeurIPS 2024).

ToMe's split is alternate: even positions are sources (A: may leave), odd positions targets (B: stay and
receive). VTM's variants keep the matching and merging and change only this decision, for a partition factor
gamma (about one token in gamma is a target):

- stride: targets are the positions p with p mod gamma == gamma - 1 (gamma = 2 is the alternate split);
- center / boundary: per frame, the central H/2 x W/2 box holds targets at 3x (center) or 1/3 (boundary) the
  density of the rest, at the same total; targets evenly spread in position order inside each region;
- motion / saliency: targets drawn without replacement with probability softmax(v / tau) (Gumbel-top-k), v a
  motion prior or a learned saliency s = tanh(K u); or the top ones (sample=False).

Every function returns a `matching.Split` with the same counts in every row (rows are clips, or frames of a
divided model), for the sequence of N current tokens; a protected class token at position 0 is a source that
never leaves. These are pure functions: `patch/state.py` calls them per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vtome import rand
from vtome.matching import Split

PARTITIONS = ("alternate", "stride", "center", "boundary", "motion", "saliency")
GAMMA_DEFAULTS = {"alternate": 2, "stride": 2, "center": 6, "boundary": 6, "motion": 6, "saliency": 6}
# Density of targets inside the centre box relative to the rest of the frame.
BOX_DENSITY = {"center": 3.0, "boundary": 1.0 / 3.0}


def num_targets(n: int, gamma: int, protected: int = 0) -> int:
    """Targets of a gamma partition of n tokens (the protected one never is): (n - protected) // gamma, >= 1."""
    return max(1, (n - protected) // gamma)


def max_leaving(n: int, gamma: int, protected: int = 0) -> int:
    """The most tokens a gamma partition lets leave in one layer: a (1 - 1/gamma) share of the unprotected ones
    (ToMe's (n - protected) // 2 for gamma = 2)."""
    return (n - protected) * (gamma - 1) // gamma


def split_from_targets(target: torch.Tensor, count: int, gamma: int, protected: int = 0) -> Split:
    """target: (batch, N) bool with exactly `count` True per row -> the Split (both sides ascending). With no
    target (a stride partition of fewer than gamma tokens) nothing may leave."""
    n = target.shape[1]
    order = torch.arange(n, device=target.device)
    # Sorting targets-first (or sources-first) by position gives both sides ascending, with static shapes.
    b_pos = (order + n * (~target).long()).argsort(dim=1)[:, :count]
    a_pos = (order + n * target.long()).argsort(dim=1)[:, : n - count]
    return Split(a_pos, b_pos, min(n - count - protected, max_leaving(n, gamma, protected)) if count else 0)


def stride(batch: int, n: int, gamma: int, protected: int = 0, device: torch.device | str = "cpu") -> Split:
    """VTM's naive partition: targets at p mod gamma == gamma - 1 of the current sequence."""
    pos = torch.arange(n, device=device)
    target = (pos % gamma == gamma - 1).expand(batch, n)
    return split_from_targets(target, n // gamma, gamma, protected)


def spread(region: torch.Tensor, quota: torch.Tensor) -> torch.Tensor:
    """region: (batch, N) bool, quota: (batch,) long <= tokens in the region -> (batch, N) bool: `quota` tokens of
    the region, evenly spread in position order (the k-th of m region tokens is taken when floor((k+1) q / m)
    steps up: one in every m / q, the last of each run, as the stride partition takes the last of each gamma)."""
    m = region.sum(1, keepdim=True)
    k = region.long().cumsum(1) - 1  # rank inside the region
    q = quota[:, None]
    steps = torch.div((k + 1) * q, m.clamp(min=1), rounding_mode="floor") - torch.div(k * q, m.clamp(min=1),
                                                                                          rounding_mode="floor")
    return region & (steps > 0)


def region(in_box: torch.Tensor, gamma: int, kind: str, protected: int = 0) -> Split:
    """Center- or boundary-concentrated partition.

    in_box: (batch, N) bool, whether each current token (by its anchor) lies in the centre box; a protected token
    at position 0 belongs to neither region. Box quota: q = n_T * w B / (w B + R) rounded, w the box density
    (BOX_DENSITY), B and R the tokens in the box and outside; layer 1 of a square grid (R = 3B) puts exactly half
    the targets in the box (center) or a tenth (boundary).
    """
    batch, n = in_box.shape
    count = num_targets(n, gamma, protected)
    eligible = torch.ones_like(in_box)
    if protected:
        eligible[:, 0] = False
    box, rest = in_box & eligible, ~in_box & eligible
    box_n, rest_n = box.sum(1), rest.sum(1)
    w = BOX_DENSITY[kind]
    share = count * w * box_n / (w * box_n + rest_n).clamp(min=1)
    quota = torch.minimum(torch.maximum(share.round().long(), (count - rest_n).clamp(min=0)), box_n.clamp(max=count))
    target = spread(box, quota) | spread(rest, count - quota)
    return split_from_targets(target, count, gamma, protected)


def sampled(
    logits: torch.Tensor, gamma: int, protected: int = 0, sample: bool = True, stream: tuple[int, ...] = (0,),
    groups: int = 1,
) -> Split:
    """Targets drawn without replacement with probability softmax(logits) (Gumbel-top-k), or the top ones.

    logits: (batch, N) float (motion / tau, or saliency); the protected token is never a target.
    stream: the vtome.rand stream of the noise (seed, layer, ...); one draw per group of rows shared by every
        clip, so a clip's partition does not depend on the batch it is in.
    """
    batch, n = logits.shape
    count = num_targets(n, gamma, protected)
    scores = logits.detach().float()
    if sample:
        noise = rand.gumbel((groups, n), *stream, device=logits.device)
        scores = scores + noise.repeat(batch // groups, 1)
    if protected:
        scores = scores.clone()
        scores[:, 0] = -torch.inf
    top = scores.topk(count, dim=1).indices
    target = torch.zeros(batch, n, dtype=torch.bool, device=logits.device).scatter_(1, top, True)
    return split_from_targets(target, count, gamma, protected)


@dataclass(frozen=True)
class Layout:
    """Where the tokens of a merged row sit on the patch grid at layer 1 (given by each model family).

    frames, height, width: the token grid of a clip (tubelet slots x patch rows x patch columns).
    per_frame: divided space-time: each row of the merged sequence is one frame (rows b * frames + f) holding its
        height * width patches; otherwise a row is a clip, tokens ordered (t, h, w) with t slowest.
    prefix: protected tokens before the grid in each row (a class token).
    """

    frames: int
    height: int
    width: int
    per_frame: bool = False
    prefix: int = 0

    @property
    def row_tokens(self) -> int:
        """Layer-1 tokens in one merged row, prefix included."""
        return self.prefix + self.height * self.width * (1 if self.per_frame else self.frames)

    def box(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(row_tokens,) bool: in the central box of rows [H // 4, H // 4 + ceil(H / 2)) and the same columns."""
        def centre(size: int) -> torch.Tensor:
            index = torch.arange(size, device=device)
            return (index >= size // 4) & (index < size // 4 + (size + 1) // 2)

        frame = (centre(self.height)[:, None] & centre(self.width)[None, :]).flatten()
        grid = frame if self.per_frame else frame.repeat(self.frames)
        return torch.cat([torch.zeros(self.prefix, dtype=torch.bool, device=device), grid])

    def prior_rows(self, prior: torch.Tensor) -> torch.Tensor:
        """A per-token prior (batch, frames, height, width) -> (rows, row_tokens) float32, in the merged rows'
        order (the prefix gets 0: it is never a target anyway)."""
        expected = (self.frames, self.height, self.width)
        if prior.dim() != 4 or tuple(prior.shape[1:]) != expected:
            raise ValueError(f"the prior must be (batch, {', '.join(map(str, expected))}), one value per layer-1 "
                             f"token of this model; got shape {tuple(prior.shape)}")
        batch = prior.shape[0]
        rows = prior.float().reshape(batch * self.frames, -1) if self.per_frame else prior.float().reshape(batch, -1)
        return torch.cat([rows.new_zeros(rows.shape[0], self.prefix), rows], dim=1)


class FixedSaliency:
    """Saliency from fixed vectors u, one per layer: s = tanh(K u), K the layer's keys as aggregated for the metric
    (learned vectors: vtome.vtm.SaliencyHeads)."""

    def __init__(self, vectors) -> None:
        self.vectors = torch.as_tensor(vectors, dtype=torch.float32)
        if self.vectors.dim() != 2:
            raise ValueError(f"saliency vectors must be (layers, C'); got shape {tuple(self.vectors.shape)}")

    def scores(self, layer: int, keys: torch.Tensor) -> torch.Tensor:
        """keys (batch, N, C') -> s (batch, N) in (-1, 1)."""
        if layer >= self.vectors.shape[0] or keys.shape[-1] != self.vectors.shape[1]:
            raise ValueError(f"saliency vectors are {tuple(self.vectors.shape)}; layer {layer} has keys of width "
                             f"{keys.shape[-1]}")
        return torch.tanh(keys.float() @ self.vectors[layer].to(keys.device))
