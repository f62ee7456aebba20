"""One labelled clip of a dataset (`Sample`) and reading its frames, whatever its storage.

A Sample is a video file, a folder of frames, an explicit list of frame files (SSv2 frame lists) or a range
of numbered frames (EPIC `rgb_frames`, via `template`). `load_frames(sample, indices)` gives uint8
(T, H, W, 3) for all four.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from vtome.data.video import Indices, read_frames, read_video, resolve_indices


@dataclass(frozen=True)
class Sample:
    """A clip to classify. For EPIC-KITCHENS `labels` holds {"verb": v, "noun": n} and `label` the action."""

    id: str
    path: str  # video file or frame folder (shown in errors)
    label: int
    labels: dict[str, int] = field(default_factory=dict)
    frames: tuple[str, ...] | None = None  # explicit frame files, in order
    template: str | None = None  # frame file path with a `{frame}` field, e.g. ".../frame_{frame:010d}.jpg"
    first: int = 0  # first frame number for `template`
    count: int = 0  # number of frames for `template`


def sample_frames(sample: Sample) -> int | None:
    """How many frames the sample has when known without opening anything (frame lists and ranges)."""
    if sample.frames is not None:
        return len(sample.frames)
    if sample.template is not None:
        return sample.count
    return None


def load_frames(sample: Sample, indices: Indices = None, backend: str | None = None) -> torch.Tensor:
    """The frames of `sample` at `indices` (a list, a callable `total -> list`, or None for all):
    uint8 (T, H, W, 3). Raises FileNotFoundError / VideoError / IndexError for unreadable clips."""
    if sample.frames is not None:
        chosen = resolve_indices(indices, len(sample.frames), sample.path)
        return read_frames([sample.frames[i] for i in chosen])
    if sample.template is not None:
        chosen = resolve_indices(indices, sample.count, sample.path)
        return read_frames([sample.template.format(frame=sample.first + i) for i in chosen])
    return read_video(Path(sample.path), indices, backend=backend)
