"""Official Motionformer checkpoints (.pyth): synthetic files with the official keys, shapes and cfg text load
strictly and run; broken ones are refused with one line that names the problem."""

from __future__ import annotations

import pytest
import torch
import yaml

from test_motionformer_model import randomise
from vtome.models import Motionformer, MotionformerConfig, is_motionformer_dir, load_model
from vtome.models.pyth import pyth_config

# A tiny model of the official layout: 4 x 8 px patches would be 32 px; upstream builds its position table for
# 224 px whatever the crop (28 x 28 + 1 rows here) and resizes it to the 4 x 4 grid of a 32 px crop.
CFG = {
    "TRAIN": {"DATASET": "Kinetics", "BATCH_SIZE": 8},
    "DATA": {"NUM_FRAMES": 4, "SAMPLING_RATE": 4, "TRAIN_CROP_SIZE": 32, "TEST_CROP_SIZE": 32,
             "MEAN": [0.5, 0.5, 0.5], "STD": [0.5, 0.5, 0.5]},
    "MODEL": {"NUM_CLASSES": 5, "MODEL_NAME": "VisionTransformer"},
    "VIT": {"PATCH_SIZE": 8, "PATCH_SIZE_TEMP": 2, "CHANNELS": 3, "EMBED_DIM": 32, "DEPTH": 2, "NUM_HEADS": 4,
            "MLP_RATIO": 2, "QKV_BIAS": True, "VIDEO_INPUT": True, "TEMPORAL_RESOLUTION": 2, "USE_MLP": True,
            "HEAD_ACT": "tanh", "ATTN_LAYER": "trajectory", "DROP_PATH": 0.2},
}


def official_state(cfg: dict) -> dict:
    """A random state_dict with exactly the official keys and shapes for cfg, written out by hand (spec §2)."""
    vit = cfg["VIT"]
    dim, depth, patch, tube, slots = (vit["EMBED_DIM"], vit["DEPTH"], vit["PATCH_SIZE"], vit["PATCH_SIZE_TEMP"],
                                      vit["TEMPORAL_RESOLUTION"])
    hidden = int(dim * vit["MLP_RATIO"])
    shapes = {"cls_token": (1, 1, dim), "pos_embed": (1, (224 // patch) ** 2 + 1, dim), "temp_embed": (1, slots, dim),
              "patch_embed.proj.weight": (dim, 3, patch, patch), "patch_embed.proj.bias": (dim,),
              "patch_embed_3d.proj.weight": (dim, 3, tube, patch, patch), "patch_embed_3d.proj.bias": (dim,)}
    for i in range(depth):
        for name, out, inp in (("norm1", dim, None), ("attn.qkv", 3 * dim, dim), ("attn.proj_q", dim, dim),
                               ("attn.proj_kv", 2 * dim, dim), ("attn.proj", dim, dim), ("norm2", dim, None),
                               ("mlp.fc1", hidden, dim), ("mlp.fc2", dim, hidden)):
            shapes[f"blocks.{i}.{name}.weight"] = (out,) if inp is None else (out, inp)
            shapes[f"blocks.{i}.{name}.bias"] = (out,)
    shapes.update({"norm.weight": (dim,), "norm.bias": (dim,), "pre_logits.fc.weight": (dim, dim),
                   "pre_logits.fc.bias": (dim,)})
    if cfg["TRAIN"]["DATASET"] == "Epickitchens":
        shapes.update({"head0.weight": (97, dim), "head0.bias": (97,), "head1.weight": (300, dim),
                       "head1.bias": (300,)})
    else:
        classes = cfg["MODEL"]["NUM_CLASSES"]
        shapes.update({"head.weight": (classes, dim), "head.bias": (classes,)})
    generator = torch.Generator().manual_seed(0)
    return {k: torch.randn(shape, generator=generator) * 0.3 for k, shape in shapes.items()}


def write_pyth(path, state: dict, cfg: dict | None, prefix: str = "") -> str:
    checkpoint = {"epoch": 35, "model_state": {prefix + k: v for k, v in state.items()},
                  "optimizer_state": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 1e-4}]}}
    if cfg is not None:
        checkpoint["cfg"] = yaml.safe_dump(cfg)
    torch.save(checkpoint, path)
    return str(path)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_layout_loads_strictly_and_runs(tmp_path, prefix):
    state = official_state(CFG)
    model = load_model(write_pyth(tmp_path / "k400.pyth", state, CFG, prefix))
    assert not model.training and model.config.pos_grid == 28 and model.config.num_frames == 4
    assert model.config.num_attention_heads == 4 and model.config.num_labels == 5
    loaded = model.state_dict()
    assert list(loaded) == list(state)  # the official order too
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    logits = model(torch.randn(2, 4, 3, 32, 32)).logits
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()


