"""Decoding: both video backends, frame folders, errors, and backend choice."""

from __future__ import annotations

import pytest
import torch

from clipdata import gray_frames, write_frames, write_mp4
from vtome.data import video
from vtome.data.video import VideoError, available_backends, default_backend, num_frames, read_video

BACKENDS = available_backends()


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    return write_mp4(tmp_path_factory.mktemp("v") / "gray.mp4", gray_frames(10))


def _levels(frames: torch.Tensor) -> list[int]:
    return frames.float().mean(dim=(1, 2, 3)).round().int().tolist()


def test_pyav_is_available():
    assert "pyav" in BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_video_frames_in_order(mp4, backend):
    frames = read_video(mp4, backend=backend)
    assert frames.dtype == torch.uint8 and frames.shape == (10, 32, 48, 3)
    levels = _levels(frames)
    assert all(abs(level - 20 * i) <= 6 for i, level in enumerate(levels)), levels
    assert num_frames(mp4, backend=backend) == 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_indices_repeats_and_callable(mp4, backend):
    picked = read_video(mp4, [9, 0, 4, 4], backend=backend)
    assert [round(v / 20) for v in _levels(picked)] == [9, 0, 4, 4]
    seen = []
    last = read_video(mp4, lambda total: seen.append(total) or [total - 1], backend=backend)
    assert seen == [10] and round(_levels(last)[0] / 20) == 9
    with pytest.raises(IndexError):
        read_video(mp4, [10], backend=backend)


def test_backends_agree(mp4):
    if len(BACKENDS) < 2:
        pytest.skip("only one video backend loads here")
    a, b = (read_video(mp4, [1, 5], backend=name).int() for name in BACKENDS)
    assert (a - b).abs().max() <= 2


def test_frame_folder_natural_order(tmp_path):
    write_frames(tmp_path, gray_frames(12, height=8, width=8), pattern="img_{}.png", first=1)
    frames = read_video(tmp_path)
    assert frames.shape == (12, 8, 8, 3)
    assert _levels(frames) == [20 * i for i in range(12)]  # img_10 after img_9: natural order, png lossless
    assert num_frames(tmp_path) == 12
    assert _levels(read_video(tmp_path, [11, 2])) == [220, 40]


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        read_video(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 10)
    for backend in BACKENDS:
        with pytest.raises(VideoError, match="bad.mp4"):
            read_video(bad, backend=backend)
        with pytest.raises(VideoError):
            num_frames(bad, backend=backend)
    with pytest.raises(ValueError, match="unknown video backend"):
        read_video(bad, backend="decord")


def test_backend_choice(monkeypatch):
    monkeypatch.delenv(video.ENV_BACKEND, raising=False)
    assert default_backend() == BACKENDS[0]
    monkeypatch.setenv(video.ENV_BACKEND, "pyav")
    assert default_backend() == "pyav"
    monkeypatch.delenv(video.ENV_BACKEND)
    monkeypatch.setattr(video, "_loads", lambda name: name == "pyav")  # torchcodec cannot load: PyAV
    assert default_backend() == "pyav"
