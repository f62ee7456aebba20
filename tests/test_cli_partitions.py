"""The partition options of eval, bench, sweep and vis: refused before any work when bad; recorded; eval's motion
prior taken from each clip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vtome
from clipdata import square_clip, tiny_videomae_dir, write_frames, write_mp4
from clirun import refused
from clirun import vtome as run
from vtome.data.samplers import default_sampler
from vtome.data.transforms import clip_transform
from vtome.data.video import read_video
from vtome.evaluation.results import read_records
from vtome.models import load_model


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("partitions")
    frames = square_clip()
    write_mp4(root / "videos" / "moving.mp4", frames)  # MPEG-4 part 2: motion vectors
    write_frames(root / "videos" / "backwards", np.ascontiguousarray(frames[::-1]), pattern="{:03d}.png")  # none
    (root / "val.txt").write_text("moving.mp4 0\nbackwards 1\n")
    torch.save(torch.zeros(3, 5), root / "wide.pt")  # tiny VideoMAE: 2 layers of keys 8 wide (32 over 4 heads)
    return root, tiny_videomae_dir(root / "model", num_labels=3)


def eval_args(root, model, out) -> list:
    return ["eval", "--model", model, "--dataset", "k400", "--root", root / "videos", "--split", root / "val.txt",
            "--workers", "0", "--backend", "pyav", "--no-progress", "--out", out]


BAD = [
    (["--partition", "diagonal"], "--partition diagonal: use one of alternate, stride, center, boundary, motion"),
    (["--partition", "stride", "--gamma", "1"], "--gamma 1: must be a whole number >= 2"),
    (["--partition", "stride", "--gamma", "2.5"], "'--gamma'"),
    (["--partition", "stride", "--gamma", "6", "--r", "0.9"], "--r 0.9: a fractional r must be in (0, 0.833]"),
    (["--r", "0.7"], "--r 0.7: a fractional r must be in (0, 0.5]"),
    (["--gamma", "4"], "--partition alternate is ToMe's split"),
    (["--merge-weighting", "median"], "--merge-weighting median: use one of size, uniform"),
    (["--partition", "motion", "--tau", "0"], "--tau 0: the temperature"),
    (["--partition", "saliency"], "--partition saliency needs --saliency FILE"),
    (["--partition", "stride", "--saliency", "{root}/wide.pt"], "--saliency applies only to --partition saliency"),
    (["--partition", "saliency", "--saliency", "{root}/val.txt"], "give a .pt, .pth or .safetensors file"),
    (["--partition", "saliency", "--saliency", "{root}/wide.pt"], "vectors of shape (3, 5) do not fit"),
]


def command_args(command: str, root, model, tmp_path) -> list:
    return {"eval": eval_args(root, model, tmp_path / "run"),
            "bench": ["bench", "--model", model, "--runs", "1"],
            "sweep": ["sweep", "--model", model, "--out", tmp_path / "sweep"],
            "vis": ["vis", "--model", model, "--video", root / "videos" / "moving.mp4", "--out", tmp_path / "x.png"],
            }[command]


@pytest.mark.parametrize("command", ["eval", "bench", "sweep", "vis"])
@pytest.mark.parametrize(("extra", "message"), BAD, ids=[" ".join(b[0][:2]) + str(i) for i, b in enumerate(BAD)])
def test_bad_partition_options_are_refused_before_any_work(data, tmp_path, capsys, no_model_load, command, extra,
                                                           message):
    root, model = data
    if command == "sweep" and "--r" in extra:
        extra = [a if a != "--r" else "--max-fraction" for a in extra]
        message = message.replace("--r", "--max-fraction").replace("a fractional r must be", "must be")
    extra = [str(a).format(root=root) for a in extra]
    refused(run(capsys, *command_args(command, root, model, tmp_path), *extra), message)
    assert not (tmp_path / "run").exists() and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("command", ["bench", "sweep"])
def test_motion_needs_a_prior_source(data, tmp_path, capsys, no_model_load, command):
    root, model = data
    refused(run(capsys, *command_args(command, root, model, tmp_path), "--partition", "motion"),
            "--partition motion needs a motion prior")
    if command == "bench":
        refused(run(capsys, "bench", "--model", model, "--prior-video", root / "val.txt"),
                "--prior-video", "applies only to --partition motion")
        refused(run(capsys, "bench", "--model", model, "--partition", "motion", "--prior-video", root / "nothing"),
                "--prior-video", "no such file")


def test_eval_motion_takes_each_clips_prior_and_records_the_settings(data, tmp_path, capsys):
    root, model = data
    out = tmp_path / "motion"
    settings = ["--r", "0.5", "--partition", "motion", "--gamma", "4", "--save-logits", "--json"]
    done = run(capsys, *eval_args(root, model, out), *settings)
    assert done.code == 0, done.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert {k: metrics[k] for k in ("partition", "gamma", "merge_weighting", "sample", "tau", "saliency")} == {
        "partition": "motion", "gamma": 4, "merge_weighting": "size", "sample": True, "tau": 1.0, "saliency": None}
    assert metrics["prior_sources"] == {"frame_difference": 1, "motion_vectors": 1}
    assert "1 from motion vectors" in done.err
    records = {r["id"]: r for r in read_records(out / "predictions.jsonl")}
    assert records["moving.mp4"]["prior_source"] == "motion_vectors"
    assert records["backwards"]["prior_source"] == "frame_difference"
    # Each clip's logits are those of the model given that clip's own prior, computed here by hand.
    net = load_model(str(model))
    for clip, path in (("moving.mp4", root / "videos" / "moving.mp4"), ("backwards", root / "videos" / "backwards")):
        x = clip_transform(net)(read_video(path, default_sampler(net)))[None]
        vtome.patch(net, r=0.5, partition="motion", gamma=4)
        vtome.set_prior(net, vtome.motion_prior(path, net).prior)
        with torch.inference_mode():
            expected = net(x).logits[0]
        torch.testing.assert_close(torch.tensor(records[clip]["logits"]), expected, atol=1e-5, rtol=1e-5)
    # The resume guard knows the partition: another one into the same --out is refused.
    refused(run(capsys, *eval_args(root, model, out), "--r", "0.5", "--partition", "stride", "--gamma", "4"),
            "partition differ")


def test_bench_and_sweep_with_a_partition(data, tmp_path, capsys):
    root, model = data
    done = run(capsys, "bench", "--model", "videomae-tiny", "--r", "0.6", "--partition", "stride", "--gamma", "6",
               "--runs", "1", "--json")
    assert done.code == 0, done.err
    result = json.loads(done.out)
    assert (result["partition"], result["gamma"]) == ("stride", 6)
    assert result["tokens"][:3] == [256, 103, 18]  # 256 - min(153, 1 - 1/6 of 256 = 213); 103 -> 103 - 85
    done = run(capsys, "bench", "--model", "videomae-tiny", "--r", "0.5", "--partition", "motion",
               "--prior-video", root / "videos" / "moving.mp4", "--runs", "1", "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["prior_video"].endswith("moving.mp4")
    done = run(capsys, "sweep", "--model", "videomae-tiny", "--partition", "center", "--max-fraction", "0.8",
               "--steps", "3", "--schedules", "constant", "--out", tmp_path / "sweep", "--json")
    assert done.code == 0, done.err
    rows = json.loads(done.out)["rows"]
    assert [(row["partition"], row["gamma"], row["r"]) for row in rows] == [("center", 6, 0), ("center", 6, 0.4),
                                                                            ("center", 6, 0.8)]
    assert rows[2]["tokens"][1] == 256 - 204 and rows[2]["flop_speedup"] > rows[1]["flop_speedup"] > 1


def test_vis_center_and_boundary_keep_tokens_in_different_places(tmp_path, capsys):
    from vtome.vis.clips import synthetic_clip
    from vtome.vis.picture import merged_picture

    model = load_model("videomae-tiny")  # 4 x 8 x 8 tubelets of 2 frames x 8 x 8 pixels; no class token
    frames = synthetic_clip("shapes", 8, 64, 64)
    kept_in_box = {}
    for kind in ("center", "boundary"):
        # Drop every source that may leave: what stays after layer 1 is the targets (and a source or two).
        settings = ["--mode", "drop", "--r", "0.83", "--layer", "1", "--partition", kind]
        done = run(capsys, "vis", "--model", "videomae-tiny", "--video", "synthetic:shapes", *settings, "--no-gif",
                   "--out", tmp_path / f"{kind}.png", "--json")
        assert done.code == 0, done.err
        assert json.loads(done.out)["tokens"][:2] == [256, 256 - int(0.83 * 256)]
        assert (tmp_path / f"{kind}.png").is_file()
        picture = merged_picture(model, frames, 1, mode="drop", r=0.83, partition=kind)
        kept = picture.groups >= 0  # (T, 64, 64): pixels of the tokens that stay
        kept_in_box[kind] = (kept[:, 16:48, 16:48].sum() / kept.sum()).item()
    # The box is a quarter of every frame; center keeps half its targets there, boundary a tenth.
    assert kept_in_box["center"] > 0.45 and kept_in_box["boundary"] < 0.15


def test_vis_motion_says_where_its_prior_came_from(data, tmp_path, capsys):
    root, _ = data
    for video, source in (("synthetic:shapes", "frame_difference"), (root / "videos" / "moving.mp4",
                                                                    "motion_vectors")):
        done = run(capsys, "vis", "--model", "videomae-tiny", "--video", video, "--r", "0.5", "--partition",
                   "motion", "--no-gif", "--out", tmp_path / "m.png", "--json")
        assert done.code == 0, done.err
        assert json.loads(done.out)["prior_source"] == source


def test_eval_with_fixed_saliency_vectors(data, tmp_path, capsys):
    root, model = data
    torch.save(torch.randn(2, 8), tmp_path / "u.pt")  # 2 layers, keys 8 wide
    out = tmp_path / "saliency"
    done = run(capsys, *eval_args(root, model, out), "--r", "0.5", "--partition", "saliency", "--saliency",
               tmp_path / "u.pt", "--no-sample", "--merge-weighting", "uniform", "--json")
    assert done.code == 0, done.err
    metrics = json.loads(done.out)
    assert (metrics["partition"], metrics["gamma"], metrics["sample"], metrics["merge_weighting"]) == (
        "saliency", 6, False, "uniform")
    assert metrics["saliency"] == str((tmp_path / "u.pt").resolve()) and "prior_sources" not in metrics
    assert metrics["tokens"][1] == 32 - 16  # r = 0.5 of 32 tokens: within 1 - 1/6


def test_region_partitions_on_a_family_without_a_grid_are_refused(data, tmp_path, capsys, no_model_load, monkeypatch):
    import dataclasses

    from vtome.patch import registry

    gridless = [dataclasses.replace(f, layout=None) if f.name == "videomae" else f for f in registry.FAMILIES]
    monkeypatch.setattr(registry, "FAMILIES", gridless)
    for partition in ("center", "boundary"):
        refused(run(capsys, "bench", "--model", "videomae-tiny", "--r", "0.5", "--partition", partition),
                f"partition={partition!r} needs the model's patch grid")