def test_epic_checkpoint_has_verb_then_noun_logits(tmp_path):
    cfg = {**CFG, "TRAIN": {"DATASET": "Epickitchens"}, "MODEL": {"NUM_CLASSES": 97}}
    state = official_state(cfg)
    model = load_model(write_pyth(tmp_path / "ek.pyth", state, cfg))
    assert model.config.class_heads == [97, 300] and model.config.num_labels == 397
    assert (model.config.num_verbs, model.config.num_nouns) == (97, 300)
    captured = {}
    model.pre_logits.register_forward_hook(lambda m, i, o: captured.update(features=o))
    logits = model(torch.randn(2, 4, 3, 32, 32)).logits
    features = captured["features"]
    torch.testing.assert_close(logits[:, :97], features @ state["head0.weight"].T + state["head0.bias"])
    torch.testing.assert_close(logits[:, 97:], features @ state["head1.weight"].T + state["head1.bias"])


def test_without_cfg_the_shapes_give_the_architecture(tmp_path):
    source = randomise(Motionformer(MotionformerConfig(
        image_size=32, patch_size=8, temporal_resolution=2, pos_grid=4, hidden_size=128, num_hidden_layers=2,
        num_attention_heads=2, mlp_ratio=3.0, num_labels=7, qkv_bias=False, use_mlp=False))).eval()
    path = write_pyth(tmp_path / "bare.pyth", source.state_dict(), None)
    model = load_model(path)
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.mlp_ratio, c.num_labels) == (128, 2, 2, 3.0, 7)
    assert (c.qkv_bias, c.use_mlp, c.pos_grid, c.image_size, c.num_frames) == (False, False, 4, 32, 4)
    x = torch.randn(1, 4, 3, 32, 32)
    torch.testing.assert_close(model(x).logits, source(x).logits, atol=0, rtol=0)
    torch.save(source.state_dict(), tmp_path / "state.pt")  # a bare state_dict loads too
    assert pyth_config(tmp_path / "state.pt").hidden_size == 128


def test_saved_directory_round_trips(tmp_path):
    model = randomise(load_model("motionformer-tiny"))
    model.config.id2label = {i: f"class {i}" for i in range(10)}
    model.save_pretrained(tmp_path / "saved")
    assert is_motionformer_dir(tmp_path / "saved") and not is_motionformer_dir(tmp_path)
    loaded = load_model(str(tmp_path / "saved"))
    assert loaded.config == model.config and loaded.config.label2id["class 3"] == 3
    x = torch.randn(1, 8, 3, 64, 64)
    assert torch.equal(loaded(x).logits, model.eval()(x).logits)


def _drop(state: dict, key: str) -> dict:
    return {k: v for k, v in state.items() if k != key}


@pytest.mark.parametrize("change, message", [
    (lambda s: _drop(s, "blocks.1.attn.proj_kv.weight"), r"missing key 'blocks\.1\.attn\.proj_kv\.weight'"),
    (lambda s: {**s, "blocks.1.attn.extra": torch.zeros(1)}, r"unexpected key 'blocks\.1\.attn\.extra'"),
    (lambda s: {**s, "temp_embed": torch.zeros(1, 3, 32)}, r"'temp_embed' has shape \(1, 3, 32\); the "
                                                           r"architecture needs \(1, 2, 32\)"),
    (lambda s: {**s, "head.weight": torch.zeros(6, 32), "head.bias": torch.zeros(6)},
     "classifier.* of 5 classes; the state_dict has 6"),
])
def test_broken_checkpoints_name_the_problem(tmp_path, change, message):
    path = write_pyth(tmp_path / "broken.pyth", change(official_state(CFG)), CFG)
    with pytest.raises(ValueError, match=message) as err:
        load_model(path)
    assert "\n" not in str(err.value) and "broken.pyth" in str(err.value)


def test_cfg_of_another_model_is_refused(tmp_path):
    cfg = {**CFG, "VIT": {**CFG["VIT"], "ATTN_LAYER": "divided"}}
    with pytest.raises(ValueError, match="ATTN_LAYER is 'divided'"):
        load_model(write_pyth(tmp_path / "divided.pyth", official_state(CFG), cfg))
    cfg = {**CFG, "DATA": {**CFG["DATA"], "NUM_FRAMES": 16}}
    with pytest.raises(ValueError, match="NUM_FRAMES is 16"):
        load_model(write_pyth(tmp_path / "frames.pyth", official_state(CFG), cfg))


def test_files_that_are_not_checkpoints(tmp_path):
    text = tmp_path / "notes.pyth"
    text.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match="is not a PyTorch checkpoint"):
        load_model(str(text))
    other = tmp_path / "other.pyth"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a Motionformer checkpoint: no 'model_state'"):
        load_model(str(other))
    with pytest.raises(ValueError, match="not a Motionformer"):
        load_model(write_pyth(tmp_path / "vit.pyth", {"cls_token": torch.zeros(1, 1, 8)}, None))
