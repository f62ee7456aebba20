"""VTMNet: the long-video network of Lee et al. (NeurIPS 2024, Fig. 2 and 6) over per-frame tokens of a frozen
encoder.

    net = VTMNet(VTMConfig(frames=60, height=16, width=16, channels=1024, classes=10, variant="learnable"))
    logits = net(features)            # features (batch, 60, 256, 1024) -> (batch, classes)

Three blocks; block i attends within non-overlapping windows of L_i consecutive frames (default (6, 30, 60)):

    x -> x + Dropout(Proj(Attention(LN(x))))  -> VTM (merge, per window) -> GELU(Linear(x))  (channels halve)

then the mean of the tokens of every clip, LayerNorm and a linear head. Each window of block i + 1 is the
concatenation of the (merged) tokens of L_{i+1} / L_i consecutive windows of block i.

Where the paper is silent, vtome chooses (and the README says so):
- a residual around the attention (the figure draws none; without it the block is hard to train), none around the
  channel-halving linear (the widths differ);
- heads = channels / head_width (64) per block, at least one; channels halve in every block (1024 -> 512 -> 256
  -> 128; the paper's appendix says 256 at the end, which halving three times does not give);
- the matching metric and the saliency read the full-width keys of the block (all heads concatenated);
- targets: every variant's partition function of vtome.partition per window (gamma 6), R = round(0.8 |S|) sources
  merged into their most similar target by a plain average (uniform); no proportional attention;
- motion and learnable draw the targets (Gumbel-top-k), in training (a new draw every step: `draw`) and at
  evaluation (one fixed, seeded draw, the same for every clip); `eval_sample=False` takes the top ones at
  evaluation instead. Drawing is the default because a net trained on drawn partitions loses much when
  evaluated on top-k ones (learnable on the long-video testbed: 79.0% drawn, 64.8% top-k);
- learnable, in training: the auxiliary path runs in the second half of a doubled batch (rows [B, 2B)), with s_j
  added to every query's logit for key j (s from the main path's keys), merged with the main path's matching;
  both paths share every weight and the head; the output then has 2B rows [main; aux] and the loss is
  task(main) + lam * task(aux) (vtome.vtm.task_loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from vtome import partition, reduce
from vtome.matching import bipartite_match, repeat

VARIANTS = ("none", "naive", "boundary", "center", "motion", "learnable")


@dataclass(frozen=True)
class VTMConfig:
    """frames x (height x width) tokens per frame x channels in; windows: L_i frames per block's window.
    ratio: R = round(ratio * |S|) sources merged per window. tau: motion's softmax temperature."""

    frames: int = 60
    height: int = 16
    width: int = 16
    channels: int = 1024
    classes: int = 10
    windows: tuple[int, ...] = (6, 30, 60)
    variant: str = "learnable"
    gamma: int = 6
    ratio: float = 0.8
    head_width: int = 64
    dropout: float = 0.0
    tau: float = 1.0
    eval_sample: bool = True
    widths: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown VTM variant {self.variant!r}; use one of {', '.join(VARIANTS)}")
        windows = tuple(self.windows)
        object.__setattr__(self, "windows", windows)
        if not windows or any(w < 1 or self.frames % w for w in windows):
            raise ValueError(f"windows {windows}: each must divide the {self.frames} frames")
        if any(b % a for a, b in zip(windows, windows[1:], strict=False)):
            raise ValueError(f"windows {windows}: each must be a multiple of the one before (a window of a block is "
                             "whole windows of the block before)")
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, int) or self.gamma < 2:
            raise ValueError(f"gamma must be an int >= 2; got {self.gamma!r}")
        if not 0 <= self.ratio <= 1:
            raise ValueError(f"ratio (R / |S|) must be in [0, 1]; got {self.ratio}")
        if self.channels >> len(windows) < 1 or min(self.frames, self.height, self.width, self.classes) < 1:
            raise ValueError("frames, height, width and classes must be >= 1, and channels >= 2 ** blocks")
        object.__setattr__(self, "widths", tuple(self.channels >> i for i in range(len(windows) + 1)))

    @property
    def tokens_per_frame(self) -> int:
        return self.height * self.width

    def heads(self, block: int) -> int:
        return max(1, self.widths[block] // self.head_width)


def plan_tokens(config: VTMConfig) -> list[tuple[int, int, int]]:
    """Per block: (windows per clip, tokens entering a window, tokens leaving it), from gamma and R alone."""
    plan, windows_before, leaving = [], 1, config.frames * config.tokens_per_frame
    for length in config.windows:
        windows = config.frames // length
        n = leaving * windows_before // windows
        if config.variant == "none":
            leaving = n
        else:
            targets = partition.num_targets(n, config.gamma)
            leaving = n - round(config.ratio * (n - targets))
        plan.append((windows, n, leaving))
        windows_before = windows
    return plan


def flops(config: VTMConfig) -> int:
    """Analytic FLOPs per clip (2 per multiply-add): qkv + proj 8 n C^2, attention 4 n^2 C, matching
    2 |S| |T| C, the halving linear n' C^2 per window; the head. Norms, softmax and merging not counted."""
    total = 0
    for block, (windows, n, leaving) in enumerate(plan_tokens(config)):
        c = config.widths[block]
        per_window = 8 * n * c * c + 4 * n * n * c + leaving * c * c
        if config.variant != "none":
            targets = partition.num_targets(n, config.gamma)
            per_window += 2 * (n - targets) * targets * c
        total += windows * per_window
    return total + 2 * config.widths[-1] * config.classes


class VTMBlock(nn.Module):
    """Attention within windows, the VTM layer, then linear + GELU halving the channels."""

    def __init__(self, dim: int, heads: int, dropout: float, learnable: bool) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, dim // 2)
        # s = tanh(K u): one vector over the full-width keys; zeros: a uniform partition at first
        self.saliency = nn.Parameter(torch.zeros(dim)) if learnable else None

    def attention(self, x: torch.Tensor, main: int | None, eager: bool) -> tuple[torch.Tensor, torch.Tensor,
                                                                                  torch.Tensor | None]:
        """x (rows, n, C) -> x + attention (rows, n, C), keys (rows, n, C), saliency of the main rows or None.
        main: rows [0, main) are the main path and the rest the auxiliary one (None: no auxiliary path)."""
        rows, n, c = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(rows, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        keys = k.transpose(1, 2).reshape(rows, n, c)
        s = None if self.saliency is None else torch.tanh(keys[:main] @ self.saliency)
        bias = None
        if main is not None:
            bias = torch.cat([torch.zeros_like(s), s]).to(q.dtype)[:, None, None, :]
        if eager:
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
            out = (scores if bias is None else scores + bias).softmax(-1) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = self.proj(out.transpose(1, 2).reshape(rows, n, c))
        return x + self.drop(out), keys, s


@dataclass
class _Pass:
    """What the VTM layers of one forward pass share."""

    clips: int  # clips in the batch (main path)
    main: int | None  # main-path clips when the auxiliary path runs
    anchors: torch.Tensor  # (rows, n) long: the layer-1 index in its clip of each token (a merged one: its target's)
    prior: torch.Tensor | None  # (clips, frames * tokens per frame) float32: motion / tau
    box: torch.Tensor  # (tokens per frame,) bool: the central box of a frame
    sample: bool
    draw: int


class VTMNet(nn.Module):
    """The paper's network; `variant` decides which tokens are targets (see the module docstring)."""

    def __init__(self, config: VTMConfig) -> None:
        super().__init__()
        self.config = config
        learnable = config.variant == "learnable"
        self.blocks = nn.ModuleList(
            VTMBlock(config.widths[i], config.heads(i), config.dropout, learnable) for i in range(len(config.windows))
        )
        self.norm = nn.LayerNorm(config.widths[-1])
        self.head = nn.Linear(config.widths[-1], config.classes)
        self.auxiliary = True  # learnable in training: run the auxiliary path
        self.attn_impl = "sdpa"  # or "eager": explicit softmax (benchmarks)
        self.draw = 0  # the stream of the sampled partitions (a training loop sets it to the step)
        self.tokens: list[tuple[int, int]] = []  # last pass: per block, tokens entering and leaving one window

    def check(self, features: torch.Tensor, motion: torch.Tensor | None) -> None:
        c = self.config
        expected = (c.frames, c.tokens_per_frame, c.channels)
        if features.dim() != 4 or tuple(features.shape[1:]) != expected:
            raise ValueError(f"features must be (batch, {c.frames} frames, {c.tokens_per_frame} tokens per frame "
                             f"({c.height} x {c.width}), {c.channels} channels); got {tuple(features.shape)}")
        if c.variant == "motion":
            grid = (features.shape[0], c.frames, c.height, c.width)
            if motion is None or tuple(motion.shape) != grid:
                got = None if motion is None else tuple(motion.shape)
                raise ValueError(f"variant 'motion' needs motion (batch, frames, height, width) = {grid}; got {got}")

    def forward(self, features: torch.Tensor, motion: torch.Tensor | None = None) -> torch.Tensor:
        """features (batch, frames, tokens per frame, channels); motion (batch, frames, height, width), the
        motion prior (variant "motion"). Returns logits (batch, classes), or (2 batch, classes) [main; aux] for
        "learnable" in training with the auxiliary path."""
        self.check(features, motion)
        c = self.config
        clips, n = features.shape[0], c.frames * c.tokens_per_frame
        x = features.reshape(clips, n, c.channels)
        main = None
        if self.training and self.auxiliary and c.variant == "learnable":
            main, x = clips, torch.cat([x, x])
        anchors = torch.arange(n, device=x.device).expand(x.shape[0], n)
        prior = None if motion is None or c.variant != "motion" else motion.reshape(clips, n).float() / c.tau
        box = partition.Layout(1, c.height, c.width, per_frame=True).box(x.device)
        draw = self.draw if self.training else 0
        step = _Pass(clips, main, anchors, prior, box, self.training or c.eval_sample, draw)
        self.tokens = []
        windows_before = 1
        for i, block in enumerate(self.blocks):
            windows = c.frames // c.windows[i]
            x = x.reshape(x.shape[0] * windows // windows_before, -1, x.shape[-1])
            step.anchors = step.anchors.reshape(x.shape[0], -1)
            x, keys, s = block.attention(x, None if main is None else main * windows, self.attn_impl == "eager")
            entering = x.shape[1]
            if c.variant != "none":
                x = self._merge(i, x, keys, s, windows, step)
            self.tokens.append((entering, x.shape[1]))
            x = F.gelu(block.fc(x))
            windows_before = windows
        pooled = x.reshape(x.shape[0] // windows_before, -1, x.shape[-1]).mean(1)
        return self.head(self.norm(pooled))

    def _merge(self, block: int, x: torch.Tensor, keys: torch.Tensor, s: torch.Tensor | None, windows: int,
               step: _Pass) -> torch.Tensor:
        """The VTM layer on x (rows, n, C): the partition and matching of the main rows, applied to all rows."""
        c = self.config
        rows, n = x.shape[:2]
        main = rows if step.main is None else step.main * windows
        anchors = step.anchors[:main]
        if c.variant == "naive":
            split = partition.stride(main, n, c.gamma, device=x.device)
        elif c.variant in ("center", "boundary"):
            split = partition.region(step.box[anchors % c.tokens_per_frame], c.gamma, c.variant)
        else:
            if c.variant == "motion":
                logits = step.prior.repeat_interleave(windows, dim=0).gather(1, anchors)
            else:
                logits = s
            split = partition.sampled(logits, c.gamma, sample=step.sample, stream=(step.draw, block, 2),
                                      groups=windows)
        r = round(c.ratio * (n - split.b_pos.shape[1]))
        m = bipartite_match(keys[:main], r, split=split)
        if m is None:
            return x
        if main < rows:
            m = repeat(m, rows // main)
        step.anchors = reduce.take(step.anchors, m)
        return reduce.merge(x, None, m, uniform=True)[0]
