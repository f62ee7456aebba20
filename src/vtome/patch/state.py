"""Settings of a patched model and what one forward pass tracks: sizes, sources and token counts.

One MergeState is shared by every patched module of a model. Patched layers call `reduce` between the
attention residual and the MLP; layer 0 starts a new forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vtome import reduce
from vtome.matching import bipartite_match
from vtome.schedule import Schedule, layer_r

MODES = ("merge", "drop", "random_drop", "random_merge", "hybrid")
HEAD_AGGREGATIONS = ("mean", "concat")
ATTN_IMPLS = ("sdpa", "eager")
COMPATS = ("paper",)


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

    @property
    def random(self) -> bool:
        return self.mode.startswith("random")

    @property
    def drops(self) -> bool:
        return self.mode in ("drop", "random_drop")


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
        self.r = layer_r(settings.r, settings.schedule, num_layers, num_tokens - protected)
        self.patched: list[tuple[torch.nn.Module, type]] = []
        self.size: torch.Tensor | None = None  # (batch, N, 1) float32
        self.assignment: torch.Tensor | None = None  # (batch, N0) long
        self.assignments: list[torch.Tensor] = []  # the assignment entering layer 1, then after each layer
        self.tokens: list[int] = []
        self.merged = False
        self._generator: torch.Generator | None = None

    def eager(self, model_default: bool) -> bool:
        """Whether attention is computed explicitly (to return weights) instead of with SDPA."""
        impl = self.settings.attn_impl
        return model_default if impl is None else impl == "eager"

    def enter(self, layer: int, x: torch.Tensor) -> torch.Tensor | None:
        """Called as a layer starts, with x (batch, N, C) the sequence it will merge (layer 0 starts a forward
        pass). Returns the sizes for proportional attention, or None when they would add nothing (off, or
        nothing merged yet)."""
        if layer == 0:
            self.start(x)
        return self.size if self.settings.prop_attn and self.merged else None

    def start(self, x: torch.Tensor) -> None:
        """Begin a forward pass on x (batch, N, C), the sequence entering the first layer."""
        batch, n = x.shape[:2]
        s = self.settings
        self.r = layer_r(s.r, s.schedule, self.num_layers, n - self.protected)
        self.size = torch.ones(batch, n, 1, device=x.device, dtype=torch.float32)
        self.assignment = (
            torch.arange(n, device=x.device).expand(batch, n).clone() if s.trace_source else None
        )
        self.tokens = [n]
        self.assignments = [] if self.assignment is None else [self.assignment]
        self.merged = False
        self._generator = torch.Generator().manual_seed(s.seed) if s.random else None

    def reduce(self, layer: int, x: torch.Tensor, metric: torch.Tensor) -> torch.Tensor:
        """Reduce x (batch, N, C) by layer's r using metric (batch, N, C'); returns (batch, N - r', C)."""
        r = self.r[layer] if layer < len(self.r) else 0
        m = None
        if r > 0:
            m = bipartite_match(metric, r, self.protected, self._generator, self.groups)
        if m is not None:
            x = self._apply(x, m)
        self.tokens.append(x.shape[1])
        if self.assignment is not None:
            self.assignments.append(self.assignment)  # a new tensor after each reduction: no copy needed
        return x

    def _apply(self, x: torch.Tensor, m) -> torch.Tensor:
        n = x.shape[1]
        s = self.settings
        if s.drops:
            dropped = torch.ones_like(m.src_idx, dtype=torch.bool)
            x, self.size = reduce.drop(x, self.size, m)
        else:
            merge_edge = m.score >= s.threshold if s.mode == "hybrid" else None
            dropped = None if merge_edge is None else ~merge_edge
            x, self.size = reduce.merge(x, self.size, m, merge_edge)
            self.merged = True
        if self.assignment is not None:
            self.assignment = reduce.follow(self.assignment, reduce.new_positions(m, n, dropped))
        return x
