"""From sources to groups: which input tokens (and so which pixels) ended up in the same merged token.

A group id names one final token of a clip. Ids are unique within a clip: for divided models, where each frame
(token slot) merges on its own, the ids of slot f are offset by f * N. -1 marks input tokens that were dropped.
"""

from __future__ import annotations

import torch

from vtome.vis.layout import TokenLayout


def assignment_from_source(source: torch.Tensor) -> torch.Tensor:
    """(rows, N, N0) bool source -> (rows, N0) long: the token holding each input token, -1 when none does."""
    held = source.any(dim=1)
    index = source.to(torch.uint8).argmax(dim=1)
    return index.masked_fill(~held, -1)


def token_groups(assignment: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
    """(rows, N0) assignment -> (clips, U, h, w) group id of every patch token, U time units of the clip.

    A time unit covers `layout.tube` frames (a divided model's unit is its token slot: one frame for TimeSformer).
    The class token (covering no pixels) is left out.
    """
    t, h, w = layout.grid
    if assignment.shape[1] != layout.num_tokens:
        raise ValueError(f"the source has {assignment.shape[1]} input tokens; the layout expects {layout.num_tokens}")
    patches = assignment[:, int(layout.class_token):]
    if not layout.divided:
        return patches.reshape(-1, t, h, w)
    frames = layout.rows_per_clip
    if patches.shape[0] % frames:
        raise ValueError(f"{patches.shape[0]} source rows is not a whole number of {frames}-frame clips")
    per_frame = patches.reshape(-1, frames, h * w)
    offset = (patches.max() + 1) * torch.arange(frames, device=patches.device)[None, :, None]
    return torch.where(per_frame >= 0, per_frame + offset, per_frame).reshape(-1, frames, h, w)


def pixel_groups(groups: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
    """(clips, U, h, w) token group ids -> (clips, frames, height, width) group id of every pixel.

    Pixels no token covers (a frame size that is not a multiple of the patch) get -1.
    """
    span = layout.tube
    ph, pw = layout.patch
    pixels = groups.repeat_interleave(span, 1).repeat_interleave(ph, 2).repeat_interleave(pw, 3)
    out = pixels.new_full((groups.shape[0], layout.frames, layout.height, layout.width), -1)
    out[:, :, : pixels.shape[2], : pixels.shape[3]] = pixels
    return out


def compact(groups: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Renumber the ids of one clip to 0..G-1 (in id order), keeping -1. Returns (ids like groups, G)."""
    ids, inverse = torch.unique(groups, return_inverse=True)
    dropped = bool((ids < 0).any())
    out = inverse - int(dropped)
    return out.masked_fill(groups < 0, -1), len(ids) - int(dropped)


def group_sizes(groups: torch.Tensor) -> torch.Tensor:
    """(...) group ids of one clip -> (G,) how many tokens each compacted group holds."""
    ids, count = compact(groups)
    return torch.bincount(ids[ids >= 0].flatten(), minlength=count)
