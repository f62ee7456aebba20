"""The benchmark engine: one model, unpatched (A) and patched (B) forward passes alternating in one process.

    result = bench(BenchConfig(model="vivit-b", r=300, schedule="constant", runs=5))
    result["speedup"], result["flop_speedup"], result["efficiency"], result["merge_share"]

After `warmup` passes of each, `runs` pairs A B are timed (CUDA: events after a synchronise). Latency and
throughput are medians; the speedup is the median of the per-pair ratios, so slow drifts of a shared machine
cancel out. The time share of matching + merging and the peak memory come from separate probe passes, so the
timed passes carry no instrumentation. Both variants compute attention the same way (`attn_impl`): the baseline
is switched too (HF attention implementation, timm `fused_attn`, Motionformer's set_attn_implementation; HF
TimeSformer has only explicit attention, so for "sdpa" its baseline runs through a plain SDPA stand-in with the same
weights).
"""

from __future__ import annotations

import copy
import datetime
import os
import platform
import re
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

import vtome
from vtome.flops import arch, flop_speedup, model_flops, unmerged_tokens
from vtome.models import clip_frames, load_model, random_input
from vtome.partition import GAMMA_DEFAULTS

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ATTN_IMPLS = ("sdpa", "eager")


@dataclass
class BenchConfig:
    model: str = "vivit-b"
    r: int | float = 0
    schedule: str = "constant"
    mode: str = "merge"
    threshold: float | None = None  # mode="hybrid"
    batch_size: int = 1
    runs: int = 5
    warmup: int = 1
    probe_runs: int = 1  # instrumented passes (merge share, peak memory), not timed
    threads: int | None = None
    dtype: str = "float32"
    device: str = "cpu"
    attn_impl: str = "sdpa"
    seed: int = 0
    compile: bool = False  # torch.compile both variants (timed after their first, compiling call)
    dynamic: bool = False  # compile with dynamic=True (symbolic input sizes; the merged token counts stay fixed)
    cpp_wrapper: bool = False  # compile with inductor's cpp_wrapper, kernels and entry built apart (CPP_WRAPPER)
    partition: str = "alternate"  # which tokens are targets (vtome.partition); the rest as vtome.patch takes them
    gamma: int | None = None
    merge_weighting: str = "size"
    sample: bool = True
    tau: float = 1.0
    prior_video: str | None = None  # partition="motion": the video whose motion prior every pass uses
    saliency: torch.Tensor | None = field(default=None, repr=False)  # partition="saliency": vectors (layers, C')
    prior: torch.Tensor | None = field(default=None, repr=False)  # the motion prior (1, frames, height, width)


# --- attention of the unpatched baseline ---------------------------------------------------------------------


class _SdpaTimesformerSelfAttention:
    """HF TimesformerSelfAttention computed with SDPA (HF has only the explicit softmax for this model)."""

    def forward(self, hidden_states: torch.Tensor, output_attentions: bool = False):
        """(batch, N, C) -> ((batch, N, C),)"""
        if output_attentions:
            return super().forward(hidden_states, output_attentions)
        batch, n, channels = hidden_states.shape
        q, k, v = self.qkv(hidden_states).reshape(batch, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return (out.transpose(1, 2).reshape(batch, n, channels),)


_SDPA_CLASSES: dict[type, type] = {}


@contextmanager
def baseline_attention(model: nn.Module, attn_impl: str) -> Iterator[None]:
    """Make the unpatched model compute attention with attn_impl ("sdpa" | "eager") inside the block."""
    if attn_impl not in ATTN_IMPLS:
        raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}; got {attn_impl!r}")
    family = arch(model).family
    undo: list[Callable[[], None]] = []
    if family == "timm-vit":
        for block in model.blocks:
            previous = block.attn.fused_attn
            block.attn.fused_attn = attn_impl == "sdpa"
            undo.append(lambda a=block.attn, p=previous: setattr(a, "fused_attn", p))
    elif family == "motionformer":
        previous = model.config.attn_implementation
        model.set_attn_implementation(attn_impl)
        undo.append(lambda: model.set_attn_implementation(previous))
    elif family in ("vivit", "videomae", "vjepa2"):
        previous = model.config._attn_implementation
        model.set_attn_implementation(attn_impl)
        undo.append(lambda: model.set_attn_implementation(previous))
    elif attn_impl == "sdpa":  # timesformer
        from transformers.models.timesformer.modeling_timesformer import TimesformerSelfAttention

        for module in model.modules():
            original = type(module)
            if original is TimesformerSelfAttention:
                cls = _SDPA_CLASSES.setdefault(original, type(original.__name__, (_SdpaTimesformerSelfAttention,
                                                                                  original), {}))
                module.__class__ = cls
                undo.append(lambda m=module, c=original: setattr(m, "__class__", c))
    try:
        yield
    finally:
        for step in reversed(undo):
            step()


