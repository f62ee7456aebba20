"""`vtome eval` refuses every bad input with one line before the model loads, guards a resumed run's settings,
keeps --json stdout clean, says where an interrupted run stopped, marks padded clips, and writes no 0% result."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from clipdata import noise_frames, tiny_videomae_dir, write_frames, write_mp4
from clirun import refused, vtome
from vtome.data.video import available_backends
from vtome.evaluation.results import read_records


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Four 6-frame mp4 clips and a broken one in a K400 list; a tiny VideoMAE (3 classes, 4 frames, 32 px)."""
    root = tmp_path_factory.mktemp("checks")
    for i in range(4):
        write_mp4(root / "videos" / f"v{i}.mp4", noise_frames(6, 32, 40, seed=20 + i))
    (root / "videos" / "broken.mp4").write_bytes(b"not a video at all")
    (root / "val.txt").write_text("".join(f"v{i}.mp4 {i % 3}\n" for i in range(4)) + "broken.mp4 0\n")
    (root / "file").write_text("a file, not a directory")
    (root / "empty").mkdir()
    return root, tiny_videomae_dir(root / "model", num_labels=3)


def _args(data, out, *extra):
    root, model = data
    return ["eval", "--model", model, "--dataset", "k400", "--root", root / "videos", "--split", root / "val.txt",
            "--workers", 0, "--backend", "pyav", "--no-progress", "--out", out, *extra]


BAD = [
    (["--r", "-1"], "--r -1"),
    (["--r", "0.7"], "(0, 0.5]"),
    (["--r", "2.5"], "whole number"),
    (["--r", "abc"], "'--r'"),
    (["--mode", "bogus"], "--mode bogus: use one of merge"),
    (["--r", "0", "--schedule", "bogus"], "--schedule bogus"),
    (["--schedule", "4,4,4,4,4"], "the model has 2"),  # the model merges in 2 layers: checked through vtome.patch
    (["--mode", "hybrid"], "--mode hybrid needs --threshold"),
    (["--threshold", "0.5"], "--threshold applies only to --mode hybrid"),
    (["--mode", "hybrid", "--threshold", "1.5"], "[-1, 1]"),
    (["--batch-size", "0"], "--batch-size 0: must be at least 1"),
    (["--views", "0"], "--views 0"),
    (["--crops", "0"], "--crops 0"),
    (["--workers", "-1"], "--workers -1"),
    (["--limit", "0"], "--limit 0"),
    (["--device", "cuda:7"], "--device cuda:7"),
    (["--device", "toaster"], "use cpu, cuda"),
    (["--backend", "foo"], "--backend foo: use one of torchcodec, pyav"),
    (["--num-frames", "8"], "takes 4 frames"),
    (["--dataset", "ucf"], "--dataset ucf"),
    (["--sampling", "bogus"], "--sampling bogus"),
    (["--sampling", "uniform", "--sampling-rate", "2"], "--sampling-rate applies only with --sampling rate"),
    (["--labels", "x.json"], "--labels applies only to --dataset ssv2"),
    (["--verbs", "2"], "--verbs applies only to --dataset epic"),
    (["--model", "vit-tiny"], "image model"),
    (["--model", "vivit-bb"], "--model vivit-bb: no such preset"),
]


@pytest.mark.parametrize("extra,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_option_is_refused_before_the_model_loads(data, tmp_path, capsys, no_model_load, extra, message):
    refused(vtome(capsys, *_args(data, tmp_path / "out", *extra)), message)
    assert not (tmp_path / "out").exists()


def test_bad_files_and_datasets_are_refused(data, tmp_path, capsys, no_model_load):
    root, model = data
    args = _args(data, tmp_path / "out")
    split = args.index("--split") + 1
    refused(vtome(capsys, *args[:split], root / "nope.txt", *args[split + 1:]), "--split", "no such file")
    refused(vtome(capsys, *_args(data, root / "file" / "out")), "--out", "is a file, not a directory")
    refused(vtome(capsys, *_args(data, tmp_path / "o", "--root", root / "nowhere")), "--root", "no such directory")
    refused(vtome(capsys, *_args(data, tmp_path / "o", "--root", root / "empty")), "none of the 5 clips exists")
    (tmp_path / "far.txt").write_text("v0.mp4 7\n")  # the model has 3 classes
    refused(vtome(capsys, *args[:split], tmp_path / "far.txt", *args[split + 1:]),
            "label 7 is not one of the model's 3 classes")
    refused(vtome(capsys, "eval", "--model", model, "--dataset", "folder", "--root", root / "empty"), "holds no clip")
    refused(vtome(capsys, "eval", "--model", root, "--dataset", "folder", "--root", root), "has no config.json")


def test_bad_epic_inputs_are_refused(data, tmp_path, capsys, no_model_load):
    _, model = data
    header = "narration_id,participant_id,video_id,start_frame,stop_frame,verb_class,noun_class\n"
    (tmp_path / "ann.csv").write_text(header + "P01_01_0,P01,P01_01,1,8,1,2\n")
    epic = ["eval", "--model", model, "--dataset", "epic", "--split", tmp_path / "ann.csv", "--root", tmp_path]
    refused(vtome(capsys, *epic), "the model has 3 outputs, not 97 + 300")
    refused(vtome(capsys, *epic, "--verbs", 1, "--nouns", 2), "verb class 1 is not one of the model's 1 verbs")
    refused(vtome(capsys, *epic, "--verbs", 1, "--nouns", 2, "--frame-template", "{who}/{frame}.jpg"),
            "--frame-template", "{participant}")
    refused(vtome(capsys, *epic, "--verbs", 2, "--nouns", 1, "--frame-template", "{video}/a.jpg"), "{frame}")


def test_a_model_that_is_not_a_video_classifier(tmp_path, capsys, no_model_load):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                         vocab_size=50)).save_pretrained(tmp_path / "bert")
    refused(vtome(capsys, "eval", "--model", tmp_path / "bert", "--dataset", "folder", "--root", tmp_path),
            "'bert' model, not a video classifier")


