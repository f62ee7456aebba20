"""The shipped testbed checkpoints: inside the package, small, loadable, and as accurate as recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import vtome
from vtome.testbed.clips import CLASSES, DATASETS, FRAMES, make_clips
from vtome.testbed.models import (
    MODELS,
    build_model,
    checkpoint_dir,
    checkpoint_root,
    frame_indices,
    load_testbed_model,
    model_input,
)

PAIRS = [(m, d) for m in MODELS for d in DATASETS]
SUBSET = 96  # test clips per check: 8 per appearance class, 12 per temporal class


def test_checkpoints_are_package_data_and_small():
    assert checkpoint_root().is_relative_to(Path(vtome.__file__).parent)
    for name, dataset in PAIRS:
        path = checkpoint_dir(name, dataset)
        for file in ("config.json", "model.safetensors", "preprocessor_config.json", "training.json"):
            assert (path / file).is_file(), path / file
        assert (path / "model.safetensors").stat().st_size <= 5 * 2**20
        assert "train_testbed.py" in json.loads((path / "training.json").read_text())["command"]


@pytest.mark.parametrize(("name", "dataset"), PAIRS)
def test_checkpoint_reaches_its_accuracy(name, dataset):
    """Each shipped model is >= 90% accurate unmerged on its set (recorded on 500 test clips by the training script;
    checked here on a balanced subset of them)."""
    torch.set_num_threads(1)
    model = load_testbed_model(name, dataset)
    assert model.config.num_labels == len(CLASSES[dataset]) and not model.training
    frames, labels = make_clips(dataset, "test", SUBSET)
    with torch.inference_mode():
        preds = model(model_input(frames, model)).logits.argmax(-1)
    accuracy = float((preds == labels).float().mean())
    recorded = json.loads((checkpoint_dir(name, dataset) / "training.json").read_text())["test_accuracy"]
    assert abs(accuracy - recorded) < 0.06
    assert recorded >= 0.9 and accuracy >= 0.9


def test_input_matches_the_evaluation_pipeline():
    """vtome.data's transform reads the checkpoint's preprocessor config and makes the same input."""
    from vtome.data.transforms import clip_transform

    frames, _ = make_clips("temporal", "test", 2)
    for name in MODELS:
        model = load_testbed_model(name, "temporal")
        ours = model_input(frames, model)
        theirs = clip_transform(model)(frames[0, frame_indices(model)])
        assert torch.allclose(ours[0], theirs, atol=1e-5)


def test_timesformer_takes_every_other_frame_and_all_take_256_patches():
    """(Motionformer takes all 8 frames, as 4 slots of 2.)"""
    frames = torch.arange(FRAMES, dtype=torch.uint8).view(1, FRAMES, 1, 1, 1).expand(2, FRAMES, 32, 32, 3)
    tsf = build_model("timesformer", "temporal")
    assert frame_indices(tsf) == [1, 3, 5, 7]
    x = model_input(frames, tsf)
    assert x.shape == (2, 4, 3, 32, 32)
    assert torch.allclose(x[0, :, 0, 0, 0], (torch.tensor([1.0, 3, 5, 7]) / 255 - 0.5) / 0.25)
    for name in MODELS:
        model = build_model(name, "appearance")
        vtome.patch(model, r=0)
        with torch.inference_mode():
            model(model_input(frames, model))
        tokens = vtome.info(model)["tokens"][0]
        assert tokens == {"vivit": 257, "videomae": 256, "timesformer": 64, "motionformer": 64, "vjepa2": 256}[name]


def test_unknown_and_missing_checkpoints(tmp_path):
    with pytest.raises(ValueError, match="no testbed checkpoint"):
        checkpoint_dir("vit", "temporal")
    with pytest.raises(FileNotFoundError, match="train_testbed.py"):
        load_testbed_model("vivit", "temporal", root=tmp_path)
