"""The supported model families, in the order they are tried. Family adapters import only `family.py` and
`state.py`, and the patching functions import this module: no import circle."""

from __future__ import annotations

from torch import nn

from vtome.patch import motionformer, timesformer, timm_vit, videomae, vivit, vjepa2
from vtome.patch.family import Family

FAMILIES: list[Family] = [vivit.FAMILY, videomae.FAMILY, timesformer.FAMILY, motionformer.FAMILY, vjepa2.FAMILY,
                          timm_vit.FAMILY]

SUPPORTED = (
    "transformers VivitModel / VivitForVideoClassification, VideoMAEModel / VideoMAEForVideoClassification, "
    "TimesformerModel / TimesformerForVideoClassification (divided space-time), "
    "vtome's Motionformer (divided space-time; loads the official checkpoints), "
    "VJEPA2Model (encoder) / VJEPA2ForVideoClassification (rotary positions, attentive pooler), "
    "timm VisionTransformer (class token or none)"
)


def find_family(model: nn.Module) -> Family:
    for family in FAMILIES:
        if family.matches(model):
            return family
    raise TypeError(f"vtome cannot patch a {type(model).__module__}.{type(model).__name__}. Supported: {SUPPORTED}.")
