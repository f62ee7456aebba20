"""Regenerate the speedup table of docs/BENCHMARKS.md: the paper's settings, measured A/B on this machine.

    .venv/bin/python benchmarks/paper_table.py                      # everything (~1 h 45 min on 2 quiet cores)
    .venv/bin/python benchmarks/paper_table.py --resume             # continue an interrupted run
    .venv/bin/python benchmarks/paper_table.py --render-only        # markdown again from the saved results
    .venv/bin/python benchmarks/paper_table.py --models videomae-b --batch-sizes 1 --attn sdpa   # a part
    .venv/bin/python benchmarks/paper_table.py --compile --attn sdpa  # torch.compile'd A and B, compile times
    .venv/bin/python benchmarks/paper_table.py --compile --dynamic --attn sdpa   # torch.compile(dynamic=True)
    .venv/bin/python benchmarks/paper_table.py --device cuda --dtype bfloat16 --compile   # on a GPU

Cells: ViViT-B r=300, VideoMAE-B r=150, TimeSformer-B and Motionformer-B r=18 per frame; constant / decreasing /
increasing; each
batch size; attention through SDPA (vtome's default) and explicit matmul + softmax (the paper's code), both the
unpatched baseline and the patched model computing it the same way; plus the r=0 overhead check. Every result is
appended to results/paper_table.jsonl as it is measured (paper_table_compiled.jsonl with --compile, and a
_<device>_<dtype> suffix off the CPU float32 default); the markdown goes to results/paper_table.md and, with
--update-docs, between the paper_table markers of docs/BENCHMARKS.md (paper_table_compiled, paper_table_<device>...).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = {"vivit-b": 300, "videomae-b": 150, "timesformer-b": 18, "motionformer-b": 18}
DIVIDED = ("timesformer-b", "motionformer-b")  # r per frame (Motionformer: per token slot of 2 frames)
SCHEDULES = ("constant", "decreasing", "increasing")
# Paper Table 1 (constant), supp. Table 2 (decreasing) and Table 3 (increasing), merge rows.
PAPER = {
    "vivit-b": {"constant": 2.46, "decreasing": 4.14, "increasing": 1.55},
    "videomae-b": {"constant": 2.55, "decreasing": 3.98, "increasing": 1.67},
    "timesformer-b": {"constant": 2.04, "decreasing": 3.06, "increasing": 1.39},
    "motionformer-b": {"constant": 2.19, "decreasing": 3.35, "increasing": 1.42},
}
NAMES = {"vivit-b": "ViViT-B", "videomae-b": "VideoMAE-B", "timesformer-b": "TimeSformer-B",
         "motionformer-b": "Motionformer-B"}
START, END = "<!-- paper_table:start -->", "<!-- paper_table:end -->"


def key(res: dict) -> tuple:
    return res["model"], res["r"], res["schedule"], res["batch_size"], res["attn_impl"]


def variant(args: argparse.Namespace) -> str:
    """The name of a run's results: paper_table[_compiled[_dynamic][_cpp_wrapper]][_<device>_<dtype>]."""
    name = "paper_table" + ("_compiled" if args.compile else "") + ("_dynamic" if args.dynamic else "")
    name += "_cpp_wrapper" if args.cpp_wrapper else ""
    if args.device != "cpu" or args.dtype != "float32":
        name += f"_{args.device.split(':')[0]}_{args.dtype}"
    return name


def load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def measure(args: argparse.Namespace, path: Path) -> None:
    from vtome.bench import BenchConfig, compare, prepare

    done = {key(res) for res in load(path)} if args.resume else set()
    if not args.resume and path.exists():
        path.unlink()
    cells = [(m, b, a) for a in args.attn for b in args.batch_sizes for m in args.models]
    for model_name, batch, attn in cells:
        r = SETTINGS[model_name]
        todo = [(s, r) for s in args.schedules] + ([("constant", 0)] if args.overhead else [])
        todo = [(s, rr) for s, rr in todo if (model_name, rr, s, batch, attn) not in done]
        if not todo:
            continue
        config = BenchConfig(model=model_name, batch_size=batch, runs=args.runs, warmup=args.warmup,
                             threads=args.threads, attn_impl=attn, compile=args.compile, dynamic=args.dynamic,
                             cpp_wrapper=args.cpp_wrapper,
                             device=args.device, dtype=args.dtype)
        model, x = prepare(config)
        for schedule, rr in todo:
            config.schedule, config.r = schedule, rr
            start = time.time()
            res = {"model": model_name, **compare(model, x, config)}
            res["wall_s"] = time.time() - start
            with path.open("a") as handle:
                handle.write(json.dumps(res) + "\n")
            compiled = (f", compile {res['compile_s_baseline']:.0f} / {res['compile_s_patched']:.0f} s, eager B "
                        f"{res['patched_eager_s']:.2f} s" if args.compile else "")
            print(f"{model_name:14s} r={rr:<3} {schedule:10s} b={batch} {attn:5s}: speedup {res['speedup']:.2f} "
                  f"(FLOP-ideal {res['flop_speedup']:.2f}), merge {100 * res['merge_share']:.1f}%{compiled}, "
                  f"{res['wall_s']:.0f} s", flush=True)
        del model, x
        gc.collect()


