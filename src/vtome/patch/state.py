"""Settings of a patched model and what one forward pass tracks: sizes, sources and token counts.

One MergeState is shared by the patched modules of a model. A patched layer calls `enter` as it starts (the
sizes for proportional attention) and `reduce` between the attention residual and the MLP.

What a layer needs beyond its hidden states (sizes, sources) is kept per layer: `records[i]` is what enters
layer i, written by layer i - 1. A layer reads only its own record, so its merge is a function of its inputs:
running a layer again (gradient checkpointing recomputes it during backward) gives the same merge, and a
compiled forward has no state to guard on except the settings. Layer 0 starts a new record set; the same
layer recomputed inside backward does not.

The auxiliary path (vtome.vtm, training saliency heads): a forward pass whose batch was doubled before layer 1
(`doubled`) runs the main path in rows [0, B) and the auxiliary path in rows [B, 2B). Every layer matches on the
main rows and applies that matching to both halves, and each adapter's attention adds `key_bias` (the saliency
s_j of every key, in the auxiliary rows only) to its logits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from vtome import partition, reduce
from vtome.attention import key_metric
from vtome.matching import Matching, RandomDraw, Split, bipartite_match, repeat
from vtome.schedule import Schedule, layer_r

MODES = ("merge", "drop", "random_drop", "random_merge", "hybrid")
HEAD_AGGREGATIONS = ("mean", "concat")
ATTN_IMPLS = ("sdpa", "eager")
COMPATS = ("paper",)
POSITIONS = ("mean", "target", "source")  # where a merged token sits (for rotary positions)
MERGE_WEIGHTINGS = ("size", "uniform")


@dataclass(frozen=True)
class Settings:
    r: int | float
    schedule: Schedule
    mode: str
    prop_attn: bool
    trace_source: bool
    threshold: float | None
    seed: int
    head_aggregation: str
    attn_impl: str | None  # None: what the model would use (SDPA unless it is set to eager)
    compat: str | None = None  # "paper": reproduce the paper's code where vtome deliberately differs
    position: str = "mean"  # a merged token's position: its members' size-weighted mean, or its target's / sources'
    partition: str = "alternate"  # which tokens are targets (partition.PARTITIONS)
    gamma: int = 2  # partition factor: about one target in gamma tokens
    merge_weighting: str = "size"  # "size" (ToMe) or "uniform" (VTM's plain average)
    sample: bool = True  # motion / saliency: draw the targets (else take the top ones)
    tau: float = 1.0  # motion: temperature of softmax(v / tau)

    @property
    def anchored(self) -> bool:
        """Whether tokens carry anchors (their target's layer-1 index), which region and motion rules read."""
        return self.partition in ("center", "boundary", "motion")

    @property
    def max_fraction(self) -> float:
        """The largest fractional r: the share of tokens a layer may remove."""
        return 1 - 1 / self.gamma

    @property
    def random(self) -> bool:
        return self.mode.startswith("random")

    @property
    def drops(self) -> bool:
        return self.mode in ("drop", "random_drop")

    @property
    def paper(self) -> bool:
        return self.compat == "paper"


@dataclass
class Record:
    """What enters a layer besides the hidden states (never differentiated).

    size: (batch, N, 1) float32, input tokens per token.
    merged: whether anything was merged before this layer (else every size is 1 and adds nothing).
    assignment: (batch, N0) long, the token holding each input token, -1 if dropped (trace_source).
    position: (batch, N, k) float32, where each token sits (families with rotary positions; see Settings.position).
    anchor: (batch, N) long, the layer-1 index each token is anchored at (its target's; anchored partitions).
    prior: (batch, N0) float32, the motion prior of every layer-1 token (motion partition; the same every layer).
    targets: how many targets the layer that made this record chose (None: it did not reduce).
    """

    size: torch.Tensor
    merged: bool = False
    assignment: torch.Tensor | None = None
    position: torch.Tensor | None = None
    anchor: torch.Tensor | None = None
    prior: torch.Tensor | None = None
    targets: int | None = None

    @property
    def tokens(self) -> int:
        return self.size.shape[1]


def _in_backward() -> bool:
    """True while autograd runs a backward pass (where gradient checkpointing recomputes layers)."""
    return not torch.compiler.is_compiling() and torch._C._current_graph_task_id() != -1


class MergeState:
    """Shared by the patched modules of one model.

    protected: 1 if position 0 of the merged sequence is a class token, else 0.
    groups: batch rows per clip in the merged sequence (frames for divided space-time models, else 1).
    """

    def __init__(self, settings: Settings, num_layers: int, protected: int, groups: int, num_tokens: int):
        self.settings = settings
        self.num_layers = num_layers
        self.protected = protected
        self.groups = groups
        self.r = self._layer_r(num_tokens)
        self.patched: list[tuple[torch.nn.Module, type]] = []
        self.records: dict[int, Record] = {}
        self.layout: partition.Layout | None = None  # the family's token grid (region and motion partitions)
        self.saliency = None  # saliency partition: an object with scores(layer, keys) -> (batch, N)
        self.prior: torch.Tensor | None = None  # motion partition: the prior of the next forward pass
        self.auxiliary = False  # vtome.vtm.enable_auxiliary: training-mode passes double the batch before layer 1
        self.doubled = False  # set before layer 1 by vtome.vtm: this forward pass holds [main; auxiliary] rows
        self.main_rows: int | None = None  # merged rows of the main path in this forward pass (None: no auxiliary)
        self.hooks: list = []  # handles of hooks on the model, removed by unpatch

    def _layer_r(self, num_tokens: int) -> list[int]:
        s = self.settings
        return layer_r(s.r, s.schedule, self.num_layers, num_tokens - self.protected, s.max_fraction)

    def eager(self, model_default: bool) -> bool:
        """Whether attention is computed explicitly (to return weights) instead of with SDPA."""
        impl = self.settings.attn_impl
        return model_default if impl is None else impl == "eager"

    def enter(self, layer: int, x: torch.Tensor, position: torch.Tensor | None = None) -> torch.Tensor | None:
        """Called as a layer starts, with x (batch, N, C) the sequence it will merge (layer 0 starts a forward
        pass). Returns the sizes for proportional attention, or None when they would add nothing (off, or
        nothing merged yet).

        position: at layer 0, (N, k) or (batch, N, k) positions of the tokens, carried through the merges (read
        them with `position(layer)`).
        """
        if layer == 0 and not _in_backward():
            self.start(x, position)
        record = self.records.get(layer)
        if record is None or record.size.shape[:2] != x.shape[:2]:
            raise RuntimeError(
                f"vtome: layer {layer} of a patched model ran without the layers before it in the same forward pass "
                f"(it holds {x.shape[1]} tokens); run the whole model, and with gradient checkpointing run backward "
                "before the next forward"
            )
        return record.size if self.settings.prop_attn and record.merged else None

    def start(self, x: torch.Tensor, position: torch.Tensor | None = None) -> None:
        """Begin a forward pass on x (batch, N, C), the sequence entering the first layer."""
        batch, n = x.shape[:2]
        s = self.settings
        self.r = self._layer_r(n)
        self.main_rows = batch // 2 if self.doubled else None
        index = torch.arange(n, device=x.device).expand(batch, n)
        assignment = index.clone() if s.trace_source else None
        size = torch.ones(batch, n, 1, device=x.device, dtype=torch.float32)
        if position is not None:
            position = position.to(device=x.device, dtype=torch.float32).expand(batch, n, -1)
        prior = self._take_prior(n, x.device) if s.partition == "motion" else None
        if s.partition in ("center", "boundary"):
            self._grid(n)  # a clear error before any work when the model has no such grid
        anchor = index if s.anchored else None
        self.records = {0: Record(size, assignment=assignment, position=position, anchor=anchor, prior=prior)}

    def _grid(self, n: int) -> partition.Layout:
        layout = self.layout
        if layout is None or layout.row_tokens != n:
            have = "has no patch grid" if layout is None else f"has {layout.row_tokens} tokens per row on its grid"
            raise ValueError(f"partition={self.settings.partition!r} needs each token's place on the patch grid; this "
                             f"model {have}, and its layer 1 got {n}")
        return layout

    def _take_prior(self, n: int, device: torch.device) -> torch.Tensor:
        """The motion prior set for this forward pass, as (rows, n); it is used once."""
        if self.prior is None:
            raise ValueError("partition='motion' needs a motion prior for every forward pass: call "
                             "vtome.set_prior(model, prior) first (vtome.motion_prior(video, model) computes one)")
        prior, self.prior = self.prior, None
        return self._grid(n).prior_rows(prior).to(device)

    def position(self, layer: int) -> torch.Tensor | None:
        """(batch, N, k) float32: where the tokens entering layer sit (None unless positions were given)."""
        return self.records[layer].position

    def key_bias(self, layer: int | None, k: torch.Tensor, prefix: int = 0) -> torch.Tensor | None:
        """The extra per-key attention bias of layer, for attend(key_bias=...): None except in the auxiliary path.

        k: (batch, heads, N, head_dim), the layer's keys; the first `prefix` of them stand outside the merged
        sequence (TimeSformer's class token) and get no bias; layer None: an attention that does not merge.
        Returns (batch, N): 0 in the main rows, s_j = saliency of key j (computed from the main rows' keys, with
        its gradient) in the auxiliary rows.
        """
        main = self.main_rows
        if main is None or layer is None:
            return None
        s = self.saliency.scores(layer, key_metric(k[:main, :, prefix:], self.settings.head_aggregation))
        s = torch.nn.functional.pad(s.to(k.dtype), (prefix, 0))
        return torch.cat([torch.zeros_like(s), s])

    def reduce(self, layer: int, x: torch.Tensor, metric: torch.Tensor) -> torch.Tensor:
        """Reduce x (batch, N, C) by layer's r using metric (batch, N, C'); returns (batch, N - r', C) and records
        what enters the next layer."""
        record = self.records[layer]
        r = self.r[layer] if layer < len(self.r) else 0
        main = self.main_rows
        m = self.match(layer, metric if main is None else metric[:main], r, record) if r > 0 else None
        if m is not None and main is not None:
            m = repeat(m, 2)  # the main rows' matching for the auxiliary rows too
        if m is not None:
            x, record = self._apply(x, m, record)
        elif record.targets is not None:
            record = dataclasses.replace(record, targets=None)
        self.records[layer + 1] = record
        return x

    def match(self, layer: int, metric: torch.Tensor, r: int, record: Record | None = None) -> Matching | None:
        s = self.settings
        draw = RandomDraw(s.seed, layer, self.groups, per_row=s.paper) if s.random else None
        split = None if s.partition == "alternate" else self.split(layer, metric, record)
        return bipartite_match(metric, r, self.protected, draw, split)

    def split(self, layer: int, metric: torch.Tensor, record: Record) -> Split:
        """The targets and sources of layer's tokens under the partition (see vtome.partition)."""
        s = self.settings
        batch, n = metric.shape[:2]
        if s.partition == "stride":
            return partition.stride(batch, n, s.gamma, self.protected, metric.device)
        if s.partition in ("center", "boundary"):
            box = self.layout.box(metric.device)[record.anchor]
            return partition.region(box, s.gamma, s.partition, self.protected)
        if s.partition == "motion":
            logits = record.prior.gather(1, record.anchor) / s.tau
        else:
            logits = self.saliency.scores(layer, metric)
        return partition.sampled(logits, s.gamma, self.protected, s.sample, (s.seed, layer, 2), self.groups)

    def _apply(self, x: torch.Tensor, m: Matching, record: Record) -> tuple[torch.Tensor, Record]:
        n = x.shape[1]
        s = self.settings
        joins = dropped = dropped_dst = None  # joins: which leaving A tokens merge (None: all of them)
        if s.drops:
            dropped = torch.ones_like(m.src_idx, dtype=torch.bool)
            x, size = reduce.drop(x, record.size, m)
            merged = record.merged
        else:
            if s.mode == "hybrid" and s.paper:
                dropped_dst = reduce.dropped_b(m, m.score >= s.threshold)
            elif s.mode == "hybrid":
                joins = m.score >= s.threshold
                dropped = ~joins
            x, size = reduce.merge(x, record.size, m, joins, s.merge_weighting == "uniform", dropped_dst)
            merged = True
        assignment = record.assignment
        if assignment is not None:
            assignment = reduce.follow(assignment, reduce.new_positions(m, n, dropped, dropped_dst))
        position = record.position
        if position is not None:
            position = self._move_positions(position, record.size, m, joins, dropped_dst)
        anchor = None if record.anchor is None else reduce.take(record.anchor, m)  # a merged token keeps its target's
        return x, Record(size, merged, assignment, position, anchor, record.prior, m.num_b)

    def _move_positions(self, position: torch.Tensor, size: torch.Tensor, m: Matching,
                        joins: torch.Tensor | None, dropped_dst: torch.Tensor | None) -> torch.Tensor:
        """Positions after a reduction. An unmerged token keeps its own. A merged token gets its members'
        size-weighted mean ("mean": the same members as its values), its target's ("target"), or the mean of the
        sources that joined it ("source")."""
        rule = self.settings.position
        if self.settings.drops or rule == "target":
            return reduce.take(position, m)
        if rule == "mean":
            return reduce.merge(position, size, m, joins, drop_dst=dropped_dst)[0]
        joining = torch.ones_like(m.src_idx, dtype=torch.bool) if joins is None else joins
        return reduce.merge(position, size, m, joins, drop_dst=reduce.dropped_b(m, ~joining))[0]

    # --- what the last forward pass did -------------------------------------------------------------------

    def _records(self) -> list[Record]:
        """The records of the last complete forward pass: entering layer 1, then after each layer."""
        found = [self.records.get(i) for i in range(self.num_layers + 1)]
        return [] if any(rec is None for rec in found) else found

    @property
    def final(self) -> Record | None:
        """What the last layer of the last forward pass produced (None before a forward pass)."""
        return self.records.get(self.num_layers)

    @property
    def tokens(self) -> list[int]:
        return [rec.tokens for rec in self._records()]

    @property
    def size(self) -> torch.Tensor | None:
        return None if self.final is None else self.final.size

    @property
    def assignment(self) -> torch.Tensor | None:
        return None if self.final is None else self.final.assignment

    @property
    def assignments(self) -> list[torch.Tensor]:
        return [rec.assignment for rec in self._records() if rec.assignment is not None]

    @property
    def anchors(self) -> list[torch.Tensor]:
        return [rec.anchor for rec in self._records() if rec.anchor is not None]

    @property
    def targets(self) -> list[int | None]:
        """Targets chosen in each layer (None where a layer merged nothing)."""
        return [rec.targets for rec in self._records()[1:]]

    def pool_size(self) -> torch.Tensor | None:
        """Sizes for a size-weighted pooling head, or None when a plain mean is the same (nothing merged) or the
        paper's code is reproduced (it pools with a plain mean)."""
        final = self.final
        if final is None or not final.merged or self.settings.paper:
            return None
        return final.size
