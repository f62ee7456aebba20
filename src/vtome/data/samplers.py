"""Which frames of a video make a clip: frames x sampling rate (Kinetics style) or uniform segments (SSv2).

    sampler = FrameSampler(num_frames=16, mode="rate", rate=4)
    sampler(total=300)          # 16 frame numbers, one clip at the centre of the video
    sampler(total=300, view=2)  # with views=3: the last of three clips spread over the video

A FrameSampler is a callable `total -> frame numbers`, so it can be passed as `indices` to `read_video`.
Clips longer than the video repeat its last frame (rate) or repeat frames of short segments (uniform).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from torch import nn

MODES = ("rate", "uniform")

# Frames between sampled frames for Kinetics-style clips, per model_type (the checkpoints' training recipes:
# ViViT-B 32x2, VideoMAE-B 16x4, TimeSformer-B 8x32, Motionformer-B 16x4).
FAMILY_RATES = {"vivit": 2, "videomae": 4, "timesformer": 32, "motionformer": 4}

# The sampling the paper's datasets use: K400 frames x rate, SSv2 and EPIC segments uniform over the clip.
DATASET_MODES = {"k400": "rate", "ssv2": "uniform", "epic": "uniform", "folder": "rate"}


@dataclass(frozen=True)
class FrameSampler:
    """Frame numbers for one temporal view of a clip of `num_frames` frames."""

    num_frames: int
    mode: str = "rate"  # "rate" | "uniform"
    rate: int = 1  # frames between samples, for mode="rate"
    views: int = 1  # temporal views per video (averaged by the evaluation)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown sampling mode {self.mode!r}; choose from {', '.join(MODES)}")
        if self.num_frames < 1 or self.rate < 1 or self.views < 1:
            raise ValueError("num_frames, rate and views must be at least 1")

    def __call__(self, total: int, view: int = 0) -> list[int]:
        """`num_frames` frame numbers in [0, total) for temporal view `view` of `views`."""
        if total < 1:
            raise ValueError("a video with no frames has no clip")
        if self.mode == "uniform":
            # One frame per equal segment; one view takes segment centres, several spread inside the segments.
            segment = total / self.num_frames
            where = (view + 0.5) / self.views
            return [min(int(segment * (i + where)), total - 1) for i in range(self.num_frames)]
        span = (self.num_frames - 1) * self.rate + 1
        room = max(total - span, 0)
        start = room // 2 if self.views == 1 else round(room * view / (self.views - 1))
        return [min(start + i * self.rate, total - 1) for i in range(self.num_frames)]

    def view(self, view: int):
        """The callable `total -> frame numbers` of one view (for `read_video(indices=...)`)."""
        return functools.partial(self, view=view)


def default_sampler(model: nn.Module, dataset: str = "k400", views: int = 1, num_frames: int | None = None,
                    rate: int | None = None, mode: str | None = None) -> FrameSampler:
    """The sampler a model expects on a dataset: frames from its config, rate from its family, mode from the
    dataset (explicit arguments win)."""
    config = getattr(model, "config", None)
    frames = num_frames or getattr(config, "num_frames", None) or getattr(config, "frames_per_clip", None)
    if frames is None:
        raise ValueError("the model has no config.num_frames: pass num_frames")
    model_type = getattr(config, "model_type", "")
    return FrameSampler(
        num_frames=frames,
        mode=mode or DATASET_MODES.get(dataset, "rate"),
        rate=rate or FAMILY_RATES.get(model_type, 4),
        views=views,
    )
