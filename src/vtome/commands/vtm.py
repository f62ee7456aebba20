"""`vtome vtm`: learnable Video Token Merging (Lee et al., NeurIPS 2024) and its long-video network.

    vtome vtm train --variant learnable --out vtm_out/     # train VTMNet on the long-video testbed, evaluate it
    vtome vtm table --out vtm_out/                         # every variant: accuracy, clips/s, memory; a plot
    vtome vtm table --shipped                              # the same with the shipped trained nets (no training)
    vtome vtm bench --json-out lvu.json                    # none vs each variant at the paper's LVU shapes
    vtome vtm bench --quick                                # batch 1, SDPA, one timed pass each (< 3 min, 2 cores)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vtome.commands.checks import UserError, at_least, input_dir, int_list, one_of, output_dir, resolve_device
from vtome.commands.output import Json, JsonOut, check_json_out, console, emit

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Learnable Video Token Merging (Lee et al.): train VTMNet, its Table 1, LVU-shape speed.")

VARIANT_HELP = "none | naive | boundary | center | motion | learnable"
Threads = Annotated[int, typer.Option(help="CPU threads (torch.set_num_threads; one is fastest for this small "
                                            "network, and loses least when the CPU is busy).")]
# The training options `train` and `table` share.
Steps = Annotated[int, typer.Option(help="Training steps (per variant).")]
BatchSize = Annotated[int, typer.Option(help="Clips per training step.")]
Lr = Annotated[float, typer.Option(help="Peak learning rate (AdamW, one-cycle).")]
TrainClips = Annotated[int, typer.Option(help="Training clips generated.")]
TestClips = Annotated[int, typer.Option(help="Test clips evaluated.")]
Seed = Annotated[int, typer.Option(help="Seed of the initialisation and of the batches.")]


def _variants(text: str) -> tuple[str, ...]:
    from vtome.vtm.net import VARIANTS

    names = tuple(v.strip() for v in text.split(",") if v.strip())
    if not names:
        raise UserError(f"--variants {text!r}: give one or more of {', '.join(VARIANTS)}, comma separated")
    for name in names:
        one_of("--variants", name, VARIANTS)
    return names


def _fit_config(steps: int, batch_size: int, lr: float, seed: int):
    from vtome.vtm.fit import FitConfig

    for option, value, low in (("--steps", steps, 1), ("--batch-size", batch_size, 1)):
        at_least(option, value, low)
    if not lr > 0:
        raise UserError(f"--lr {lr:g}: must be > 0")
    return FitConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed)


@app.command("train")
def train_command(
    variant: Annotated[str, typer.Option(help=VARIANT_HELP)],
    steps: Steps = 400,
    batch_size: BatchSize = 16,
    lr: Lr = 2e-3,
    train_clips: TrainClips = 1000,
    test_clips: TestClips = 400,
    seed: Seed = 0,
    out: Annotated[Path, typer.Option(help="Directory for <variant>.safetensors and its .json.")] = Path("vtm_out"),
    threads: Threads = 1,
    as_json: Json = False,
    json_out: JsonOut = None,
) -> None:
    """Train VTMNet of one variant on the long-video testbed (seeded) and report its test accuracy."""
    import torch

    from vtome.vtm.fit import LongData, evaluate, save_net, timed_fit
    from vtome.vtm.net import VARIANTS

    one_of("--variant", variant, VARIANTS)
    config = _fit_config(steps, batch_size, lr, seed)
    for option, value in (("--train-clips", train_clips), ("--test-clips", test_clips), ("--threads", threads)):
        at_least(option, value, 1)
    output_dir("--out", out)
    check_json_out(json_out)
    torch.set_num_threads(threads)
    text = console(as_json)
    with text.status("making the clips") as status:
        train, test = LongData.make("train", train_clips), LongData.make("test", test_clips)
        net, trained = timed_fit(variant, train, config, lambda i, loss: status.update(
            f"training {variant}: step {i}/{steps}, loss {loss:.3f}"))
        status.update("evaluating")
        result = {"variant": variant, **evaluate(net, test), **trained, "steps": steps, "train_clips": train_clips,
                  "test_clips": test_clips, "seed": seed}
        path = save_net(net, out / f"{variant}.safetensors", {"fit": config.__dict__, **result})
    text.print(f"{variant}: top-1 {result['accuracy']:.2f}% (still camera {result['static']:.2f}, camera motion "
               f"{result['camera']:.2f}) on {test_clips} test clips; trained in {result['train_s']:.0f} s")
    text.print(f"wrote {path}")
    emit(result, as_json, json_out, text)


@app.command("table")
def table_command(
    variants: Annotated[str, typer.Option(help="Comma-separated variants (default: all six).")]
    = "none,naive,boundary,center,motion,learnable",
    steps: Steps = 400,
    batch_size: BatchSize = 16,
    lr: Lr = 2e-3,
    train_clips: TrainClips = 1000,
    test_clips: TestClips = 400,
    seed: Seed = 0,
    shipped: Annotated[bool, typer.Option("--shipped", help="Use the trained nets that ship with vtome (no "
                                                            "training).")] = False,
    checkpoints: Annotated[Path | None, typer.Option(help="Load <variant>.safetensors from this directory instead "
                                                          "of training.")] = None,
    runs: Annotated[int, typer.Option(help="Timed rounds of the throughput measurement.")] = 5,
    attn_impl: Annotated[str, typer.Option(help="sdpa | eager: the attention of the speed and memory measurement."
                                           )] = "sdpa",
    out: Annotated[Path, typer.Option(help="Directory for table.md, table.png, results.json and the nets.")]
    = Path("vtm_out"),
    threads: Threads = 1,
    as_json: Json = False,
    json_out: JsonOut = None,
) -> None:
    """Train every variant (seeded) and print the paper's Table 1 for VTM: accuracy, throughput, peak memory."""
    import torch

    from vtome.vtm.table import TableConfig, plot_table, run_table, shipped_dir, to_markdown

    names = _variants(variants)
    fit = _fit_config(steps, batch_size, lr, seed)
    for option, value in (("--train-clips", train_clips), ("--test-clips", test_clips), ("--runs", runs),
                          ("--threads", threads)):
        at_least(option, value, 1)
    one_of("--attn-impl", attn_impl, ("sdpa", "eager"))
    if shipped and checkpoints is not None:
        raise UserError("--shipped and --checkpoints: give one of them")
    source = shipped_dir() if shipped else input_dir("--checkpoints", checkpoints)
    if source is not None:
        missing = [v for v in names if not (source / f"{v}.safetensors").is_file()]
        if missing:
            raise UserError(f"--checkpoints {source}: no {missing[0]}.safetensors (train it with `vtome vtm train "
                            f"--variant {missing[0]} --out {source}`)")
    output_dir("--out", out)
    check_json_out(json_out)
    torch.set_num_threads(threads)
    text = console(as_json)
    started = time.perf_counter()
    config = TableConfig(variants=names, fit=fit, train_clips=train_clips, test_clips=test_clips, runs=runs,
                         attn_impl=attn_impl, shipped=source, out=None if source is not None else out)
    with text.status("VTM table") as status:
        rows = run_table(config, step=status.update)
    out.mkdir(parents=True, exist_ok=True)
    written = [plot_table(rows, out / "table.png")]
    (out / "table.md").write_text(to_markdown(rows))
    written.append(out / "table.md")
    text.print(_rich_table(rows, test_clips))
    summary = {"rows": rows, "test_clips": test_clips, "train_clips": None if source else train_clips,
               "fit": fit.__dict__, "source": str(source) if source else "trained", "seconds":
               time.perf_counter() - started}
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    written.append(out / "results.json")
    for path in written:
        text.print(f"wrote {path}")
    emit(summary, as_json, json_out, text)


