"""Small generated media for the data and evaluation tests: mp4 files, frame folders, tiny saved models."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def gray_frames(count: int, height: int = 32, width: int = 48, step: int = 20, start: int = 0) -> np.ndarray:
    """uint8 (count, H, W, 3): frame i is a flat gray of level start + i * step (easy to recognise decoded)."""
    levels = (start + step * np.arange(count)) % 256
    return np.broadcast_to(levels[:, None, None, None], (count, height, width, 3)).astype(np.uint8)


def noise_frames(count: int, height: int = 32, width: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def write_mp4(path: str | Path, frames: np.ndarray, fps: int = 10) -> Path:
    """Encode (T, H, W, 3) uint8 frames as an MPEG-4 part 2 mp4 with PyAV (no external encoder needed)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "1"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frames(folder: str | Path, frames: np.ndarray, pattern: str = "frame_{:010d}.jpg", first: int = 1) -> Path:
    """Save frames as images named pattern.format(first + i); jpg at high quality, png lossless."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        Image.fromarray(np.ascontiguousarray(frame)).save(folder / pattern.format(first + i), quality=95)
    return folder


def tiny_videomae_dir(path: str | Path, num_labels: int = 5, frames: int = 4, image: int = 32, **config) -> Path:
    """A tiny VideoMAE classifier saved with save_pretrained (random weights, seeded)."""
    import torch
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    torch.manual_seed(0)
    model = VideoMAEForVideoClassification(VideoMAEConfig(
        num_frames=frames, image_size=image, patch_size=8, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, num_labels=num_labels, **config,
    ))
    model.save_pretrained(path)
    return Path(path)


# The moving-square clip (motion priors): frames, size, the square's side, top row and first left column.
FRAMES, HEIGHT, WIDTH, SIDE, TOP, LEFT = 40, 64, 96, 16, 16, 20


def square_clip() -> np.ndarray:
    """uint8 (40, 64, 96, 3): a static blocky background; a textured 16 x 16 square moves right 1 px a frame
    (textured, so that the encoder's motion search finds it: a flat square's inside does not change)."""
    rng = np.random.default_rng(0)
    background = rng.integers(40, 200, (HEIGHT // 4, WIDTH // 4, 3)).repeat(4, 0).repeat(4, 1).astype(np.uint8)
    square = rng.integers(0, 256, (SIDE // 2, SIDE // 2, 3)).repeat(2, 0).repeat(2, 1).astype(np.uint8)
    clip = np.repeat(background[None], FRAMES, 0)
    for t in range(FRAMES):
        clip[t, TOP:TOP + SIDE, LEFT + t:LEFT + t + SIDE] = square
    return clip


def write_mjpeg(path: Path, frames: np.ndarray) -> Path:
    """Intra-only (every frame a JPEG): no motion vectors."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuvj420p"
        stream.options = {"qmin": "2", "qmax": "2"}  # a fixed quality: rate control would change static areas
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
