"""`vtome eval`: one cell of the paper's grid (model x dataset x reduction x schedule) on real data.

    vtome eval --model google/vivit-b-16x2-kinetics400 --dataset k400 --root /data/k400/val \\
        --split /data/k400/val.csv --r 300 --mode merge --out runs/vivit-k400-merge-300
    torchrun --nproc_per_node 4 -m vtome eval ...     # the same, sharded over 4 processes
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.table import Table

import vtome
from vtome.data.epic import NUM_NOUNS, NUM_VERBS
from vtome.data.registry import DATASETS, load_samples
from vtome.data.samplers import MODES, default_sampler
from vtome.data.transforms import clip_transform
from vtome.evaluation.loop import ResumeMismatch, evaluate
from vtome.models import load_model, random_input

PRETTY = {"vivit": "ViViT", "videomae": "VideoMAE", "timesformer": "TimeSformer"}


def epic_heads(model: torch.nn.Module, verbs: int | None = None, nouns: int | None = None) -> tuple[int, int]:
    """(verbs, nouns) of an EPIC classifier: flags, else config.num_verbs/num_nouns, else 97/300 (EK-100)."""
    config = model.config
    verbs = verbs or getattr(config, "num_verbs", None) or NUM_VERBS
    nouns = nouns or getattr(config, "num_nouns", None) or NUM_NOUNS
    if verbs + nouns != config.num_labels:
        raise typer.BadParameter(
            f"the model has {config.num_labels} outputs, not {verbs} verbs + {nouns} nouns: an EPIC model's outputs"
            " are verb logits then noun logits (set --verbs/--nouns, or num_verbs/num_nouns in its config)"
        )
    return verbs, nouns


def class_index(model: torch.nn.Module) -> dict[str, int] | None:
    """The checkpoint's class names -> indices, unless they are the placeholder LABEL_i names."""
    label2id = getattr(model.config, "label2id", None) or {}
    if not label2id or all(name.startswith("LABEL_") for name in label2id):
        return None
    return {name: int(i) for name, i in label2id.items()}


def _default_out(model: str, dataset: str, r: float, schedule: str, mode: str) -> str:
    return str(Path("runs", f"{Path(model).name}-{dataset}-{mode}-r{r:g}-{schedule}"))


