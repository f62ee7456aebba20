"""`vtome vis`: the merged tokens of a clip, after the last layer or any layer, as a PNG grid and a GIF.

    vtome vis --model videomae-b --video clip.mp4 --r 0.1 --out pictures/clip.png          # final tokens
    vtome vis --model vivit-tiny --video synthetic:shapes --r 30 --layer 1 --out l1.png     # after layer 1
    vtome vis --model videomae-b --video clip.mp4 --r 0.5 --partition center --out center.png  # where tokens stay
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vtome.commands import partitionargs as p
from vtome.commands import visargs as a
from vtome.commands.checks import UserError, merge_settings
from vtome.commands.output import Json, JsonOut, check_json_out, console, emit
from vtome.vis.picture import merged_picture, write


def vis_command(
    out: Annotated[Path, typer.Option(help="PNG to write (the GIF goes next to it, .gif).")],
    model: a.Model = "vivit-tiny",
    video: a.Video = "synthetic:shapes",
    r: a.R = 0.1,
    schedule: a.ScheduleOpt = "constant",
    mode: a.Mode = "merge",
    threshold: a.Threshold = None,
    partition: p.Partition = "alternate",
    gamma: p.Gamma = None,
    merge_weighting: p.MergeWeighting = "size",
    sample: p.Sample = True,
    tau: p.Tau = 1.0,
    saliency: p.Saliency = None,
    layer: Annotated[int | None, typer.Option(help="Draw the tokens after this layer (1-based; 0: the input tokens; "
                                                   "default: the last).")] = None,
    fill: a.Fill = "mean",
    border: a.Border = None,
    scale: a.Scale = None,
    columns: a.Columns = 8,
    gif: Annotated[bool, typer.Option(help="Also write an animated GIF.")] = True,
    fps: Annotated[float, typer.Option(help="GIF frames per second.")] = 4.0,
    sampling: a.Sampling = "uniform",
    seed: a.Seed = 0,
    device: a.Device = None,
    as_json: Json = False,
    json_out: JsonOut = None,
) -> None:
    """Draw the merged tokens over a clip: each group in its mean colour (or pixels) with its own border colour,
    the same in every frame; the clip on top, its tokens below."""
    kwargs = merge_settings(r, schedule, mode, threshold, seed, partition, gamma, merge_weighting, sample, tau,
                            saliency, prior=True)
    a.check_drawing(fill, border, scale, columns, sampling)
    if not fps > 0:
        raise UserError(f"--fps {fps:g}: must be above 0")
    a.png_out(out)
    check_json_out(json_out)
    spec, frames, device = a.prepare(model, video, sampling, seed, device, kwargs)
    a.check_layer("--layer", layer, spec)
    found = a.clip_prior(spec, video, frames, sampling) if partition == "motion" else None

    net = a.load(spec, seed, device)
    scale = a.auto_scale(net, scale)
    picture = merged_picture(net, frames, layer, fill, a.auto_border(scale, border), scale, seed,
                             prior=None if found is None else found.prior.to(device), **kwargs)
    where = "final tokens" if layer is None else f"after layer {picture.layer}"
    title = f"{a.describe(model, kwargs)}  {where}: {picture.num_groups} groups"
    if found is not None:
        title += f" (motion prior: {found.source.replace('_', ' ')})"
    paths = write(picture, out, title, columns, fps, gif)
    summary = {"written": [str(path) for path in paths], "layer": picture.layer, "groups": picture.num_groups,
               "tokens": picture.tokens, "prior_source": None if found is None else found.source}
    text = console(as_json)
    text.print(f"tokens per layer: {' -> '.join(map(str, picture.tokens))}; {where}: {picture.num_groups} groups")
    if found is not None:
        text.print(f"motion prior from the {found.source.replace('_', ' ')}")
    for path in paths:
        text.print(f"wrote {path}")
    emit(summary, as_json, json_out, text)
