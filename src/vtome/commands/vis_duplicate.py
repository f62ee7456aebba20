"""`vtome vis-duplicate`: how one layer merges on its own (paper Fig. 7). Each chosen layer is applied Q times
as merge-only copies (its keys decide, tokens are only averaged); one row of pictures per layer.

    vtome vis-duplicate --model videomae-b --video clip.mp4 --layers 1,12 --copies 12 --r 0.1 --out dup.png
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vtome.commands import visargs as a
from vtome.vis.clips import model_input
from vtome.vis.duplicate import STARTS, duplicate_layer, model_depth
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
    as_json: a.Json = False,
) -> None:
    """Merge a clip with only one layer, applied Q times, for each chosen layer: the clip on top, then one row
    per layer."""
    if start not in STARTS:
        raise typer.BadParameter(f"--start must be one of {', '.join(STARTS)}")
    with a.user_errors():
        kwargs = a.patch_kwargs(r, schedule, mode, threshold, seed)
        net, frames = a.model_and_clip(model, video, sampling, seed)
        depth = model_depth(net)
        chosen = [int(v) for v in layers.split(",")] if layers else sorted({1, depth})
        copies = copies or depth
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
        if as_json:
            print(json.dumps(summary))
            return
        console = Console()
        for layer, item in summary["layers"].items():
            console.print(f"layer {layer} x{copies}: tokens {' -> '.join(map(str, item['tokens']))}, "
                          f"{item['groups']} groups")
        console.print(f"wrote {path}")