def eval_command(
    model: str = typer.Option(..., help="Preset, local save_pretrained directory or HF id."),
    dataset: str = typer.Option(..., help="k400 | ssv2 | epic | folder"),
    root: str = typer.Option("", help="Videos / frames directory: the prefix of the split file's paths."),
    split: str = typer.Option("", help="Split list or annotation file (K400 list, SSv2 json/csv, EPIC csv)."),
    labels: str = typer.Option("", help="SSv2 labels json (default: next to the split file)."),
    r: float = typer.Option(0, help="Tokens merged per layer (per frame for TimeSformer); below 1: a fraction."),
    schedule: str = typer.Option("constant", help="constant | decreasing | increasing"),
    mode: str = typer.Option("merge", help="merge | drop | random_drop | random_merge | hybrid"),
    threshold: float | None = typer.Option(None, help="Similarity threshold for --mode hybrid."),
    seed: int = typer.Option(0, help="Seed of the random modes."),
    prop_attn: bool | None = typer.Option(None, "--prop-attn/--no-prop-attn", help="Default: the paper's."),
    batch_size: int = typer.Option(1, help="Clips per forward pass."),
    workers: int = typer.Option(min(4, os.cpu_count() or 1), help="DataLoader worker processes."),
    limit: int | None = typer.Option(None, help="Only the first N clips of the split."),
    out: str | None = typer.Option(None, help="Results directory (default runs/<model>-<dataset>-<mode>-r<r>-...)."),
    views: int = typer.Option(1, help="Temporal views per clip, logits averaged (the paper: 1)."),
    crops: int = typer.Option(1, help="Spatial crops per view, logits averaged (1 centre, 3 along the long side)."),
    num_frames: int | None = typer.Option(None, help="Frames per clip (default: the model's config)."),
    sampling: str | None = typer.Option(None, help="rate | uniform (default: rate for K400, uniform otherwise)."),
    sampling_rate: int | None = typer.Option(None, help="Frames between samples for --sampling rate."),
    backend: str | None = typer.Option(None, help="Video decoder: torchcodec | pyav (default: the first that loads)."),
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
    device: str | None = typer.Option(None, help="cpu | cuda | cuda:N (default: cuda when available)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics.json to stdout."),
) -> None:
    """Evaluate a model on K400 / SSv2 / EPIC-KITCHENS-100 / a class-folder dataset, with or without merging."""
    if dataset not in DATASETS:
        raise typer.BadParameter(f"--dataset must be one of {', '.join(DATASETS)}")
    if sampling is not None and sampling not in MODES:
        raise typer.BadParameter(f"--sampling must be one of {', '.join(MODES)}")
    r_value: int | float = r if 0 < r < 1 else int(r)
    out = out or _default_out(model, dataset, r, schedule, mode)
    if device is None:
        device = f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if torch.cuda.is_available() else "cpu"

    net = load_model(model).to(device)
    heads = epic_heads(net, verbs, nouns) if dataset == "epic" else None
    try:
        samples = load_samples(dataset, root, split, labels=labels or None, class_to_index=class_index(net),
                               participant_first=participant_first, template=frame_template,
                               num_nouns=heads[1] if heads else NUM_NOUNS)
    except (FileNotFoundError, ValueError) as err:
        raise typer.BadParameter(str(err)) from err
    samples = samples[:limit] if limit is not None else samples

    sampler = default_sampler(net, dataset, views=views, num_frames=num_frames, rate=sampling_rate, mode=sampling)
    transform = clip_transform(net, model)
    tokens = None
    if r_value or mode != "merge":
        vtome.patch(net, r=r_value, schedule=schedule, mode=mode, threshold=threshold, seed=seed, prop_attn=prop_attn)
        with torch.inference_mode():  # one dummy clip, for the token counts per layer
            net(random_input(net))
        tokens = vtome.info(net)["tokens"]
    settings = {
        "model": model, "model_type": net.config.model_type,
        "name": name or PRETTY.get(net.config.model_type, net.config.model_type),
        "dataset": dataset, "root": root, "split": split, "limit": limit,
        "r": r_value, "schedule": schedule, "mode": mode, "threshold": threshold, "seed": seed,
        "prop_attn": vtome.info(net)["prop_attn"] if tokens is not None else None,
        "patched": tokens is not None, "tokens": tokens,
        "num_frames": sampler.num_frames, "sampling": sampler.mode, "sampling_rate": sampler.rate,
        "views": views, "crops": crops, "transform": dataclasses.asdict(transform),
        "backend": backend, "vtome_version": vtome.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        metrics = evaluate(net, samples, out, sampler=sampler, transform=transform, crops=crops,
                           batch_size=batch_size, workers=workers, backend=backend, heads=heads,
                           save_logits=save_logits, retry_failed=retry_failed, settings=settings, device=device,
                           progress=progress)
    except ResumeMismatch as err:
        Console(stderr=True).print(f"[red]error:[/] {err}")
        raise typer.Exit(2) from err
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if as_json:
        print(json.dumps(metrics, indent=2))
        return
    _print_summary(metrics, out)


def _print_summary(metrics: dict, out: str) -> None:
    console = Console()
    table = Table(title=f"{metrics['name']} on {metrics['dataset']}: r={metrics['r']} {metrics['schedule']} "
                        f"{metrics['mode']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    keys = ["top1", "top5"]
    if "verb_top1" in metrics:
        keys = ["action_top1", "action_top5", "verb_top1", "verb_top5", "noun_top1", "noun_top5"]
    for key in keys:
        table.add_row(key, f"{metrics[key]:.2f}%")
    table.add_row("clips", f"{metrics['evaluated']} / {metrics['total']}")
    table.add_row("failed", str(metrics["failed"]))
    throughput = metrics.get("throughput") or {}
    if throughput.get("clips_per_s"):
        table.add_row("clips/s (model)", f"{throughput['clips_per_s']:.2f}")
    console.print(table)
    for failure in metrics["failures"][:10]:
        console.print(f"[yellow]failed[/] {failure['path']}: {failure['error']}")
    if metrics["failed"] > 10:
        console.print(f"... and {metrics['failed'] - 10} more (see metrics.json)")
    console.print(f"results in {out}/predictions.jsonl and {out}/metrics.json")
