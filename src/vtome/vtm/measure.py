"""Throughput and peak memory of several inference functions.

Timing is interleaved, in one process: after the warm-up, every round calls each function once (in a rotating
order), so a slow drift of a shared machine touches all alike; throughput is the median over the rounds.

Peak memory is what one call adds on top of what was in use before it. CUDA: the peak allocated by torch minus
the allocation before. CPU (`isolated_memory_mib`): each function is built and measured in a fresh Python
process, so what ran before (training, the other variants, their freed blocks kept by the allocator) cannot hide
or inflate it: one warm-up call, then the peak resident set size of the call (VmHWM, reset through
/proc/self/clear_refs) minus the resident set before it. glibc would serve the call's tensors from the warm-up's
freed blocks, still resident, so those are handed back to the system first (malloc_trim): reused, they count again.
The child also fixes glibc's mmap threshold (128 KiB): by default it rises to the size of the largest block freed,
after which large tensors come from the heap and how much of them stays resident depends on the order of earlier
frees (the same measurement gave 49 to 123 MiB); with the threshold fixed every large tensor is its own mapping,
returned to the system when freed, so the resident set follows the live tensors (five runs within 0.1 MiB).
"""

from __future__ import annotations

import ctypes
import os
import pickle
import re
import statistics
import subprocess
import sys
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


_CHILD = ("import pickle, sys; sys.path[:0] = pickle.load(sys.stdin.buffer); "
          "from vtome.vtm.measure import _child; _child()")


def _child() -> None:
    """In the fresh process: read (setup, args, threads) from stdin, print the MiB one call adds."""
    setup, args, threads = pickle.load(sys.stdin.buffer)
    torch.set_num_threads(threads)
    fn = setup(*args)
    fn()  # warm-up: one-time initialisation (kernels, thread pools) is not the call's memory
    print(forward_memory_mib(fn, torch.device("cpu")))


def isolated_memory_mib(setup: Callable[..., Callable[[], object]], *args: object) -> float:
    """CPU: the memory one call of setup(*args)() adds at its peak, in MiB, measured in a fresh Python process.
    setup must be importable (a module-level function, or a partial of one) and args picklable; the child uses as
    many threads as this process. (A subprocess reading a pickle, not multiprocessing's spawn, which would re-run
    a calling script's top level.)"""
    payload = pickle.dumps(sys.path) + pickle.dumps((setup, args, torch.get_num_threads()))
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}  # glibc reads it at start-up (see above)
    done = subprocess.run([sys.executable, "-c", _CHILD], input=payload, capture_output=True, env=env)
    if done.returncode:
        raise RuntimeError(f"the memory measurement's process failed: {done.stderr.decode().strip()[-2000:]}")
    return float(done.stdout.decode().split()[-1])


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
