"""The frozen frame encoder of the long-video set: the patch embedding of the shipped TimeSformer testbed model.

    encoder = FrameEncoder()                 # weights from checkpoints/timesformer-appearance, frozen
    tokens = encoder(frames)                 # uint8 (B, 60, 24, 24, 3) -> float32 (B, 60, 36, 64)

It is that model's Conv2d(3, 64, 4, stride 4), trained on the appearance set (colour families and textures), applied
to every frame after the testbed's normalisation: a per-frame linear projection of 4 x 4 pixel patches, no
position embedding (the long-video set's class does not depend on where the object is). The paper's features come
from a frozen ViT-L; this stands in for it at a size that trains on a CPU in minutes.
"""

from __future__ import annotations

import torch
from torch import nn

from vtome.testbed.models import MEAN, STD, checkpoint_dir

PREFIX = "timesformer.embeddings.patch_embeddings.projection."


class FrameEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from safetensors import safe_open

        self.proj = nn.Conv2d(3, 64, 4, stride=4)
        path = checkpoint_dir("timesformer", "appearance") / "model.safetensors"
        with safe_open(str(path), "pt") as f:
            weights = {name: f.get_tensor(PREFIX + name) for name in ("weight", "bias")}
        self.proj.load_state_dict(weights)
        self.requires_grad_(False)
        self.eval()

    @property
    def channels(self) -> int:
        return self.proj.out_channels

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (batch, frames, H, W, 3) -> (batch, frames, H/4 * W/4, 64)."""
        if frames.dim() != 5 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (batch, frames, height, width, 3) uint8; got {tuple(frames.shape)}")
        batch, count = frames.shape[:2]
        x = (frames.flatten(0, 1).permute(0, 3, 1, 2).float() / 255 - MEAN) / STD
        tokens = self.proj(x).flatten(2).transpose(1, 2)
        return tokens.reshape(batch, count, -1, self.channels)

    def train(self, mode: bool = True) -> FrameEncoder:
        return super().train(False)  # frozen: always in eval mode
