"""VTMNet at the paper's LVU shapes: throughput and peak memory of `none` against every merging variant.

60 frames x 16 x 16 tokens x 1024 channels (ViT-L features), windows (6, 30, 60), gamma 6, R = 0.8 |S|, random
weights (seeded) and random features; inference. The paper's Table 5 reports 6.89x throughput and -84% memory for
learnable VTM against the same network without merging (GPUs, attention with explicit matmuls).

Eager attention materialises every (window tokens)^2 map of every head: `none`'s last block holds
heads x 15360^2 float32 = 3.8 GB per map with 4 heads, and softmax makes a second. A setting is measured only when
the estimate of those maps (EAGER_COPIES x the largest block's maps) fits in the memory free on the device;
otherwise its row says so instead.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vtome.vtm.measure import forward_memory_mib, interleaved_seconds, isolated_memory_mib, median
from vtome.vtm.net import VARIANTS, VTMConfig, VTMNet, flops, plan_tokens

EAGER_COPIES = 3  # scores, scaled scores, softmax: float32 maps alive at once in the eager attention


def lvu_config(variant: str) -> VTMConfig:
    return VTMConfig(frames=60, height=16, width=16, channels=1024, classes=10, variant=variant)


def eager_map_bytes(config: VTMConfig, batch: int) -> int:
    """Bytes of the float32 attention maps of the largest block, all windows and heads, EAGER_COPIES of them."""
    largest = max(batch * windows * config.heads(i) * n * n for i, (windows, n, _) in enumerate(plan_tokens(config)))
    return EAGER_COPIES * 4 * largest


def free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def build(config: VTMConfig, device: torch.device, attn_impl: str, seed: int = 0) -> VTMNet:
    torch.manual_seed(seed)
    net = VTMNet(config)
    if config.variant == "learnable":
        with torch.no_grad():
            for block in net.blocks:
                block.saliency.normal_(0, block.saliency.shape[0] ** -0.5)  # a trained-looking saliency
    net.attn_impl = attn_impl
    return net.to(device).eval()


def forward_call(config: VTMConfig, features: torch.Tensor, motion: torch.Tensor, attn_impl: str,
                 seed: int = 0) -> Callable[[], None]:
    """One inference pass of a seeded net of `config` on features (batch, frames, tokens, C), on their device;
    the net is the function's `net`."""
    net = build(config, features.device, attn_impl, seed)

    def run() -> None:
        with torch.inference_mode():
            net(features, motion)
    run.net = net
    return run


def bench_setting(batch: int, attn_impl: str, variants: list[str], device: torch.device, runs: int, warmup: int,
                  seed: int = 0, step: Callable[[str], None] | None = None,
                  make_config: Callable[[str], VTMConfig] = lvu_config) -> list[dict]:
    """One (batch, attention) setting: a row per variant (none first), ratios against none. make_config(variant):
    the network (the LVU shapes by default). Peak memory: on CPU each variant in a fresh process
    (vtome.vtm.measure); every variant is called once before the timing, and `warmup` adds untimed rounds."""
    names = ["none", *[v for v in variants if v != "none"]]
    configs = {name: make_config(name) for name in names}
    config = configs["none"]
    need, free = eager_map_bytes(config, batch), free_bytes(device)
    base = {"batch_size": batch, "attn_impl": attn_impl, "device": str(device)}
    if attn_impl == "eager" and need > 0.8 * free:  # a margin for everything else in memory
        return [{**base, "variant": name, "skipped": f"eager attention maps of 'none' need ~{need / 2**30:.1f} GiB, "
                 f"{free / 2**30:.1f} GiB free on {device}"} for name in names]
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, config.frames, config.tokens_per_frame, config.channels, generator=generator)
    motion = torch.rand(batch, config.frames, config.height, config.width, generator=generator)
    memory = {}
    for name in names:  # CPU: each in a fresh process, before this one holds any net
        if step:
            step(f"batch {batch}, {attn_impl}: memory of {name}")
        if device.type == "cpu":
            memory[name] = isolated_memory_mib(forward_call, configs[name], features, motion, attn_impl, seed)
        else:
            memory[name] = forward_memory_mib(forward_call(configs[name], features.to(device), motion.to(device),
                                                           attn_impl, seed), device)
    features, motion = features.to(device), motion.to(device)
    fns = {name: forward_call(configs[name], features, motion, attn_impl, seed) for name in names}
    if device.type == "cpu":  # the memory pass warmed up another process (on CUDA: these nets)
        for fn in fns.values():
            fn()
    timed = interleaved_seconds(fns, device, runs, warmup,
                                step and (lambda text: step(f"batch {batch}, {attn_impl}: {text}")))
    none_s, none_flops = median(timed["none"]), flops(config)
    rows = []
    for name in names:
        seconds = median(timed[name])
        memory_ratio = memory[name] / memory["none"]
        rows.append({
            **base, "variant": name, "seconds": seconds, "runs_s": timed[name], "clips_per_s": batch / seconds,
            "throughput_ratio": none_s / seconds, "peak_mib": memory[name], "memory_ratio": memory_ratio,
            "memory_reduction": 1 - memory_ratio, "gflops": flops(configs[name]) / 1e9,
            "flop_ratio": none_flops / flops(configs[name]), "tokens": fns[name].net.tokens,
        })
    return rows


def bench_lvu(batches: tuple[int, ...] = (1, 4), eager_batches: tuple[int, ...] = (1,), variants=VARIANTS,
              device: str = "cpu", runs: int = 2, warmup: int = 0, seed: int = 0,
              step: Callable[[str], None] | None = None) -> list[dict]:
    """Every setting: SDPA at each of `batches`, eager at each of `eager_batches`."""
    device = torch.device(device)
    settings = [(b, "sdpa") for b in batches] + [(b, "eager") for b in eager_batches]
    rows = []
    for batch, attn_impl in settings:
        rows += bench_setting(batch, attn_impl, list(variants), device, runs, warmup, seed, step)
    return rows
