"""The two synthetic video datasets, generated clip by clip from (seed, dataset, split, index).

    frames, label = make_clip("temporal", 7, split="test")   # uint8 (8, 32, 32, 3), int
    clips = SyntheticClips("appearance", "test", size=300)    # a torch Dataset of {"frames", "label"}

appearance (like K400): the class is what the object is: colour family x texture (12 classes, e.g. "red-checked");
    its shape (square, disc or triangle), size and path are random.
temporal (like SSv2): the class is what happens over time: left / right, towards / away, appearing /
    disappearing, turning clockwise / anticlockwise about the middle of the frame (8 classes). Objects are drawn
    from the same distribution in every class, and the two classes of each pair are time reversals of each
    other, so no single frame tells them apart.

Labels cycle through the classes (label = index % classes), so any prefix of a split is balanced. Nothing is
stored: clip i is the same on every machine (numpy's PCG64 stream from the seed sequence).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from vtome.testbed.draw import COLOURS, SHAPES, TEXTURES, background, colour, paint

FRAMES = 8
SIZE = 32
SPLITS = {"train": 0, "test": 1, "val": 2}  # val: for choosing when to stop training
SPLIT_SIZES = {"train": 8000, "test": 1000, "val": 500}
DATASETS = ("appearance", "temporal")
NOISE = 0.03  # std of the per-pixel noise added to every frame

APPEARANCE_CLASSES = [f"{c}-{t}" for c in COLOURS for t in TEXTURES]
TEMPORAL_CLASSES = ["left", "right", "towards", "away", "appearing", "disappearing", "clockwise", "anticlockwise"]
CLASSES = {"appearance": APPEARANCE_CLASSES, "temporal": TEMPORAL_CLASSES}


def _random_object(rng: np.random.Generator) -> tuple[str, str, np.ndarray]:
    """Shape, texture and colour of a temporal-set object. Never a plain disc, which looks the same turned."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    textures = TEXTURES[1:] if shape == "disc" else TEXTURES
    texture = textures[rng.integers(len(textures))]
    return shape, texture, colour(COLOURS[rng.integers(len(COLOURS))], rng)


def _bounce(start: float, velocity: float, low: float, high: float, t: np.ndarray) -> np.ndarray:
    """Positions at times t of a point moving at constant speed between two walls, reflecting off them."""
    span = high - low
    if span <= 0:
        return np.full(t.shape, (low + high) / 2)
    p = np.mod(start - low + velocity * t, 2 * span)
    return low + np.where(p > span, 2 * span - p, p)


def _appearance(label: int, rng: np.random.Generator) -> list[dict]:
    family, texture = APPEARANCE_CLASSES[label].split("-")
    shape = SHAPES[rng.integers(len(SHAPES))]
    rgb = colour(family, rng)
    radius = rng.uniform(8.0, 11.0)
    t = np.arange(FRAMES)
    speed, heading = rng.uniform(0.0, 2.5), rng.uniform(0, 2 * np.pi)
    low, high = radius, SIZE - radius
    xs = _bounce(rng.uniform(low, high), speed * np.cos(heading), low, high, t)
    ys = _bounce(rng.uniform(low, high), speed * np.sin(heading), low, high, t)
    # Upright (a small random tilt): what the object is should show in the patches it covers.
    angles = rng.uniform(-0.15, 0.15) + rng.uniform(-0.02, 0.02) * t
    return [dict(shape=shape, texture=texture, rgb=rgb, centre=(x, y), radius=radius, angle=a)
            for x, y, a in zip(xs, ys, angles, strict=True)]


