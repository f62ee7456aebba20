"""`vtome eval`: one cell of the paper's grid (model x dataset x reduction x schedule) on real data.

    vtome eval --model google/vivit-b-16x2-kinetics400 --dataset k400 --root /data/k400/val \\
        --split /data/k400/val.csv --r 300 --mode merge --out runs/vivit-k400-merge-300
    torchrun --nproc_per_node 4 -m vtome eval ...     # the same, sharded over 4 processes

Every option, the model's config and the split file are checked before the weights load (see evalargs.prepare).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import sys
from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.table import Table

import vtome
from vtome import motion
from vtome.commands import partitionargs as p
from vtome.commands.checks import UserError, partition_label
from vtome.commands.evalargs import PRETTY, PROP_ATTN_HELP, partition_record, prepare, resolved_root
from vtome.commands.modelspec import ModelSpec
from vtome.commands.output import JsonOut, emit
from vtome.data.samplers import default_sampler
from vtome.data.transforms import clip_transform, default_channels
from vtome.evaluation.loop import NothingEvaluated, ResumeMismatch, evaluate
from vtome.evaluation.results import PART_GLOB, PREDICTIONS, read_records
from vtome.flops import arch
from vtome.models import random_input


def eval_command(
    model: str = typer.Option(..., help="Preset, local directory (save_pretrained), HF hub id or a Motionformer "
                                            ".pyth checkpoint; see `vtome models`."),
    dataset: str = typer.Option(..., help="k400 | ssv2 | epic | folder"),
    root: str = typer.Option("", help="Videos / frames directory: the prefix of the split file's paths."),
    split: str = typer.Option("", help="Split list or annotation file (K400 list, SSv2 json/csv, EPIC csv)."),
    labels: str = typer.Option("", help="SSv2 labels json (default: next to the split file)."),
    r: float = typer.Option(0, help="Tokens merged per layer, a whole number (per frame for TimeSformer and "
                                    "Motionformer); below 1: a fraction of the tokens."),
    schedule: str = typer.Option("constant", help="constant | decreasing | increasing | r per layer, comma "
                                                  "separated."),
    mode: str = typer.Option("merge", help="merge | drop | random_drop | random_merge | hybrid"),
    threshold: float | None = typer.Option(None, help="Similarity threshold in [-1, 1], for --mode hybrid only."),
    seed: int = typer.Option(0, help="Seed of the random modes."),
    prop_attn: bool | None = typer.Option(None, "--prop-attn/--no-prop-attn", help=PROP_ATTN_HELP),
    partition: p.Partition = "alternate",
    gamma: p.Gamma = None,
    merge_weighting: p.MergeWeighting = "size",
    sample: p.Sample = True,
    tau: p.Tau = 1.0,
    saliency: p.Saliency = None,
    batch_size: int = typer.Option(1, help="Clips per forward pass."),
    workers: int = typer.Option(min(4, os.cpu_count() or 1), help="DataLoader worker processes."),
    limit: int | None = typer.Option(None, help="Only the first N clips of the split."),
    out: str | None = typer.Option(None, help="Results directory (default runs/<model>-<dataset>-<mode>-r<r>-"
                                              "<schedule>[-t<threshold>][-seed<seed>])."),
    views: int = typer.Option(1, help="Temporal views per clip, logits averaged (the paper: 1)."),
    crops: int = typer.Option(1, help="Spatial crops per view, logits averaged (1 centre, 3 along the long side)."),
    num_frames: int | None = typer.Option(None, help="Frames per clip: the model's config.num_frames (V-JEPA 2: "
                                                     "frames_per_clip), the default; an unmerged TimeSformer also "
                                                     "takes others."),
    sampling: str | None = typer.Option(None, help="rate | uniform (default: rate for k400 and folder, uniform for "
                                                   "ssv2 and epic)."),
    sampling_rate: int | None = typer.Option(None, help="Frames between samples, with --sampling rate (default: the "
                                                        "family's: ViViT 2, VideoMAE 4, TimeSformer 32, "
                                                        "Motionformer 4)."),
    backend: str | None = typer.Option(None, help="Video decoder: torchcodec | pyav (default: $VTOME_VIDEO_BACKEND, "
                                                  "else the first that loads)."),
    channels: str | None = typer.Option(None, help="rgb | bgr: the channel order the model takes (default: what "
                                                   "its checkpoints were trained on; bgr only for Motionformer on "
                                                   "epic)."),
    verbs: int | None = typer.Option(None, help="EPIC: verb classes (the first outputs)."),
    nouns: int | None = typer.Option(None, help="EPIC: noun classes (the outputs after the verbs)."),
    participant_first: bool = typer.Option(True, "--participant-first/--video-first",
                                           help="EPIC: PXX/PXX_YY/rgb_frames/... or PXX_YY/rgb_frames/..."),
    frame_template: str | None = typer.Option(
        None, help="EPIC: frame path under root with {participant}, {video}, {frame}, e.g. "
        "'{participant}/rgb_frames/{video}/frame_{frame:010d}.jpg'."
    ),
    save_logits: bool = typer.Option(False, help="Also store the logits of every clip in predictions.jsonl."),
    retry_failed: bool = typer.Option(False, help="Evaluate clips that failed to read in an earlier run again."),
    name: str | None = typer.Option(None, help="Model name in the report (default: its family, e.g. ViViT)."),
    device: str | None = typer.Option(None, help="cpu | cuda | cuda:N (default: cuda when available, else cpu)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar (on stderr)."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics.json on stdout (nothing else goes there)."),
    json_out: JsonOut = None,
) -> None:
    """Evaluate a model on K400 / SSv2 / EPIC-KITCHENS-100 / a class-folder dataset, with or without merging."""
    run = prepare(dict(locals()))
    spec: ModelSpec = run["spec"]
    out, samples, heads = run["out"], run["samples"], run["heads"]
    rank0 = int(os.environ.get("RANK", "0")) == 0
    note = Console(stderr=True, quiet=not rank0)
    if spec.kind == "preset":
        note.print(f"[yellow]note:[/] {model} is a preset with random weights: its accuracy is chance level")

    net = spec.load(run["device"])
    sampler = default_sampler(net, dataset, views=views, num_frames=num_frames, rate=sampling_rate, mode=sampling)
    transform = clip_transform(net, model, channels=channels or default_channels(net.config.model_type, dataset))
    tokens, grid, shape = None, None, arch(net)
    if run["patching"]:
        vtome.patch(net, **run["kwargs"])
        if partition == "motion":  # every clip's prior comes with it (vtome.motion); the dummy clip's is flat
            grid = motion.token_grid(net)
            vtome.set_prior(net, torch.zeros(1, grid.frames, grid.height, grid.width))
        with torch.inference_mode():  # one dummy clip, for the token counts per layer
            net(random_input(net))
        tokens = vtome.info(net)["tokens"]
    settings = {
        "model": model, "model_type": net.config.model_type,
        "name": name or PRETTY.get(net.config.model_type, net.config.model_type),
        "dataset": dataset, "root": resolved_root(root), "split": split, "limit": limit,
        "r": run["r"], "schedule": run["schedule"], "mode": mode, "threshold": threshold, "seed": seed,
        **partition_record(run["kwargs"], None if saliency is None else str(saliency)),
        "prop_attn": vtome.info(net)["prop_attn"] if tokens is not None else None,
        "patched": tokens is not None, "tokens": tokens,
        "merge_frames": shape.frames if shape.divided else None,  # frames (Motionformer: slots) merging on their own
        "num_frames": sampler.num_frames, "sampling": sampler.mode, "sampling_rate": sampler.rate,
        "views": views, "crops": crops, "transform": dataclasses.asdict(transform),
        "backend": run["backend"], "vtome_version": vtome.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        metrics = evaluate(net, samples, out, sampler=sampler, transform=transform, crops=crops,
                           batch_size=batch_size, workers=workers, backend=run["backend"], heads=heads,
                           save_logits=save_logits, retry_failed=retry_failed, settings=settings,
                           device=run["device"], progress=progress, prior_grid=grid)
    except ResumeMismatch as err:
        raise UserError(str(err)) from err
    except NothingEvaluated as err:
        if rank0:
            print(f"vtome eval: error: {err}", file=sys.stderr)
        raise typer.Exit(1) from err
    except KeyboardInterrupt:
        if rank0:
            print(f"vtome eval: interrupted: {_done(out)} of {len(samples)} clips are in {out}/{PREDICTIONS}; run "
                  "the same command again to resume", file=sys.stderr)
        raise typer.Exit(130) from None
    if not rank0:
        return
    if metrics["padded"]:
        note.print(f"[yellow]note:[/] {metrics['padded']} clip(s) had fewer frames than the sampling needs "
                   f"({sampler.num_frames} frames{f' at rate {sampler.rate}' if sampler.mode == 'rate' else ''}): "
                   "frames were repeated; they are marked \"padded\" in predictions.jsonl")
    if metrics.get("prior_sources"):
        counted = ", ".join(f"{n} from {k.replace('_', ' ')}" for k, n in metrics["prior_sources"].items())
        note.print(f"motion prior: {counted} (clips without motion vectors take their frames' difference)")
    emit(metrics, as_json, json_out, None if as_json else Console())
    if not as_json:
        _print_summary(metrics, out)


def _done(out: str) -> int:
    """Clips recorded in OUT so far (predictions.jsonl and the part files of other processes)."""
    paths = [Path(out, PREDICTIONS), *Path(out).glob(PART_GLOB)]
    return len({r["id"] for path in paths for r in read_records(path)})


def _print_summary(metrics: dict, out: str) -> None:
    console = Console()
    partition = partition_label(metrics)
    table = Table(title=f"{metrics['name']} on {metrics['dataset']}: r={metrics['r']} {metrics['schedule']} "
                        f"{metrics['mode']}" + (f", partition {partition}" if partition else ""))
    table.add_column("metric")
    table.add_column("value", justify="right")
    keys = ["top1", "top5"]
    if "verb_top1" in metrics:
        keys = ["action_top1", "action_top5", "verb_top1", "verb_top5", "noun_top1", "noun_top5"]
    for key in keys:
        table.add_row(key, f"{metrics[key]:.2f}%")
    table.add_row("clips", f"{metrics['evaluated']} / {metrics['total']}")
    table.add_row("failed", str(metrics["failed"]))
    table.add_row("padded", str(metrics["padded"]))
    throughput = metrics.get("throughput") or {}
    if throughput.get("clips_per_s"):
        table.add_row("clips/s (model)", f"{throughput['clips_per_s']:.2f}")
    console.print(table)
    for failure in metrics["failures"][:10]:
        console.print(f"[yellow]failed[/] {failure['path']}: {failure['error']}")
    if metrics["failed"] > 10:
        console.print(f"... and {metrics['failed'] - 10} more (see metrics.json)")
    console.print(f"results in {out}/predictions.jsonl and {out}/metrics.json")