def flop_table() -> str:
    """The FLOP-ideal speedups of the paper's settings (machine-independent: token counts and analytic FLOPs)."""
    import torch

    from vtome.flops import arch, flop_speedup, model_flops, schedule_tokens, unmerged_tokens
    from vtome.models import load_model

    out = ["| model | r | schedule | tokens per layer (per frame for the divided models) | GFLOPs/clip "
           "| FLOP-ideal pass | FLOP-ideal layers | paper |", "|---|---|---|---|---|---|---|---|"]
    for name, r in SETTINGS.items():
        with torch.device("meta"):
            model = load_model(name)
        a = arch(model)
        base = model_flops(model, unmerged_tokens(a)).gflops
        for schedule in SCHEDULES:
            tokens = schedule_tokens(a, r, schedule)
            out.append(f"| {NAMES[name]} | {r} | {schedule} | {' '.join(map(str, tokens))} "
                       f"| {base:.0f} -> {model_flops(model, tokens).gflops:.0f} | {flop_speedup(model, tokens):.2f} "
                       f"| {flop_speedup(model, tokens, layers_only=True):.2f} | {PAPER[name][schedule]:.2f} |")
    return "\n".join(out) + "\n"


def _yes(value: float, target: float) -> str:
    return "yes" if value >= target else "**no**"


def render(results: list[dict]) -> str:
    """Markdown tables: the paper cells per attention implementation, then the r = 0 overhead.

    Speedups are given twice: wall clock (what a user sees; on a quiet machine the number that counts) and CPU
    time of the process (all threads; on a machine shared with other jobs far less disturbed by them).
    """
    by_key = {key(res): res for res in results}
    out = []
    def values(name: str) -> str:
        return "/".join(map(str, sorted({res[name] for res in results}))) or "?"

    out.append(f"Measured {values('date')} on {values('machine')}, torch {values('torch')}, {values('threads_used')} "
               f"thread(s), {values('dtype')}, {values('runs')} timed A/B pairs after {values('warmup')} warm-up "
               "pass(es) per cell; speedup = median of the per-pair ratios. A = unpatched, B = patched.\n")
    if any(res.get("compile") for res in results):
        return "\n".join(out) + render_compiled(results)
    for attn in ("sdpa", "eager"):
        rows = [res for res in results if res["attn_impl"] == attn and res["r"] != 0]
        if not rows:
            continue
        title = "SDPA attention (vtome's default; the baseline also SDPA)" if attn == "sdpa" else \
            "Explicit matmul + softmax (`attn_impl=\"eager\"`, as the paper's code; the baseline also eager)"
        out.append(f"\n#### {title}\n")
        head = ("| model | r | schedule | batch | tokens out | GFLOPs/clip A -> B | FLOP-ideal pass / layers | paper "
                "| **speedup wall** | speedup CPU | efficiency wall / CPU | >= 0.9 ideal wall / CPU | >= paper "
                "wall / CPU | merge share | latency s A / B | frames/s A / B |")
        if attn == "eager":
            head += " B: eager / SDPA time |"
        out.append(head)
        out.append("|" + "---|" * (head.count("|") - 1))
        for res in sorted(rows, key=lambda r: (list(SETTINGS).index(r["model"]), r["batch_size"],
                                               SCHEDULES.index(r["schedule"]))):
            paper = PAPER[res["model"]][res["schedule"]]
            ideal, wall, cpu = res["flop_speedup"], res["speedup"], res["cpu_speedup"]
            frames = res.get("merged_frames", res["frames_per_clip"])
            r_text = f"{res['r']}x{frames}" if res["model"] in DIVIDED else str(res["r"])
            reach = "n/a (paper > ideal)" if paper > ideal else f"{_yes(wall, paper)} / {_yes(cpu, paper)}"
            line = (f"| {NAMES[res['model']]} | {r_text} | {res['schedule']} | {res['batch_size']} "
                    f"| {res['tokens'][-1]} | {res['gflops_baseline']:.0f} -> {res['gflops_patched']:.0f} "
                    f"| {ideal:.2f} / {res['flop_speedup_layers']:.2f} | {paper:.2f} | **{wall:.2f}** | {cpu:.2f} "
                    f"| {wall / ideal:.2f} / {cpu / ideal:.2f} | {_yes(wall, 0.9 * ideal)} / {_yes(cpu, 0.9 * ideal)} "
                    f"| {reach} | {100 * res['merge_share']:.1f}% "
                    f"| {res['baseline_s']:.2f} / {res['patched_s']:.2f} "
                    f"| {res['baseline_frames_per_s']:.2f} / {res['patched_frames_per_s']:.2f} |")
            if attn == "eager":
                sdpa = by_key.get((res["model"], res["r"], res["schedule"], res["batch_size"], "sdpa"))
                line += f" {res['patched_s'] / sdpa['patched_s']:.2f}x |" if sdpa else " |"
            out.append(line)
    zero = [res for res in results if res["r"] == 0]
    if zero:
        out.append("\n#### Patched with r = 0 against unpatched (target: within 2%)\n")
        out.append("| model | batch | attention | latency s A / B | B / A wall | CPU s A / B | B / A CPU | within 2% "
                   "wall / CPU |")
        out.append("|---|---|---|---|---|---|---|---|")
        for res in sorted(zero, key=lambda r: (r["attn_impl"] != "sdpa", r["batch_size"],
                                               list(SETTINGS).index(r["model"]))):
            wall, cpu = 1 / res["speedup"], 1 / res["cpu_speedup"]
            ok = " / ".join("yes" if v <= 1.02 else "**no**" for v in (wall, cpu))
            out.append(f"| {NAMES[res['model']]} | {res['batch_size']} | {res['attn_impl']} "
                       f"| {res['baseline_s']:.2f} / {res['patched_s']:.2f} | {wall:.3f} "
                       f"| {res['baseline_cpu_s']:.2f} / {res['patched_cpu_s']:.2f} | {cpu:.3f} | {ok} |")
    return "\n".join(out) + "\n"