def _temporal(label: int, rng: np.random.Generator) -> list[dict]:
    kind = TEMPORAL_CLASSES[label]  # classes 2k and 2k + 1: one is the other played backwards
    shape, texture, rgb = _random_object(rng)
    s = np.linspace(0.0, 1.0, FRAMES)  # progress through the clip
    radius = np.full(FRAMES, rng.uniform(6.0, 8.0))
    opacity = np.ones(FRAMES)
    angles = rng.uniform(0, 2 * np.pi) + rng.uniform(-0.05, 0.05) * np.arange(FRAMES)
    centre = SIZE / 2 + rng.uniform(-4, 4, size=2)
    drift = rng.uniform(-0.4, 0.4, size=2) * np.arange(FRAMES)[:, None]
    if kind in ("left", "right"):
        travel = rng.uniform(14.0, 18.0)
        start = rng.uniform(radius[0] - 1, SIZE - radius[0] + 1 - travel)
        xs = start + travel * (1 - s if kind == "left" else s)
        ys = rng.uniform(radius[0], SIZE - radius[0]) + drift[:, 1] * 0.5
    elif kind in ("towards", "away"):
        small, large = rng.uniform(3.0, 4.0), rng.uniform(11.0, 13.0)
        growth = s if kind == "towards" else 1 - s
        radius = small * (large / small) ** growth
        xs, ys = centre[0] + drift[:, 0], centre[1] + drift[:, 1]
    elif kind in ("appearing", "disappearing"):
        opacity = s if kind == "appearing" else 1 - s
        xs, ys = centre[0] + drift[:, 0], centre[1] + drift[:, 1]
    else:  # turning about the middle of the frame, as a rigid body; y points down, so a growing angle is clockwise
        # The object circles the middle and turns with it (0.35-0.45 rad a frame, about 3 px): its path shows the
        # direction. Turning in place, where only the orientation of the texture changes, stayed at chance in every
        # tiny model: at 32 x 32 pixels a turn of a striped square moves each pixel by a fraction of a stripe.
        sign = 1.0 if kind == "clockwise" else -1.0
        turn = sign * rng.uniform(0.35, 0.45) * np.arange(FRAMES)
        start, orbit = rng.uniform(0, 2 * np.pi), rng.uniform(7.0, 8.5)
        radius = np.full(FRAMES, rng.uniform(5.0, 6.5))
        angles = angles[0] + turn
        xs, ys = SIZE / 2 + orbit * np.cos(start + turn), SIZE / 2 + orbit * np.sin(start + turn)
    return [dict(shape=shape, texture=texture, rgb=rgb, centre=(x, y), radius=r, angle=a, opacity=o)
            for x, y, r, a, o in zip(xs, ys, radius, angles, opacity, strict=True)]


def _rng(dataset: str, split: str, index: int, seed: int) -> np.random.Generator:
    if dataset not in CLASSES:
        raise ValueError(f"unknown testbed dataset {dataset!r}; use one of {DATASETS}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {tuple(SPLITS)}")
    return np.random.default_rng([seed, DATASETS.index(dataset), SPLITS[split], index])


def make_clip(dataset: str, index: int, split: str = "test", seed: int = 0) -> tuple[np.ndarray, int]:
    """Clip `index` of a split: (frames uint8 (FRAMES, SIZE, SIZE, 3), label)."""
    rng = _rng(dataset, split, index, seed)
    label = index % len(CLASSES[dataset])
    objects = (_appearance if dataset == "appearance" else _temporal)(label, rng)
    scene = background(SIZE, SIZE, rng)
    frames = np.stack([paint(scene, **obj) for obj in objects])
    frames = frames + rng.normal(0.0, NOISE, size=frames.shape).astype(np.float32)
    return (np.clip(frames, 0.0, 1.0) * 255 + 0.5).astype(np.uint8), label


def make_clips(dataset: str, split: str = "test", count: int | None = None, start: int = 0,
               seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips start .. start + count - 1 of a split: (frames uint8 (count, T, H, W, 3), labels long (count,))."""
    count = SPLIT_SIZES[split] - start if count is None else count
    clips = [make_clip(dataset, i, split, seed) for i in range(start, start + count)]
    frames = torch.from_numpy(np.stack([c[0] for c in clips])) if clips else torch.empty(0, FRAMES, SIZE, SIZE, 3,
                                                                                           dtype=torch.uint8)
    return frames, torch.tensor([c[1] for c in clips], dtype=torch.long)


class SyntheticClips(Dataset):
    """A split of a testbed dataset as a torch Dataset: item i is {"frames": uint8 (T, H, W, 3), "label": int}."""

    def __init__(self, dataset: str, split: str = "test", size: int | None = None, seed: int = 0):
        _rng(dataset, split, 0, seed)  # validates the names
        self.dataset, self.split, self.seed = dataset, split, seed
        self.size = SPLIT_SIZES[split] if size is None else size
        self.classes = CLASSES[dataset]

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.size:
            raise IndexError(index)
        frames, label = make_clip(self.dataset, index, self.split, self.seed)
        return {"frames": torch.from_numpy(frames), "label": label}
