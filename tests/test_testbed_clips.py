"""The testbed's synthetic datasets: deterministic, balanced, and the temporal classes mean what they say."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from vtome.testbed.clips import CLASSES, FRAMES, SIZE, SyntheticClips, make_clip, make_clips

_DIGEST = """
import hashlib
from vtome.testbed.clips import make_clip
h = hashlib.sha256()
for dataset in ("appearance", "temporal"):
    for i in (0, 5, 123):
        frames, label = make_clip(dataset, i, "test")
        h.update(frames.tobytes()); h.update(bytes([label]))
print(h.hexdigest())
"""


def test_clip_shape_dtype_label():
    frames, label = make_clip("appearance", 3, "train")
    assert frames.shape == (FRAMES, SIZE, SIZE, 3) and frames.dtype == np.uint8
    assert label == 3 % len(CLASSES["appearance"])


def test_same_clip_every_time_and_in_a_fresh_process():
    here = hashlib.sha256()
    for dataset in ("appearance", "temporal"):
        for i in (0, 5, 123):
            frames, label = make_clip(dataset, i, "test")
            again, _ = make_clip(dataset, i, "test")
            assert np.array_equal(frames, again)
            here.update(frames.tobytes())
            here.update(bytes([label]))
    fresh = subprocess.run([sys.executable, "-c", _DIGEST], capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == here.hexdigest()


def test_splits_indices_and_seeds_give_different_clips():
    base, _ = make_clip("temporal", 8, "test")
    assert not np.array_equal(base, make_clip("temporal", 8, "train")[0])
    assert not np.array_equal(base, make_clip("temporal", 16, "test")[0])  # same label, other clip
    assert not np.array_equal(base, make_clip("temporal", 8, "test", seed=1)[0])
    assert not np.array_equal(base, make_clip("appearance", 8, "test")[0])


def test_make_clips_matches_make_clip_and_is_balanced():
    frames, labels = make_clips("appearance", "test", 24, start=2)
    assert frames.shape == (24, FRAMES, SIZE, SIZE, 3) and frames.dtype == torch.uint8
    assert np.array_equal(frames[5].numpy(), make_clip("appearance", 7, "test")[0])
    assert torch.bincount(labels, minlength=12).tolist() == [2] * 12


def test_dataset_items_and_bounds():
    data = SyntheticClips("temporal", "test", size=10)
    assert len(data) == 10 and data.classes == CLASSES["temporal"]
    item = data[9]
    assert item["label"] == 9 % 8 and np.array_equal(item["frames"].numpy(), make_clip("temporal", 9, "test")[0])
    with pytest.raises(IndexError):
        data[10]
    with pytest.raises(ValueError, match="unknown testbed dataset"):
        SyntheticClips("kinetics")
    with pytest.raises(ValueError, match="unknown split"):
        make_clip("temporal", 0, "validation")


def _object(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: object area (pixels), x and y of its centroid, from pixels far from the static background."""
    background = np.median(frames.astype(np.float32), axis=0)  # the object moves: the median is the background
    mask = np.abs(frames.astype(np.float32) - background).max(-1) > 40
    area = mask.sum((1, 2)).astype(np.float64)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    safe = np.maximum(area, 1)
    return area, (mask * xs).sum((1, 2)) / safe, (mask * ys).sum((1, 2)) / safe


@pytest.mark.parametrize("index", [0, 8, 16])
def test_left_and_right_move_that_way(index):
    _, x_left, _ = _object(make_clip("temporal", index, "test")[0])  # label 0: left
    _, x_right, _ = _object(make_clip("temporal", index + 1, "test")[0])  # label 1: right
    assert x_left[-1] < x_left[0] - 5 and x_right[-1] > x_right[0] + 5


