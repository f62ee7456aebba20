"""`vtome demo`: the paper's Table 1 on the shipped offline testbed, then ViViT-B's speed at r=300.

    vtome demo                 # 400 test clips per set, table + plot + pictures in demo_out/, ViViT-B line
    vtome demo --quick         # a few clips and no ViViT-B: checks the whole code path in seconds
    vtome demo --partitions    # merge with each partition of Video Token Merging at the same token budget

Three tiny models trained on two synthetic video sets (see vtome.testbed) are evaluated unmerged and with every
reduction at 15% of the input tokens per layer (the paper's 10% over 12 layers merges 60% of the tokens in all;
15% over the testbed's 4 layers merges the same 60%); the accuracies and measured speedups print in the paper's
Table 1 layout, followed by whether the paper's findings hold here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from vtome.commands.checks import UserError, at_least, input_dir, output_dir, parse_r
from vtome.commands.modelspec import ModelSpec, resolve
from vtome.commands.output import JsonOut, check_json_out, emit
from vtome.models import random_input
from vtome.testbed.evaluate import R
from vtome.testbed.findings import Finding, check_findings
from vtome.testbed.table import COLUMNS, DATASET_COLUMNS, cell, table_rows, to_markdown

QUICK_CLIPS = 16


def _print_table(console: Console, rows: list[dict], clips: int, columns: list[str] = COLUMNS,
                 what: str = "reduction") -> None:
    table = Table(title=f"Testbed: top-1 (%) on {clips} test clips per set", box=box.SIMPLE_HEAD,
                  caption=f"bold: the best {what} of a model on a set. Speedup: measured forward time; "
                          "FLOPs: the ideal speedup of the token counts.")
    for column in columns:
        table.add_column(column, justify="left" if column in ("Model", "Reduction", "Partition") else "right",
                         no_wrap=True)
    previous = None
    for row in rows:
        values = [cell(row, c, bold=("[bold]", "[/bold]")) for c in columns]
        if row["Model"] == previous:
            values[0] = ""
        elif previous is not None:
            table.add_section()
        previous = row["Model"]
        table.add_row(*values)
    console.print(table)


def _print_findings(console: Console, findings: list[Finding], title: str = "The paper's findings") -> None:
    console.print(f"[bold]{title} on the testbed[/]")
    for f in findings:
        mark = "[green]holds[/]" if f.holds else "[red]does not hold[/]" if f.held == 0 else "[yellow]partly[/]"
        ties = f", {f.tied} tied" if f.tied else ""
        detail = f" ({f.detail})" if f.detail else ""
        console.print(f"  {f.claim}: {mark}, {f.held}/{f.total}{ties}{detail}")


def _big_model_line(spec: ModelSpec, r: int, runs: int) -> dict:
    """Unpatched and patched forward of one random clip, alternating after one warm-up pass of each."""
    from vtome.bench import time_pairs
    from vtome.flops import arch, flop_speedup, schedule_tokens

    torch.manual_seed(0)
    name = spec.name
    net = spec.load()
    x = random_input(net)
    kwargs = dict(r=r, schedule="constant", mode="merge", threshold=None, seed=0, attn_impl="sdpa")
    baseline, patched = time_pairs(net, x, kwargs, runs=runs, warmup=1, attn_impl="sdpa")
    tokens = schedule_tokens(arch(net), r, "constant")
    ideal = flop_speedup(net, tokens)
    base, merged = (min(wall for wall, _cpu in runs) for runs in (baseline, patched))
    return {"model": name, "shape": list(x.shape), "r": r, "tokens": tokens, "baseline_s": base, "patched_s": merged,
            "speedup": base / merged, "flop_speedup": ideal}


def _partitions_demo(console: Console, clips: int, r: float, batch_size: int, out: Path, checkpoints: Path | None,
                     started: float) -> dict:
    """The partitions table (vtome.testbed.partitions): printed, and written to OUT/partitions.md and .json."""
    from vtome.testbed import partitions as vtm

    with console.status("evaluating the testbed's partitions") as status:
        results = vtm.run_partitions(clips, r, batch_size, step=lambda text: status.update(f"evaluating {text}"),
                                     root=checkpoints)
    rows, findings = vtm.partition_rows(results), vtm.check_partition_findings(results)
    _print_table(console, rows, clips, vtm.COLUMNS, "partition")
    equal = vtm.same_budget(results)
    console.print(f"every partition at the alternate merge's tokens per layer (gamma {vtm.GAMMA} for VTM's): "
                  + ("[green]yes[/]" if equal else "[red]no[/]"))
    _print_findings(console, findings, "Video Token Merging's findings (LVU, Table 1)")
    out.mkdir(parents=True, exist_ok=True)
    (out / "partitions.md").write_text(to_markdown(rows, vtm.COLUMNS))
    seconds = time.perf_counter() - started
    summary = {"clips": clips, "r": r, "gamma": vtm.GAMMA, "same_budget": equal, "results": results, "rows": rows,
               "findings": [{**f.__dict__, "holds": f.holds} for f in findings], "seconds": seconds}
    (out / "partitions.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    console.print(f"wrote {out / 'partitions.md'} and {out / 'partitions.json'}")
    console.print(f"demo --partitions took {seconds:.0f} s")
    return summary


def demo(
    clips: Annotated[int, typer.Option(help="Test clips per dataset (each clip is 100/clips % of accuracy).")] = 400,
    quick: Annotated[bool, typer.Option("--quick", help=f"{QUICK_CLIPS} clips per set, no ViViT-B line: a "
                                                         "fast check of the whole code path.")] = False,
    out: Annotated[Path, typer.Option(help="Directory for the table, plot, pictures and results.json.")]
    = Path("demo_out"),
    r: Annotated[float, typer.Option(help="Tokens reduced per layer on the testbed, a fraction of the input "
                                          "tokens (per frame for TimeSformer and Motionformer).")] = R,
    batch_size: Annotated[int, typer.Option(help="Clips per forward pass.")] = 50,
    speed_model: Annotated[str, typer.Option(help="Model of the closing speed line (preset, local dir, HF id); "
                                                  "'none' to skip it.")] = "vivit-b",
    speed_r: Annotated[int, typer.Option(help="r of the closing speed line (tokens per layer).")] = 300,
    speed_runs: Annotated[int, typer.Option(help="Timed forward pairs of the closing speed line.")] = 1,
    threads: Annotated[int, typer.Option(help="CPU threads for the testbed's tiny models (one is fastest: they gain "
                                              "little from more, and lose much when the CPU is busy).")] = 1,
    checkpoints: Annotated[Path | None, typer.Option(help="A directory of <model>-<dataset> checkpoints to use "
                                                          "instead of the shipped ones.")] = None,
    partitions: Annotated[bool, typer.Option("--partitions", help="Instead of Table 1: merge with each partition of "
                                                                  "Video Token Merging (alternate, stride, center, "
                                                                  "boundary, motion) at the same token budget.")
                          ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON on stdout instead of the table."
                                          )] = False,
    json_out: JsonOut = None,
) -> None:
    """Show token merging at work on the offline testbed: accuracy and speedup of merge against drop, random
    drop, random merge and hybrid (paper Table 1), plots and pictures in OUT, and ViViT-B's speedup at r=300."""
    from transformers.utils import logging as hf_logging

    from vtome.testbed.clips import DATASETS
    from vtome.testbed.models import checkpoint_dir
    from vtome.testbed.plot import plot_accuracy_speedup
    from vtome.testbed.run import run_testbed, write_pictures
    from vtome.testbed.table import MODEL_ORDER

    for option, value, low in (("--clips", clips, 1), ("--batch-size", batch_size, 1), ("--speed-r", speed_r, 0),
                               ("--speed-runs", speed_runs, 1), ("--threads", threads, 1)):
        at_least(option, value, low)
    r = parse_r(r)
    output_dir("--out", out)
    check_json_out(json_out)
    input_dir("--checkpoints", checkpoints)
    wanted = [checkpoint_dir(m, d, checkpoints) for d in DATASETS for m in MODEL_ORDER]
    missing = [path for path in wanted if not (path / "model.safetensors").is_file()]
    if missing:
        raise UserError(f"--checkpoints {checkpoints}: no trained checkpoint for {len(missing)} of the {len(wanted)} "
                        f"testbed models (e.g. {missing[0]}): run scripts/train_testbed.py")
    speed = None if quick or speed_model == "none" or partitions else resolve(speed_model)

    started = time.perf_counter()
    console = Console(quiet=as_json)
    if not console.is_terminal:  # a log or a pipe: whole table cells, not rich's 80 columns
        console.width = max(console.width, 120)
    clips = QUICK_CLIPS if quick else clips
    hf_logging.disable_progress_bar()  # six "Loading weights" bars would hide the status line
    torch.manual_seed(0)
    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    if partitions:
        summary = _partitions_demo(console, clips, r, batch_size, out, checkpoints, started)
        torch.set_num_threads(default_threads)
        emit(summary, as_json, json_out, console)
        return
    with console.status("evaluating the testbed") as status:
        results = run_testbed(clips, r, batch_size, step=lambda text: status.update(f"evaluating {text}"),
                              root=checkpoints)
        rows = table_rows(results)
        findings = check_findings(results)
        out.mkdir(parents=True, exist_ok=True)
        status.update("writing the plot and the merged-token pictures")
        written = [plot_accuracy_speedup(results, out / "accuracy_vs_speedup.png"),
                   *write_pictures(out, r, root=checkpoints)]
        (out / "table1.md").write_text(to_markdown(rows))
        written.append(out / "table1.md")
    _print_table(console, rows, clips)
    _print_findings(console, findings)
    for path in written:
        console.print(f"wrote {path}")

    torch.set_num_threads(default_threads)  # the big model's matmuls do use every core
    big = None
    if speed is not None:
        with console.status(f"{speed_model} (random weights): unpatched and r={speed_r} forward passes"):
            big = _big_model_line(speed, speed_r, speed_runs)
        console.print(f"[bold]{speed_model}[/] (random weights) input {tuple(big['shape'])}, merge r={speed_r} "
                      f"constant: tokens {' -> '.join(map(str, big['tokens']))}")
        console.print(f"unpatched {big['baseline_s']:.2f} s, patched {big['patched_s']:.2f} s: "
                      f"[bold green]{big['speedup']:.2f}x[/] (FLOPs {big['flop_speedup']:.2f}x)")
    seconds = time.perf_counter() - started
    summary = {"clips": clips, "r": r, "results": results, "rows": rows,
               "findings": [{**f.__dict__, "holds": f.holds} for f in findings],
               "speed_line": big, "seconds": seconds, "columns": list(DATASET_COLUMNS.values())}
    (out / "results.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    console.print(f"demo took {seconds:.0f} s")
    emit(summary, as_json, json_out, console)
