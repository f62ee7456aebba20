"""Every command but eval (see test_eval_checks.py): a bad input is refused with one line on stderr and status 2
before any model loads; --version, `vtome models`, one --json convention, timm checkpoints from a directory or the
hub cache, and what bench reports when r is capped."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

import vtome
from clipdata import tiny_videomae_dir, write_mp4
from clirun import refused
from clirun import vtome as run_vtome
from vtome.models import load_model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny timm ViT saved with save_for_hf, a saved BERT, a directory without config.json, a tiny VideoMAE."""
    import timm
    from timm.models import save_for_hf
    from transformers import BertConfig, BertModel

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=32,
                            depth=2, num_heads=4, num_classes=5)
    save_for_hf(vit, root / "vit", safe_serialization=True)
    BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                         vocab_size=50)).save_pretrained(root / "bert")
    (root / "empty").mkdir()
    tiny_videomae_dir(root / "videomae")
    return root


@pytest.fixture
def cli(capsys):
    return lambda *args: run_vtome(capsys, *args)


# --- every command's bad inputs -------------------------------------------------------------------------------

BENCH = [
    (["--r", "2.5"], "--r 2.5: a count of tokens must be a whole number"),
    (["--mode", "bogus"], "--mode bogus"),
    (["--schedule", "9,9,9,9,9,9"], "the model has 4"),  # vivit-tiny has 4 layers
    (["--runs", "0"], "--runs 0"),
    (["--probe-runs", "0"], "--probe-runs 0"),
    (["--dtype", "float8"], "--dtype float8: use one of float32"),
    (["--attn-impl", "flash"], "--attn-impl flash: use one of sdpa, eager"),
    (["--device", "cuda:9"], "--device cuda:9"),
    (["--model", "vivit-bb"], "no such preset"),
    (["--dynamic"], "--dynamic applies only with --compile"),
    (["--cpp-wrapper"], "--cpp-wrapper applies only with --compile"),
]


@pytest.mark.parametrize("extra,message", BENCH, ids=[" ".join(a) for a, _ in BENCH])
def test_bench_refuses(cli, no_model_load, extra, message):
    refused(cli("bench", "--model", "vivit-tiny", *extra), message)


def test_model_directories_that_are_not_models(cli, models, no_model_load):
    refused(cli("bench", "--model", models / "empty"), "has no config.json")
    refused(cli("bench", "--model", models / "bert"), "'bert' model, not a video classifier")
    refused(cli("sweep", "--model", models / "bert", "--out", models / "s"), "'bert' model")
    refused(cli("vis", "--model", models / "vit" / "config.json", "--out", models / "v.png"), "is a file")


def test_hub_ids_offline_say_so(cli, monkeypatch, no_model_load):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    refused(cli("bench", "--model", "timm/not_cached_here"), "not in the local HuggingFace cache",
            "cannot be reached")
    refused(cli("vis", "--model", "google/not-cached", "--out", "x.png"), "not in the local HuggingFace cache")


SWEEP = [
    (["--schedules", "constant,bogus"], "--schedules constant,bogus"),
    (["--steps", "1"], "--steps 1"),
    (["--max-fraction", "0.7"], "--max-fraction 0.7"),
    (["--runs", "0"], "--runs 0"),
]


@pytest.mark.parametrize("extra,message", SWEEP, ids=[" ".join(a) for a, _ in SWEEP])
def test_sweep_refuses(cli, tmp_path, no_model_load, extra, message):
    refused(cli("sweep", "--model", "vivit-tiny", "--out", tmp_path, *extra), message)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    (root / "corrupt.mp4").write_bytes(b"\x00\x01 not a video")
    (root / "frames").mkdir()
    write_mp4(root / "ok.mp4", torch.randint(0, 255, (8, 32, 32, 3), dtype=torch.uint8).numpy())
    (root / "file").write_text("x")
    return root


VIS = [
    (["--video", "{clips}/corrupt.mp4"], "--video {clips}/corrupt.mp4: cannot read it"),
    (["--video", "{clips}/frames"], "--video {clips}/frames: cannot read it"),
    (["--video", "{clips}/missing.mp4"], "no such file or frame folder"),
    (["--video", "synthetic:bogus"], "use synthetic:halves or synthetic:shapes"),
    (["--out", "{clips}"], "is a directory; give a .png file"),
    (["--out", "{clips}/a.jpg"], "give a .png file to write"),
    (["--out", "{clips}/file/a.png"], "is a file, not a directory"),
    (["--layer", "9"], "--layer 9: use 0..4"),
    (["--fill", "bogus"], "--fill bogus"),
    (["--scale", "0"], "--scale 0"),
    (["--fps", "0"], "--fps 0"),
    (["--sampling", "bogus"], "--sampling bogus"),
    (["--r", "0.7"], "(0, 0.5]"),
    (["--json-out", "{clips}/file/x.json"], "--json-out"),
]


