"""Throughput and peak memory of several inference functions, measured in one process.

Timing is interleaved: after the warm-up, every round calls each function once (in a rotating order), so a slow
drift of a shared machine touches all alike; throughput is the median over the rounds. Peak memory is what one
call adds on top of what was in use before it: CUDA the peak allocated by torch minus the allocation before; CPU
the peak resident set size (VmHWM, reset through /proc/self/clear_refs) minus the resident set before. On CPU,
glibc would serve the call's tensors from memory freed earlier and already resident (after the first large free
it stops returning blocks below 32 MB to the system), so during the probe every block of 64 KiB or more is
mapped and unmapped on its own (mallopt), and the resident set follows the live tensors.
"""

from __future__ import annotations

import ctypes
import re
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from vtome.bench import reset_peak_memory, synchronize, time_call


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(re.search(rf"{field}:\s+(\d+)", status.read()).group(1))


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


@contextmanager
def _mapped_blocks() -> Iterator[None]:
    """glibc: blocks of 64 KiB or more mapped on their own while inside; afterwards 32 MB (the most glibc's own
    adaptive threshold reaches, so that timed passes reuse memory as they would anyway). No-op elsewhere."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(M_MMAP_THRESHOLD, 64 * 1024)
    try:
        yield
    finally:
        mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)


def forward_memory_mib(fn: Callable[[], object], device: torch.device) -> float:
    """The memory one call of fn adds at its peak, in MiB."""
    synchronize(device)
    if device.type == "cuda":
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    with _mapped_blocks():
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
