"""Model input from frames: processor configs, family defaults, crops; frame samplers."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from clipdata import tiny_videomae_dir
from vtome.data.samplers import FrameSampler, default_sampler
from vtome.data.transforms import ClipTransform, clip_transform
from vtome.models import load_model


def _flat(value: int, t: int = 2, h: int = 40, w: int = 60) -> torch.Tensor:
    return torch.full((t, h, w, 3), value, dtype=torch.uint8)


def test_processor_config_is_used(tmp_path):
    path = tiny_videomae_dir(tmp_path / "m", image=32)
    (path / "preprocessor_config.json").write_text(json.dumps({
        "size": {"shortest_edge": 40}, "crop_size": {"height": 32, "width": 32}, "rescale_factor": 1 / 255,
        "image_mean": [0.1, 0.2, 0.3], "image_std": [0.5, 0.25, 0.125],
    }))
    transform = clip_transform(load_model(str(path)))
    assert transform.resize == 40 and transform.crop == (32, 32)
    x = transform(_flat(255))
    assert x.shape == (2, 3, 32, 32)
    expected = torch.tensor([(1 - 0.1) / 0.5, (1 - 0.2) / 0.25, (1 - 0.3) / 0.125])
    assert torch.allclose(x[0, :, 5, 7], expected, atol=1e-5)


def test_family_defaults_vivit_offset():
    transform = clip_transform(load_model("vivit-tiny"))  # no processor config: ViViT's (x/127.5 - 1 - .5) / .5
    assert transform.offset and transform.crop == (64, 64) and transform.resize == round(64 * 256 / 224)
    assert torch.allclose(transform(_flat(255))[0, 0], torch.ones(64, 64))
    assert torch.allclose(transform(_flat(0))[0, 0], torch.full((64, 64), -3.0))
    mae = clip_transform(load_model("videomae-tiny"))
    assert mae.mean == (0.485, 0.456, 0.406) and not mae.offset and mae.resize == 64


def test_short_side_resize_and_crops():
    transform = ClipTransform(resize=20, crop=(20, 20), mean=(0, 0, 0), std=(1, 1, 1), rescale=1.0)
    frames = torch.zeros(1, 40, 80, 3, dtype=torch.uint8)
    frames[:, :, :20] = 100  # left quarter bright
    frames[:, :, 60:] = 200  # right quarter brighter
    views = transform.spatial_views(frames, 3)  # resized to 20 x 40: left / centre / right crops
    assert views.shape == (3, 1, 3, 20, 20)
    assert views[0, 0, 0, :, :8].mean() == pytest.approx(100, abs=1)
    assert views[2, 0, 0, :, -8:].mean() == pytest.approx(200, abs=1)
    assert views[1, 0, 0, :, 6:14].abs().max() < 1  # the centre crop holds the dark middle
    assert torch.equal(views[1], transform(frames))


def test_rate_sampler():
    s = FrameSampler(num_frames=4, mode="rate", rate=3)
    assert s(100) == [45, 48, 51, 54]  # span 10, centred: start (100 - 10) // 2
    assert s(5) == [0, 3, 4, 4]  # shorter than the span: the last frame repeats
    three = FrameSampler(num_frames=2, mode="rate", rate=2, views=3)
    assert [three(11, v) for v in range(3)] == [[0, 2], [4, 6], [8, 10]]


def test_uniform_sampler():
    s = FrameSampler(num_frames=4, mode="uniform")
    assert s(40) == [5, 15, 25, 35]  # segment centres
    assert s(2) == [0, 0, 1, 1]
    two = FrameSampler(num_frames=2, mode="uniform", views=2)
    assert [two(8, v) for v in range(2)] == [[1, 5], [3, 7]]
    with pytest.raises(ValueError):
        FrameSampler(num_frames=4, mode="dense")


def test_default_sampler_per_dataset():
    model = load_model("videomae-tiny")
    k400 = default_sampler(model, "k400")
    assert (k400.num_frames, k400.mode, k400.rate) == (8, "rate", 4)
    assert default_sampler(model, "ssv2").mode == "uniform"
    assert default_sampler(load_model("timesformer-tiny"), "k400").rate == 32


@pytest.mark.parametrize("family", ["videomae", "vivit"])
def test_matches_the_huggingface_processors(family):
    """Within one gray level of what transformers' own processors make of the same frames."""
    import numpy as np
    from transformers import VideoMAEImageProcessor, VivitImageProcessor

    frames = np.random.default_rng(0).integers(0, 256, (2, 72, 96, 3), dtype=np.uint8)
    sizes = {"size": {"shortest_edge": 48}, "crop_size": {"height": 40, "width": 40}}
    if family == "videomae":
        processor = VideoMAEImageProcessor(**sizes, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    else:
        processor = VivitImageProcessor(**sizes)  # offset rescale, mean/std 0.5
    model = SimpleNamespace(config=SimpleNamespace(model_type=family, image_size=40, name_or_path=""))
    ours = clip_transform(model, processor=processor.to_dict())
    assert ours.resize == 48 and ours.offset == (family == "vivit")
    theirs = processor(list(frames), return_tensors="pt")["pixel_values"][0]
    levels = (theirs - ours(torch.from_numpy(frames))).abs() * torch.tensor(ours.std).view(3, 1, 1) / ours.rescale
    assert levels.max() <= 1.01 and levels.mean() < 0.3


@pytest.mark.parametrize("crop", [32, 256])
def test_matches_the_vjepa2_video_processor(tmp_path, crop):
    """V-JEPA 2: the checkpoint's video_preprocessor_config.json (what VJEPA2VideoProcessor saves) read, and the
    family default equal to it; within one gray level of the processor's own output."""
    import numpy as np
    from transformers import VJEPA2VideoProcessor

    processor = VJEPA2VideoProcessor(crop_size=crop)
    processor.save_pretrained(tmp_path)
    config = SimpleNamespace(model_type="vjepa2", crop_size=crop, name_or_path=str(tmp_path))
    ours = clip_transform(SimpleNamespace(config=config))
    assert (ours.resize, ours.crop) == (int(crop * 256 / 224), (crop, crop))  # 36 / 292: the processor's rule
    default = clip_transform(SimpleNamespace(config=SimpleNamespace(**{**vars(config), "name_or_path": ""})))
    assert default == ours
    frames = np.random.default_rng(0).integers(0, 256, (2, crop + 8, crop + 24, 3), dtype=np.uint8)
    theirs = processor(frames, return_tensors="pt")["pixel_values_videos"][0]
    levels = (theirs - ours(torch.from_numpy(frames))).abs() * torch.tensor(ours.std).view(3, 1, 1) / ours.rescale
    assert levels.max() <= 1.01 and levels.mean() < 0.3
