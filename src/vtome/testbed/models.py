"""The testbed's tiny models: their configs, where the trained checkpoints live, and clips -> model input.

    model = load_testbed_model("timesformer", "temporal")   # shipped weights, eval mode
    x = model_input(frames, model)                           # uint8 (B, 8, 32, 32, 3) -> float (B, T, 3, 32, 32)

Every model sees 256 patch tokens per clip: ViViT, VideoMAE and V-JEPA 2 (joint space-time) as 4 x 8 x 8
tubelets of 2 x 4 x 4 pixels (ViViT adds a class token), TimeSformer (divided space-time) as 4 frames x 8 x 8
patches of 4 x 4, taking every other frame (as TimeSformer-B takes 8 frames where VideoMAE-B takes 16), Motionformer
(divided space-time, trajectory attention) as 4 slots x 8 x 8 tubelets of 2 x 4 x 4 pixels, like Motionformer-B's
8 slots of 2-frame tubelets.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from vtome.data.samplers import FrameSampler
from vtome.models import clip_frames
from vtome.testbed.clips import CLASSES, FRAMES, SIZE

MODELS = ("vivit", "videomae", "timesformer", "motionformer", "vjepa2")
JOINT = ("vivit", "videomae", "vjepa2")  # joint space-time
DIVIDED = ("timesformer", "motionformer")  # divided space-time: each frame merges on its own

HIDDEN, LAYERS, HEADS, MLP = 64, 4, 4, 128
MEAN, STD = 0.5, 0.25  # input normalisation: (x / 255 - MEAN) / STD

# What the evaluation pipeline (vtome.data.transforms.clip_transform) reads next to a checkpoint.
PREPROCESSOR = {
    "do_resize": False,
    "do_center_crop": False,
    "crop_size": {"height": SIZE, "width": SIZE},
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "offset": False,  # HF ViViT's processor would otherwise map to [-1, 1] before mean/std
    "do_normalize": True,
    "image_mean": [MEAN] * 3,
    "image_std": [STD] * 3,
}


def build_model(name: str, dataset: str | None, labels: list[str] | None = None) -> nn.Module:
    """A freshly initialised testbed model (seeded by the caller) for one dataset's classes (or these labels)."""
    import transformers as tf

    labels = CLASSES[dataset] if labels is None else labels
    common = dict(
        image_size=SIZE, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        intermediate_size=MLP, hidden_act="gelu", num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    if name == "vivit":
        return tf.VivitForVideoClassification(tf.VivitConfig(num_frames=FRAMES, tubelet_size=[2, 4, 4], **common))
    if name == "videomae":
        config = tf.VideoMAEConfig(num_frames=FRAMES, tubelet_size=2, patch_size=4, use_mean_pooling=True, **common)
        return tf.VideoMAEForVideoClassification(config)
    if name == "timesformer":
        config = tf.TimesformerConfig(num_frames=FRAMES // 2, patch_size=4, **common)
        return tf.TimesformerForVideoClassification(config)
    if name == "vjepa2":
        # Rotary positions, no learned ones. One pooler self-attention layer (V-JEPA 2 has 3) and a one-layer
        # predictor: the classifier never runs the predictor, but VJEPA2Model always holds one.
        del common["image_size"], common["intermediate_size"]
        config = tf.VJEPA2Config(
            crop_size=SIZE, frames_per_clip=FRAMES, tubelet_size=2, patch_size=4, mlp_ratio=MLP / HIDDEN,
            num_pooler_layers=1, pred_hidden_size=32, pred_num_attention_heads=2, pred_num_hidden_layers=1,
            pred_num_mask_tokens=1, **common,
        )
        return tf.VJEPA2ForVideoClassification(config)
    if name == "motionformer":
        from vtome.models import Motionformer, MotionformerConfig

        # No tanh pre-logits layer (upstream's VIT.USE_MLP False): trained from scratch with it, the temporal set
        # stayed near chance (37% after 2500 steps; in 600 steps on the temporal set alone 16% with it, 75% without).
        return Motionformer(MotionformerConfig(
            image_size=SIZE, patch_size=4, tubelet_size=2, temporal_resolution=FRAMES // 2, pos_grid=SIZE // 4,
            hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS, mlp_ratio=MLP / HIDDEN,
            use_mlp=False, num_labels=len(labels), id2label=dict(enumerate(labels)),
        ))
    raise ValueError(f"unknown testbed model {name!r}; use one of {MODELS}")


def classifier_keys(name: str) -> tuple[str, str]:
    """The state_dict keys of a testbed model's classifier (weight, bias)."""
    prefix = "head" if name == "motionformer" else "classifier"
    return f"{prefix}.weight", f"{prefix}.bias"


def checkpoint_root() -> Path:
    """The shipped checkpoints' directory inside the installed package (found through importlib.resources)."""
    return Path(str(resources.files("vtome.testbed") / "checkpoints"))


def checkpoint_dir(name: str, dataset: str, root: str | Path | None = None) -> Path:
    """Where the checkpoint of (model, dataset) is: under root, by default the package's checkpoint_root()."""
    if name not in MODELS or dataset not in CLASSES:
        raise ValueError(f"no testbed checkpoint {name}-{dataset}; models {MODELS}, datasets {tuple(CLASSES)}")
    return Path(root or checkpoint_root()) / f"{name}-{dataset}"


def load_testbed_model(name: str, dataset: str, root: str | Path | None = None) -> nn.Module:
    """The trained testbed model, in eval mode (raises FileNotFoundError if its checkpoint is missing).

    root: a directory of <model>-<dataset> checkpoints instead of the shipped ones."""
    from vtome.models import load_model

    path = checkpoint_dir(name, dataset, root)
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"no trained checkpoint at {path}: run scripts/train_testbed.py")
    return load_model(str(path))


def save_checkpoint(model: nn.Module, path: str | Path, extra: dict | None = None) -> None:
    """save_pretrained (safetensors) plus the preprocessor config and a record of how it was made."""
    path = Path(path)
    model.save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2) + "\n")
    if extra is not None:
        (path / "training.json").write_text(json.dumps(extra, indent=2) + "\n")


def frame_indices(model: nn.Module) -> list[int]:
    """Which of the clip's FRAMES frames the model takes: uniform segments (all 8, or 1, 3, 5, 7 for 4)."""
    return FrameSampler(clip_frames(model), mode="uniform")(FRAMES)


def model_input(frames: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """uint8 frames (B, FRAMES, H, W, 3) -> normalised float32 (B, T, 3, H, W), T = the model's num_frames."""
    x = frames[:, frame_indices(model)].permute(0, 1, 4, 2, 3).float()
    return (x / 255 - MEAN) / STD
