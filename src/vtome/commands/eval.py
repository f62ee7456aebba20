"""`vtome eval`: one cell of the paper's grid (model x dataset x reduction x schedule) on real data.

    vtome eval --model google/vivit-b-16x2-kinetics400 --dataset k400 --root /data/k400/val \\
        --split /data/k400/val.csv --r 300 --mode merge --out runs/vivit-k400-merge-300
    torchrun --nproc_per_node 4 -m vtome eval ...     # the same, sharded over 4 processes

Every option, the model's config and the split file are checked before the weights load (see `_prepare`).
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
from vtome.commands.checks import (
    UserError,
    at_least,
    check_mode,
    fail,
    input_dir,
    input_file,
    one_of,
    only_with,
    output_dir,
    parse_r,
    parse_schedule,
    resolve_device,
)
from vtome.commands.modelspec import ModelSpec, is_video, resolve
from vtome.commands.output import JsonOut, check_json_out, emit
from vtome.data.epic import NUM_NOUNS, NUM_VERBS
from vtome.data.registry import DATASETS, load_samples
from vtome.data.samplers import DATASET_MODES, MODES, default_sampler
from vtome.data.samples import Sample
from vtome.data.transforms import clip_transform
from vtome.evaluation.loop import NothingEvaluated, ResumeMismatch, evaluate
from vtome.evaluation.results import PART_GLOB, PREDICTIONS, read_records
from vtome.models import random_input

PRETTY = {"vivit": "ViViT", "videomae": "VideoMAE", "timesformer": "TimeSformer"}
PROP_ATTN_HELP = ("Proportional attention (log size added to the attention logits). Default: the paper's choice "
                  "per model: on for ViViT and TimeSformer (and timm ViTs), off for VideoMAE.")


def epic_heads(model: torch.nn.Module, verbs: int | None = None, nouns: int | None = None) -> tuple[int, int]:
    """(verbs, nouns) of an EPIC classifier: flags, else config.num_verbs/num_nouns, else 97/300 (EK-100)."""
    config = model.config
    verbs = verbs or getattr(config, "num_verbs", None) or NUM_VERBS
    nouns = nouns or getattr(config, "num_nouns", None) or NUM_NOUNS
    if verbs + nouns != config.num_labels:
        raise UserError(
            f"--verbs {verbs} --nouns {nouns}: the model has {config.num_labels} outputs, not {verbs} + {nouns}; an "
            "EPIC model's outputs are verb logits then noun logits (set --verbs/--nouns, or num_verbs/num_nouns in "
            "its config)"
        )
    return verbs, nouns


def class_index(model: torch.nn.Module) -> dict[str, int] | None:
    """The checkpoint's class names -> indices, unless they are the placeholder LABEL_i names."""
    label2id = getattr(model.config, "label2id", None) or {}
    if not label2id or all(name.startswith("LABEL_") for name in label2id):
        return None
    return {name: int(i) for name, i in label2id.items()}


def _default_out(model: str, dataset: str, r: float, schedule: str, mode: str, threshold: float | None,
                 seed: int) -> str:
    name = f"{Path(model).name}-{dataset}-{mode}-r{r:g}-{schedule.replace(',', '_')}"
    name += f"-t{threshold:g}" if threshold is not None else ""
    name += f"-seed{seed}" if seed else ""
    return str(Path("runs", name))


def _first_file(sample: Sample) -> str:
    """The file a sample's reading starts with (its video, frame folder or first frame)."""
    if sample.frames:
        return sample.frames[0]
    if sample.template is not None:
        return sample.template.format(frame=sample.first)
    return sample.path


def _check_labels(samples: list[Sample], num_labels: int, heads: tuple[int, int] | None) -> None:
    """Every label must be a class of the model (a label beyond its outputs would be counted wrong silently)."""
    if heads is not None:
        for head, count in zip(("verb", "noun"), heads, strict=True):
            bad = next((s for s in samples if not 0 <= s.labels[head] < count), None)
            if bad is not None:
                raise UserError(f"clip {bad.id}: {head} class {bad.labels[head]} is not one of the model's {count} "
                                f"{head}s (0..{count - 1}); check --split, --verbs/--nouns and the model")
        return
    bad = next((s for s in samples if not 0 <= s.label < num_labels), None)
    if bad is not None:
        raise UserError(f"clip {bad.id}: label {bad.label} is not one of the model's {num_labels} classes "
                        f"(0..{num_labels - 1}); is the split meant for this model?")


def _check_frame_template(template: str | None) -> None:
    if template is None:
        return
    try:
        filled = template.format(participant="P01", video="P01_01", frame=1)
    except (KeyError, IndexError, ValueError) as err:
        raise fail("--frame-template", template, f"use the fields {{participant}}, {{video}} and {{frame}} only "
                                                 f"({type(err).__name__}: {err})") from err
    if filled == template.format(participant="P01", video="P01_01", frame=2):
        raise fail("--frame-template", template, "needs a {frame} field (e.g. frame_{frame:010d}.jpg)")


