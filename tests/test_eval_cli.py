"""`vtome eval` end to end: the command in-process, and a 2-process gloo torchrun run equal to 1 process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from clipdata import noise_frames, tiny_videomae_dir, write_mp4
from vtome.cli import app
from vtome.evaluation.results import read_records


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    lines = [f"v{i}.mp4 {i % 3}" for i in range(5)] + ["broken.mp4 0"]
    for i in range(5):
        write_mp4(root / "videos" / f"v{i}.mp4", noise_frames(5, 32, 40, seed=10 + i))
    (root / "videos" / "broken.mp4").write_bytes(b"garbage")
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    return root, tiny_videomae_dir(root / "model", num_labels=3)


def _args(root, model, out):
    return ["eval", "--model", str(model), "--dataset", "k400", "--root", str(root / "videos"),
            "--split", str(root / "val.txt"), "--r", "4", "--batch-size", "2", "--workers", "0", "--out", str(out),
            "--backend", "pyav", "--save-logits", "--no-progress", "--json"]


def test_eval_command(data, tmp_path):
    root, model = data
    result = CliRunner().invoke(app, _args(root, model, tmp_path / "one") + ["--limit", "4", "--workers", "1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert metrics["total"] == metrics["evaluated"] == 4 and metrics["failed"] == 0
    assert (metrics["r"], metrics["mode"], metrics["schedule"], metrics["model_type"]) == (4, "merge", "constant",
                                                                                            "videomae")
    assert metrics["tokens"] == [32, 28, 24] and metrics["patched"] and metrics["name"] == "VideoMAE"
    assert metrics["num_frames"] == 4 and metrics["sampling"] == "rate" and metrics["sampling_rate"] == 4
    assert json.loads(result.stdout) == metrics
    other = CliRunner().invoke(app, _args(root, model, tmp_path / "one") + ["--mode", "drop"])
    assert other.exit_code == 2 and "mode differ" in other.output  # never mixes predictions of other settings
    # (bad inputs: test_eval_checks.py)
    assert json.loads((tmp_path / "one" / "metrics.json").read_text()) == metrics


def test_torchrun_two_processes_equal_one(data, tmp_path):
    root, model = data
    one = CliRunner().invoke(app, _args(root, model, tmp_path / "one"))
    assert one.exit_code == 0, one.output
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # `--` keeps torchrun's own parser away from our options (`--r` would be an ambiguous abbreviation there).
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "vtome",
           "--", *_args(root, model, tmp_path / "two")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    one_m = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two_m = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert json.loads(done.stdout) == two_m  # rank 0 printed the merged result, the other rank nothing
    assert two_m["throughput"]["processes"] == 2 and one_m["throughput"]["processes"] == 1
    assert two_m["throughput"]["clips"] == one_m["throughput"]["clips"] == 5  # each clip run once, not per rank
    skip = {"throughput", "date"}
    assert {k: v for k, v in one_m.items() if k not in skip} == {k: v for k, v in two_m.items() if k not in skip}
    one_r, two_r = (read_records(tmp_path / d / "predictions.jsonl") for d in ("one", "two"))
    assert [(r["id"], r["pred"], r["top5"], r.get("error", "")[:10]) for r in one_r] == [
        (r["id"], r["pred"], r["top5"], r.get("error", "")[:10]) for r in two_r]
    for a, b in zip(one_r, two_r, strict=True):
        if "logits" in a:
            assert torch.allclose(torch.tensor(a["logits"]), torch.tensor(b["logits"]), atol=1e-5)
    assert not list((tmp_path / "two").glob("predictions.rank*.jsonl"))


def test_eval_command_on_vjepa2(data, tmp_path):
    """A V-JEPA 2 classifier saved with its VJEPA2VideoProcessor config: frames_per_clip frames, merged."""
    from transformers import VJEPA2VideoProcessor

    from tiny import tiny_vjepa2

    root, _ = data
    torch.manual_seed(0)
    model = tiny_vjepa2(num_labels=3)
    model.save_pretrained(tmp_path / "vjepa2")
    VJEPA2VideoProcessor(crop_size=32).save_pretrained(tmp_path / "vjepa2")
    result = CliRunner().invoke(app, _args(root, tmp_path / "vjepa2", tmp_path / "out") + ["--limit", "3"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (metrics["model_type"], metrics["name"], metrics["num_frames"]) == ("vjepa2", "V-JEPA 2", 4)
    assert metrics["evaluated"] == 3 and metrics["tokens"] == [32, 28, 24, 20]
