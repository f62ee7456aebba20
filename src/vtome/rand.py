"""Seeded random numbers made of plain tensor ops (a counter-based hash), for the random modes and samplers.

Why not torch.Generator: a generator cannot be traced by torch.compile (a graph break on every random layer),
its state moves on with every draw (so gradient checkpointing, which runs a layer's forward again, would draw
another pattern), and its numbers differ between CPU and CUDA. Here a number is a pure function of
(seed, stream, index): the same on every device, in every recomputation, under the compiler, and the global
RNG is never touched. Statistical quality is that of a 32-bit integer hash, plenty for choosing tokens.
"""

from __future__ import annotations

import torch

_MASK = 0xFFFFFFFF
# Odd multipliers below 2**31, so that a 32-bit value times one stays below 2**63: no int64 overflow anywhere.
_M1, _M2, _M3 = 0x7FEB352D, 0x5BD1E995, 0x2C1B3C6D


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit avalanche hash of int64 values in [0, 2**32)."""
    x = x ^ (x >> 16)
    x = (x * _M1) & _MASK
    x = x ^ (x >> 15)
    x = (x * _M2) & _MASK
    x = x ^ (x >> 16)
    x = (x * _M3) & _MASK
    return x ^ (x >> 15)


def _key(*parts: int) -> int:
    """Fold integers into one 32-bit stream key (plain Python: a constant for the compiler)."""
    key = 0x9E3779B9
    for part in parts:
        key = (key ^ (part & _MASK)) * _M2 & _MASK
        key ^= key >> 13
    return key


def uniform(shape: tuple[int, ...], *stream: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """float32 numbers in [0, 1) of the given shape, a pure function of the stream (e.g. seed, layer, purpose)."""
    count = 1
    for dim in shape:
        count *= dim
    index = torch.arange(count, device=device, dtype=torch.int64)
    bits = _mix(_mix(index ^ _key(*stream)) ^ _key(count, *stream))
    return ((bits >> 8).to(torch.float32) * (1.0 / (1 << 24))).reshape(shape)


def integers(high: int, shape: tuple[int, ...], *stream: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """int64 numbers in [0, high) of the given shape (see uniform)."""
    return (uniform(shape, *stream, device=device) * high).long().clamp_(max=high - 1)


def gumbel(shape: tuple[int, ...], *stream: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard Gumbel noise: adding it to logits and taking the top k samples k items without replacement with
    probabilities softmax(logits), in sequence (the Gumbel-top-k trick)."""
    u = uniform(shape, *stream, device=device).clamp_(min=1e-7)
    return -torch.log(-torch.log(u))
