"""`vtome vis-duplicate`: how one layer merges on its own (paper Fig. 7). Each chosen layer is applied Q times
as merge-only copies (its keys decide, tokens are only averaged); one row of pictures per layer.

    vtome vis-duplicate --model videomae-b --video clip.mp4 --layers 1,12 --copies 12 --r 0.1 --out dup.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vtome.commands import visargs as a
from vtome.commands.checks import at_least, int_list, merge_settings, one_of
from vtome.commands.output import Json, JsonOut, check_json_out, console, emit
from vtome.vis.clips import model_input
from vtome.vis.duplicate import STARTS, duplicate_layer
from vtome.vis.picture import draw
from vtome.vis.render import grid, save_png, upscale, with_title


def duplicate_command(
    out: Annotated[Path, typer.Option(help="PNG to write.")],
    model: a.Model = "vivit-tiny",
    video: a.Video = "synthetic:shapes",
    layers: Annotated[str | None, typer.Option(help="Layers to duplicate, 1-based, comma separated (default: the "
                                                    "first and the last).")] = None,
    copies: Annotated[int | None, typer.Option(help="Merge-only copies of each layer (default: the model's depth)."
                                               )] = None,
    r: a.R = 0.1,
    schedule: a.ScheduleOpt = "constant",
    mode: a.Mode = "merge",
    threshold: a.Threshold = None,
    start: Annotated[str, typer.Option(help="embeddings: copies start from the patch embeddings (the paper); "
                                            "layer: from the tokens entering that layer unmerged.")] = "embeddings",
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
    """Merge a clip with only one layer, applied Q times, for each chosen layer: the clip on top, then one row
    per layer."""
    kwargs = merge_settings(r, schedule, mode, threshold, seed)
    one_of("--start", start, STARTS)
    at_least("--copies", copies, 1)
    a.check_drawing(fill, border, scale, columns, sampling)
    a.png_out(out)
    check_json_out(json_out)
    spec, frames, device = a.prepare(model, video, sampling, seed, device, kwargs)
    depth = a.depth(spec)
    chosen = int_list("--layers", layers, 1, depth) if layers is not None else sorted({1, depth})
    copies = copies or depth

    net = a.load(spec, seed, device)
    scale = a.auto_scale(net, scale)
    x = model_input(frames, net)
    rows, summary = [upscale(frames.numpy(), scale)], {"layers": {}}
    for layer in chosen:
        traced = duplicate_layer(net, x, layer, copies, start=start, **kwargs)
        picture = draw(net, frames, traced, fill, a.auto_border(scale, border), scale, seed)
        rows.append(picture.merged)
        summary["layers"][layer] = {"groups": picture.num_groups, "tokens": traced.tokens}
    title = (f"{a.describe(model, kwargs)}  rows: clip, " + ", ".join(f"layer {i}" for i in chosen)
             + f" (x{copies} merge-only copies, from {start})")
    path = save_png(with_title(grid(rows, columns), title), out)
    summary["written"] = [str(path)]
    text = console(as_json)
    for layer, item in summary["layers"].items():
        text.print(f"layer {layer} x{copies}: tokens {' -> '.join(map(str, item['tokens']))}, {item['groups']} groups")
    text.print(f"wrote {path}")
    emit(summary, as_json, json_out, text)
