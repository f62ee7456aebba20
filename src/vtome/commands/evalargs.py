"""What `vtome eval` checks before the weights load: every option, the model's config (classes, frames, EPIC
heads, what vtome.patch allows for it), the split file (labels within the model's classes, at least one clip that
exists) and the output directory."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from vtome.commands.checks import (
    UserError,
    at_least,
    fail,
    input_dir,
    input_file,
    merge_settings,
    one_of,
    only_with,
    output_dir,
    partition_label,
    resolve_device,
)
from vtome.commands.modelspec import is_video, resolve
from vtome.commands.output import check_json_out
from vtome.data.epic import NUM_NOUNS, NUM_VERBS
from vtome.data.registry import DATASETS, load_samples
from vtome.data.samplers import DATASET_MODES, MODES
from vtome.data.samples import Sample
from vtome.data.transforms import CHANNELS
from vtome.evaluation.loop import ResumeMismatch, check_resume

PRETTY = {"vivit": "ViViT", "videomae": "VideoMAE", "timesformer": "TimeSformer",
          "motionformer": "Motionformer", "vjepa2": "V-JEPA 2"}
PROP_ATTN_HELP = ("Proportional attention (log size added to the attention logits). Default: the paper's choice "
                  "per model: on for ViViT, TimeSformer and Motionformer (and timm ViTs), off for VideoMAE.")


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
                 seed: int, settings: dict | None = None) -> str:
    name = f"{Path(model).name}-{dataset}-{mode}-r{r:g}-{schedule.replace(',', '_')}"
    name += f"-t{threshold:g}" if threshold is not None else ""
    partition = partition_label(settings or {})
    name += f"-{partition.replace(' ', '-')}" if partition else ""
    name += f"-seed{seed}" if seed else ""
    return str(Path("runs", name))


def partition_record(settings: dict, saliency: str | None) -> dict:
    """The partition settings as metrics.json and the resume guard record them (saliency: the vectors' file)."""
    return {key: settings[key] for key in ("partition", "gamma", "merge_weighting", "sample", "tau")} | {
        "saliency": str(Path(saliency).resolve()) if saliency else None}


def resolved_root(root: str) -> str:
    """--root as recorded in settings.json: absolute, so that the same folder matches however it is written."""
    return str(Path(root).resolve()) if root else ""


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


def prepare(o: dict) -> dict:
    """Check everything that can be checked without the weights (o: the command's options by name); returns
    what the run needs: spec, r, schedule (its name, or "30,20,10"), kwargs (of vtome.patch), patching, heads,
    samples, backend, device, out."""
    one_of("--dataset", o["dataset"], DATASETS)
    one_of("--sampling", o["sampling"], MODES)
    one_of("--channels", o["channels"], CHANNELS)
    # Every clip gives its motion prior (its file's motion vectors, else its frames' difference): prior=True.
    settings = merge_settings(o["r"], o["schedule"], o["mode"], o["threshold"], o["seed"], o["partition"], o["gamma"],
                              o["merge_weighting"], o["sample"], o["tau"], o["saliency"], prior=True)
    r, schedule = settings["r"], settings["schedule"]
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
    out = o["out"] or _default_out(o["model"], dataset, o["r"], o["schedule"], o["mode"], o["threshold"], o["seed"],
                                   settings)
    output_dir("--out", out)
    check_json_out(o["json_out"])

    spec = resolve(o["model"])
    meta = spec.empty()
    if not is_video(meta):
        raise fail("--model", o["model"], "is an image model; eval takes video classifiers (ViViT, VideoMAE, "
                                          "TimeSformer, Motionformer: a preset, a save_pretrained directory, a hub "
                                          "id or a .pyth checkpoint)")
    patching = bool(r) or o["mode"] != "merge" or not isinstance(schedule, str)
    kwargs = {**settings, "prop_attn": o["prop_attn"]}
    spec.check_patch(kwargs)
    key = "frames_per_clip" if meta.config.model_type == "vjepa2" else "num_frames"
    frames = getattr(meta.config, key)
    if o["num_frames"] not in (None, frames) and (meta.config.model_type != "timesformer" or patching):
        raise fail("--num-frames", o["num_frames"], f"this {PRETTY.get(meta.config.model_type, 'model')} takes "
                                                    f"{frames} frames per clip (config.{key})")
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
    known = dict(model=o["model"], dataset=dataset, root=resolved_root(o["root"]), split=o["split"], r=r,
                 schedule=schedule_name, mode=o["mode"], threshold=o["threshold"], seed=o["seed"], backend=backend,
                 views=o["views"], crops=o["crops"], **partition_record(settings, o["saliency"]))
    try:  # a rerun into the same --out: refused now, not after the weights load
        check_resume(out, known, partial=True)
    except ResumeMismatch as err:
        raise UserError(str(err)) from err
    return dict(spec=spec, r=r, schedule=schedule_name, kwargs=kwargs, patching=patching, heads=heads, samples=samples,
                backend=backend, device=device, out=out)