def _rich_table(rows: list[dict], clips: int) -> Table:
    from vtome.vtm.table import NAMES

    table = Table(title=f"VTMNet on the long-video testbed: top-1 (%) on {clips} test clips; speed on "
                        f"{rows[0]['speed_batch']} clips, {rows[0]['attn_impl']}, CPU x{rows[0]['threads']}")
    for name in ("VTM", "top-1", "still", "camera", "clips/s", "x", "peak MiB", "memory", "GFLOPs"):
        table.add_column(name, justify="left" if name == "VTM" else "right")
    for row in rows:
        ratio, memory = row.get("throughput_ratio"), row.get("memory_ratio")
        table.add_row(NAMES[row["variant"]], f"{row['accuracy']:.2f}", f"{row['static']:.2f}", f"{row['camera']:.2f}",
                      f"{row['clips_per_s']:.1f}", "-" if ratio is None else f"{ratio:.2f}x", f"{row['peak_mib']:.0f}",
                      "-" if memory is None else f"{100 * (memory - 1):+.0f}%", f"{row['gflops']:.3f}")
    return table


@app.command("bench")
def bench_command(
    quick: Annotated[bool, typer.Option("--quick", help="Batch 1, SDPA, one timed pass per variant after one "
                                                        "warm-up call.")] = False,
    batch_sizes: Annotated[str, typer.Option(help="Batch sizes measured with SDPA, comma separated.")] = "1,4",
    eager_batch_sizes: Annotated[str, typer.Option(help="Batch sizes measured with eager attention ('' for none)."
                                                   )] = "1",
    variants: Annotated[str, typer.Option(help="Comma-separated variants compared with none.")]
    = "naive,boundary,center,motion,learnable",
    runs: Annotated[int, typer.Option(help="Timed rounds (every variant once a round).")] = 2,
    warmup: Annotated[int, typer.Option(help="Untimed rounds first, after one warm-up call of every variant (CPU "
                                              "peak memory: each variant in a fresh process).")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu | cuda | cuda:N (default: cuda when available, else cpu)."
                                               )] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: torch's choice).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random weights and features.")] = 0,
    as_json: Json = False,
    json_out: JsonOut = None,
) -> None:
    """Throughput and peak memory of VTMNet without merging (none) against each variant at the paper's LVU shapes:
    60 frames x 16 x 16 tokens x 1024 channels, windows (6, 30, 60), gamma 6, R = 0.8 |S|; inference."""
    import torch

    from vtome.vtm.lvu import bench_lvu

    names = _variants(variants)
    batches = int_list("--batch-sizes", batch_sizes, 1)
    eager = int_list("--eager-batch-sizes", eager_batch_sizes, 1) if eager_batch_sizes.strip() else []
    at_least("--runs", runs, 1)
    at_least("--warmup", warmup, 0)
    at_least("--threads", threads, 1)
    device = resolve_device(device)
    check_json_out(json_out)
    if quick:
        batches, eager, runs, warmup = [1], [], 1, 0
    if threads:
        torch.set_num_threads(threads)
    text = console(as_json)
    started = time.perf_counter()
    with text.status("LVU shapes") as status:
        rows = bench_lvu(tuple(batches), tuple(eager), names, device, runs, warmup, seed, status.update)
    text.print(_bench_table(rows))
    result = {"rows": rows, "quick": quick, "runs": runs, "warmup": warmup, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "seconds": time.perf_counter() - started}
    text.print(f"took {result['seconds']:.0f} s")
    emit(result, as_json, json_out, text)


def _bench_table(rows: list[dict]) -> Table:
    table = Table(title="VTMNet at LVU shapes (60 x 16 x 16 tokens x 1024 ch), inference: each variant vs none")
    for name in ("batch", "attention", "variant", "clips/s", "throughput x", "peak MiB", "memory", "FLOPs x"):
        table.add_column(name, justify="left" if name in ("attention", "variant") else "right")
    for row in rows:
        if "skipped" in row:
            table.add_row(str(row["batch_size"]), row["attn_impl"], row["variant"], "-", "-", "-", "-",
                          row["skipped"] if row["variant"] == "none" else "")
            continue
        table.add_row(str(row["batch_size"]), row["attn_impl"], row["variant"], f"{row['clips_per_s']:.3f}",
                      f"{row['throughput_ratio']:.2f}x", f"{row['peak_mib']:.0f}",
                      f"{100 * -row['memory_reduction']:+.0f}%", f"{row['flop_ratio']:.2f}x")
    return table
