"""Throughput and peak memory of several inference functions, measured in one process.

Timing is interleaved: after the warm-up, every round calls each function once (in a rotating order), so a slow
drift of a shared machine touches all alike; throughput is the median over the rounds. Peak memory is what one
call adds on top of what was in use before it: CUDA the peak allocated by torch minus the allocation before; CPU
the peak resident set size (VmHWM, reset through /proc/self/clear_refs) minus the resident set before. On CPU,
glibc would serve the call's tensors from blocks freed earlier and still resident, so the free memory is handed
back to the system first (malloc_trim): reused, it is counted again.
"""

from __future__ import annotations

import ctypes
import re
import statistics
from collections.abc import Callable

import torch

from vtome.bench import reset_peak_memory, synchronize, time_call


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(re.search(rf"{field}:\s+(\d+)", status.read()).group(1))


def _release_free_memory() -> None:
    """glibc: give the memory of freed blocks back to the system (malloc_trim), so that what a call allocates
    shows in the resident set again, even where it reuses those blocks. No-op elsewhere."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def forward_memory_mib(fn: Callable[[], object], device: torch.device) -> float:
    """The memory one call of fn adds at its peak, in MiB."""
    synchronize(device)
    if device.type == "cuda":
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    _release_free_memory()
    reset_peak_memory(device)
    base = _rss_kib("VmRSS")
    fn()
    return max(0, _rss_kib("VmHWM") - base) / 1024


def interleaved_seconds(fns: dict[str, Callable[[], object]], device: torch.device, runs: int, warmup: int,
                        step: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Wall seconds of `runs` calls of every function, called in rounds after `warmup` calls of each."""
    names = list(fns)
    timed: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + runs):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            if step:
                step(f"{'warm-up' if i < warmup else f'run {i - warmup + 1}/{runs}'}: {name}")
            seconds = time_call(fns[name], device)[0]
            if i >= warmup:
                timed[name].append(seconds)
    return timed


def median(values: list[float]) -> float:
    return statistics.median(values)