@pytest.mark.parametrize("extra,message", VIS, ids=[" ".join(a) for a, _ in VIS])
def test_vis_refuses(cli, clips, tmp_path, no_model_load, extra, message):
    args = ["--out", tmp_path / "v.png", *[str(a).format(clips=clips) for a in extra]]
    refused(cli("vis", "--model", "vivit-tiny", *args), message.format(clips=clips))


def test_vis_duplicate_refuses(cli, tmp_path, no_model_load):
    base = ["vis-duplicate", "--model", "vivit-tiny", "--out", tmp_path / "d.png"]
    refused(cli(*base, "--layers", "a,b"), "--layers a,b: give whole numbers in 1..4")
    refused(cli(*base, "--layers", "1,9"), "9 out of range; use 1..4")
    refused(cli(*base, "--start", "middle"), "--start middle")
    refused(cli(*base, "--copies", "0"), "--copies 0")


def test_splice_refuses(cli, tmp_path, no_model_load):
    base = ["splice", "--model", "vivit-tiny", "--out", tmp_path / "s.png"]
    records = [{"id": "a", "path": "clips/a.mp4", "label": 0}, {"id": "b", "path": "clips/b.mp4", "label": 1}]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    refused(cli(*base, "--predictions", tmp_path / "missing.jsonl"), "--predictions", "no such file")
    refused(cli(*base, "--predictions", tmp_path / "p.jsonl", "--choose", "same-class"),
            "is not in", "pass --id ID (its id there) or --label N")
    refused(cli(*base, "--predictions", tmp_path / "p.jsonl", "--id", "zzz"), "--id zzz: is not in")
    refused(cli(*base, "--predictions", tmp_path / "p.jsonl", "--choose", "bogus"),
            "--choose bogus: use one of random, same-class")
    refused(cli(*base, "--predictions", tmp_path / "p.jsonl", "--id", "a", "--choose", "nearest"),
            "needs 'logits'", "--save-logits")
    refused(cli(*base, "--predictions", tmp_path / "p.jsonl", "--id", "a", "--choose", "same-class"),
            "no other readable clip of the same class")
    refused(cli(*base, "--partner", "synthetic:halves", "--predictions", tmp_path / "p.jsonl"), "either --partner")
    refused(cli(*base, "--partner", "synthetic:halves", "--share", "2"), "--share 2")
    refused(cli(*base, "--partner", "synthetic:halves", "--choose", "random"), "--choose applies only with "
                                                                                 "--predictions")
    refused(cli(*base, "--predictions", tmp_path / "p.jsonl", "--id", "a", "--logit-range", "x"),
            "--logit-range x")
    refused(cli(*base, "--predictions", tmp_path / "p.jsonl", "--id", "a", "--label-key", "noun_label"),
            "--label-key noun_label: no record")


