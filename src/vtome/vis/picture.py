"""One clip, its merged tokens drawn over it, written as a PNG grid and an animated GIF."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vtome.vis.clips import model_input
from vtome.vis.groups import compact, pixel_groups, token_groups
from vtome.vis.layout import token_layout
from vtome.vis.render import grid, render, save_gif, save_png, upscale, with_title
from vtome.vis.trace import Trace, trace


@dataclass
class Picture:
    """frames: the clip (T, h*s, w*s, 3) uint8; merged: the groups drawn over it, same shape;
    groups: (T, h, w) pixel group ids (-1: dropped); units: (U, h', w') group id per input token (see
    groups.token_groups); tokens: per source row after each layer (see vtome.info)."""

    frames: np.ndarray
    merged: np.ndarray
    groups: torch.Tensor
    units: torch.Tensor
    tokens: list[int]
    layer: int

    @property
    def num_groups(self) -> int:
        return compact(self.groups)[1]


def draw(model: nn.Module, frames: torch.Tensor, traced: Trace, fill: str = "mean", border: int = 1, scale: int = 1,
         colours: int = 0) -> Picture:
    """frames (T, h, w, 3) uint8 and where the model's tokens went (first clip of the batch) -> a Picture.

    fill, border, scale: see render.render; colours: seed of the border colours."""
    layout = token_layout(model)
    units = token_groups(traced.assignment, layout)[:1]
    groups = pixel_groups(units, layout)[0]
    merged = render(frames, groups, fill=fill, border=border, scale=scale, seed=colours)
    return Picture(upscale(frames.numpy(), scale), merged, groups, units[0], traced.tokens, traced.layer)


def merged_picture(model: nn.Module, frames: torch.Tensor, layer: int | None = None, fill: str = "mean",
                   border: int = 1, scale: int = 1, colours: int = 0, prior: torch.Tensor | None = None,
                   **patch_kwargs) -> Picture:
    """Run `model` patched with patch_kwargs (r, schedule, mode, partition, ...) on frames (T, h, w, 3) uint8 at its
    input size and draw the tokens after `layer` (1-based; None: the final tokens). The model stays patched.
    fill, border, scale: see render.render; colours: seed of the border colours; prior: the clip's motion prior
    (partition="motion")."""
    traced = trace(model, model_input(frames, model), layer, prior, **patch_kwargs)
    return draw(model, frames, traced, fill, border, scale, colours)


def write(picture: Picture, out: str | Path, title: str | None = None, columns: int | None = None,
          fps: float = 4.0, gif: bool = True) -> list[Path]:
    """Write out (PNG: the clip above its merged tokens) and, with gif, out with .gif (both side by side,
    one frame after the other). Returns the paths written."""
    out = Path(out)
    paths = [save_png(with_title(grid([picture.frames, picture.merged], columns), title), out)]
    if gif:
        gap = np.full((*picture.frames.shape[:2], 2, 3), 255, dtype=np.uint8)
        paths.append(save_gif(np.concatenate([picture.frames, gap, picture.merged], axis=2), out.with_suffix(".gif"),
                              fps))
    return paths
