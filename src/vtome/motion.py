"""Motion priors for partition="motion" (Video Token Merging): how much each layer-1 token of a clip moves.

    found = vtome.motion_prior("clip.mp4", model)    # found.prior (1, frames, height, width), found.source
    vtome.patch(model, r=0.5, partition="motion")
    vtome.set_prior(model, found.prior)              # for the next forward pass

VTM reads motion from the compressed stream: the codec's motion vectors, which PyAV exports with the decoder
option flags2=+export_mvs. A token's value is then the mean, over its patch and its tubelet's frames, of the
length of the motion vector of the block covering each pixel, in pixels of the model's input frames (after its
resize). A frame without vectors (intra-coded) takes those of the nearest frame that has some. A stream with none
at all (intra-only codecs such as MJPEG, frame folders) and a clip given as a tensor fall back to the mean absolute
difference to the previous sampled frame, in intensity levels 0..255 averaged over the colour channels (the first
frame takes the second's). `.source` says which: "motion_vectors" or "frame_difference".

The frames are those vtome's evaluation samples for the model (`vtome.data.samplers.default_sampler`, or the
sampler given) and the geometry is its preprocessing (`vtome.data.transforms.clip_transform`: short-side resize,
centre crop), so that every value sits on the token it describes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vtome.data.samplers import FrameSampler, default_sampler
from vtome.data.transforms import ClipTransform, clip_transform
from vtome.data.video import VideoError, read_video, resolve_indices
from vtome.models import clip_frames
from vtome.partition import Layout

SOURCES = ("motion_vectors", "frame_difference")
# The frame numbers of each temporal view, or a callable `total frames -> those lists`.
Views = Sequence[Sequence[int]] | Callable[[int], Sequence[Sequence[int]]]


@dataclass(frozen=True)
class MotionPrior:
    """prior: (batch, frames, height, width) float32, one value per layer-1 token (`vtome.set_prior` takes it);
    source: "motion_vectors" (the codec's) or "frame_difference" (the fallback)."""

    prior: torch.Tensor
    source: str


def token_grid(model: nn.Module) -> Layout:
    """The layer-1 token grid of a video model: its patched state's layout, else its family's."""
    from vtome.patch.registry import find_family

    family = find_family(model)
    layout = getattr(getattr(model, "_vtome", None), "layout", None)
    if layout is None and family.layout is not None:
        layout = family.layout(model)
    if layout is None or clip_frames(model) is None:
        raise ValueError(f"a motion prior needs a video model with a patch grid; this is a {family.name} model")
    return layout


def motion_prior(
    video: str | Path | torch.Tensor, model: nn.Module, *, sampler: FrameSampler | None = None,
    transform: ClipTransform | None = None, backend: str | None = None,
) -> MotionPrior:
    """The motion prior of a clip at `model`'s layer-1 token grid (see the module docstring).

    video: a video file or a frame folder (read with `sampler`'s frames: by default those vtome's evaluation takes
        for the model; one prior per temporal view); or a decoded clip (frame difference only): uint8 frames
        (T, H, W, 3) as decoded (the model's resize and centre crop are applied), or the model's float input
        (T, 3, h, w) or (batch, T, 3, h, w) as `transform` makes it.
    transform: the preprocessing (default: `clip_transform(model)`).
    backend: the decoder of the frame-difference fallback (see vtome.data.video).
    Returns MotionPrior with prior (views or batch, frames, height, width).
    """
    grid = token_grid(model)
    transform = transform or clip_transform(model)
    frames = clip_frames(model)
    if isinstance(video, torch.Tensor):
        return MotionPrior(tensor_prior(video, grid, transform, frames), "frame_difference")
    path = Path(video)
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path}")
    sampler = sampler or default_sampler(model)
    return views_prior(path, lambda total: [sampler(total, v) for v in range(sampler.views)], grid, transform,
                      backend=backend)


def views_prior(path: Path | None, views: Views, grid: Layout, transform: ClipTransform, crops: int = 1,
                frames: Sequence[torch.Tensor] | None = None, backend: str | None = None) -> MotionPrior:
    """The prior of temporal views of one clip: (views * crops, frames, height, width).

    path: its video file (motion vectors, when the stream has some) or frame folder; None: `frames` only.
    views: the frame numbers of each view, or a callable `total -> those lists`.
    frames: each view's decoded uint8 frames (T, H, W, 3) when already read (for the fallback).
    """
    maps = vector_maps(path, views) if path is not None and path.is_file() else None
    if maps is not None:
        moved = [transform.spatial_maps(m[:, None] * _scale(transform, m.shape[-2:]), crops)[:, :, 0] for m in maps]
        return MotionPrior(_pool(torch.cat(moved), grid), "motion_vectors")
    if frames is None:
        frames = read_views(path, views, backend)
    levels = torch.cat([transform.levels(transform.spatial_views(f, crops)) for f in frames])
    return MotionPrior(_pool(_difference(levels), grid), "frame_difference")


