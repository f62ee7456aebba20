"""`vtome bench`: unpatched vs patched speed of one model (A B alternating), with FLOPs and merge cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vtome.bench import ATTN_IMPLS, DTYPES, BenchConfig, bench


def as_r(value: float) -> int | float:
    """A command-line r: a value below 1 is a fraction of the tokens (0.1), anything else a count (300)."""
    return value if 0 < value < 1 else int(value)


def result_table(result: dict) -> Table:
    """Rich table of a bench result: one column per variant, then the ratios."""
    table = Table(title=f"{result['model']}  r={result['r']} {result['schedule']} {result['mode']}  "
                        f"batch {result['batch_size']}, {result['attn_impl']}, {result['dtype']}, "
                        f"{result['device']} x{result['threads_used']} threads")
    for name in ("", "unpatched", "patched", "patched / unpatched"):
        table.add_column(name, justify="right" if name else "left")
    rows = [
        ("latency (s, median)", "baseline_s", "patched_s", "{:.3f}"),
        ("clips/s", "baseline_clips_per_s", "patched_clips_per_s", "{:.3f}"),
        ("frames/s", "baseline_frames_per_s", "patched_frames_per_s", "{:.2f}"),
        ("GFLOPs per clip", "gflops_baseline", "gflops_patched", "{:.1f}"),
        ("peak memory (MiB)", "peak_mem_baseline_mib", "peak_mem_patched_mib", "{:.0f}"),
    ]
    for label, a, b, fmt in rows:
        table.add_row(label, fmt.format(result[a]), fmt.format(result[b]), f"{result[b] / result[a]:.3f}")
    table.add_section()
    table.add_row("speedup (median of pairs)", "", "", f"[bold green]{result['speedup']:.2f}x")
    table.add_row("speedup in CPU time", "", "", f"{result['cpu_speedup']:.2f}x")
    table.add_row("FLOP-ideal speedup", "", "", f"{result['flop_speedup']:.2f}x")
    table.add_row("efficiency (speedup / ideal)", "", "", f"{result['efficiency']:.2f}")
    table.add_row("matching + merging share", "", "", f"{100 * result['merge_share']:.1f}%")
    table.add_row("tokens per layer", "", " ".join(map(str, result["tokens"])), "")
    if result.get("compile"):
        table.add_section()
        first_a, first_b = result["compile_s_baseline"], result["compile_s_patched"]
        table.add_row("first call, compiling (s)", f"{first_a:.1f}", f"{first_b:.1f}", f"{first_b / first_a:.2f}")
        table.add_row("patched eager / compiled", "", f"{result['patched_eager_s']:.3f}",
                      f"{result['patched_eager_s'] / result['patched_s']:.2f}x")
    return table


def bench_command(
    model: Annotated[str, typer.Option(help="Preset (vivit-b, videomae-b, timesformer-b, vit-b, *-tiny), local "
                                            "directory or HF id.")] = "vivit-b",
    r: Annotated[float, typer.Option(help="Tokens merged per layer (per frame for TimeSformer); below 1: a "
                                          "fraction of the initial tokens.")] = 300,
    schedule: Annotated[str, typer.Option(help="constant | decreasing | increasing")] = "constant",
    mode: Annotated[str, typer.Option(help="merge | drop | random_drop | random_merge | hybrid")] = "merge",
    threshold: Annotated[float | None, typer.Option(help="Similarity threshold of mode=hybrid.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Clips per forward pass.")] = 1,
    runs: Annotated[int, typer.Option(help="Timed pairs (unpatched, patched).")] = 5,
    warmup: Annotated[int, typer.Option(help="Untimed passes of each variant first.")] = 1,
    probe_runs: Annotated[int, typer.Option(help="Separate instrumented passes for the merge share.")] = 1,
    threads: Annotated[int | None, typer.Option(help="torch.set_num_threads (default: torch's choice).")] = None,
    dtype: Annotated[str, typer.Option(help=" | ".join(DTYPES))] = "float32",
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:1 ...")] = "cpu",
    attn_impl: Annotated[str, typer.Option(help=f"{' | '.join(ATTN_IMPLS)}, for both variants.")] = "sdpa",
    seed: Annotated[int, typer.Option(help="Seed of the random input and of random modes.")] = 0,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile both variants; report compile "
                                                            "times and the patched eager time too.")] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the full result as JSON here.")] = None,
) -> None:
    """Time the model unpatched and patched (alternating, after warm-up) and compare with the FLOP-ideal."""
    console = Console()
    config = BenchConfig(
        model=model, r=as_r(r), schedule=schedule, mode=mode, threshold=threshold, batch_size=batch_size,
        runs=runs, warmup=warmup, probe_runs=probe_runs, threads=threads, dtype=dtype, device=device,
        attn_impl=attn_impl, seed=seed, compile=compile,
    )
    try:
        with console.status(f"building {model}") as status:
            result = bench(config, step=lambda text: status.update(f"{model}: {text}"))
    except (ValueError, TypeError) as err:
        raise typer.BadParameter(str(err)) from err
    console.print(result_table(result))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {json_path}")
