"""Clips to look at, as uint8 frames (T, H, W, 3) of exactly the size the model takes.

The pictures are drawn on these frames, and the model input is made from the same frames (rescale, mean/std):
what is drawn is what the model saw.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vtome.vis.layout import token_layout

SYNTHETIC = ("halves", "shapes")
SAMPLING = ("uniform", "rate")


def synthetic_clip(kind: str, frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A made-up clip, uint8 (frames, height, width, 3).

    halves: the left half one flat colour, the right half another, in every frame.
    shapes: sky and floor, a red disc moving right and a yellow square moving down.
    """
    if kind == "halves":
        clip = torch.empty(frames, height, width, 3, dtype=torch.uint8)
        clip[:, :, : width // 2] = torch.tensor([200, 40, 40], dtype=torch.uint8)
        clip[:, :, width // 2 :] = torch.tensor([40, 60, 200], dtype=torch.uint8)
        return clip
    if kind != "shapes":
        raise ValueError(f"unknown synthetic clip {kind!r}; choose from {', '.join(SYNTHETIC)}")
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    out = np.empty((frames, height, width, 3), dtype=np.float64)
    horizon = int(height * 0.55)
    for t in range(frames):
        f = t / max(frames - 1, 1)
        img = np.where((y < horizon)[..., None], [120, 170, 230], [140, 100, 60]).astype(np.float64)
        img[y < horizon] += ((y[y < horizon] / horizon) * 30)[:, None]  # a little sky gradient
        cy, cx, radius = height * 0.65, width * (0.15 + 0.6 * f), height * 0.16
        img[(y - cy) ** 2 + (x - cx) ** 2 <= radius**2] = [220, 30, 30]
        side, top, left = int(height * 0.22), int(height * (0.08 + 0.5 * f)), int(width * 0.68)
        img[top : top + side, left : left + side] = [240, 210, 40]
        out[t] = img
    out += rng.normal(0, 2, size=out.shape)  # faint noise, so that flat regions are not exactly equal
    return torch.from_numpy(np.clip(out, 0, 255).round().astype(np.uint8))


def _transform(model: nn.Module):
    from vtome.data.transforms import clip_transform

    return clip_transform(model)


def fit(frames: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """uint8 (T, H, W, 3) of any size -> uint8 (T, h, w, 3) resized and centre-cropped as the model's input."""
    raw = dataclasses.replace(_transform(model), rescale=1.0, offset=False, normalize=False)
    return raw(frames).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def load_clip(path: str | Path, model: nn.Module, sampling: str = "uniform") -> torch.Tensor:
    """Decode the frames the model takes from a video file (or frame folder): uint8 (T, h, w, 3) at its size.

    sampling: "uniform" (one frame per equal segment of the video) or "rate" (consecutive frames at the
    model family's usual rate, around the centre).
    """
    from vtome.data.video import read_video

    if sampling not in SAMPLING:
        raise ValueError(f"sampling must be one of {SAMPLING}; got {sampling!r}")
    if is_image_model(model) and Path(path).suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp"):
        from vtome.data.video import read_frames

        return fit(read_frames([path]), model)
    return fit(read_video(path, indices=clip_sampler(model, sampling)), model)


def clip_sampler(model: nn.Module, sampling: str = "uniform"):
    """The frames `load_clip` takes from a video for `model` (a FrameSampler)."""
    from vtome.data.samplers import default_sampler

    return default_sampler(model, num_frames=token_layout(model).frames, mode=sampling)


def model_input(frames: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """uint8 (T, h, w, 3) at the model's size -> its float input: (1, T, 3, h, w), or (1, 3, h, w) for an image
    model."""
    layout = token_layout(model)
    if tuple(frames.shape[:3]) != (layout.frames, layout.height, layout.width):
        raise ValueError(f"frames {tuple(frames.shape)} are not the model's input size "
                         f"({layout.frames}, {layout.height}, {layout.width}, 3): use fit() first")
    x = dataclasses.replace(_transform(model), resize=None)(frames)
    param = next(model.parameters())
    x = x.to(device=param.device, dtype=param.dtype)
    return x if is_image_model(model) else x[None]


def is_image_model(model: nn.Module) -> bool:
    from vtome.patch.registry import find_family

    return find_family(model).name == "timm-vit"
