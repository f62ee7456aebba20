"""Motionformer through the commands: eval (preprocessing, channel order, report rows), models, bench, vis, and
--model taking .pyth files and saved directories."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from clipdata import noise_frames, write_mp4
from clirun import refused, vtome
from test_motionformer_checkpoints import CFG, official_state, write_pyth
from vtome.cli import app
from vtome.data.transforms import clip_transform, default_channels
from vtome.evaluation.report import table_rows


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mf")
    for i in range(3):
        write_mp4(root / "videos" / f"v{i}.mp4", noise_frames(20, 32, 40, seed=i))
    (root / "val.txt").write_text("".join(f"v{i}.mp4 {i}\n" for i in range(3)))
    cfg = {**CFG, "MODEL": {"NUM_CLASSES": 5}}
    return root, write_pyth(root / "k400.pyth", official_state(cfg), cfg)


def _eval(root, model, out, *extra):
    return ["eval", "--model", str(model), "--dataset", "k400", "--root", str(root / "videos"), "--split",
            str(root / "val.txt"), "--workers", "0", "--out", str(out), "--backend", "pyav", "--no-progress", *extra]


def test_eval_a_pyth_checkpoint_and_report_it(data, tmp_path):
    root, model = data
    base = CliRunner().invoke(app, _eval(root, model, tmp_path / "r0"))
    assert base.exit_code == 0, base.output
    merged = CliRunner().invoke(app, _eval(root, model, tmp_path / "r5", "--r", "5", "--channels", "bgr"))
    assert merged.exit_code == 0, merged.output
    metrics = json.loads((tmp_path / "r5" / "metrics.json").read_text())
    assert (metrics["model_type"], metrics["name"], metrics["evaluated"]) == ("motionformer", "Motionformer", 3)
    assert metrics["tokens"] == [16, 11, 6] and metrics["merge_frames"] == 2  # per slot, 2 slots of 2 frames
    assert (metrics["num_frames"], metrics["sampling"], metrics["sampling_rate"]) == (4, "rate", 4)
    transform = metrics["transform"]
    assert (transform["resize"], transform["crop"], transform["channels"]) == (32, [32, 32], "bgr")
    assert transform["mean"] == transform["std"] == [0.5, 0.5, 0.5]
    r0 = json.loads((tmp_path / "r0" / "metrics.json").read_text())
    assert r0["transform"]["channels"] == "rgb" and r0["merge_frames"] == 2
    rows = table_rows([r0, metrics])
    assert [(row["Model"], row["r"], row["Reduction"]) for row in rows] == [("Motionformer", "0", "-"),
                                                                          ("Motionformer", "5×2", "merge")]


def test_channel_order_follows_the_training_configs():
    assert default_channels("motionformer", "epic") == "bgr"
    assert {default_channels("motionformer", d) for d in ("k400", "ssv2", "folder")} == {"rgb"}
    assert default_channels("videomae", "epic") == "rgb"
    model = SimpleNamespace(config=SimpleNamespace(model_type="motionformer", image_size=32, name_or_path=""))
    frames = torch.randint(0, 256, (4, 40, 48, 3), dtype=torch.uint8)
    rgb, bgr = clip_transform(model)(frames), clip_transform(model, channels="bgr")(frames)
    assert clip_transform(model).resize == 32  # the short side scaled to the crop, as upstream tests
    assert torch.equal(bgr, rgb.flip(1)) and not torch.equal(bgr, rgb)
    with pytest.raises(ValueError, match="channels"):
        clip_transform(model, channels="gbr")


def test_model_options_take_checkpoints_and_directories(data, tmp_path, capsys):
    root, model = data
    summary = json.loads(vtome(capsys, "vis", "--model", model, "--r", 4, "--no-gif", "--scale", 1, "--out",
                               tmp_path / "v.png", "--json").out)
    assert summary["tokens"] == [16, 12, 8] and (tmp_path / "v.png").is_file()
    from vtome.models import load_model

    load_model(model).save_pretrained(tmp_path / "saved")
    bench = vtome(capsys, "bench", "--model", tmp_path / "saved", "--r", 4, "--runs", 1, "--warmup", 0, "--json")
    result = json.loads(bench.out)
    assert result["tokens"] == [16, 12, 8] and result["merged_frames"] == 2 and result["flop_speedup"] > 1
    not_a_checkpoint = tmp_path / "notes.pyth"
    not_a_checkpoint.write_text("hello")
    refused(vtome(capsys, "bench", "--model", not_a_checkpoint), "is a file but not a Motionformer checkpoint")


def test_models_lists_the_motionformer_presets(capsys):
    rows = {row["name"]: row for row in json.loads(vtome(capsys, "models", "--json").out)["presets"]}
    base = rows["motionformer-b"]
    assert (base["family"], base["frames"], base["tokens"], base["merged_frames"]) == ("motionformer", 16, 196, 8)
    assert base["parameters"] == 109_144_720
