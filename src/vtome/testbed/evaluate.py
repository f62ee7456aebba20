"""Every reduction of the paper's Table 1 on one testbed model, interleaved batch by batch.

    rows = evaluate_variants(model, frames, labels, table_variants("vivit"))

All variants see the same batches, one after the other (patch, forward, unpatch), so a machine shared with
other work slows every variant alike and the measured speedups stay comparable. Seconds are model forward
time only.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

import vtome
from vtome.bench import baseline_attention
from vtome.motion import motion_prior
from vtome.testbed.models import model_input

# The paper merges 10% of the input tokens per layer, which over 12 layers it counts as "60% of all tokens across
# all layers". The testbed models have 4 layers: at 10% they keep 60% of their tokens to the end and every
# reduction stays within a point or two of the unreduced model; 15% per layer merges the same 60% in total.
R = 0.15
# The paper's hybrid thresholds (supp. Tab. 4: ViViT 0.4, VideoMAE 0.8); TimeSformer, Motionformer and V-JEPA 2,
# not in that table, take ViViT's (all use proportional attention).
HYBRID_THRESHOLDS = {"vivit": 0.4, "videomae": 0.8, "timesformer": 0.4, "motionformer": 0.4, "vjepa2": 0.4}


@dataclass(frozen=True)
class Variant:
    """One row of the table: unpatched (mode None) or patched with these settings.

    schedule: a schedule's name, or r per layer (then `r` is not used).
    partition, gamma: which tokens are targets (vtome.partition); motion takes each batch's frame-difference prior.
    """

    reduction: str  # as printed: "-", "random drop", "drop", "random merge", "merge", "hybrid"
    mode: str | None = None
    schedule: str | tuple[int, ...] = "constant"
    r: float = 0.0
    threshold: float | None = None
    partition: str = "alternate"
    gamma: int | None = None

    def patch_kwargs(self, seed: int = 0) -> dict:
        schedule = self.schedule if isinstance(self.schedule, str) else list(self.schedule)
        return dict(r=self.r, schedule=schedule, mode=self.mode, threshold=self.threshold, seed=seed,
                    partition=self.partition, gamma=self.gamma)


def table_variants(model_name: str, r: float = R) -> list[Variant]:
    """The baseline, the five reductions at constant r, then merge with the decreasing and increasing schedules."""
    return [
        Variant("-"),
        Variant("random drop", "random_drop", r=r),
        Variant("drop", "drop", r=r),
        Variant("random merge", "random_merge", r=r),
        Variant("merge", "merge", r=r),
        Variant("hybrid", "hybrid", r=r, threshold=HYBRID_THRESHOLDS[model_name]),
        Variant("merge", "merge", "decreasing", r),
        Variant("merge", "merge", "increasing", r),
    ]


def _forward(model: nn.Module, x: torch.Tensor, variant: Variant, seed: int) -> tuple[torch.Tensor, float, list]:
    """Logits (B, K), forward seconds and the token counts of one variant on one batch.

    Both sides compute attention with SDPA: the baseline through vtome.bench.baseline_attention (HF TimeSformer
    has only an explicit softmax), so a speedup measures the token reduction, not a faster attention kernel."""
    if variant.mode is None:
        with baseline_attention(model, "sdpa"):
            start = time.perf_counter()
            logits = model(x).logits
            return logits, time.perf_counter() - start, []
    vtome.patch(model, **variant.patch_kwargs(seed), attn_impl="sdpa")
    if variant.partition == "motion":  # computed outside the timing, as a codec hands motion over with the frames
        vtome.set_prior(model, motion_prior(x, model).prior)
    try:
        start = time.perf_counter()
        logits = model(x).logits
        seconds = time.perf_counter() - start
        tokens = vtome.info(model)["tokens"]
    finally:
        vtome.unpatch(model)
    return logits, seconds, tokens


@torch.inference_mode()
def evaluate_variants(
    model: nn.Module, frames: torch.Tensor, labels: torch.Tensor, variants: list[Variant], batch_size: int = 50,
    seed: int = 0,
) -> list[dict]:
    """Top-1 (%) and forward seconds of every variant on clips frames uint8 (N, T, H, W, 3), labels (N,).

    Returns one dict per variant: its fields (see Variant) plus top1, correct, clips, seconds, tokens (per layer,
    from vtome.info; [] unpatched).
    """
    model.eval()
    correct = [0] * len(variants)
    seconds = [0.0] * len(variants)
    tokens: list[list] = [[] for _ in variants]
    for start in range(0, len(labels), batch_size):
        x = model_input(frames[start:start + batch_size], model)
        y = labels[start:start + batch_size]
        for i, variant in enumerate(variants):
            logits, spent, counts = _forward(model, x, variant, seed)
            correct[i] += int((logits.argmax(-1) == y).sum())
            seconds[i] += spent
            tokens[i] = counts
    total = len(labels)
    return [
        {**asdict(v), "top1": 100.0 * c / max(total, 1), "correct": c, "clips": total, "seconds": s, "tokens": t}
        for v, c, s, t in zip(variants, correct, seconds, tokens, strict=True)
    ]