def _backend(backend: str | None) -> str | None:
    """The video decoder: as given or the default, checked that it loads (None: none loads; frames still read)."""
    from vtome.data.video import BACKENDS, ENV_BACKEND, available_backends

    if backend is None and os.environ.get(ENV_BACKEND):
        backend = os.environ[ENV_BACKEND]
        if backend not in BACKENDS:
            raise UserError(f"{ENV_BACKEND}={backend}: use one of {', '.join(BACKENDS)}")
    one_of("--backend", backend, BACKENDS)
    loads = available_backends()
    if backend is not None and backend not in loads:
        raise fail("--backend", backend, f"does not load here (installed? FFmpeg libraries?); what loads: "
                                         f"{', '.join(loads) or 'nothing (pip install av)'}")
    return backend or (loads[0] if loads else None)


def _prepare(o: dict) -> dict:
    """Check everything that can be checked without the weights; returns what the run needs."""
    one_of("--dataset", o["dataset"], DATASETS)
    one_of("--sampling", o["sampling"], MODES)
    r = parse_r(o["r"])
    schedule = parse_schedule(o["schedule"])
    check_mode(o["mode"], o["threshold"])
    for option, low in (("batch_size", 1), ("views", 1), ("crops", 1), ("workers", 0), ("limit", 1),
                        ("num_frames", 1), ("sampling_rate", 1), ("verbs", 1), ("nouns", 1)):
        at_least("--" + option.replace("_", "-"), o[option], low)
    dataset = o["dataset"]
    only_with("--labels", bool(o["labels"]), dataset == "ssv2", "to --dataset ssv2")
    only_with("--split", bool(o["split"]), dataset != "folder", "to k400, ssv2 and epic (a folder dataset has none)")
    for option in ("verbs", "nouns", "frame_template"):
        only_with("--" + option.replace("_", "-"), o[option] is not None, dataset == "epic", "to --dataset epic")
    sampling = o["sampling"] or DATASET_MODES.get(dataset, "rate")
    only_with("--sampling-rate", o["sampling_rate"] is not None, sampling == "rate", "with --sampling rate")
    _check_frame_template(o["frame_template"])
    input_file("--split", o["split"])
    input_file("--labels", o["labels"])
    input_dir("--root", o["root"])
    backend = _backend(o["backend"])
    device = resolve_device(o["device"])
    out = o["out"] or _default_out(o["model"], dataset, o["r"], o["schedule"], o["mode"], o["threshold"], o["seed"])
    output_dir("--out", out)
    check_json_out(o["json_out"])

    spec = resolve(o["model"])
    meta = spec.empty()
    if not is_video(meta):
        raise fail("--model", o["model"], "is an image model; eval takes video classifiers (ViViT, VideoMAE, "
                                          "TimeSformer: a preset, a save_pretrained directory or a hub id)")
    patching = bool(r) or o["mode"] != "merge" or not isinstance(schedule, str)
    kwargs = dict(r=r, schedule=schedule, mode=o["mode"], threshold=o["threshold"], seed=o["seed"],
                  prop_attn=o["prop_attn"])
    spec.check_patch(kwargs)
    frames = meta.config.num_frames
    if o["num_frames"] not in (None, frames) and (meta.config.model_type != "timesformer" or patching):
        raise fail("--num-frames", o["num_frames"], f"this {PRETTY.get(meta.config.model_type, 'model')} takes "
                                                    f"{frames} frames per clip (config.num_frames)")
    heads = epic_heads(meta, o["verbs"], o["nouns"]) if dataset == "epic" else None
    try:
        samples = load_samples(dataset, o["root"], o["split"], labels=o["labels"] or None,
                               class_to_index=class_index(meta), participant_first=o["participant_first"],
                               template=o["frame_template"], num_nouns=heads[1] if heads else NUM_NOUNS)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"--dataset {dataset}: {err}") from err
    samples = samples[: o["limit"]] if o["limit"] is not None else samples
    where = o["root"] if dataset == "folder" else o["split"]
    if not samples:
        raise UserError(f"--dataset {dataset}: {where} holds no clip" + (
            " (class folders of videos or frame folders)" if dataset == "folder" else ""))
    _check_labels(samples, meta.config.num_labels, heads)
    if not any(os.path.exists(_first_file(s)) for s in samples):
        raise UserError(f"none of the {len(samples)} clips exists (the first would be {_first_file(samples[0])}): "
                        "is --root the prefix of the split file's paths?")
    schedule_name = schedule if isinstance(schedule, str) else ",".join(map(str, schedule))
    return dict(spec=spec, r=r, schedule=schedule_name, kwargs=kwargs, patching=patching, heads=heads, samples=samples,
                backend=backend, device=device, out=out)


