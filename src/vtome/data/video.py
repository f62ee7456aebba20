"""Decoding: a video file or a folder of extracted frames into uint8 frames.

Public names (other modules and the visualisation code import these):

    read_video(path, indices=None, backend=None) -> torch.uint8 (T, H, W, 3)
        path: a video file (mp4, webm, avi, mkv, ...) or a directory of frame images (jpg/png, sorted by name).
        indices: frame numbers to return (repeats allowed, any order), None for all frames, or a callable
            `num_frames -> indices` so that a sampler sees the length without opening the file twice.
    read_frames(paths) -> torch.uint8 (T, H, W, 3)      given image files, in that order
    num_frames(path, backend=None) -> int
    frame_files(folder) -> list[Path]                 the images of a frame folder, in natural order
    resolve_indices(indices, total) -> list[int]      what `indices` means for a video of `total` frames
    available_backends() -> list[str]                 the decoders that load here, best first
    default_backend() -> str                          $VTOME_VIDEO_BACKEND, else the first available

Backends: "torchcodec" (FFmpeg through torchcodec, used when it loads), "pyav" (the fallback), and "frames"
(always used for directories). Decoding errors are raised as `VideoError` (missing files as FileNotFoundError).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

Indices = Sequence[int] | torch.Tensor | Callable[[int], Sequence[int]] | None

BACKENDS = ("torchcodec", "pyav")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
ENV_BACKEND = "VTOME_VIDEO_BACKEND"


class VideoError(RuntimeError):
    """A video that exists but cannot be decoded (corrupt, empty, unsupported codec)."""


@functools.cache
def _loads(backend: str) -> bool:
    try:
        if backend == "torchcodec":
            from torchcodec.decoders import VideoDecoder  # noqa: F401  (loads the FFmpeg libraries)
        elif backend == "pyav":
            import av  # noqa: F401
        else:
            return False
    except Exception:  # ImportError, or OSError/RuntimeError when the FFmpeg libraries do not load
        return False
    return True


def available_backends() -> list[str]:
    """The video-file decoders that import and load here, best first."""
    return [name for name in BACKENDS if _loads(name)]


def default_backend() -> str:
    """$VTOME_VIDEO_BACKEND when set, else torchcodec when it loads, else PyAV."""
    chosen = os.environ.get(ENV_BACKEND)
    if chosen:
        return _check_backend(chosen)
    found = available_backends()
    if not found:
        raise RuntimeError("no video decoder: install torchcodec or PyAV (pip install 'vtome[video]')")
    return found[0]


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if not _loads(backend):
        raise RuntimeError(f"video backend {backend!r} does not load here (is it installed? FFmpeg libraries?)")
    return backend


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def frame_files(folder: str | Path) -> list[Path]:
    """The image files of a frame folder, in natural order (frame_2 before frame_10)."""
    files = [p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: _natural_key(p.name))


def read_frames(paths: Sequence[str | Path]) -> torch.Tensor:
    """Image files -> uint8 (T, H, W, 3), in the order given."""
    from PIL import Image

    frames = []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"frame not found: {path}")
        try:
            with Image.open(path) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except OSError as err:
            raise VideoError(f"cannot read frame {path}: {err}") from err
    if not frames:
        raise VideoError("no frames to read")
    return torch.from_numpy(np.stack(frames))


def resolve_indices(indices: Indices, total: int, path: str | Path = "video") -> list[int]:
    """`indices` (list, tensor, callable `total -> list` or None for all) as a checked list of frame numbers."""
    if total <= 0:
        raise VideoError(f"{path} has no frames")
    if indices is None:
        return list(range(total))
    if callable(indices):
        indices = indices(total)
    chosen = [int(i) for i in (indices.tolist() if isinstance(indices, torch.Tensor) else indices)]
    bad = [i for i in chosen if not 0 <= i < total]
    if bad:
        raise IndexError(f"frame indices {bad[:5]} out of range for {path} ({total} frames)")
    return chosen


def _torchcodec_read(path: Path, indices: Indices) -> torch.Tensor:
    from torchcodec.decoders import VideoDecoder

    try:
        decoder = VideoDecoder(str(path), device="cpu", dimension_order="NHWC")
        chosen = resolve_indices(indices, len(decoder), path)
        return decoder.get_frames_at(chosen).data
    except (IndexError, VideoError):
        raise
    except Exception as err:  # torchcodec raises RuntimeError/ValueError with FFmpeg's message
        raise VideoError(f"torchcodec cannot decode {path}: {err}") from err


def _pyav_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]


def _pyav_read(path: Path, indices: Indices) -> torch.Tensor:
    try:
        # Decode everything once: exact frame numbers without trusting container metadata (short clips anyway).
        frames = _pyav_frames(path)
    except Exception as err:  # av.FFmpegError and friends
        raise VideoError(f"PyAV cannot decode {path}: {err}") from err
    chosen = resolve_indices(indices, len(frames), path)
    return torch.from_numpy(np.stack([frames[i] for i in chosen]))


def read_video(path: str | Path, indices: Indices = None, backend: str | None = None) -> torch.Tensor:
    """A video file or a frame folder -> uint8 (T, H, W, 3) of the frames at `indices` (see module docstring)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path}")
    if path.is_dir():
        files = frame_files(path)
        chosen = resolve_indices(indices, len(files), path)
        return read_frames([files[i] for i in chosen])
    backend = _check_backend(backend) if backend else default_backend()
    return _torchcodec_read(path, indices) if backend == "torchcodec" else _pyav_read(path, indices)


def num_frames(path: str | Path, backend: str | None = None) -> int:
    """How many frames a video file (decoded, not from the header when it can be avoided) or frame folder has."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path}")
    if path.is_dir():
        return len(frame_files(path))
    backend = _check_backend(backend) if backend else default_backend()
    if backend == "torchcodec":
        from torchcodec.decoders import VideoDecoder

        try:
            return len(VideoDecoder(str(path), device="cpu"))
        except Exception as err:
            raise VideoError(f"torchcodec cannot decode {path}: {err}") from err
    try:
        import av

        with av.open(str(path)) as container:  # decode without colour conversion, only to count
            return sum(1 for _ in container.decode(container.streams.video[0]))
    except Exception as err:
        raise VideoError(f"PyAV cannot decode {path}: {err}") from err