# --- timing and memory ---------------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type != "cpu" and hasattr(torch, "accelerator"):
        torch.accelerator.synchronize()


def time_call(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """Wall-clock seconds of one call of fn (CUDA: measured with events after a synchronise) and the CPU seconds
    the process spent meanwhile (all threads; on a shared machine less disturbed by other processes)."""
    synchronize(device)
    cpu = time.process_time()
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / 1000, time.process_time() - cpu
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu


def _rss_peak_kib() -> int:
    try:
        with open("/proc/self/status") as status:
            return int(re.search(r"VmHWM:\s+(\d+)", status.read()).group(1))
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux; never reset


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # Linux: reset the peak resident set size of this process
    except OSError:
        pass


def peak_memory_mib(device: torch.device) -> float:
    """CUDA: peak allocated by torch; CPU: peak resident set size of the process (weights included)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return _rss_peak_kib() / 1024


# --- the measurement ----------------------------------------------------------------------------------------


def patch_kwargs(config: BenchConfig, batch: int = 1) -> dict:
    """The vtome.patch arguments of a config, plus "prior" (the motion prior for a batch of `batch` clips, or None):
    see patch_with."""
    prior = None if config.prior is None else config.prior.expand(batch, *config.prior.shape[1:])
    return dict(r=config.r, schedule=config.schedule, mode=config.mode, threshold=config.threshold,
                seed=config.seed, attn_impl=config.attn_impl, partition=config.partition, gamma=config.gamma,
                merge_weighting=config.merge_weighting, sample=config.sample, tau=config.tau,
                saliency=config.saliency, prior=prior)


def patch_with(model: nn.Module, kwargs: dict) -> nn.Module:
    """vtome.patch(model, **kwargs) without the "prior" entry, which goes to vtome.set_prior (for the next pass)."""
    vtome.patch(model, **{k: v for k, v in kwargs.items() if k != "prior"})
    give_prior(model, kwargs)
    return model


def give_prior(model: nn.Module, kwargs: dict) -> None:
    """Set kwargs["prior"] (when there is one) for the next forward pass: a motion prior is used once."""
    if kwargs.get("prior") is not None:
        vtome.set_prior(model, kwargs["prior"])


def _forward(model: nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        model(x)


def alternate(
    run_a: Callable[[], None], run_b: Callable[[], None], device: torch.device, runs: int, warmup: int,
    step: Callable[[str], None] | None = None, names: tuple[str, str] = ("unpatched", "patched"),
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(wall, CPU) seconds of `runs` calls of run_a and run_b, alternating A B A B after `warmup` calls of each."""
    timed: tuple[list, list] = ([], [])
    for i in range(warmup + runs):
        label = "warm-up" if i < warmup else f"run {i - warmup + 1}/{runs}"
        for name, run, out in ((names[0], run_a, timed[0]), (names[1], run_b, timed[1])):
            if step:
                step(f"{label}: {name}")
            seconds = time_call(run, device)
            if i >= warmup:
                out.append(seconds)
    return timed


def time_pairs(
    model: nn.Module, x: torch.Tensor, kwargs: dict, runs: int, warmup: int, attn_impl: str,
    step: Callable[[str], None] | None = None,
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(wall, CPU) seconds of `runs` unpatched and patched passes of one model (patched and unpatched in turn),
    alternating A B A B after `warmup` passes of each."""

    def unpatched() -> None:
        with baseline_attention(model, attn_impl):
            _forward(model, x)

    def patched() -> None:
        patch_with(model, kwargs)
        try:
            _forward(model, x)
        finally:
            vtome.unpatch(model)

    return alternate(unpatched, patched, x.device, runs, warmup, step)


def time_compiled_pairs(
    model: nn.Module, x: torch.Tensor, kwargs: dict, runs: int, warmup: int, attn_impl: str,
    step: Callable[[str], None] | None = None, compile_kwargs: dict | None = None,
) -> tuple[list[tuple[float, float]], list[tuple[float, float]], dict]:
    """As time_pairs, for torch.compile'd models: an unpatched and a patched copy, each compiled once (re-patching
    a compiled model in every pass would recompile it every time), both with torch.compile(**compile_kwargs). Also
    returns the compile times: the first call of each, compilation included, and the patched model's eager
    (uncompiled) median for comparison, timed in pairs with the compiled one (compiled, eager, compiled, ...)
    after a warm-up of each, so that a drift of the machine's speed between the two measurements cannot decide
    which is faster; "eager_over_compiled" is the median of the per-pair ratios."""
    patched_model = patch_with(copy.deepcopy(model), kwargs)

    def run_patched(compiled: nn.Module) -> None:
        give_prior(patched_model, kwargs)
        _forward(compiled, x)

    # Forget what earlier cells compiled: dynamo would reuse the unpatched model's code, and its "compile time"
    # would read ~2 s instead of a cold compile.
    torch._dynamo.reset()
    with baseline_attention(model, attn_impl):
        compiled_a, compiled_b = (torch.compile(m, **(compile_kwargs or {})) for m in (model, patched_model))
        firsts = []
        for name, run in (("unpatched", lambda: _forward(compiled_a, x)), ("patched", lambda: run_patched(compiled_b))):
            if step:
                step(f"compiling {name}")
            firsts.append(time_call(run, x.device)[0])
        timed_a, timed_b = alternate(lambda: _forward(compiled_a, x), lambda: run_patched(compiled_b), x.device,
                                     runs, warmup, step)
    compiled, eager = alternate(lambda: run_patched(compiled_b), lambda: run_patched(patched_model), x.device,
                                max(1, min(runs, 3)), 1, step, names=("patched compiled", "patched eager"))
    extra = {"compile_s_baseline": firsts[0], "compile_s_patched": firsts[1],
             "patched_eager_s": statistics.median(e[0] for e in eager),
             "eager_over_compiled": statistics.median(e[0] / c[0] for c, e in zip(compiled, eager, strict=True))}
    return timed_a, timed_b, extra


def probe(model: nn.Module, x: torch.Tensor, kwargs: dict, runs: int, attn_impl: str) -> dict:
    """Instrumented passes: the share of the patched forward spent in matching + merging (MergeState.reduce),
    the peak memory of each variant, and the token counts and r per layer of the patched model."""
    device = x.device
    reset_peak_memory(device)
    with baseline_attention(model, attn_impl):
        _forward(model, x)
    memory_baseline = peak_memory_mib(device)

    patch_with(model, kwargs)
    try:
        state = model._vtome
        spent = [0.0, 0.0]  # wall, CPU
        reduce = state.reduce

        def timed_reduce(layer: int, tokens: torch.Tensor, metric: torch.Tensor) -> torch.Tensor:
            synchronize(device)
            start, cpu = time.perf_counter(), time.process_time()
            out = reduce(layer, tokens, metric)
            synchronize(device)
            spent[0] += time.perf_counter() - start
            spent[1] += time.process_time() - cpu
            return out

        reset_peak_memory(device)
        _forward(model, x)
        memory_patched = peak_memory_mib(device)
        state.reduce = timed_reduce  # instance attribute: the layers call it instead of the method
        shares, cpu_shares = [], []
        for _ in range(runs):
            spent[:] = [0.0, 0.0]
            give_prior(model, kwargs)
            total, cpu = time_call(lambda: _forward(model, x), device)
            shares.append(spent[0] / total)
            cpu_shares.append(spent[1] / cpu if cpu > 0 else 0.0)
        info = vtome.info(model)
        return {
            "merge_share": statistics.median(shares),
            "merge_share_cpu": statistics.median(cpu_shares),
            "peak_mem_baseline_mib": memory_baseline,
            "peak_mem_patched_mib": memory_patched,
            "tokens": info["tokens"],
            # what each layer removed (r is capped at half the mergeable tokens), and what the schedule asked
            "r_per_layer": [a - b for a, b in zip(info["tokens"], info["tokens"][1:], strict=False)],
            "r_scheduled": info["r"],
            "flops_patched": model_flops(model).total,
        }
    finally:
        vtome.unpatch(model)


# Inductor options of `vtome bench --compile --cpp-wrapper`: a graph's C++ kernels are built as one unit instead of
# one compiler run each, so the patched model's many distinct kernels (every merged layer has its own token count)
# cost little more to build than the unpatched model's few shared ones; the entry is built apart, so the unpatched
# compile does not grow either. Measured in docs/BENCHMARKS.md.
CPP_WRAPPER = {"cpp_wrapper": True, "cpp_wrapper_build_separate": True}


def compile_kwargs(config: BenchConfig) -> dict:
    """What `vtome bench --compile` passes to torch.compile for both variants."""
    return {"dynamic": config.dynamic, "options": dict(CPP_WRAPPER) if config.cpp_wrapper else None}


def compare(
    model: nn.Module, x: torch.Tensor, config: BenchConfig, step: Callable[[str], None] | None = None
) -> dict:
    """Benchmark an already loaded model on input x (batch, ...); returns the result dict (see `bench`)."""
    kwargs = patch_kwargs(config, x.shape[0])
    vtome.unpatch(patch_with(model, kwargs))  # refuse bad settings before spending time on the baseline
    compiled: dict = {}
    if config.compile:
        timed_a, timed_b, compiled = time_compiled_pairs(model, x, kwargs, config.runs, config.warmup,
                                                         config.attn_impl, step, compile_kwargs(config))
    else:
        timed_a, timed_b = time_pairs(model, x, kwargs, config.runs, config.warmup, config.attn_impl, step)
    baseline, patched = [t[0] for t in timed_a], [t[0] for t in timed_b]
    cpu_a, cpu_b = [t[1] for t in timed_a], [t[1] for t in timed_b]
    if step:
        step("probe: merge share and memory")
    probed = probe(model, x, kwargs, max(config.probe_runs, 1), config.attn_impl)
    batch = x.shape[0]
    frames = clip_frames(model) or 1  # an image model: one frame
    base_s, patched_s = statistics.median(baseline), statistics.median(patched)
    speedup = statistics.median(b / p for b, p in zip(baseline, patched, strict=True))
    shape = arch(model)
    flops_base = model_flops(model, unmerged_tokens(shape)).total
    ideal = flops_base / probed.pop("flops_patched")
    ideal_layers = flop_speedup(model, probed["tokens"], layers_only=True)
    settings = {k: v for k, v in asdict(config).items() if k not in ("saliency", "prior")}  # tensors: not JSON
    return {
        **settings,
        "gamma": config.gamma or GAMMA_DEFAULTS[config.partition],
        "saliency_shape": None if config.saliency is None else list(config.saliency.shape),
        "batch_size": batch,
        "frames_per_clip": frames,
        "merged_frames": shape.frames if shape.divided else 1,  # frames merging on their own (Motionformer: slots)
        "baseline_s": base_s,
        "patched_s": patched_s,
        "baseline_runs_s": baseline,
        "patched_runs_s": patched,
        "baseline_clips_per_s": batch / base_s,
        "patched_clips_per_s": batch / patched_s,
        "baseline_frames_per_s": batch * frames / base_s,
        "patched_frames_per_s": batch * frames / patched_s,
        "speedup": speedup,
        "baseline_cpu_s": statistics.median(cpu_a),
        "patched_cpu_s": statistics.median(cpu_b),
        "cpu_speedup": statistics.median(a / b for a, b in zip(cpu_a, cpu_b, strict=True)),
        "gflops_baseline": flops_base / 1e9,
        "gflops_patched": flops_base / ideal / 1e9,
        "flop_speedup": ideal,
        "flop_speedup_layers": ideal_layers,
        "efficiency": speedup / ideal,
        **probed,
        **compiled,
        "threads_used": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores" if x.device.type == "cpu"
        else torch.cuda.get_device_name(x.device) if x.device.type == "cuda" else x.device.type,
        "date": datetime.date.today().isoformat(),
    }


def prepare(config: BenchConfig, load: Callable[[str], nn.Module] = load_model) -> tuple[nn.Module, torch.Tensor]:
    """Load the model (with `load`, from config.model) and a random batch as the config asks (threads, device,
    dtype)."""
    if config.attn_impl not in ATTN_IMPLS:
        raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}; got {config.attn_impl!r}")
    if config.dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {config.dtype!r}")
    if config.batch_size < 1 or config.runs < 1 or config.warmup < 0:
        raise ValueError("batch_size and runs must be >= 1 and warmup >= 0")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = torch.device(config.device)
    model = load(config.model).to(device=device, dtype=DTYPES[config.dtype])
    return model, random_input(model, config.batch_size, seed=config.seed)


def bench(config: BenchConfig, step: Callable[[str], None] | None = None,
          load: Callable[[str], nn.Module] = load_model) -> dict:
    """Load config.model and benchmark it. The result holds the config and, among others: baseline_s and
    patched_s (median seconds per batch), speedup, *_clips_per_s, *_frames_per_s, gflops_* (per clip, analytic),
    flop_speedup (whole forward, matching included), flop_speedup_layers (encoder layers only, no matching),
    efficiency = speedup / flop_speedup, merge_share, peak_mem_*_mib, tokens, r_per_layer (the tokens each layer
    removed) and r_scheduled (what the schedule asked: r is capped at half the mergeable tokens)."""
    model, x = prepare(config, load)
    return compare(model, x, config, step)