def tensor_prior(video: torch.Tensor, grid: Layout, transform: ClipTransform, frames: int) -> torch.Tensor:
    """Frame-difference prior of a decoded clip (see motion_prior) -> (batch, frames', height, width)."""
    if video.dtype == torch.uint8:
        if video.dim() != 4 or video.shape[-1] != 3:
            raise ValueError(f"uint8 frames must be (T, H, W, 3); got shape {tuple(video.shape)}")
        levels = transform.levels(transform.spatial_views(video, 1))
    elif video.is_floating_point():
        if video.dim() == 4:
            video = video[None]
        if video.dim() != 5 or video.shape[2] != 3:
            raise ValueError(f"a model input must be (T, 3, h, w) or (batch, T, 3, h, w); got {tuple(video.shape)}")
        levels = transform.levels(video.float())
    else:
        raise ValueError(f"a clip tensor must be uint8 frames or the model's float input; got {video.dtype}")
    if levels.shape[1] != frames or tuple(levels.shape[-2:]) != tuple(transform.crop):
        raise ValueError(f"the clip has {levels.shape[1]} frames of {tuple(levels.shape[-2:])} after the model's "
                         f"resize and crop; the model takes {frames} of {tuple(transform.crop)}")
    return _pool(_difference(levels), grid)


def read_views(path: Path, views: Views, backend: str | None = None) -> list[torch.Tensor]:
    """Each view's uint8 frames (T, H, W, 3), every frame read once."""
    wanted: list[list[int]] = []

    def indices(total: int) -> list[int]:
        wanted.extend(views(total) if callable(views) else views)
        return _union(wanted)

    frames = read_video(path, indices, backend=backend)
    row = {frame: i for i, frame in enumerate(_union(wanted))}
    return [frames[[row[i] for i in view]] for view in wanted]


def vector_maps(path: Path, views: Views) -> list[torch.Tensor] | None:
    """Each view's per-pixel motion-vector lengths (T, H, W) float32, in pixels of the video; None when the stream
    exports no motion vectors (or PyAV is not installed)."""
    try:
        import av
    except ImportError:
        return None
    vectors: list[np.ndarray | None] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.options = {"flags2": "+export_mvs"}
            for frame in container.decode(stream):
                side = frame.side_data.get("MOTION_VECTORS")
                found = None if side is None else side.to_ndarray()
                vectors.append(found if found is not None and len(found) else None)
                size = (frame.height, frame.width)
    except Exception as err:  # av.FFmpegError and friends
        raise VideoError(f"PyAV cannot decode {path}: {err}") from err
    have = np.array([i for i, v in enumerate(vectors) if v is not None])
    if not have.size:
        return None
    painted: dict[int, np.ndarray] = {}
    out = []
    for view in views(len(vectors)) if callable(views) else views:
        maps = []
        for i in resolve_indices(view, len(vectors), path):
            nearest = int(have[np.abs(have - i).argmin()])  # an intra frame takes its nearest coded neighbour's
            if nearest not in painted:
                painted[nearest] = paint(vectors[nearest], *size)
            maps.append(painted[nearest])
        out.append(torch.from_numpy(np.stack(maps)))
    return out


def paint(vectors: np.ndarray, height: int, width: int) -> np.ndarray:
    """FFmpeg's AVMotionVector records (PyAV's structured array) -> (height, width) float32: every pixel holds the
    length of the vector of the block covering it (the longest where blocks overlap: a bidirectional block has
    two), 0 where none does (intra blocks).

    A block is w x h pixels centred on (dst_x, dst_y); its vector is (motion_x, motion_y) / motion_scale."""
    length = np.hypot(vectors["motion_x"], vectors["motion_y"]) / np.maximum(vectors["motion_scale"], 1)
    w, h = vectors["w"].astype(np.int64), vectors["h"].astype(np.int64)
    left, top = vectors["dst_x"] - w // 2, vectors["dst_y"] - h // 2
    # Paint on a grid of cells as coarse as the blocks allow (4 px for H.264), then expand to pixels.
    cell = int(np.gcd.reduce(np.abs(np.concatenate([w, h, left, top])))) or 1
    rows, cols = -(-height // cell), -(-width // cell)
    canvas = np.zeros((rows, cols), np.float32)
    x0, y0, nx, ny = left // cell, top // cell, np.maximum(w // cell, 1), np.maximum(h // cell, 1)
    for dy in range(int(ny.max())):
        for dx in range(int(nx.max())):
            y, x = y0 + dy, x0 + dx
            keep = (dy < ny) & (dx < nx) & (y >= 0) & (y < rows) & (x >= 0) & (x < cols)
            np.maximum.at(canvas, (y[keep], x[keep]), length[keep].astype(np.float32))
    return np.repeat(np.repeat(canvas, cell, 0), cell, 1)[:height, :width]


def _scale(transform: ClipTransform, size: Sequence[int]) -> float:
    """Pixels of the model's input per pixel of the video (its short-side resize)."""
    return 1.0 if transform.resize is None else transform.resize / min(size)


def _difference(levels: torch.Tensor) -> torch.Tensor:
    """(batch, T, 3, h, w) pixel values -> (batch, T, h, w): mean absolute difference to the previous frame over
    the channels; the first frame takes the second's (it has no previous one)."""
    if levels.shape[1] < 2:
        return levels.new_zeros(levels.shape[0], levels.shape[1], *levels.shape[-2:])
    step = (levels[:, 1:] - levels[:, :-1]).abs().mean(2)
    return torch.cat([step[:, :1], step], dim=1)


def _pool(maps: torch.Tensor, grid: Layout) -> torch.Tensor:
    """(batch, T, h, w) per-pixel values -> (batch, frames, height, width): the mean over each token's tubelet
    frames and patch pixels."""
    return F.adaptive_avg_pool3d(maps[:, None].float(), (grid.frames, grid.height, grid.width))[:, 0].contiguous()


def _union(views: list[list[int]]) -> list[int]:
    return sorted({i for view in views for i in view})
