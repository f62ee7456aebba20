"""Speed of Video Token Merging's partitions against ToMe's alternate split at the same tokens per layer: ViViT-B
r=300 and VideoMAE-B r=150 constant (the paper's settings), random weights, CPU, SDPA, batch 1.

    .venv/bin/python benchmarks/partitions.py                      # ~4 min on 2 quiet cores
    .venv/bin/python benchmarks/partitions.py --models videomae-b --runs 5 --update-docs
    .venv/bin/python benchmarks/partitions.py --render-only --update-docs   # every saved result, run by run

Per model, in one process: after a warm-up pass of each variant, `--runs` rounds time the unpatched model and the
model patched with each partition in turn (A B C D, A B C D, ...). The alternate merge's realised r per layer is
the list schedule of the other partitions (gamma 6), so every variant has the same tokens in every layer (checked).
Speedups are medians of the per-round ratios, to the unpatched pass of the same round and to the alternate pass;
efficiency = speedup / FLOP-ideal speedup (vtome.flops, with each partition's matching: n_S x n_T keys); the merge
share comes from a separate instrumented pass (vtome.bench.probe). Each result is appended to
results/partitions.jsonl; the markdown table is printed, and written between the partitions markers of
docs/BENCHMARKS.md with --update-docs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = {"vivit-b": 300, "videomae-b": 150}
NAMES = {"vivit-b": "ViViT-B", "videomae-b": "VideoMAE-B"}
START, END = "<!-- partitions:start -->", "<!-- partitions:end -->"


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """The median over the rounds of a's time / b's time."""
    return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))


def measure(name: str, r: int, partitions: list[str], gamma: int, runs: int, warmup: int,
            threads: int | None = None) -> list[dict]:
    """One model: the unpatched pass and every partition, interleaved; one result dict per partition."""
    import torch

    import vtome
    from vtome.bench import BenchConfig, baseline_attention, patch_kwargs, patch_with, prepare, probe, time_call
    from vtome.flops import SplitRule, arch, model_flops, schedule_tokens, unmerged_tokens

    config = BenchConfig(model=name, r=r, runs=runs, warmup=warmup, threads=threads)
    model, x = prepare(config)
    a = arch(model)
    tokens = schedule_tokens(a, r, "constant")
    per_layer = [before - after for before, after in zip(tokens, tokens[1:], strict=False)]
    variants = {"alternate": patch_kwargs(config)}
    for partition in partitions:
        variants[partition] = {**patch_kwargs(config), "schedule": per_layer, "partition": partition, "gamma": gamma}

    def forward() -> None:
        with torch.inference_mode():
            model(x)

    def unpatched() -> None:
        with baseline_attention(model, "sdpa"):
            forward()

    def patched(kwargs: dict):
        def run() -> None:
            patch_with(model, kwargs)
            try:
                forward()
            finally:
                vtome.unpatch(model)
        return run

    calls = {"unpatched": unpatched, **{k: patched(v) for k, v in variants.items()}}
    seconds: dict[str, list[float]] = {k: [] for k in calls}
    cpu: dict[str, list[float]] = {k: [] for k in calls}
    for round_ in range(warmup + runs):
        for variant, call in calls.items():
            print(f"  {name} {'warm-up' if round_ < warmup else f'round {round_ - warmup + 1}/{runs}'}: {variant}",
                  file=sys.stderr)
            wall, spent = time_call(call, x.device)
            if round_ >= warmup:
                seconds[variant].append(wall)
                cpu[variant].append(spent)
    base_flops = model_flops(model, unmerged_tokens(a)).total
    results = []
    for variant, kwargs in variants.items():
        probed = probe(model, x, kwargs, 1, "sdpa")
        rule = SplitRule(variant, gamma if variant != "alternate" else 2)
        flops = model_flops(model, probed["tokens"], rule)
        ideal = base_flops / flops.total
        speedup = ratio(seconds, "unpatched", variant)
        results.append({
            "model": name, "r": r, "partition": variant, "gamma": rule.gamma, "tokens": probed["tokens"],
            "same_tokens": probed["tokens"] == tokens, "baseline_s": statistics.median(seconds["unpatched"]),
            "patched_s": statistics.median(seconds[variant]), "runs_s": seconds[variant],
            "baseline_runs_s": seconds["unpatched"], "speedup": speedup,
            "vs_alternate": ratio(seconds, "alternate", variant), "cpu_speedup": ratio(cpu, "unpatched", variant),
            "cpu_vs_alternate": ratio(cpu, "alternate", variant),
            "flop_speedup": ideal, "efficiency": speedup / ideal, "matching_gflops": flops.matching / 1e9,
            "gflops_patched": flops.total / 1e9, "gflops_baseline": base_flops / 1e9,
            "merge_share": probed["merge_share"], "runs": runs, "warmup": warmup, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "date": datetime.date.today().isoformat(),
        })
    return results


def render(results: list[dict]) -> str:
    """The markdown table; "run" counts the measurements of the same (model, partition) in `results`."""
    lines = [
        "| model | r (alternate) | run | partition | gamma | tokens out | same tokens | matching GFLOPs | "
        "GFLOPs/clip | FLOP-ideal | **speedup** wall / CPU | vs alternate wall / CPU | efficiency | merge share | "
        "latency s A / B |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    seen: dict[tuple, int] = {}
    for res in sorted(results, key=lambda res: list(SETTINGS).index(res["model"])):  # stable: runs in order
        run = seen[(res["model"], res["partition"])] = seen.get((res["model"], res["partition"]), 0) + 1
        lines.append(
            f"| {NAMES.get(res['model'], res['model'])} | {res['r']} | {run} | {res['partition']} | {res['gamma']} "
            f"| {res['tokens'][-1]} | {'yes' if res['same_tokens'] else '**no**'} | {res['matching_gflops']:.2f} "
            f"| {res['gflops_baseline']:.0f} -> {res['gflops_patched']:.0f} | {res['flop_speedup']:.2f} "
            f"| **{res['speedup']:.2f}** / {res['cpu_speedup']:.2f} "
            f"| {res['vs_alternate']:.3f} / {res['cpu_vs_alternate']:.3f} | {res['efficiency']:.2f} "
            f"| {100 * res['merge_share']:.1f}% | {res['baseline_s']:.2f} / {res['patched_s']:.2f} |")
    first = results[0]
    note = (f"\nMeasured {first['date']} on {first['machine']}, torch {first['torch']}, {first['threads']} thread(s), "
            f"float32, SDPA, batch 1, random weights; {first['runs']} timed rounds after {first['warmup']} warm-up "
            "pass(es) per variant, all variants of a model interleaved in one process; medians of the per-round "
            "ratios.\n")
    return note + "\n" + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--partitions", nargs="+", default=["stride", "center"])
    parser.add_argument("--gamma", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--update-docs", action="store_true")
    parser.add_argument("--render-only", action="store_true", help="the table of every result saved so far")
    args = parser.parse_args()
    path = HERE / "results" / "partitions.jsonl"
    results = []
    if args.render_only:
        results = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        args.models = []
    for name in args.models:
        found = measure(name, SETTINGS[name], args.partitions, args.gamma, args.runs, args.warmup, args.threads)
        with path.open("a") as handle:
            for res in found:
                handle.write(json.dumps(res) + "\n")
        results += found
    table = render(results)
    print(table)
    if args.update_docs:
        docs = HERE.parent / "docs" / "BENCHMARKS.md"
        text = docs.read_text()
        begin, end = text.index(START) + len(START), text.index(END)
        docs.write_text(text[:begin] + "\n" + table + text[end:])


if __name__ == "__main__":
    main()