@pytest.fixture
def runs(tmp_path):
    """Two class runs and an EPIC-free run sharing no clip with them."""
    base = [{"id": f"c{i}", "label": i % 3, "pred": i % 3} for i in range(6)]
    other = [{"id": f"x{i}", "label": 0, "pred": 0} for i in range(3)]
    for name, rows in (("base", base), ("other", other)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_confusion_refuses(cli, runs):
    base = ["confusion", runs / "base", runs / "base", "--out", runs / "c.png"]
    refused(cli("confusion", runs / "base", runs / "other", "--out", runs / "c.png"), "share no clip")
    refused(cli(*base, "--head", "verb"), "--head verb", "not an EPIC run")
    refused(cli(*base, "--head", "bogus"), "--head bogus: use one of class, verb, noun")
    refused(cli(*base, "--k", "0"), "--k 0")
    refused(cli("confusion", runs / "nope", runs / "base", "--out", runs / "c.png"), "no such file")
    refused(cli(*base, "--classes", runs / "names.txt"), "--classes", "no such file")
    (runs / "names.json").write_text("{broken")
    refused(cli(*base, "--classes", runs / "names.json"), "--classes", "cannot read class names")


def test_confusion_names_classes_from_the_checkpoint(cli, runs, tmp_path):
    model = tiny_videomae_dir(tmp_path / "m", num_labels=3, id2label={0: "cat", 1: "dog", 2: "eel"},
                              label2id={"cat": 0, "dog": 1, "eel": 2})
    (runs / "base" / "settings.json").write_text(json.dumps({"model": str(model)}))
    done = cli("confusion", runs / "base", runs / "base", "--k", 2, "--out", runs / "c.png", "--json")
    assert done.code == 0, done.err
    head = json.loads(done.out)["heads"]["class"]
    assert head["classes"] == [0, 1] and head["names"] == ["cat", "dog"]


def test_curves_refuses_and_says_what_it_leaves_out(cli, tmp_path):
    (tmp_path / "bench.json").write_text(json.dumps({"model": "x", "speedup": 2}))
    (tmp_path / "notes.txt").write_text("hello")
    refused(cli("curves", tmp_path / "bench.json", "--out", tmp_path / "c.png"), "is not a metrics.json")
    refused(cli("curves", tmp_path / "notes.txt", "--out", tmp_path / "c.png"), "give metrics.json files")
    refused(cli("curves", tmp_path / "bench.json", "--speedup", "bogus", "--out", tmp_path / "c.png"),
            "--speedup bogus: use one of speedup, flop_speedup")
    (tmp_path / "sweep.csv").write_text("model,schedule,r,speedup,flop_speedup\nvivit-tiny,constant,0,,1.0\n"
                                        "vivit-tiny,constant,0.25,,2.0\n")
    flops_only = cli("curves", tmp_path / "sweep.csv", "--out", tmp_path / "c.png")
    assert flops_only.code == 2 and "has no measured speedup" in flops_only.err  # and so nothing to plot
    ideal = cli("curves", tmp_path / "sweep.csv", "--speedup", "flop_speedup", "--out", tmp_path / "c.png", "--json")
    assert ideal.code == 0 and [p["ideal"] for p in json.loads(ideal.out)["points"]] == [True, True]


def test_curves_legend_names_every_line_and_the_flop_ideal_ones(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from vtome.vis.curves import Point, plot_curves

    legends = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: legends.extend(
        t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()))
    points = [Point("ViViT", "constant", "merge", 0, 80.0, 1.0), Point("ViViT", "constant", "merge", 0.1, 78.0, 2.0),
              Point("sweep", "decreasing", "merge", 0.1, None, 3.0, 10.0, ideal=True)]
    plot_curves(points, tmp_path / "c.png")
    assert legends == ["ViViT constant", "sweep decreasing (FLOP-ideal speedup)"]  # the second has no accuracy


def test_report_creates_the_csv_folder_and_refuses_what_is_not_results(cli, tmp_path):
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"name": "ViViT", "model_type": "vivit", "dataset": "k400", "r": 0,
                                                  "mode": "merge", "schedule": "constant", "top1": 50.0,
                                                  "complete": True}))
    done = cli("report", tmp_path / "runs", "--csv", tmp_path / "out" / "table.csv")
    assert done.code == 0, done.err
    assert (tmp_path / "out" / "table.csv").read_text().startswith("Model,r,Reduction,K400")
    (tmp_path / "file").write_text("x")
    refused(cli("report", tmp_path / "runs", "--csv", tmp_path / "file" / "t.csv"), "is a file, not a directory")
    (tmp_path / "junk" / "metrics.json").parent.mkdir()
    (tmp_path / "junk" / "metrics.json").write_text("{not json")
    refused(cli("report", tmp_path / "junk"), "is not a metrics.json of vtome eval")
    refused(cli("report", tmp_path / "nothing"), "no results at")
    refused(cli("curves", tmp_path / "runs", "--metric", "verb_top1", "--out", tmp_path / "c.png"),
            "--metric verb_top1: none of the results has it")


def test_demo_refuses_before_any_work(cli, tmp_path, no_model_load):
    refused(cli("demo", "--clips", 0), "--clips 0")
    refused(cli("demo", "--r", 0.7), "(0, 0.5]")
    refused(cli("demo", "--checkpoints", tmp_path / "none"), "--checkpoints", "no such directory")
    refused(cli("demo", "--speed-model", "vivit-bb"), "no such preset")


def test_usage_errors_are_one_line_too(cli):
    refused(cli("bench", "--r", "abc"), "'--r'")
    refused(cli("vis"), "Missing option '--out'")
    refused(cli("bench", "--bogus"), "No such option: --bogus")


def test_debug_shows_the_traceback(monkeypatch):
    from vtome.cli import main
    from vtome.commands.checks import UserError

    with pytest.raises(UserError, match="--r 2.5"):  # raised, so Python prints the traceback
        main(["--debug", "bench", "--r", "2.5"])
    monkeypatch.setenv("VTOME_DEBUG", "1")
    with pytest.raises(UserError, match="--r 2.5"):
        main(["bench", "--r", "2.5"])


