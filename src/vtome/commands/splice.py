"""`vtome splice`: splice frames of another clip into a clip (paper Fig. 8) and report the share of merged
groups that hold tokens of both clips (0: merging never crosses over).

    vtome splice --model vivit-tiny --video synthetic:shapes --partner synthetic:halves --r 30 --out s.png
    vtome splice --model videomae-b --video a.mp4 --predictions runs/x/predictions.jsonl \\
        --choose nearest-same-class --out s.png        # partner from an eval run (--save-logits for nearest)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import typer

from vtome.commands import visargs as a
from vtome.commands.checks import UserError, fail, input_file, merge_settings, one_of, only_with
from vtome.commands.output import Json, JsonOut, check_json_out, console, emit
from vtome.data.registry import DATASETS
from vtome.vis.clips import model_input
from vtome.vis.layout import token_layout
from vtome.vis.render import grid, save_png, upscale, with_title
from vtome.vis.splice import CHOICES, PATTERNS, choose_partner, splice, splice_mask, spliced_picture


def _range(text: str | None) -> slice:
    """--logit-range start:end (either may be left out) as a slice."""
    if not text:
        return slice(None)
    start, colon, end = text.partition(":")
    try:
        if not colon:
            raise ValueError
        return slice(int(start) if start.strip() else None, int(end) if end.strip() else None)
    except ValueError as err:
        raise fail("--logit-range", text, "give start:end in whole numbers (e.g. 97: for the EPIC nouns)") from err


def _source_record(records: list[dict], video: str, clip_id: str | None) -> dict | None:
    """The record of the clip being spliced into: by id, else by its path."""
    for record in records:
        if record["id"] == clip_id or (clip_id is None and Path(record.get("path", "")).resolve() == Path(video)
                                       .resolve()):
            return record
    return None


def _logits(net: torch.nn.Module, frames: torch.Tensor) -> list[float]:
    import vtome

    vtome.unpatch(net)
    with torch.inference_mode():
        out = net(model_input(frames, net))
    return (out.logits if hasattr(out, "logits") else out)[0].float().tolist()


def _partner_frames(meta, record: dict, dataset: str | None, root: str, split: str | None, sampling: str):
    """The partner's frames, from its record: through the dataset's samples when given, else its path."""
    if dataset is None:
        return a.clip_of(meta, record["path"], sampling, option=f"partner {record['id']} (from --predictions):")
    from vtome.data.registry import load_samples
    from vtome.data.samplers import default_sampler
    from vtome.data.samples import load_frames
    from vtome.data.video import VideoError
    from vtome.vis.clips import fit

    try:
        samples = {s.id: s for s in load_samples(dataset, root, split)}
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"--dataset {dataset}: {err}") from err
    if record["id"] not in samples:
        raise UserError(f"partner {record['id']} (from --predictions) is not in the {dataset} split {split or root}")
    sampler = default_sampler(meta, num_frames=token_layout(meta).frames, mode=sampling)
    try:
        return fit(load_frames(samples[record["id"]], sampler), meta)
    except (VideoError, IndexError, OSError, RuntimeError) as err:
        raise UserError(f"partner {record['id']}: cannot read it ({type(err).__name__}: {err})") from err


def _partner_from_predictions(predictions: Path, video: str, clip_id: str | None, label: int | None, choose: str,
                              label_key: str, logits_key: str) -> tuple[list[dict], dict]:
    """The records of --predictions and the record of --video (or a stand-in with --id / --label)."""
    from vtome.evaluation.results import read_records

    records = read_records(predictions)
    if not records:
        raise fail("--predictions", predictions, "holds no prediction records (predictions.jsonl of vtome eval)")
    if "same-class" in choose and not any(label_key in r for r in records):
        raise fail("--label-key", label_key, f"no record of {predictions} has it (EPIC: noun_label or verb_label)")
    source = _source_record(records, video, clip_id)
    if source is None:
        if clip_id is not None and label is None:
            raise fail("--id", clip_id, f"is not in {predictions}; pass --label N (the class of --video)")
        if "same-class" in choose and label is None:
            raise fail("--video", video, f"is not in {predictions} (matched by path): pass --id ID (its id there) "
                                         "or --label N (its class)")
        source = {"id": clip_id or video, label_key: label}
    elif label is not None:
        source = {**source, label_key: label}
    if choose.startswith("nearest") and not any(logits_key in r for r in records):
        raise fail("--choose", choose, f"needs {logits_key!r} in {predictions} (run vtome eval with --save-logits), "
                                       "or use --choose random / same-class")
    return records, source


def _choose(source: dict, records: list[dict], choose: str, label_key: str, logits_key: str, logit_slice: slice,
            seed: int) -> dict:
    try:
        return choose_partner(source, records, choose, label_key, logits_key, logit_slice, seed)
    except ValueError as err:
        raise UserError(f"--choose {choose}: {err}") from err


def splice_command(
    out: Annotated[Path, typer.Option(help="PNG to write.")],
    model: a.Model = "vivit-tiny",
    video: a.Video = "synthetic:shapes",
    partner: Annotated[str | None, typer.Option(help="The clip to splice in (file, folder or synthetic:...).")
                       ] = None,
    predictions: Annotated[Path | None, typer.Option(help="predictions.jsonl of an eval run to choose the "
                                                          "partner from (its 'path' is read).")] = None,
    choose: Annotated[str, typer.Option(help=" | ".join(CHOICES))] = "nearest-same-class",
    clip_id: Annotated[str | None, typer.Option("--id", help="The id of --video in --predictions (default: "
                                                              "matched by path).")] = None,
    label: Annotated[int | None, typer.Option(help="The class of --video when it is not in --predictions.")] = None,
    label_key: Annotated[str, typer.Option(help="Record key of the class (EPIC: noun_label).")] = "label",
    logits_key: Annotated[str, typer.Option(help="Record key of the logits.")] = "logits",
    logit_range: Annotated[str | None, typer.Option(help="Part of the logits compared, start:end (EPIC nouns: "
                                                         "97:).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Read the partner through this dataset's samples (needed "
                                                     "for EPIC frame ranges): k400 | ssv2 | epic | folder (with "
                                                     "--predictions).")] = None,
    root: Annotated[str, typer.Option(help="Dataset root (with --dataset).")] = "",
    split: Annotated[str | None, typer.Option(help="Dataset split file (with --dataset).")] = None,
    pattern: Annotated[str, typer.Option(help=" | ".join(PATTERNS))] = "random",
    share: Annotated[float, typer.Option(help="Share of the time units taken from the partner.")] = 0.5,
    r: a.R = 0.1,
    schedule: a.ScheduleOpt = "constant",
    mode: a.Mode = "merge",
    threshold: a.Threshold = None,
    layer: Annotated[int | None, typer.Option(help="Score the tokens after this layer (default: the last).")
                     ] = None,
    fill: a.Fill = "mean",
    border: a.Border = None,
    scale: a.Scale = None,
    columns: a.Columns = 8,
    sampling: a.Sampling = "uniform",
    seed: a.Seed = 0,
    device: a.Device = None,
    as_json: Json = False,
    json_out: JsonOut = None,
) -> None:
    """Splice another clip's frames into a clip, merge, and count the merged groups spanning both clips. Rows:
    the clip, the partner, the spliced clip, its merged tokens."""
    if (partner is None) == (predictions is None):
        raise UserError("give either --partner (a clip) or --predictions (an eval run's predictions.jsonl)")
    kwargs = merge_settings(r, schedule, mode, threshold, seed)
    one_of("--choose", choose, CHOICES)
    one_of("--pattern", pattern, PATTERNS)
    one_of("--dataset", dataset, DATASETS)
    if not 0 <= share <= 1:
        raise fail("--share", share, "must be in [0, 1] (the share of the time units taken from the partner)")
    logit_slice = _range(logit_range)
    for option, value in (("--choose", choose != "nearest-same-class"), ("--id", clip_id is not None),
                          ("--label", label is not None), ("--dataset", dataset is not None),
                          ("--logit-range", logit_range is not None)):
        only_with(option, value, predictions is not None, "with --predictions")
    only_with("--root", bool(root), dataset is not None, "with --dataset")
    only_with("--split", split is not None, dataset is not None, "with --dataset")
    input_file("--predictions", predictions)
    a.check_drawing(fill, border, scale, columns, sampling)
    a.png_out(out)
    check_json_out(json_out)
    spec, frames, device = a.prepare(model, video, sampling, seed, device, kwargs)
    a.check_layer("--layer", layer, spec)
    meta = spec.empty()
    chosen, records, source = None, [], None
    if predictions is not None:
        records, source = _partner_from_predictions(predictions, video, clip_id, label, choose, label_key, logits_key)
        if not choose.startswith("nearest"):  # the partner is known now: read it before the weights load
            chosen = _choose(source, records, choose, label_key, logits_key, logit_slice, seed)
            other = _partner_frames(meta, chosen, dataset, root, split, sampling)
    else:
        other = a.clip_of(meta, partner, sampling, seed + 1, option="--partner")

    net = a.load(spec, seed, device)
    if predictions is not None and choose.startswith("nearest"):
        if logits_key not in source:
            source[logits_key] = _logits(net, frames)
        chosen = _choose(source, records, choose, label_key, logits_key, logit_slice, seed)
        other = _partner_frames(meta, chosen, dataset, root, split, sampling)
    layout = token_layout(net)
    mask = splice_mask(layout.frames, layout.tube, share, pattern, seed)
    scale = a.auto_scale(net, scale)
    picture, score = spliced_picture(net, frames, other, mask, layer, fill, a.auto_border(scale, border), scale,
                                     seed, **kwargs)
    rows = [upscale(x.numpy(), scale) for x in (frames, other, splice(frames, other, mask))] + [picture.merged]
    title = (f"{a.describe(model, kwargs)}  rows: clip, partner, spliced, tokens;  groups spanning both clips: "
             f"{score.spanning}/{score.merged} = {score.share:.1%}")
    path = save_png(with_title(grid(rows, columns), title), out)
    summary = {"share": score.share, "spanning": score.spanning, "merged": score.merged,
               "partner": None if chosen is None else chosen["id"], "from_partner": mask.tolist(),
               "written": [str(path)]}
    text = console(as_json)
    if chosen is not None:
        text.print(f"partner ({choose}): {chosen['id']}")
    text.print(f"merged groups spanning both clips: {score.spanning} of {score.merged} = [bold]{score.share:.1%}[/]")
    text.print(f"wrote {path}")
    emit(summary, as_json, json_out, text)
