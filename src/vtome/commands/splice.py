"""`vtome splice`: splice frames of another clip into a clip (paper Fig. 8) and report the share of merged
groups that hold tokens of both clips (0: merging never crosses over).

    vtome splice --model vivit-tiny --video synthetic:shapes --partner synthetic:halves --r 30 --out s.png
    vtome splice --model videomae-b --video a.mp4 --predictions runs/x/predictions.jsonl \\
        --choose nearest-same-class --out s.png        # partner from an eval run (--save-logits for nearest)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.console import Console

from vtome.commands import visargs as a
from vtome.vis.clips import model_input
from vtome.vis.layout import token_layout
from vtome.vis.render import grid, save_png, upscale, with_title
from vtome.vis.splice import CHOICES, PATTERNS, choose_partner, splice, splice_mask, spliced_picture


def _range(text: str | None) -> slice:
    if not text:
        return slice(None)
    start, _, end = text.partition(":")
    return slice(int(start) if start else None, int(end) if end else None)


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


def _partner_frames(net, record: dict, dataset: str | None, root: str, split: str | None, sampling: str):
    """The partner's frames, from its record: through the dataset's samples when given, else its path."""
    if dataset is None:
        return a.clip_of(net, record["path"], sampling)
    from vtome.data.registry import load_samples
    from vtome.data.samplers import default_sampler
    from vtome.data.samples import load_frames
    from vtome.vis.clips import fit

    samples = {s.id: s for s in load_samples(dataset, root, split)}
    sampler = default_sampler(net, num_frames=token_layout(net).frames, mode=sampling)
    return fit(load_frames(samples[record["id"]], sampler), net)


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
                                                     "for EPIC frame ranges): k400 | ssv2 | epic | folder.")] = None,
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
    as_json: a.Json = False,
) -> None:
    """Splice another clip's frames into a clip, merge, and count the merged groups spanning both clips. Rows:
    the clip, the partner, the spliced clip, its merged tokens."""
    if (partner is None) == (predictions is None):
        raise typer.BadParameter("give either --partner or --predictions")
    with a.user_errors():
        kwargs = a.patch_kwargs(r, schedule, mode, threshold, seed)
        net, frames = a.model_and_clip(model, video, sampling, seed)
        chosen = None
        if predictions is not None:
            from vtome.evaluation.results import read_records

            records = read_records(predictions)
            source = _source_record(records, video, clip_id) or {"id": clip_id or video, label_key: label}
            if choose.startswith("nearest") and logits_key not in source:
                source[logits_key] = _logits(net, frames)
            chosen = choose_partner(source, records, choose, label_key, logits_key, _range(logit_range), seed)
            other = _partner_frames(net, chosen, dataset, root, split, sampling)
        else:
            other = a.clip_of(net, partner, sampling, seed + 1)
        layout = token_layout(net)
        mask = splice_mask(layout.frames, 1 if layout.divided else layout.tube, share, pattern, seed)
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
        if as_json:
            print(json.dumps(summary))
            return
        console = Console()
        if chosen is not None:
            console.print(f"partner ({choose}): {chosen['id']}")
        console.print(f"merged groups spanning both clips: {score.spanning} of {score.merged} = "
                      f"[bold]{score.share:.1%}[/]")
        console.print(f"wrote {path}")
