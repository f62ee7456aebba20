"""A synthetic long-video set for VTMNet, generated clip by clip from (seed, split, index): nothing is stored.

    clip = make_long_clip(7, split="test")   # clip.frames uint8 (60, 24, 24, 3), clip.label, clip.camera,
                                            # clip.mask (60, 6, 6) bool: patches the salient object covers

Each clip has 60 frames of 24 x 24 pixels, seen as 6 x 6 patches of 4 x 4 (36 tokens per frame). The class (4) is
the colour family (red, yellow, green, blue) of one small, saturated object (radius 2.5-3.5 px, one to four
patches) that wanders over the whole frame, not always near the centre. Around it: a textured background and five
dull, desaturated distractors (grey-ish tints of any hue, static in the scene). In half the clips the camera pans
(the whole scene slides by 10-16 px over the clip) and shakes (a pixel either way every frame), so every textured
patch moves: the case where motion is a poor
proxy for saliency. Labels cycle through the classes and camera motion alternates by class cycle, so any prefix
of 8 clips is balanced in both.

motion_prior(frames): the motion magnitude vtome uses as the "motion" variant's prior, a documented proxy (not the
paper's codec motion vectors): the mean absolute difference of each patch from the previous frame, standardised
per clip (zero mean, unit deviation), so that softmax(v) has a scale that does not depend on contrast.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
import torch

from vtome.testbed.draw import COLOURS, SHAPES, colour, paint

FRAMES = 60
SIZE = 24
PATCH = 4
GRID = SIZE // PATCH
CLASSES = list(COLOURS)
SPLITS = {"train": 0, "test": 1}
SPLIT_SIZES = {"train": 4000, "test": 400}
WORLD = SIZE + 24  # the scene the camera looks at (a SIZE x SIZE window of it)
KNOTS = 16  # the background texture's random values per side of the scene
DISTRACTORS = 5
NOISE = 0.05
MIN_SHOWN = 12  # the salient object is in view for 12-30 consecutive frames of the 60


@dataclass
class LongClip:
    frames: np.ndarray  # uint8 (FRAMES, SIZE, SIZE, 3)
    label: int
    camera: bool  # the camera pans in this clip
    mask: np.ndarray  # bool (FRAMES, GRID, GRID): patches at least a quarter covered by the salient object


def _texture(rng: np.random.Generator) -> np.ndarray:
    """(WORLD, WORLD, 3) a mid-grey scene with blotches of +-0.15: random values every ~3 px, bilinearly
    upsampled."""
    coarse = rng.uniform(-0.15, 0.15, size=(KNOTS, KNOTS)).astype(np.float32)
    position = np.linspace(0, KNOTS - 1, WORLD)
    low = np.floor(position).astype(int).clip(max=KNOTS - 2)
    frac = (position - low).astype(np.float32)
    rows = coarse[low] * (1 - frac[:, None]) + coarse[low + 1] * frac[:, None]
    grid = rows[:, low] * (1 - frac[None, :]) + rows[:, low + 1] * frac[None, :]
    tint = rng.uniform(-0.03, 0.03, size=3).astype(np.float32)
    return np.clip(rng.uniform(0.3, 0.45) + grid[..., None] + tint, 0, 1).astype(np.float32)


def _dull(rng: np.random.Generator) -> np.ndarray:
    """A desaturated colour of any hue (saturation 0.1-0.3): a distractor."""
    rgb = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.1, 0.3), rng.uniform(0.45, 0.8))
    return np.array(rgb, dtype=np.float32)


def _muted(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The salient object's colour: its family's hue at saturation 0.45-0.7, not far above the distractors'."""
    hue, _, value = colorsys.rgb_to_hsv(*rgb)
    return np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.45, 0.7), value), dtype=np.float32)


def _path(rng: np.random.Generator, radius: float) -> np.ndarray:
    """(FRAMES, 2) the salient object's (x, y) in the frame: a smooth wander that bounces off the borders."""
    low, high = radius, SIZE - radius
    start = rng.uniform(low, high, size=2)
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.08, size=FRAMES))
    speed = rng.uniform(0.25, 0.6)
    steps = speed * np.stack([np.cos(heading), np.sin(heading)], 1)
    span = high - low
    p = np.mod(start - low + np.cumsum(steps, 0), 2 * span)
    return low + np.where(p > span, 2 * span - p, p)


