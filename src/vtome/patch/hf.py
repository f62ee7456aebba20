"""What the HuggingFace video families share: the input check on the base model."""

from __future__ import annotations

import torch

from vtome.partition import Layout


def _pair(size) -> tuple[int, int]:
    return tuple(size) if isinstance(size, list | tuple) else (size, size)


def check_video(config, pixel_values: torch.Tensor | None, any_resolution: bool = False) -> None:
    """Raise a clear ValueError unless pixel_values is (batch, num_frames, channels, height, width) as the
    model was built for (height and width are free when the model interpolates its position embeddings)."""
    if pixel_values is None:
        raise ValueError("pixel_values is required")
    frames, channels = config.num_frames, config.num_channels
    height, width = _pair(config.image_size)
    shape = tuple(pixel_values.shape)
    expected = f"(batch, {frames} frames, {channels} channels, {height}, {width})"
    if pixel_values.dim() != 5:
        raise ValueError(f"pixel_values must be 5-D {expected}; got shape {shape}")
    if shape[1] != frames:
        raise ValueError(f"this model takes {frames} frames per clip; got {shape[1]} (pixel_values {shape}, "
                         f"expected {expected})")
    if shape[2] != channels:
        raise ValueError(f"pixel_values must have {channels} channels in dim 2; got shape {shape}, expected "
                         f"{expected}")
    if not any_resolution and shape[3:] != (height, width):
        raise ValueError(f"this model takes {height}x{width} frames; got {shape[3]}x{shape[4]} (pixel_values "
                         f"{shape}, expected {expected})")


class CheckedInput:
    """Mixin for a HF base model: check the video before the forward pass."""

    def forward(self, pixel_values=None, *args, **kwargs):
        if is_patched(self):
            check_video(self.config, pixel_values, bool(kwargs.get("interpolate_pos_encoding", False)))
        return super().forward(pixel_values, *args, **kwargs)


def is_patched(module) -> bool:
    """False for an instance of a patched class that vtome did not patch (e.g. made by the class's from_pretrained):
    it must behave as the original."""
    return "_vtome" in module.__dict__


def wants_attentions(config, kwargs: dict) -> bool:
    """Whether the caller asked for attention maps (then a patched layer computes them explicitly, bias included)."""
    flag = kwargs.get("output_attentions")
    return bool(getattr(config, "output_attentions", False) if flag is None else flag)


def video_grid(config, time_patch: int, prefix: int, per_frame: bool = False) -> Layout:
    """The token grid of a HF video model built for config (frames / time_patch slots of image / patch patches)."""
    height, width = _pair(config.image_size)
    patch = config.tubelet_size[1:] if isinstance(getattr(config, "tubelet_size", None), list | tuple) else None
    ph, pw = patch if patch is not None else _pair(config.patch_size)
    return Layout(config.num_frames // time_patch, height // ph, width // pw, per_frame=per_frame, prefix=prefix)
