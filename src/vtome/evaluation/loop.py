"""The evaluation loop: a model over a dataset's clips, resumable, sharded over torchrun processes.

    metrics = evaluate(model, samples, "runs/vivit-k400-merge", sampler=sampler, transform=transform)

Writes OUT/predictions.jsonl (see vtome.evaluation.results for the keys) as clips are done and OUT/metrics.json at
the end. A rerun skips the ids already in predictions.jsonl; OUT/settings.json makes sure it has the same settings
(anything but date, limit, name and version: a rerun with another --root or --backend is refused, as those change
what a clip is). Under torchrun every process takes every N-th pending clip, and rank 0 merges and scores the lot:
the same records and metrics as one process.

metrics.json keys: the accuracies of vtome.evaluation.accuracy.accuracy (top1, top5 in percent; EPIC
verb_/noun_/action_ top1/top5), "total" (clips in the list), "evaluated", "correct", "failed", "failures" [{id,
path, error}], "padded" (clips with too few frames, whose frames repeat), "complete" (evaluated == total),
"throughput" {clips, clips_per_s (summed over processes, model forward only), wall_clips_per_s, model_seconds,
wall_seconds, processes, batch_size, device} measured in this run (kept from the last run that processed clips when
a rerun has nothing left), and every entry of `settings` (the command records model, model_type, name, dataset,
split, root, r, schedule, mode, threshold, seed, prop_attn, tokens, ...).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

import vtome
from vtome.data.clips import ClipDataset, collate
from vtome.data.samplers import FrameSampler
from vtome.data.samples import Sample
from vtome.data.transforms import ClipTransform
from vtome.evaluation import dist
from vtome.evaluation.accuracy import accuracy
from vtome.evaluation.predictions import records as make_records
from vtome.evaluation.results import (
    METRICS,
    PREDICTIONS,
    RecordWriter,
    consolidate,
    part_file,
    read_records,
    write_metrics,
)
from vtome.partition import Layout

log = logging.getLogger("vtome.eval")

SETTINGS = "settings.json"
# Settings that may change between a run and its resumption (they do not change the predictions).
RESUMABLE = {"date", "limit", "vtome_version", "name"}
# Settings recorded since a later version, with the value every run before had (so that those runs still resume).
ADDED = {"partition": "alternate", "gamma": 2, "merge_weighting": "size", "sample": True, "tau": 1.0, "saliency": None}


class ResumeMismatch(ValueError):
    """OUT already holds predictions made with other settings."""


class NothingEvaluated(RuntimeError):
    """No clip could be read: nothing is kept in OUT, so that a corrected rerun starts afresh."""


def check_resume(out: str | Path, settings: dict, partial: bool = False) -> None:
    """Raise ResumeMismatch when OUT holds predictions made with other settings (those not in RESUMABLE).
    partial: compare only the keys of `settings` (a check made before everything is known)."""
    path = Path(out) / SETTINGS
    if not path.is_file():
        return
    fixed = {k: v for k, v in json.loads(json.dumps(settings)).items() if k not in RESUMABLE}  # JSON types
    recorded = {k: v for k, v in ADDED.items() if k in fixed} | json.loads(path.read_text())
    before = {k: v for k, v in recorded.items() if k not in RESUMABLE}
    keys = fixed.keys() if partial else before.keys() | fixed.keys()
    changed = sorted(k for k in keys if before.get(k) != fixed.get(k))
    if changed:
        raise ResumeMismatch(
            f"{out} holds predictions made with other settings ({', '.join(changed)} differ): "
            "use another --out, or delete it to start again"
        )


def _check_settings(out: Path, settings: dict, rank: int) -> None:
    """Refuse to mix predictions of different settings in one OUT; record the settings of a new OUT."""
    check_resume(out, settings)
    if rank == 0 and not (out / SETTINGS).is_file():
        (out / SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")


def forward(model: nn.Module, video: torch.Tensor) -> torch.Tensor:
    """(B, V, T, 3, H, W) views of B clips -> (B, K) logits averaged over the V views."""
    batch, views = video.shape[:2]
    out = model(video.flatten(0, 1))
    logits = out.logits if hasattr(out, "logits") else out
    return logits.reshape(batch, views, -1).mean(1)


def _pending(samples: Sequence[Sample], out: Path, retry_failed: bool) -> list[int]:
    done = {r["id"]: r for r in read_records(out / PREDICTIONS)}
    return [
        i for i, s in enumerate(samples)
        if s.id not in done or (retry_failed and done[s.id].get("error"))
    ]


def _run_shard(model, dataset, out, rank, world, batch_size, workers, heads, save_logits, device, progress):
    """Evaluate `dataset` (this process's shard), appending records; returns (clips, model seconds)."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate)
    path = out / PREDICTIONS if world == 1 else part_file(out, rank)
    clips, seconds, hits, seen = 0, 0.0, 0, 0
    bar = tqdm(total=len(dataset), desc=f"eval{'' if world == 1 else f' (rank 0 of {world})'}", unit="clip",
               disable=not progress or rank != 0, dynamic_ncols=True)
    with RecordWriter(path) as writer, torch.inference_mode():
        for batch in loader:
            logits = None
            if batch["video"] is not None:
                video = batch["video"].to(device)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if batch["prior"] is not None:  # (B, V, frames, height, width): the motion prior of every view
                    vtome.set_prior(model, batch["prior"].flatten(0, 1).to(device))
                start = time.perf_counter()
                logits = forward(model, video)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                seconds += time.perf_counter() - start
                clips += video.shape[0]
            done = make_records(batch, logits, heads, save_logits)
            writer.write(done)
            for record in done:
                if record.get("error"):
                    message = f"unreadable clip {record['id']} ({record['path']}): {record['error']}"
                    if progress and rank == 0:
                        tqdm.write(message, file=sys.stderr)  # above the bar; stdout may be --json's
                    else:
                        log.warning(message)
            seen += len(done)
            hits += sum(r["pred"] == r["label"] for r in done if r["pred"] is not None)
            bar.set_postfix(top1=f"{100 * hits / seen:.1f}%")
            bar.update(len(done))
    bar.close()
    return clips, seconds


def evaluate(
    model: nn.Module,
    samples: Sequence[Sample],
    out: str | Path,
    *,
    sampler: FrameSampler,
    transform: ClipTransform,
    crops: int = 1,
    batch_size: int = 1,
    workers: int = 0,
    backend: str | None = None,
    heads: tuple[int, int] | None = None,
    save_logits: bool = False,
    retry_failed: bool = False,
    settings: dict | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    prior_grid: Layout | None = None,
) -> dict:
    """Evaluate `model` on `samples`; returns the metrics written to OUT/metrics.json (on every process).

    heads: (verbs, nouns) for EPIC models (outputs = verb logits then noun logits). retry_failed: evaluate clips
    recorded as unreadable again. settings: recorded in metrics.json as they are. prior_grid: the model's token grid
    when it is patched with partition="motion": every clip's motion prior is computed (vtome.motion) and set before
    its forward pass; each record says its "prior_source" and metrics.json counts them ("prior_sources")."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rank, world, initialised = dist.setup()
    try:
        device = torch.device(device or next(model.parameters()).device)
        model.to(device).eval()
        order = [s.id for s in samples]
        if len(set(order)) != len(order):
            raise ValueError("sample ids are not unique: results could not be resumed or merged")
        _check_settings(out, json.loads(json.dumps(settings or {})), rank)  # (JSON types, as stored)
        if rank == 0:
            consolidate(out, order)  # also repairs a line cut off by an interrupted run
        dist.barrier(world)
        pending = _pending(samples, out, retry_failed)[rank::world]
        dataset = ClipDataset([samples[i] for i in pending], sampler, transform, crops, backend, prior_grid)
        wall = time.perf_counter()
        clips, seconds = _run_shard(model, dataset, out, rank, world, batch_size, workers, heads, save_logits,
                                    device, progress)
        wall = time.perf_counter() - wall
        stats = dist.gather((clips, seconds, wall), world)
        dist.barrier(world)  # every part file is complete
        metrics, nothing = None, None
        if rank == 0:
            records = consolidate(out, order)
            nothing = _nothing_read(records, out)
            if nothing is None:
                metrics = _metrics(records, order, out, stats, batch_size, device, heads, settings or {})
                write_metrics(out, metrics)
        metrics, nothing = dist.broadcast((metrics, nothing), world)
        if nothing is not None:
            raise NothingEvaluated(nothing)
        return metrics
    finally:
        dist.teardown(initialised)


def _nothing_read(records: list[dict], out: Path) -> str | None:
    """None when some clip in OUT has a prediction; else the reason, after removing the run's files (they hold
    only failures, and would make a corrected rerun skip those clips or refuse its settings)."""
    if any(r.get("pred") is not None for r in records):
        return None
    for name in (PREDICTIONS, SETTINGS, METRICS):
        (out / name).unlink(missing_ok=True)
    example = next(iter(records), None)
    why = f" (e.g. {example['path']}: {example.get('error', '')})" if example else ""
    return (f"none of the {len(records)} clips could be read{why}; nothing was written to {out}: check --root, "
            "--split and --backend")


def _metrics(records, order, out, stats, batch_size, device, heads, settings) -> dict:
    wanted = set(order)
    records = [r for r in records if r["id"] in wanted]
    metrics = {**settings, **accuracy(records, epic=heads is not None)}
    metrics["total"] = len(order)
    sources = Counter(r["prior_source"] for r in records if r.get("prior_source"))
    if sources:
        metrics["prior_sources"] = dict(sorted(sources.items()))
    metrics["complete"] = metrics["evaluated"] == len(order)
    if heads is not None:
        metrics["verbs"], metrics["nouns"] = heads
    clips = sum(s[0] for s in stats)
    if clips:
        model_seconds = sum(s[1] for s in stats)
        wall = max(s[2] for s in stats)
        metrics["throughput"] = {
            "clips": clips,
            "clips_per_s": sum(c / s for c, s, _ in stats if c and s),
            "wall_clips_per_s": clips / wall if wall else None,
            "model_seconds": model_seconds,
            "wall_seconds": wall,
            "processes": len(stats),
            "batch_size": batch_size,
            "device": str(device),
        }
    elif (out / METRICS).is_file():  # nothing left to do: keep what the run that did the work measured
        metrics["throughput"] = json.loads((out / METRICS).read_text()).get("throughput")
    else:
        metrics["throughput"] = None
    return metrics
