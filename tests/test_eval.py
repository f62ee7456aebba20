"""The evaluation loop: hand-computed metrics, records, agreement with a direct forward pass, unreadable clips,
resume after an interruption, multi-view averaging, EPIC verb/noun/action."""

from __future__ import annotations

import json

import pytest
import torch

from clipdata import gray_frames, noise_frames, tiny_videomae_dir, write_frames, write_mp4
from vtome.data.registry import load_samples
from vtome.data.samplers import FrameSampler
from vtome.data.transforms import clip_transform
from vtome.data.video import read_video
from vtome.evaluation.accuracy import accuracy
from vtome.evaluation.loop import evaluate
from vtome.evaluation.predictions import action_topk, records
from vtome.evaluation.results import read_records
from vtome.models import load_model

RUN_KEYS = {"throughput", "date"}  # what legitimately differs between two runs of the same evaluation


def test_accuracy_hand_computed():
    recs = [
        {"id": "a", "label": 1, "pred": 1, "top5": [1, 2, 3]},  # top-1 and top-5 right
        {"id": "b", "label": 2, "pred": 0, "top5": [0, 2, 3]},  # top-5 only
        {"id": "c", "label": 3, "pred": 0, "top5": [0, 1, 2]},  # wrong
        {"id": "d", "path": "d.mp4", "label": 4, "pred": None, "top5": [], "error": "VideoError: broken"},
    ]
    m = accuracy(recs)
    assert (m["top1"], m["top5"]) == (25.0, 50.0)  # the unreadable clip stays in the denominator
    assert (m["evaluated"], m["correct"], m["failed"]) == (4, 1, 1)
    assert m["failures"] == [{"id": "d", "path": "d.mp4", "error": "VideoError: broken"}]


def test_epic_accuracy_hand_computed():
    recs = [
        {"id": "a", "label": 5, "pred": 5, "top5": [5], "verb_label": 1, "verb_pred": 1, "verb_top5": [1],
         "noun_label": 1, "noun_pred": 1, "noun_top5": [1]},
        {"id": "b", "label": 6, "pred": 5, "top5": [5, 6], "verb_label": 1, "verb_pred": 1, "verb_top5": [1],
         "noun_label": 2, "noun_pred": 1, "noun_top5": [1, 2]},
    ]
    m = accuracy(recs, epic=True)
    assert (m["verb_top1"], m["noun_top1"], m["action_top1"]) == (100.0, 50.0, 50.0)
    assert (m["noun_top5"], m["action_top5"]) == (100.0, 100.0)


def test_action_topk_is_the_best_pairs():
    torch.manual_seed(0)
    verbs, nouns = torch.randn(3, 7), torch.randn(3, 9)
    joint = (verbs.softmax(-1)[:, :, None] * nouns.softmax(-1)[:, None, :]).flatten(1)  # (3, 7 * 9)
    assert torch.equal(action_topk(verbs, nouns), joint.topk(5).indices)


def test_records_keys():
    batch = {"id": ["x", "y"], "path": ["x.mp4", "y.mp4"], "error": ["", "FileNotFoundError: y.mp4"],
             "label": torch.tensor([7, 3]), "verb_label": torch.tensor([1, 0]), "noun_label": torch.tensor([2, 3]),
             "ok": torch.tensor([True, False])}
    logits = torch.tensor([[0.0, 5.0, 0.0, 0.0, 0.0, 9.0, 0.0]])  # 2 verbs then 5 nouns
    x, y = records(batch, logits, heads=(2, 5), save_logits=True)
    assert (x["verb_pred"], x["noun_pred"], x["pred"]) == (1, 3, 1 * 5 + 3)
    assert x["logits"] == logits[0].tolist() and "error" not in x
    assert set(x) == {"id", "path", "label", "pred", "top5", "verb_label", "verb_pred", "verb_top5",
                      "noun_label", "noun_pred", "noun_top5", "logits"}
    assert y["pred"] is None and y["top5"] == [] and y["noun_top5"] == [] and y["error"].startswith("FileNotFound")
    assert "logits" not in y


@pytest.fixture(scope="module")
def k400(tmp_path_factory):
    """Five short mp4 clips, a corrupt one and a missing one, in a K400 list; a tiny saved VideoMAE."""
    root = tmp_path_factory.mktemp("k400")
    lines = []
    for i in range(5):
        write_mp4(root / "videos" / f"c{i}.mp4", noise_frames(6, 32, 40, seed=i))
        lines.append(f"c{i}.mp4 {i % 5}")
    (root / "videos" / "corrupt.mp4").write_bytes(b"\x1a\x45\xdf\xa3 definitely not a video")
    lines += ["corrupt.mp4 1", "gone.mp4 2"]
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    model_dir = tiny_videomae_dir(root / "model")
    return root, model_dir


def _setup(k400):
    root, model_dir = k400
    model = load_model(str(model_dir))
    samples = load_samples("k400", root / "videos", root / "val.txt")
    sampler = FrameSampler(num_frames=4, mode="rate", rate=2)
    return model, samples, sampler, clip_transform(model)


def _run(model, samples, sampler, transform, out, **kw):
    kw = {"batch_size": 2, "progress": False, "save_logits": True, **kw}
    return evaluate(model, samples, out, sampler=sampler, transform=transform, **kw)


