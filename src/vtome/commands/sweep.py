"""`vtome sweep`: speedup against r, from 0 to the limit, for the three schedules (paper supp. Fig. 9).

    vtome sweep --model vivit-b --model videomae-b --out sweep/          # FLOP-ideal only: instant
    vtome sweep --bench --model videomae-b --steps 11 --out sweep/      # measured, A/B at every point

r is swept as a fraction of the initial tokens merged per layer (0 to --max-fraction); the decreasing schedule
starts at twice that, the increasing one ends there, both clamped as in every layer (to half the tokens; to
1 - 1/gamma of them for a partition with factor gamma, `--partition stride --gamma 6`).
Writes sweep.csv (one row per model, schedule and r) and sweep.png.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vtome.bench import ATTN_IMPLS, DTYPES, BenchConfig, compare, prepare
from vtome.commands import partitionargs as p
from vtome.commands.checks import UserError, at_least, merge_settings, one_of, output_dir, resolve_device
from vtome.commands.modelspec import resolve
from vtome.commands.output import Json, JsonOut, check_json_out, console, emit
from vtome.flops import ALTERNATE, SplitRule, arch, flop_speedup, model_flops, schedule_tokens
from vtome.schedule import SCHEDULES
from vtome.vis.figure import save_figure

COLUMNS = (
    "model", "schedule", "mode", "partition", "gamma", "r", "percent", "batch_size", "attn_impl", "tokens", "gflops",
    "flop_speedup", "flop_speedup_layers", "baseline_s", "patched_s", "speedup", "cpu_speedup", "efficiency",
    "baseline_frames_per_s", "patched_frames_per_s", "merge_share",
)
STYLES = {"constant": "-", "decreasing": "--", "increasing": ":"}


def fractions(steps: int, max_fraction: float, gamma: int = 2) -> list[float]:
    """steps values from 0 to max_fraction, rounded to 4 digits (0 is the shared unmerged point)."""
    if steps < 2:
        raise UserError(f"--steps {steps}: must be at least 2 (r = 0 and --max-fraction)")
    cap = 1 - 1 / gamma
    if not 0 < max_fraction <= cap:
        what = "half the tokens merge" if gamma == 2 else f"1 - 1/gamma = {cap:.3g} of the tokens leave"
        raise UserError(f"--max-fraction {max_fraction:g}: must be in (0, {cap:.3g}] (at most {what} in a layer)")
    return [round(max_fraction * i / (steps - 1), 4) for i in range(steps)]


def ideal_row(model, name: str, schedule: str, r: float, rule: SplitRule = ALTERNATE) -> dict:
    """The FLOP-ideal point of a model for r (a fraction) under a schedule and partition, without running it."""
    tokens = schedule_tokens(arch(model), r or 0, schedule, rule)
    return {
        "model": name, "schedule": schedule, "mode": "merge", "partition": rule.partition, "gamma": rule.gamma,
        "r": r, "percent": 100 * r, "tokens": tokens, "gflops": model_flops(model, tokens, rule).gflops,
        "flop_speedup": flop_speedup(model, tokens, rule=rule),
        "flop_speedup_layers": flop_speedup(model, tokens, layers_only=True, rule=rule),
    }


def plot(rows: list[dict], path: Path) -> Path:
    """Frames/s (measured, when there is any) and speedup against the % of tokens merged per layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = any(row.get("speedup") is not None for row in rows)
    fig, axes = plt.subplots(1, 2 if measured else 1, figsize=(12 if measured else 6.5, 4.5), squeeze=False)
    lines = {}
    for row in rows:
        lines.setdefault((row["model"], row["schedule"]), []).append(row)
    colors = {model: f"C{i}" for i, model in enumerate(dict.fromkeys(row["model"] for row in rows))}
    speed_ax = axes[0, -1]
    for (model, schedule), points in lines.items():
        x = [p["percent"] for p in points]
        style = dict(color=colors[model], linestyle=STYLES.get(schedule, "-."))
        if measured:
            axes[0, 0].plot(x, [p["patched_frames_per_s"] for p in points], marker="o", ms=3,
                            label=f"{model} {schedule}", **style)
            speed_ax.plot(x, [p["speedup"] for p in points], marker="o", ms=3, label=f"{model} {schedule}", **style)
            speed_ax.plot(x, [p["flop_speedup"] for p in points], lw=0.8, alpha=0.5, **style)
        else:
            speed_ax.plot(x, [p["flop_speedup"] for p in points], label=f"{model} {schedule}", **style)
    if measured:
        axes[0, 0].set(xlabel="% of initial tokens merged per layer", ylabel="frames / s (measured)",
                       title="Throughput")
        axes[0, 0].legend(fontsize=7)
    speed_ax.set(xlabel="% of initial tokens merged per layer", ylabel="speedup (x)",
                 title="Speedup (thin: FLOP-ideal)" if measured else "FLOP-ideal speedup")
    speed_ax.legend(fontsize=7)
    for ax in axes[0]:
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def write_csv(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "tokens": json.dumps(row["tokens"])})
    return path


