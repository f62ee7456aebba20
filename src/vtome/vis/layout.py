"""Where each input token of a model sits in the clip.

Joint space-time models (ViViT, VideoMAE, V-JEPA 2) number their tubelets (time, row, column) after the Conv3d
flatten, ViViT with its class token first; one token covers `tube` frames. Divided models merge each frame on its
own: the source rows are (clip, frame) and the tokens of a frame are (row, column); a TimeSformer frame is one
video frame, a Motionformer "frame" (token slot) a tubelet of `tube` = 2 video frames. A timm ViT is a one-frame
clip.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


def _pair(value) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, list | tuple) else (int(value), int(value))


@dataclass(frozen=True)
class TokenLayout:
    """frames, height, width: the clip the model takes; tube, patch: what one token covers (frames, (h, w) px).

    class_token: input token 0 of each source row is a class token (it covers no pixels).
    divided: sources are per token slot of `tube` frames (rows = clips * frames / tube), else per clip.
    """

    frames: int
    height: int
    width: int
    tube: int
    patch: tuple[int, int]
    class_token: bool
    divided: bool

    @property
    def grid(self) -> tuple[int, int, int]:
        """Tokens along (time, rows, columns) of one source row: time is 1 for divided models."""
        time = 1 if self.divided else self.frames // self.tube
        return time, self.height // self.patch[0], self.width // self.patch[1]

    @property
    def num_tokens(self) -> int:
        """N0, the input tokens of one source row (class token included)."""
        t, h, w = self.grid
        return t * h * w + int(self.class_token)

    @property
    def rows_per_clip(self) -> int:
        return self.frames // self.tube if self.divided else 1


def token_layout(model: nn.Module) -> TokenLayout:
    """The layout of a supported model (HF ViViT / VideoMAE / TimeSformer / V-JEPA 2 or their base models,
    Motionformer, timm ViT)."""
    from vtome.patch.registry import find_family

    family = find_family(model).name
    if family == "timm-vit":
        height, width = _pair(model.patch_embed.img_size)
        return TokenLayout(1, height, width, 1, _pair(model.patch_embed.patch_size),
                           class_token=model.num_prefix_tokens == 1, divided=False)
    config = model.config
    if family == "vjepa2":  # tubelets (time, row, column), no class token; its config names sizes its own way
        return TokenLayout(config.frames_per_clip, config.crop_size, config.crop_size, config.tubelet_size,
                           _pair(config.patch_size), class_token=False, divided=False)
    height, width = _pair(config.image_size)
    if family == "vivit":
        tube, ph, pw = config.tubelet_size
        return TokenLayout(config.num_frames, height, width, tube, (ph, pw), class_token=True, divided=False)
    if family == "videomae":
        return TokenLayout(config.num_frames, height, width, config.tubelet_size, _pair(config.patch_size),
                           class_token=False, divided=False)
    if family == "motionformer":
        return TokenLayout(config.num_frames, height, width, config.tubelet_size, _pair(config.patch_size),
                           class_token=False, divided=True)
    return TokenLayout(config.num_frames, height, width, 1, _pair(config.patch_size), class_token=False,
                       divided=True)