def eval_command(
    model: str = typer.Option(..., help="Preset, local directory (save_pretrained) or HF hub id; see `vtome models`."),
    dataset: str = typer.Option(..., help="k400 | ssv2 | epic | folder"),
    root: str = typer.Option("", help="Videos / frames directory: the prefix of the split file's paths."),
    split: str = typer.Option("", help="Split list or annotation file (K400 list, SSv2 json/csv, EPIC csv)."),
    labels: str = typer.Option("", help="SSv2 labels json (default: next to the split file)."),
    r: float = typer.Option(0, help="Tokens merged per layer, a whole number (per frame for TimeSformer); below 1: a "
                                    "fraction of the tokens."),
    schedule: str = typer.Option("constant", help="constant | decreasing | increasing | r per layer, comma "
                                                  "separated."),
    mode: str = typer.Option("merge", help="merge | drop | random_drop | random_merge | hybrid"),
    threshold: float | None = typer.Option(None, help="Similarity threshold in [-1, 1], for --mode hybrid only."),
    seed: int = typer.Option(0, help="Seed of the random modes."),
    prop_attn: bool | None = typer.Option(None, "--prop-attn/--no-prop-attn", help=PROP_ATTN_HELP),
    batch_size: int = typer.Option(1, help="Clips per forward pass."),
    workers: int = typer.Option(min(4, os.cpu_count() or 1), help="DataLoader worker processes."),
    limit: int | None = typer.Option(None, help="Only the first N clips of the split."),
    out: str | None = typer.Option(None, help="Results directory (default runs/<model>-<dataset>-<mode>-r<r>-"
                                              "<schedule>[-t<threshold>][-seed<seed>])."),
    views: int = typer.Option(1, help="Temporal views per clip, logits averaged (the paper: 1)."),
    crops: int = typer.Option(1, help="Spatial crops per view, logits averaged (1 centre, 3 along the long side)."),
    num_frames: int | None = typer.Option(None, help="Frames per clip: the model's config.num_frames (the default; "
                                                     "an unmerged TimeSformer also takes others)."),
    sampling: str | None = typer.Option(None, help="rate | uniform (default: rate for k400 and folder, uniform for "
                                                   "ssv2 and epic)."),
    sampling_rate: int | None = typer.Option(None, help="Frames between samples, with --sampling rate (default: the "
                                                        "family's: ViViT 2, VideoMAE 4, TimeSformer 32)."),
    backend: str | None = typer.Option(None, help="Video decoder: torchcodec | pyav (default: $VTOME_VIDEO_BACKEND, "
                                                  "else the first that loads)."),
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
    run = _prepare(dict(locals()))
    spec: ModelSpec = run["spec"]
    out, samples, heads = run["out"], run["samples"], run["heads"]
    rank0 = int(os.environ.get("RANK", "0")) == 0
    note = Console(stderr=True, quiet=not rank0)
    if spec.kind == "preset":
        note.print(f"[yellow]note:[/] {model} is a preset with random weights: its accuracy is chance level")

    net = spec.load(run["device"])
    sampler = default_sampler(net, dataset, views=views, num_frames=num_frames, rate=sampling_rate, mode=sampling)
    transform = clip_transform(net, model)
    tokens = None
    if run["patching"]:
        vtome.patch(net, **run["kwargs"])
        with torch.inference_mode():  # one dummy clip, for the token counts per layer
            net(random_input(net))
        tokens = vtome.info(net)["tokens"]
    settings = {
        "model": model, "model_type": net.config.model_type,
        "name": name or PRETTY.get(net.config.model_type, net.config.model_type),
        "dataset": dataset, "root": str(Path(root).resolve()) if root else "", "split": split, "limit": limit,
        "r": run["r"], "schedule": run["schedule"], "mode": mode, "threshold": threshold, "seed": seed,
        "prop_attn": vtome.info(net)["prop_attn"] if tokens is not None else None,
        "patched": tokens is not None, "tokens": tokens,
        "num_frames": sampler.num_frames, "sampling": sampler.mode, "sampling_rate": sampler.rate,
        "views": views, "crops": crops, "transform": dataclasses.asdict(transform),
        "backend": run["backend"], "vtome_version": vtome.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        metrics = evaluate(net, samples, out, sampler=sampler, transform=transform, crops=crops,
                           batch_size=batch_size, workers=workers, backend=run["backend"], heads=heads,
                           save_logits=save_logits, retry_failed=retry_failed, settings=settings,
                           device=run["device"], progress=progress)
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
    emit(metrics, as_json, json_out, None if as_json else Console())
    if not as_json:
        _print_summary(metrics, out)


def _done(out: str) -> int:
    """Clips recorded in OUT so far (predictions.jsonl and the part files of other processes)."""
    paths = [Path(out, PREDICTIONS), *Path(out).glob(PART_GLOB)]
    return len({r["id"] for path in paths for r in read_records(path)})


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
