"""Models by name: presets built from their configs (random weights, no download), HF ids, local directories and
official Motionformer checkpoints.

    model = load_model("vivit-b")                        # google/vivit-b-16x2-kinetics400's architecture
    model = load_model("google/vivit-b-16x2-kinetics400")  # real weights (needs the hub or its cache)
    model = load_model("/path/to/saved_model")           # anything saved with save_pretrained
    model = load_model("k400_motionformer_224_16x4.pyth")  # facebookresearch/Motionformer's released weights

Motionformer is not in transformers or timm: vtome carries its own (vtome.models.motionformer).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from vtome.models.motionformer import Motionformer, MotionformerOutput
from vtome.models.motionformer_config import MotionformerConfig


def _vivit(**overrides) -> nn.Module:
    from transformers import VivitConfig, VivitForVideoClassification

    # VivitConfig's defaults are ViViT-B 16x2 (32 frames, tubelet 2x16x16, 224 px): 3137 tokens.
    return VivitForVideoClassification(VivitConfig(**{"num_labels": 400, **overrides}))


def _videomae(**overrides) -> nn.Module:
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    # VideoMAE-B: 16 frames, tubelet 2, 16 px patches, 224 px: 1568 tokens, mean pooling.
    return VideoMAEForVideoClassification(VideoMAEConfig(**{"num_labels": 400, **overrides}))


def _timesformer(**overrides) -> nn.Module:
    from transformers import TimesformerConfig, TimesformerForVideoClassification

    # TimeSformer-B, divided space-time: 8 frames of 196 patches.
    return TimesformerForVideoClassification(TimesformerConfig(**{"num_labels": 400, **overrides}))


def _vjepa2(**overrides) -> nn.Module:
    from transformers import VJEPA2Config, VJEPA2ForVideoClassification

    # facebook/vjepa2-vitl-fpc16-256-ssv2's architecture: ViT-L/16 (VJEPA2Config's defaults: 24 layers, 1024 wide,
    # 16 heads, 3 pooler self-attention layers), 16 frames of 256 px, tubelet 2: 8 x 16 x 16 = 2048 tokens; SSv2's
    # 174 classes.
    return VJEPA2ForVideoClassification(VJEPA2Config(**{"frames_per_clip": 16, "num_labels": 174, **overrides}))


def _motionformer(**overrides) -> nn.Module:
    # Motionformer-B, K400 16x4 at 224 px (MotionformerConfig's defaults): 8 slots of 196 patches.
    return Motionformer(MotionformerConfig(**overrides))


def _vit(**overrides) -> nn.Module:
    import timm

    return timm.create_model("vit_base_patch16_224", pretrained=False, **overrides)


_TINY = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128, num_labels=10)

PRESETS: dict[str, Callable[[], nn.Module]] = {
    "vivit-b": _vivit,
    "videomae-b": _videomae,
    "timesformer-b": _timesformer,
    "motionformer-b": _motionformer,
    "vit-b": _vit,
    "vjepa2-l": _vjepa2,
    # Small versions with the same token layout per frame (for tests and quick tries).
    "vivit-tiny": lambda: _vivit(num_frames=8, image_size=64, tubelet_size=[2, 8, 8], **_TINY),
    "videomae-tiny": lambda: _videomae(num_frames=8, image_size=64, patch_size=8, **_TINY),
    "timesformer-tiny": lambda: _timesformer(num_frames=4, image_size=64, patch_size=8, **_TINY),
    "motionformer-tiny": lambda: _motionformer(
        image_size=64, patch_size=8, temporal_resolution=4, pos_grid=8, hidden_size=64, num_hidden_layers=4,
        num_attention_heads=4, mlp_ratio=2.0, num_labels=10,
    ),
    "vjepa2-tiny": lambda: _vjepa2(
        frames_per_clip=8, crop_size=64, patch_size=8, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
        mlp_ratio=2.0, num_labels=10, pred_hidden_size=32, pred_num_attention_heads=2, pred_num_hidden_layers=1,
    ),
    "vit-tiny": lambda: _vit(img_size=64, patch_size=8, embed_dim=64, depth=4, num_heads=4, num_classes=10),
}

_HF_CLASSES = {
    "vivit": "VivitForVideoClassification",
    "videomae": "VideoMAEForVideoClassification",
    "timesformer": "TimesformerForVideoClassification",
    "vjepa2": "VJEPA2ForVideoClassification",
}


def is_motionformer_dir(path: str | Path) -> bool:
    """Whether path is a directory written by Motionformer.save_pretrained (config.json of model_type
    "motionformer")."""
    config = Path(path, "config.json")
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == MotionformerConfig.model_type
    except (json.JSONDecodeError, AttributeError):
        return False


def load_model(spec: str, **kwargs) -> nn.Module:
    """A preset name, a local directory saved with save_pretrained, a HuggingFace model id, or an official
    Motionformer checkpoint file (.pyth). Eval mode.

    kwargs go to `from_pretrained` (e.g. dtype=torch.bfloat16; a Motionformer takes only dtype).
    """
    if spec in PRESETS:
        return PRESETS[spec]().eval()
    if Path(spec).is_file() or is_motionformer_dir(spec):
        from vtome.models.pyth import load_pyth

        unknown = set(kwargs) - {"dtype"}
        if unknown:
            raise ValueError(f"a Motionformer loads with dtype= only; got {sorted(unknown)}")
        model = load_pyth(spec) if Path(spec).is_file() else Motionformer.from_pretrained(spec)
        return model.to(kwargs["dtype"]) if "dtype" in kwargs else model
    import transformers
    from transformers import AutoConfig

    if Path(spec).exists() and not Path(spec, "config.json").exists():
        raise FileNotFoundError(f"{spec} has no config.json: not a model saved with save_pretrained")
    try:
        config = AutoConfig.from_pretrained(spec)
    except OSError as err:
        raise ValueError(
            f"cannot load model {spec!r}: not a preset ({', '.join(PRESETS)}), not a local directory, and not "
            f"reachable on the HuggingFace hub ({err.__class__.__name__})"
        ) from err
    name = _HF_CLASSES.get(config.model_type)
    if name is None:
        raise ValueError(
            f"{spec} is a {config.model_type!r} model; vtome loads {', '.join(_HF_CLASSES)} (or pass a model "
            "object to vtome.patch)"
        )
    return getattr(transformers, name).from_pretrained(spec, **kwargs).eval()


def input_shape(model: nn.Module, batch_size: int = 1) -> tuple[int, ...]:
    """The input a model takes: (batch, frames, channels, H, W) for video models, (batch, 3, H, W) for ViTs."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "frames_per_clip"):  # V-JEPA 2
        return (batch_size, config.frames_per_clip, config.in_chans, config.crop_size, config.crop_size)
    if config is not None and hasattr(config, "num_frames"):
        size = config.image_size
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        return (batch_size, config.num_frames, config.num_channels, height, width)
    height, width = model.patch_embed.img_size
    return (batch_size, model.patch_embed.proj.in_channels, height, width)


def clip_frames(model: nn.Module) -> int | None:
    """The frames per clip a video model takes (V-JEPA 2's config calls them frames_per_clip); None for an image
    model."""
    config = getattr(model, "config", None)
    return getattr(config, "num_frames", None) or getattr(config, "frames_per_clip", None)


def random_input(
    model: nn.Module, batch_size: int = 1, seed: int = 0, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """A normalised-looking random clip (or image) of the shape the model takes, on the model's device."""
    param = next(model.parameters())
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(input_shape(model, batch_size), generator=generator)
    return x.to(device=param.device, dtype=dtype or param.dtype)


__all__ = ["PRESETS", "Motionformer", "MotionformerConfig", "MotionformerOutput", "clip_frames", "input_shape",
           "is_motionformer_dir", "load_model", "random_input"]
