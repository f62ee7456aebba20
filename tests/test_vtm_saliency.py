"""Learnable VTM learns a saliency: after a short seeded training on the long-video set, block 1's mean saliency
on the salient object's tokens exceeds the background's by a measured margin."""

import torch

from vtome.vtm.fit import FitConfig, LongData, fit, saliency_margin
from vtome.vtm.net import VTMConfig, VTMNet

LENGTH = 6  # frames of one window: the test trains a one-block VTMNet on the 6-frame windows that show the object


def object_windows(data: LongData) -> LongData:
    """The first window of LENGTH frames (aligned as the net's block-1 windows) in which the object is in view in
    every frame, of every clip that has one."""
    parts = []
    for i in range(len(data)):
        shown = data.mask[i].flatten(1).any(1).reshape(-1, LENGTH).all(1)
        if shown.any():
            w = int(shown.nonzero()[0]) * LENGTH
            parts.append([column[i:i + 1, w:w + LENGTH] if column.dim() > 1 else column[i:i + 1]
                          for column in (data.features, data.motion, data.label, data.camera, data.mask)])
    return LongData(*(torch.cat(column) for column in zip(*parts, strict=True)))


def test_saliency_is_higher_on_the_object_after_training():
    torch.set_num_threads(1)
    train = object_windows(LongData.make("train", 100))
    test = object_windows(LongData.make("test", 48))
    config = VTMConfig(frames=LENGTH, height=6, width=6, channels=64, classes=4, windows=(LENGTH,),
                       variant="learnable")
    assert saliency_margin(VTMNet(config), test) == {"object": 0.0, "background": 0.0}  # zero heads: s = 0
    net, losses = fit("learnable", train, FitConfig(steps=60), net_config=config)
    margin = saliency_margin(net, test, count=len(test))
    assert losses[-1] < losses[0]
    assert margin["object"] - margin["background"] > 0.5  # measured: 0.93 (object 0.08, background -0.84)