def _rng(split: str, index: int, seed: int) -> np.random.Generator:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {tuple(SPLITS)}")
    return np.random.default_rng([seed, 7, SPLITS[split], index])


def make_long_clip(index: int, split: str = "test", seed: int = 0) -> LongClip:
    """Clip `index` of a split (see the module docstring)."""
    rng = _rng(split, index, seed)
    label = index % len(CLASSES)
    camera = (index // len(CLASSES)) % 2 == 1
    scene = _texture(rng)
    for _ in range(DISTRACTORS):
        r = rng.uniform(2.5, 4.0)
        scene = paint(scene, SHAPES[rng.integers(len(SHAPES))], "solid", _dull(rng),
                      tuple(rng.uniform(r, WORLD - r, size=2)), r, rng.uniform(0, 2 * np.pi))
    if camera:
        angle = rng.uniform(0, 2 * np.pi)
        travel = rng.uniform(10, 16) * np.array([np.cos(angle), np.sin(angle)])
        start = (WORLD - SIZE) / 2 - travel / 2
        shake = rng.integers(-1, 2, size=(FRAMES, 2))  # a hand-held camera: one pixel either way every frame
        offsets = start + travel * np.linspace(0, 1, FRAMES)[:, None] + shake
    else:
        offsets = np.full((FRAMES, 2), (WORLD - SIZE) / 2) + rng.uniform(-4, 4, size=2)
    offsets = np.round(offsets).astype(int)
    radius = rng.uniform(2.0, 3.0)
    path = _path(rng, radius)
    rgb, shape = _muted(colour(CLASSES[label], rng), rng), SHAPES[rng.integers(len(SHAPES))]
    length = int(rng.integers(MIN_SHOWN, FRAMES // 2 + 1))
    shown = int(rng.integers(0, FRAMES - length + 1)) + np.arange(length)
    frames, masks = [], []
    empty = np.zeros((SIZE, SIZE, 1), np.float32)
    for t in range(FRAMES):
        x0, y0 = offsets[t]
        frame = scene[y0:y0 + SIZE, x0:x0 + SIZE]
        angle = 0.02 * t
        opacity = float(t in shown)
        frames.append(paint(frame, shape, "solid", rgb, tuple(path[t]), radius, angle, opacity))
        cover = paint(empty, shape, "solid", np.ones(1, np.float32), tuple(path[t]), radius, angle, opacity)[..., 0]
        masks.append(cover.reshape(GRID, PATCH, GRID, PATCH).mean((1, 3)) >= 0.25)
    video = np.stack(frames) + rng.normal(0, NOISE, size=(FRAMES, SIZE, SIZE, 3)).astype(np.float32)
    return LongClip((np.clip(video, 0, 1) * 255 + 0.5).astype(np.uint8), label, camera, np.stack(masks))


def make_long_clips(split: str, count: int, start: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    """Clips start .. start + count - 1: {"frames" uint8 (count, 60, 24, 24, 3), "label" long, "camera" bool,
    "mask" bool (count, 60, 6, 6)}."""
    clips = [make_long_clip(i, split, seed) for i in range(start, start + count)]
    return {"frames": torch.from_numpy(np.stack([c.frames for c in clips])),
            "label": torch.tensor([c.label for c in clips]),
            "camera": torch.tensor([c.camera for c in clips]),
            "mask": torch.from_numpy(np.stack([c.mask for c in clips]))}


def motion_prior(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (batch, FRAMES, SIZE, SIZE, 3) -> float32 (batch, FRAMES, GRID, GRID): the mean absolute difference
    of each patch from the previous frame (frame 0 takes frame 1's), standardised per clip."""
    x = frames.float() / 255
    diff = (x[:, 1:] - x[:, :-1]).abs()
    diff = torch.cat([diff[:, :1], diff], 1)
    batch = frames.shape[0]
    v = diff.reshape(batch, FRAMES, GRID, PATCH, GRID, PATCH, 3).mean((3, 5, 6))
    mean, std = v.mean((1, 2, 3), keepdim=True), v.std((1, 2, 3), keepdim=True)
    return (v - mean) / std.clamp(min=1e-6)
