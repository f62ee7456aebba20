"""Tiny models of every supported family, built from configs (no download), and helpers to run them."""

from __future__ import annotations

import torch


def tiny_vivit(layers: int = 3, frames: int = 4, image: int = 32, hidden: int = 32, patch: int = 8, **kw):
    from transformers import VivitConfig, VivitForVideoClassification

    config = VivitConfig(
        num_frames=frames, image_size=image, tubelet_size=[2, patch, patch], hidden_size=hidden,
        num_hidden_layers=layers, num_attention_heads=4, intermediate_size=2 * hidden, num_labels=5, **kw,
    )
    return VivitForVideoClassification(config).eval()


def tiny_videomae(layers: int = 3, frames: int = 4, image: int = 32, hidden: int = 32, **kw):
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    config = VideoMAEConfig(
        num_frames=frames, image_size=image, patch_size=8, tubelet_size=2, hidden_size=hidden,
        num_hidden_layers=layers, num_attention_heads=4, intermediate_size=2 * hidden, num_labels=5, **kw,
    )
    return VideoMAEForVideoClassification(config).eval()


def tiny_timesformer(layers: int = 3, frames: int = 4, image: int = 32, hidden: int = 32, **kw):
    from transformers import TimesformerConfig, TimesformerForVideoClassification

    config = TimesformerConfig(
        num_frames=frames, image_size=image, patch_size=8, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=4, intermediate_size=2 * hidden, num_labels=5, **kw,
    )
    return TimesformerForVideoClassification(config).eval()


def tiny_motionformer(layers: int = 3, frames: int = 4, image: int = 32, hidden: int = 32, **kw):
    from vtome.models import Motionformer, MotionformerConfig

    config = MotionformerConfig(
        image_size=image, patch_size=8, tubelet_size=2, temporal_resolution=frames // 2, pos_grid=image // 8,
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4, mlp_ratio=2.0, num_labels=5, **kw,
    )
    return Motionformer(config).eval()


def tiny_vjepa2(layers: int = 3, frames: int = 4, image: int = 32, hidden: int = 32, pooler_layers: int = 1, **kw):
    from transformers import VJEPA2Config, VJEPA2ForVideoClassification

    # head_dim 8: 2 rotary dims per axis (frame, row, column), 2 left unrotated. A one-layer predictor (unused by
    # the classifier, but always built).
    config = VJEPA2Config(
        frames_per_clip=frames, crop_size=image, patch_size=8, tubelet_size=2, hidden_size=hidden,
        num_hidden_layers=layers, num_attention_heads=4, mlp_ratio=2.0, num_pooler_layers=pooler_layers,
        pred_hidden_size=16, pred_num_attention_heads=2, pred_num_hidden_layers=1, pred_num_mask_tokens=1,
        **{"num_labels": 5, **kw},
    )
    return VJEPA2ForVideoClassification(config).eval()


def tiny_vit(layers: int = 3, class_token: bool = True):
    import timm

    pool = "token" if class_token else "avg"
    return timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=4, embed_dim=32, depth=layers,
        num_heads=4, num_classes=5, class_token=class_token, global_pool=pool,
    ).eval()


BUILDERS = {
    "vivit": tiny_vivit,
    "videomae": tiny_videomae,
    "timesformer": tiny_timesformer,
    "motionformer": tiny_motionformer,
    "vjepa2": tiny_vjepa2,
    "vit": tiny_vit,
    "vit-avg": lambda **kw: tiny_vit(class_token=False, **kw),
}


def logits(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    return out.logits if hasattr(out, "logits") else out


def clip_for(model, batch: int = 2, seed: int = 0) -> torch.Tensor:
    from vtome.models import random_input

    return random_input(model, batch, seed=seed)