@pytest.mark.parametrize("index", [2, 10])
def test_towards_grows_and_away_shrinks(index):
    frames = make_clip("temporal", index, "test")[0]
    towards, _ = _object_area(frames)
    away, _ = _object_area(make_clip("temporal", index + 1, "test")[0])
    assert towards[-1] > 2 * towards[0] and away[0] > 2 * away[-1]


def _object_area(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area of pixels differing from the clip's corner colour (the object is near the middle)."""
    corner = frames[:, :3, :3].reshape(FRAMES, -1, 3).astype(np.float32).mean(1)
    mask = np.abs(frames.astype(np.float32) - corner[:, None, None]).max(-1) > 40
    return mask.sum((1, 2)), mask


@pytest.mark.parametrize("index", [4, 12])
def test_appearing_and_disappearing(index):
    appearing, _ = _object_area(make_clip("temporal", index, "test")[0])
    disappearing, _ = _object_area(make_clip("temporal", index + 1, "test")[0])
    assert appearing[0] < appearing[-1] and disappearing[0] > disappearing[-1]
    assert appearing[-1] > 30 and disappearing[0] > 30


def _turned(frame: torch.Tensor, cx: float, cy: float, angle: float) -> torch.Tensor:
    """(3, H, W) frame turned by angle about (cx, cy) pixels, clockwise on screen for angle > 0 (y points down)."""
    ys, xs = torch.meshgrid(torch.arange(SIZE) + 0.5, torch.arange(SIZE) + 0.5, indexing="ij")
    cos, sin = np.cos(angle), np.sin(angle)
    src_x = cx + cos * (xs - cx) + sin * (ys - cy)  # where each output pixel comes from
    src_y = cy - sin * (xs - cx) + cos * (ys - cy)
    grid = torch.stack([src_x / SIZE * 2 - 1, src_y / SIZE * 2 - 1], -1)[None].float()
    return torch.nn.functional.grid_sample(frame[None], grid, align_corners=False)[0]


def _turning(frames: np.ndarray) -> int:
    """Frame pairs where turning the earlier frame clockwise about the middle matches the later one better, minus
    the others."""
    x = torch.from_numpy(frames).float().permute(0, 3, 1, 2) / 255
    votes = 0
    for t in range(FRAMES - 1):
        error = [float((_turned(x[t], SIZE / 2, SIZE / 2, a) - x[t + 1]).abs().mean()) for a in (0.4, -0.4)]
        votes += 1 if error[0] < error[1] else -1
    return votes


@pytest.mark.parametrize("index", [6, 14, 22, 30])
def test_clockwise_turns_clockwise_on_screen(index):
    assert _turning(make_clip("temporal", index, "test")[0]) >= 5  # label 6: clockwise
    assert _turning(make_clip("temporal", index + 1, "test")[0]) <= -5  # label 7: anticlockwise


def test_temporal_pairs_are_time_reversals():
    """A pair's two classes draw the same things; only the order of the frames differs in distribution: the
    mean frame of many clips (what one frame can tell) is about the same for both classes of a pair."""
    frames, _ = make_clips("temporal", "train", 8 * 40)
    for first in (0, 2, 4, 6):
        a, b = (frames[label::8].float().mean((0, 1)) for label in (first, first + 1))
        assert (a - b).abs().mean() < 6  # out of 255


def test_appearance_class_is_the_object_not_its_motion():
    # The same class twice: same colour family and texture, different paths (and shapes).
    a, la = make_clip("appearance", 0, "test")
    b, lb = make_clip("appearance", 12, "test")
    assert la == lb and not np.array_equal(a, b)
    assert CLASSES["appearance"][:4] == ["red-solid", "red-striped", "red-checked", "yellow-solid"]
    # Red objects are red: the object's pixels (far from the background) have red as their strongest channel.
    for index in (0, 12, 24):
        frames = make_clip("appearance", index, "test")[0].astype(np.float32)
        mask = np.abs(frames - np.median(frames, axis=0)).max(-1) > 60
        r, g, b = (frames[mask].mean(0))
        assert r > g and r > b
