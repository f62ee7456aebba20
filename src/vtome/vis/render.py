"""Draw groups over the frames of a clip, and write the pictures.

Every group has one fill (its mean colour over all its pixels, in every frame it covers, or the original
pixels) and one border colour, so a group looks the same in every frame. Arrays are numpy uint8 (..., 3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vtome.vis.groups import compact

DROPPED = np.array([24, 24, 24], dtype=np.uint8)  # pixels of dropped tokens
FILLS = ("mean", "pixels")


def palette(count: int, seed: int = 0) -> np.ndarray:
    """(count, 3) uint8 border colours: bright, random but fixed by seed."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, size=(count, 3))
    colours[np.arange(count), rng.integers(0, 3, size=count)] = 255  # one full channel: never near black
    return colours.astype(np.uint8)


def group_means(frames: np.ndarray, groups: np.ndarray, count: int) -> np.ndarray:
    """(T, H, W, 3) uint8 frames, (T, H, W) compact ids 0..count-1 (or -1) -> (count, 3) mean colour (float)."""
    keep = groups >= 0
    ids = groups[keep]
    pixels = frames[keep].astype(np.float64)
    totals = np.stack([np.bincount(ids, weights=pixels[:, c], minlength=count) for c in range(3)], axis=1)
    return totals / np.maximum(np.bincount(ids, minlength=count), 1)[:, None]


def borders(groups: np.ndarray, width: int = 1) -> np.ndarray:
    """(T, H, W) ids -> (T, H, W) bool: pixels with a pixel of another group within `width` in the same frame."""
    edge = np.zeros(groups.shape, dtype=bool)
    height, wide = groups.shape[1:]
    for dy in range(-width, width + 1):
        for dx in range(-width, width + 1):
            if dy == dx == 0:
                continue
            # Compare each pixel with its (dy, dx) neighbour where that neighbour exists.
            ys, yd = slice(max(dy, 0), height + min(dy, 0)), slice(max(-dy, 0), height + min(-dy, 0))
            xs, xd = slice(max(dx, 0), wide + min(dx, 0)), slice(max(-dx, 0), wide + min(-dx, 0))
            edge[:, yd, xd] |= groups[:, yd, xd] != groups[:, ys, xs]
    return edge & (groups >= 0)


def upscale(a: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of (T, H, W, ...) by an integer factor."""
    return a if scale == 1 else a.repeat(scale, axis=1).repeat(scale, axis=2)


def render(
    frames: np.ndarray | torch.Tensor,
    groups: np.ndarray | torch.Tensor,
    fill: str = "mean",
    border: int = 1,
    scale: int = 1,
    seed: int = 0,
) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 and pixel group ids (T, H, W) -> (T, H * scale, W * scale, 3) uint8.

    fill: "mean" paints each group its mean colour, "pixels" keeps the frames; border: outline width in output
    pixels (0: none), drawn inside each group in the group's colour.
    """
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}; got {fill!r}")
    frames, groups = np.asarray(frames, dtype=np.uint8), torch.as_tensor(groups)
    if frames.shape[:3] != tuple(groups.shape):
        raise ValueError(f"frames {frames.shape} and groups {tuple(groups.shape)} must cover the same pixels")
    ids, count = compact(groups)
    ids = ids.numpy()
    if fill == "mean":
        means = np.rint(group_means(frames, ids, count)).astype(np.uint8)
        out = np.where((ids >= 0)[..., None], means[np.maximum(ids, 0)], DROPPED)
    else:
        out = np.where((ids >= 0)[..., None], frames, DROPPED)
    out, ids = upscale(out, scale), upscale(ids, scale)
    if border > 0:
        edge = borders(ids, border)
        out[edge] = palette(count, seed)[ids[edge]]
    return out


def grid(rows: list[np.ndarray], columns: int | None = None, gap: int = 2, background: int = 255) -> np.ndarray:
    """Rows of frames, each (T, h, w, 3) with the same h, w -> one picture (H, W, 3).

    With columns, every row wraps after that many frames; the wrapped parts of all rows stay together (first
    the first `columns` frames of every row, then the next ones, ...).
    """
    count, h, w = rows[0].shape[:3]
    columns = min(columns or count, count)
    bands = -(-count // columns)
    height = bands * len(rows) * (h + gap) - gap
    width = columns * (w + gap) - gap
    out = np.full((height, width, 3), background, dtype=np.uint8)
    for band in range(bands):
        for r, row in enumerate(rows):
            y = (band * len(rows) + r) * (h + gap)
            for c, frame in enumerate(row[band * columns : (band + 1) * columns]):
                out[y : y + h, c * (w + gap) : c * (w + gap) + w] = frame
    return out


def with_title(picture: np.ndarray, title: str | None) -> np.ndarray:
    """Add one line of text above the picture (nothing when title is None)."""
    if not title:
        return picture
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    band = 16
    out = Image.new("RGB", (picture.shape[1], picture.shape[0] + band), "white")
    out.paste(Image.fromarray(picture), (0, band))
    ImageDraw.Draw(out).text((2, 2), title, fill="black", font=font)
    return np.asarray(out)


def save_png(picture: np.ndarray, path: str | Path) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(path, optimize=True)
    return path


def save_gif(frames: np.ndarray, path: str | Path, fps: float = 4.0) -> Path:
    """(T, H, W, 3) uint8 -> an animated GIF that loops forever."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0, optimize=True)
    return path