def test_resume_refuses_another_root_or_backend(data, tmp_path, capsys, monkeypatch):
    root, _ = data
    out = tmp_path / "run"
    first = vtome(capsys, *_args(data, out, "--limit", 2))
    assert first.code == 0, first.err
    # From here on a load fails the test: a rerun with other settings is refused before the weights load.
    monkeypatch.setattr("vtome.commands.modelspec.ModelSpec.load", lambda *a: pytest.fail("loaded before refusal"))
    moved = tmp_path / "copy"
    shutil.copytree(root / "videos", moved)
    refused(vtome(capsys, *_args(data, out, "--limit", 2, "--root", moved)), "root differ")
    other = [b for b in available_backends() if b != "pyav"]
    if other:
        refused(vtome(capsys, *_args(data, out, "--limit", 2, "--backend", other[0])), "backend differ")
    refused(vtome(capsys, *_args(data, out, "--limit", 2, "--r", 1)), "r differ")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["root"] == str((root / "videos").resolve()) and metrics["backend"] == "pyav"
    monkeypatch.undo()
    again = vtome(capsys, *_args(data, out, "--limit", 3))  # --limit may change: it does not change a clip
    assert again.code == 0, again.err


def test_json_stdout_is_the_json_alone_with_unreadable_clips(data, tmp_path, capsys):
    args = [a for a in _args(data, tmp_path / "run") if a != "--no-progress"]  # the bar and warnings: on stderr
    run = vtome(capsys, *args, "--json")
    assert run.code == 0, run.err
    metrics = json.loads(run.out)  # the whole of stdout
    assert metrics["failed"] == 1 and metrics["evaluated"] == 5
    assert "unreadable clip broken.mp4" in run.err


def test_padded_clips_are_counted_marked_and_reported(data, tmp_path, capsys):
    # 4 frames at VideoMAE's rate 4 span 13 frames: the 6-frame clips repeat their last frame.
    run = vtome(capsys, *_args(data, tmp_path / "rate", "--limit", 4, "--json"))
    assert run.code == 0, run.err
    assert json.loads(run.out)["padded"] == 4
    assert all(r["padded"] for r in read_records(tmp_path / "rate" / "predictions.jsonl"))
    assert "4 clip(s) had fewer frames than the sampling needs" in run.err
    uniform = vtome(capsys, *_args(data, tmp_path / "uniform", "--limit", 4, "--sampling", "uniform", "--json"))
    assert json.loads(uniform.out)["padded"] == 0 and "padded" not in uniform.err
    assert not any("padded" in r for r in read_records(tmp_path / "uniform" / "predictions.jsonl"))


def test_interrupted_run_says_where_it_stopped(data, tmp_path, capsys, monkeypatch):
    from vtome.evaluation import loop

    calls = {"n": 0}
    forward = loop.forward

    def interrupt_second_batch(model, video):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C
        return forward(model, video)

    monkeypatch.setattr(loop, "forward", interrupt_second_batch)
    out = tmp_path / "run"
    run = vtome(capsys, *_args(data, out, "--batch-size", 2))
    assert run.code == 130
    assert f"interrupted: 2 of 5 clips are in {out}/predictions.jsonl; run the same command again to resume" in run.err
    monkeypatch.setattr(loop, "forward", forward)
    resumed = vtome(capsys, *_args(data, out, "--batch-size", 2, "--json"))
    assert json.loads(resumed.out)["throughput"]["clips"] == 2  # the 3 left, less the broken one


def test_a_run_that_reads_no_clip_writes_no_result(data, tmp_path, capsys):
    root, _ = data
    (tmp_path / "bad.txt").write_text("broken.mp4 0\n")
    args = _args(data, tmp_path / "run")
    split = args.index("--split") + 1
    run = vtome(capsys, *args[:split], tmp_path / "bad.txt", *args[split + 1:])
    assert run.code == 1 and "Traceback" not in run.err
    assert "error: none of the 1 clips could be read (e.g." in run.err and "check --root" in run.err
    assert not any((tmp_path / "run").iterdir())  # no 0% metrics.json, nothing a rerun would skip or refuse


def test_default_out_names_threshold_and_seed(data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root, model = data
    base = ["eval", "--model", model, "--dataset", "k400", "--root", root / "videos", "--split", root / "val.txt",
            "--workers", 0, "--backend", "pyav", "--no-progress", "--limit", 1, "--r", 4]
    for extra in (["--mode", "hybrid", "--threshold", 0.5], ["--mode", "hybrid", "--threshold", 0.9],
                  ["--mode", "random_merge", "--seed", 3]):
        assert vtome(capsys, *base, *extra).code == 0
    names = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert names == ["model-k400-hybrid-r4-constant-t0.5", "model-k400-hybrid-r4-constant-t0.9",
                     "model-k400-random_merge-r4-constant-seed3"]


def test_preset_note_and_device_default(data, tmp_path, capsys):
    root, _ = data
    write_frames(tmp_path / "clips" / "a" / "c0", noise_frames(8, 64, 64))
    run = vtome(capsys, "eval", "--model", "videomae-tiny", "--dataset", "folder", "--root", tmp_path / "clips",
                "--workers", 0, "--no-progress", "--out", tmp_path / "run", "--json")
    assert run.code == 0, run.err
    assert "preset with random weights" in run.err
    device = json.loads(run.out)["throughput"]["device"]
    assert device == ("cuda:0" if torch.cuda.is_available() else "cpu")
