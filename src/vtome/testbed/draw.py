"""Drawing one object on one frame: anti-aliased shapes with a texture, in numpy.

Coordinates are pixels, x to the right and y down (so an increasing angle turns clockwise on screen).
Arrays: frame (H, W, 3) float32 in [0, 1]; alpha (H, W) float32 in [0, 1].
"""

from __future__ import annotations

import colorsys
import functools

import numpy as np

SHAPES = ("square", "disc", "triangle")
TEXTURES = ("solid", "striped", "checked")
COLOURS = ("red", "yellow", "green", "blue")

# Hue ranges (fractions of the colour wheel) of the colour families; red wraps around 0.
_HUES = {"red": (-0.03, 0.03), "yellow": (0.12, 0.17), "green": (0.29, 0.38), "blue": (0.57, 0.66)}
_PERIOD = 1 / 4.5  # half a period of the stripes and checks, in object radii (2 px at a radius of 9 px)
_TRIANGLE_NORMALS = np.array([[np.cos(a), np.sin(a)] for a in np.pi / 2 + 2 * np.pi * np.arange(3) / 3])


def distance(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance (in units of the object's radius) to the outline of a shape centred at the origin.

    u, v: (H, W) coordinates in the object's frame. Negative inside. Each shape covers a similar area.
    """
    if shape == "disc":
        return np.sqrt(u * u + v * v) - 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.85
    if shape == "triangle":
        # Equilateral: inside all three half-planes n . p <= 0.6.
        return np.max(_TRIANGLE_NORMALS[:, 0, None, None] * u + _TRIANGLE_NORMALS[:, 1, None, None] * v, 0) - 0.6
    raise ValueError(f"unknown shape {shape!r}; use one of {SHAPES}")


def colour(family: str, rng: np.random.Generator) -> np.ndarray:
    """A random (3,) RGB colour of a family: saturated and bright, hue within the family's range."""
    low, high = _HUES[family]
    rgb = colorsys.hsv_to_rgb(rng.uniform(low, high) % 1.0, rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0))
    return np.array(rgb, dtype=np.float32)


@functools.cache
def _grid(height: int, width: int) -> np.ndarray:
    """(2, H, W) float32 pixel centres (y, x), shared and read-only."""
    grid = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    grid.flags.writeable = False
    return grid


def background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) a dim, smooth, grey-ish background: a random level plus a gentle gradient (static in a clip)."""
    y, x = (_grid(height, width) - 0.5) / max(height, width)
    level = rng.uniform(0.15, 0.3)
    gradient = rng.uniform(-0.06, 0.06) * x + rng.uniform(-0.06, 0.06) * y
    tint = rng.uniform(-0.03, 0.03, size=3).astype(np.float32)
    return np.clip(level + gradient[..., None] + tint, 0.0, 1.0).astype(np.float32)


def paint(
    frame: np.ndarray,
    shape: str,
    texture: str,
    rgb: np.ndarray,
    centre: tuple[float, float],
    radius: float,
    angle: float,
    opacity: float = 1.0,
) -> np.ndarray:
    """Draw the object on frame (H, W, 3) and return the new frame.

    centre: (x, y) pixels; radius: pixels; angle: radians (clockwise on screen); opacity in [0, 1].
    Stripes are in the object's own frame, so they turn and scale with it.
    """
    height, width = frame.shape[:2]
    y, x = _grid(height, width)
    dx, dy = x - centre[0], y - centre[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u = (cos * dx + sin * dy) / radius
    v = (-sin * dx + cos * dy) / radius
    # Anti-aliasing: one pixel of soft edge.
    alpha = np.clip(0.5 - distance(shape, u, v) * radius, 0.0, 1.0) * opacity
    fill = np.broadcast_to(rgb, frame.shape)
    if texture == "striped":
        fill = np.where((np.floor(v / _PERIOD) % 2 == 1)[..., None], rgb * 0.3, rgb)
    elif texture == "checked":
        fill = np.where(((np.floor(u / _PERIOD) + np.floor(v / _PERIOD)) % 2 == 1)[..., None], rgb * 0.3, rgb)
    elif texture != "solid":
        raise ValueError(f"unknown texture {texture!r}; use one of {TEXTURES}")
    return (frame * (1 - alpha[..., None]) + fill * alpha[..., None]).astype(np.float32)