# --- what users expect -----------------------------------------------------------------------------------------


def test_version(cli):
    done = cli("--version")
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    version = re.search(r'^version = "(.+?)"', pyproject, re.M).group(1)
    assert done.code == 0 and done.out == f"vtome {version}\n" == f"vtome {vtome.__version__}\n"


def test_models_lists_the_presets_with_tokens_frames_and_parameters(cli):
    done = cli("models", "--json")
    assert done.code == 0, done.err
    listed = json.loads(done.out)
    rows = {row["name"]: row for row in listed["presets"]}
    from vtome.models import PRESETS

    assert set(rows) == set(PRESETS)
    vivit = load_model("vivit-tiny")  # independent: the real model
    assert rows["vivit-tiny"]["parameters"] == sum(p.numel() for p in vivit.parameters())
    assert (rows["vivit-tiny"]["frames"], rows["vivit-tiny"]["tokens"]) == (8, 1 + 4 * 8 * 8)  # class + tubelets
    assert (rows["timesformer-b"]["tokens"], rows["timesformer-b"]["tokens_per"]) == (196, "frame")
    assert "VivitForVideoClassification" in listed["supported"] and "timm" in listed["loads"]
    text = cli("models").out
    assert all(name in text for name in PRESETS) and "8x196" in text


def test_bench_reports_the_r_it_used_and_json_conventions(cli, tmp_path):
    args = ["bench", "--model", "timesformer-tiny", "--r", 300, "--runs", 1, "--warmup", 0, "--threads", 1]
    done = cli(*args, "--json")
    assert done.code == 0, done.err
    result = json.loads(done.out)  # stdout is the JSON alone
    assert result["r_scheduled"] == [300] * 4 and result["r_per_layer"] == [32, 16, 8, 4]
    assert result["tokens"] == [64, 32, 16, 8, 4]
    text = cli(*args, "--json-out", tmp_path / "b.json")
    assert "capped at half the tokens: 32 16 8 4" in text.out.replace("\n", " ")
    assert not re.search(r"GFLOPs per clip\s+0\.0\s", text.out)  # tiny models get enough digits
    assert json.loads((tmp_path / "b.json").read_text())["r_per_layer"] == [32, 16, 8, 4]
    old = cli(*args, "--json", tmp_path / "old.json")  # the old spelling still works, with a note
    assert old.code == 0 and (tmp_path / "old.json").is_file()
    assert "`--json PATH` is deprecated; use `--json-out PATH`" in old.err


def test_timm_directory_wherever_a_model_is_taken(cli, models, tmp_path):
    vit = models / "vit"
    done = cli("bench", "--model", vit, "--r", 2, "--runs", 1, "--warmup", 0, "--threads", 1, "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["tokens"] == [17, 15, 13]  # 16 patches + class token, 2 merged per layer
    done = cli("sweep", "--model", vit, "--model", models / "videomae", "--steps", 2, "--out", tmp_path, "--json")
    assert done.code == 0, done.err
    assert {row["model"] for row in json.loads(done.out)["rows"]} == {str(vit), str(models / "videomae")}
    done = cli("vis", "--model", vit, "--r", 2, "--out", tmp_path / "v.png", "--no-gif", "--json")
    assert done.code == 0, done.err and json.loads(done.out)["tokens"] == [17, 15, 13]


def test_timm_hub_id_from_the_cache(cli, models, tmp_path, monkeypatch):
    """A `timm/...` id resolves through huggingface_hub (here its cache, offline) and loads through timm."""
    from vtome.commands.modelspec import resolve

    snapshot = tmp_path / "models--timm--vit_tiny_test" / "snapshots" / "abc"
    shutil.copytree(models / "vit", snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    loaded = resolve("timm/vit_tiny_test").load()
    import timm

    saved = timm.create_model(f"local-dir:{models / 'vit'}", pretrained=True).eval()
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(loaded(x), saved(x))


def test_device_defaults_to_cuda_when_available(monkeypatch):
    from vtome.commands.checks import resolve_device

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device(None) == ("cuda:0" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device(None) == "cuda:3"  # this process's GPU under torchrun
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert resolve_device("cuda") == "cuda:3" and resolve_device("cuda:1") == "cuda:1"


def test_bare_vtome_shows_the_help_without_an_error_line(cli):
    done = cli()
    assert "Usage: vtome" in done.out and "error" not in done.err