def render_compiled(results: list[dict]) -> str:
    """The torch.compile table: both variants compiled; the first (compiling) call of each; B eager against B
    compiled (a compiled model must not be slower)."""
    head = ("| model | r | schedule | batch | attention | FLOP-ideal | **speedup wall** | speedup CPU "
            "| >= 0.9 ideal wall / CPU | compiled B vs eager B | latency s A / B (compiled) | B eager s "
            "| first call s A / B | B / A compile |")
    out = ["\n#### torch.compile: compiled unpatched (A) against compiled patched (B)\n", head,
           "|" + "---|" * (head.count("|") - 1)]
    for res in sorted(results, key=lambda r: (r["attn_impl"], list(SETTINGS).index(r["model"]), r["batch_size"],
                                              r["r"] != 0, SCHEDULES.index(r["schedule"]))):
        ideal, wall = res["flop_speedup"], res["speedup"]
        frames = res.get("merged_frames", res["frames_per_clip"])
        r_text = f"{res['r']}x{frames}" if res["model"] in DIVIDED else str(res["r"])
        cpu = res["cpu_speedup"]
        reach = f"{_yes(wall, 0.9 * ideal)} / {_yes(cpu, 0.9 * ideal)}" if res["r"] else "n/a"
        # Results before 2026-11-28 timed eager B after the compiled pairs, not alternated with compiled B.
        faster = res.get("eager_over_compiled", res["patched_eager_s"] / res["patched_s"])
        out.append(f"| {NAMES[res['model']]} | {r_text} | {res['schedule']} | {res['batch_size']} | {res['attn_impl']} "
                   f"| {ideal:.2f} | **{wall:.2f}** | {cpu:.2f} | {reach} "
                   f"| {faster:.2f}x {'' if faster >= 1 else '**slower**'} "
                   f"| {res['baseline_s']:.2f} / {res['patched_s']:.2f} | {res['patched_eager_s']:.2f} "
                   f"| {res['compile_s_baseline']:.0f} / {res['compile_s_patched']:.0f} "
                   f"| {res['compile_s_patched'] / res['compile_s_baseline']:.2f} |")
    return "\n".join(out) + "\n"


def update_docs(doc: Path, table: str, name: str = "paper_table") -> None:
    start, end = START.replace("paper_table", name), END.replace("paper_table", name)
    text = doc.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{doc} has no {start} ... {end} section to replace")
    head, rest = text.split(start, 1)
    doc.write_text(head + start + "\n" + table + end + rest.split(end, 1)[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--attn", nargs="+", default=["sdpa", "eager"], choices=["sdpa", "eager"])
    parser.add_argument("--schedules", nargs="+", default=list(SCHEDULES), choices=SCHEDULES)
    parser.add_argument("--runs", type=int, default=3, help="timed A/B pairs per cell")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="torch.compile both variants (vtome bench --compile)")
    parser.add_argument("--dynamic", action="store_true", help="with --compile: torch.compile(dynamic=True)")
    parser.add_argument("--cpp-wrapper", action="store_true",
                        help="with --compile: inductor's cpp_wrapper (all of a graph's kernels built as one C++ unit)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--no-overhead", dest="overhead", action="store_false", help="skip the r=0 cells")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    parser.add_argument("--resume", action="store_true", help="keep the results already saved, measure the rest")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--update-docs", type=Path, nargs="?", const=HERE.parent / "docs" / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    for option in ("dynamic", "cpp_wrapper"):
        if getattr(args, option) and not args.compile:
            parser.error(f"--{option.replace('_', '-')} applies only with --compile")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    name = variant(args)
    path = args.out_dir / f"{name}.jsonl"
    start = time.time()
    if not args.render_only:
        measure(args, path)
    table = "#### Measured\n\n" + render(load(path))
    if name == "paper_table":
        table = ("#### FLOP-ideal speedups of the paper's settings (analytic, 2 FLOPs per multiply-add)\n\n"
                 + flop_table() + "\n" + table)
    (args.out_dir / f"{name}.md").write_text(table)
    if args.update_docs:
        update_docs(args.update_docs, table, name)
    print(table)
    print(f"total {time.time() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