def sweep_command(
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model(s): preset, directory or hub id "
                                                                         "(default vivit-b).")] = None,
    bench: Annotated[bool, typer.Option("--bench", help="Measure the speedup (A/B at every point).")] = False,
    schedules: Annotated[str, typer.Option(help="Comma-separated schedules.")] = ",".join(SCHEDULES),
    steps: Annotated[int, typer.Option(help="Values of r from 0 to --max-fraction.")] = 11,
    max_fraction: Annotated[float, typer.Option(help="Largest r, a fraction of the initial tokens (<= 0.5; <= 1 - "
                                                     "1/gamma with --gamma).")] = 0.5,
    partition: p.Partition = "alternate",
    gamma: p.Gamma = None,
    merge_weighting: p.MergeWeighting = "size",
    sample: p.Sample = True,
    tau: p.Tau = 1.0,
    saliency: p.Saliency = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b")] = 1,
    runs: Annotated[int, typer.Option(help="Timed pairs per point (--bench).")] = 1,
    warmup: Annotated[int, typer.Option(help="Untimed passes of each variant before the first point.")] = 1,
    threads: Annotated[int | None, typer.Option(help="torch.set_num_threads.")] = None,
    dtype: Annotated[str, typer.Option(help=" | ".join(DTYPES))] = "float32",
    device: Annotated[str | None, typer.Option(help="cpu | cuda | cuda:N (default: cuda when available, else cpu)."
                                               )] = None,
    attn_impl: Annotated[str, typer.Option(help=" | ".join(ATTN_IMPLS))] = "sdpa",
    out: Annotated[Path, typer.Option(help="Directory for sweep.csv and sweep.png.")] = Path("sweep"),
    as_json: Json = False,
    json_out: JsonOut = None,
) -> None:
    """Speedup for r from 0 to its limit under each schedule: CSV and plot (FLOP-ideal; measured with --bench)."""
    names = [s.strip() for s in schedules.split(",") if s.strip()]
    bad = [s for s in names if s not in SCHEDULES] or ([] if names else [schedules])
    if bad:
        raise UserError(f"--schedules {schedules}: use one or more of {', '.join(SCHEDULES)}, comma separated")
    # Sweep's passes run random input: no clip to take a motion prior from.
    split = merge_settings(0, "constant", "merge", None, 0, partition, gamma, merge_weighting, sample, tau, saliency)
    rule = SplitRule(partition, split["gamma"])
    values = fractions(steps, max_fraction, rule.gamma)
    for option, value, low in (("--batch-size", batch_size, 1), ("--runs", runs, 1), ("--warmup", warmup, 0),
                               ("--threads", threads, 1)):
        at_least(option, value, low)
    one_of("--dtype", dtype, DTYPES)
    one_of("--attn-impl", attn_impl, ATTN_IMPLS)
    device = resolve_device(device)
    output_dir("--out", out)
    check_json_out(json_out)
    specs = [resolve(name) for name in model or ["vivit-b"]]
    for spec in specs:
        spec.check_patch({**split, "r": max_fraction})
    rows: list[dict] = []
    total = len(specs) * (1 + (len(values) - 1) * len(names))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True, quiet=as_json)) as progress:
        task = progress.add_task("sweep", total=total)
        for spec in specs:
            name = spec.name
            config = BenchConfig(model=name, batch_size=batch_size, runs=runs, warmup=warmup, threads=threads,
                                 dtype=dtype, device=device, attn_impl=attn_impl, partition=partition,
                                 gamma=rule.gamma, merge_weighting=merge_weighting, sample=sample, tau=tau,
                                 saliency=split["saliency"])
            if bench:
                net, x = prepare(config, load=lambda _, spec=spec: spec.load())
            else:  # FLOPs need only the architecture: no weights
                net, x = spec.empty(), None
            for i, r in enumerate(values):
                for schedule in names if r else names[:1]:
                    progress.update(task, description=f"{name} {schedule} r={r}")
                    row = ideal_row(net, name, schedule, r, rule)
                    if bench:
                        config.r, config.schedule, config.warmup = r, schedule, warmup if i == 0 else 0
                        result = compare(net, x, config)
                        row.update({k: result[k] for k in COLUMNS if k in result and k not in ("r", "model")})
                        row["gflops"] = result["gflops_patched"]
                    rows.append(row)
                    if not r:  # the unmerged point, measured once, starts every schedule's line
                        rows.extend({**row, "schedule": s} for s in names[1:])
                    progress.advance(task)
    csv_path, png_path = write_csv(rows, out / "sweep.csv"), plot(rows, out / "sweep.png")
    text = console(as_json)
    text.print(f"{len(rows)} rows; wrote {csv_path} and {png_path}")
    emit({"csv": str(csv_path), "png": str(png_path), "rows": rows}, as_json, json_out, text)