def test_evaluate_matches_direct_forward_and_reports_failures(k400, tmp_path):
    model, samples, sampler, transform = _setup(k400)
    metrics = _run(model, samples, sampler, transform, tmp_path, settings={"dataset": "k400"})
    recs = read_records(tmp_path / "predictions.jsonl")
    assert [r["id"] for r in recs] == [s.id for s in samples]
    with torch.no_grad():
        for sample, rec in zip(samples[:5], recs, strict=False):
            x = transform(read_video(sample.path, sampler))
            logits = model(x[None]).logits[0]
            assert rec["pred"] == int(logits.argmax()) and rec["top5"] == logits.topk(5).indices.tolist()
            assert torch.allclose(torch.tensor(rec["logits"]), logits, atol=1e-5)
    assert metrics["failed"] == 2 and metrics["evaluated"] == metrics["total"] == 7 and metrics["complete"]
    errors = {f["id"]: f["error"] for f in metrics["failures"]}
    assert errors["corrupt.mp4"].startswith("VideoError") and "corrupt.mp4" in errors["corrupt.mp4"]
    assert errors["gone.mp4"].startswith("FileNotFoundError") and "gone.mp4" in errors["gone.mp4"]
    correct = sum(r["pred"] == r["label"] for r in recs)
    assert metrics["top1"] == pytest.approx(100 * correct / 7) and metrics["correct"] == correct
    assert metrics["throughput"]["clips"] == 5 and metrics["throughput"]["clips_per_s"] > 0
    assert metrics["dataset"] == "k400"
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics


def test_resume_after_interruption_gives_identical_results(k400, tmp_path):
    model, samples, sampler, transform = _setup(k400)
    clean = _run(model, samples, sampler, transform, tmp_path / "clean")

    calls = {"n": 0}
    original = model.forward

    def crash_on_second_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C
        return original(*args, **kwargs)

    model.forward = crash_on_second_batch
    with pytest.raises(KeyboardInterrupt):
        _run(model, samples, sampler, transform, tmp_path / "resumed")
    model.forward = original
    done = (tmp_path / "resumed" / "predictions.jsonl").read_text().splitlines()
    assert len(done) == 2 and not (tmp_path / "resumed" / "metrics.json").exists()
    with (tmp_path / "resumed" / "predictions.jsonl").open("a") as handle:
        handle.write('{"id": "c2.mp4", "label": 2, "pr')  # a line cut off by the interruption

    resumed = _run(model, samples, sampler, transform, tmp_path / "resumed")
    assert resumed["throughput"]["clips"] == 3  # only what was left
    assert {k: v for k, v in resumed.items() if k not in RUN_KEYS} == {
        k: v for k, v in clean.items() if k not in RUN_KEYS}
    clean_recs = read_records(tmp_path / "clean" / "predictions.jsonl")
    resumed_recs = read_records(tmp_path / "resumed" / "predictions.jsonl")
    summary = [(r["id"], r["pred"], r["top5"]) for r in clean_recs]
    assert [(r["id"], r["pred"], r["top5"]) for r in resumed_recs] == summary

    again = _run(model, samples, sampler, transform, tmp_path / "resumed")  # nothing left: throughput is kept
    assert again["throughput"] == resumed["throughput"] and again["top1"] == clean["top1"]


def test_multi_view_average(k400, tmp_path):
    model, samples, _, transform = _setup(k400)
    sampler = FrameSampler(num_frames=4, mode="rate", rate=1, views=2)
    _run(model, samples[:1], sampler, transform, tmp_path, crops=3)
    (rec,) = read_records(tmp_path / "predictions.jsonl")
    with torch.no_grad():
        frames = read_video(samples[0].path)  # 6 frames: views start at 0 and 2
        views = torch.cat([transform.spatial_views(frames[start:start + 4], 3) for start in (0, 2)])
        expected = model(views).logits.mean(0)
    assert torch.allclose(torch.tensor(rec["logits"]), expected, atol=1e-5)


def test_epic_end_to_end(tmp_path):
    header = "narration_id,participant_id,video_id,start_frame,stop_frame,verb_class,noun_class"
    rows = [header, "P01_01_0,P01,P01_01,1,8,2,1", "P01_01_1,P01,P01_01,3,6,0,3", "P09_02_0,P09,P09_02,1,4,1,0"]
    (tmp_path / "ann.csv").write_text("\n".join(rows) + "\n")
    write_frames(tmp_path / "frames" / "P01" / "P01_01" / "rgb_frames", gray_frames(8, 32, 32, step=30))
    model = load_model(str(tiny_videomae_dir(tmp_path / "m", num_labels=3 + 4)))
    samples = load_samples("epic", tmp_path / "frames", tmp_path / "ann.csv", num_nouns=4)
    metrics = _run(model, samples, FrameSampler(4, "uniform"), clip_transform(model), tmp_path / "out", heads=(3, 4))
    recs = read_records(tmp_path / "out" / "predictions.jsonl")
    for rec in recs[:2]:
        logits = torch.tensor(rec["logits"])
        assert rec["verb_pred"] == int(logits[:3].argmax()) and rec["noun_pred"] == int(logits[3:].argmax())
        assert rec["pred"] == rec["verb_pred"] * 4 + rec["noun_pred"]
        assert rec["label"] == rec["verb_label"] * 4 + rec["noun_label"]
    assert recs[2]["error"].startswith("FileNotFoundError") and metrics["failed"] == 1
    verb_hits = sum(r["verb_pred"] == r["verb_label"] for r in recs[:2])
    assert metrics["verb_top1"] == pytest.approx(100 * verb_hits / 3)
    action_hits = sum(r["verb_pred"] == r["verb_label"] and r["noun_pred"] == r["noun_label"] for r in recs[:2])
    assert metrics["action_top1"] == pytest.approx(100 * action_hits / 3)
    assert (metrics["verbs"], metrics["nouns"]) == (3, 4)
