"""The long-video testbed set (60 frames, a small salient object, camera motion) and its frozen encoder."""

import numpy as np
import torch

from vtome.testbed import longclips
from vtome.testbed.encoder import FrameEncoder
from vtome.testbed.models import MEAN, STD


def test_clips_repeat_and_are_balanced():
    one, again = longclips.make_long_clip(3, "train"), longclips.make_long_clip(3, "train")
    assert np.array_equal(one.frames, again.frames) and one.frames.shape == (60, 24, 24, 3)
    assert not np.array_equal(one.frames, longclips.make_long_clip(3, "test").frames)
    clips = longclips.make_long_clips("test", 8)
    assert clips["label"].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert clips["camera"].tolist() == [False] * 4 + [True] * 4
    shown = clips["mask"].flatten(2).any(2)  # (clips, frames): the object in view
    assert (shown.sum(1) >= longclips.MIN_SHOWN).all() and (shown.sum(1) <= 30).all()
    per_frame = clips["mask"].flatten(2).sum(2)[shown]
    assert per_frame.min() >= 1 and per_frame.max() <= 4  # a small object: one to four of the 36 patches


def test_the_object_is_the_colour_of_its_class():
    clip = longclips.make_long_clip(2, "test")  # class 2: green
    pixels = clip.frames.reshape(60, 6, 4, 6, 4, 3).transpose(0, 1, 3, 2, 4, 5)[clip.mask].reshape(-1, 3)
    assert pixels.astype(int).mean(0).argmax() == 1


def test_camera_motion_blurs_the_motion_prior():
    clips = longclips.make_long_clips("train", 16)
    prior, mask = longclips.motion_prior(clips["frames"]), clips["mask"]
    assert prior.shape == (16, 60, 6, 6)
    torch.testing.assert_close(prior.mean((1, 2, 3)), torch.zeros(16), atol=1e-5, rtol=0)
    margins = {}
    for camera in (False, True):
        rows = clips["camera"] == camera
        p, m = prior[rows], mask[rows]
        margins[camera] = (p[m].mean() - p[~m].mean()).item()
    assert margins[False] > 1.5 and margins[True] < 0.75 * margins[False]  # a still camera: motion marks the object


def test_encoder_is_the_shipped_patch_embedding():
    encoder = FrameEncoder()
    frames = torch.from_numpy(longclips.make_long_clip(0).frames[None, :2])
    tokens = encoder(frames)
    assert tokens.shape == (1, 2, 36, 64)
    patch = (frames[0, 1, 4:8, 8:12].permute(2, 0, 1).float() / 255 - MEAN) / STD  # row 1, column 2 of frame 1
    expected = (encoder.proj.weight * patch).sum((1, 2, 3)) + encoder.proj.bias
    torch.testing.assert_close(tokens[0, 1, 1 * 6 + 2], expected, atol=1e-4, rtol=1e-4)
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.training
