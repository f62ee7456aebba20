"""`vtome demo --quick`: the demo's whole code path on a few clips (no ViViT-B line)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from vtome.cli import app


def test_quick_demo_writes_table_plot_pictures_and_results(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(tmp_path)], terminal_width=160)
    assert result.exit_code == 0, result.output
    for name in ("accuracy_vs_speedup.png", "merged_tokens_vivit.png", "merged_tokens_vivit.gif",
                 "merged_tokens_timesformer.png", "merged_tokens_motionformer.png", "table1.md", "results.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    for text in ("TimeSformer", "Motionformer ↓", "VideoMAE ↓", "ViViT ↑", "V-JEPA 2 ↓", "random merge", "hybrid",
                 "Appearance", "Temporal", "merge beats drop", "divided space-time"):
        assert text in result.output, text
    assert "ViViT-B" not in result.output and "vivit-b" not in result.output

    summary = json.loads((tmp_path / "results.json").read_text())
    results = summary["results"]
    assert summary["clips"] == 16 and summary["speed_line"] is None
    assert len(results) == 5 * 2 * 8 and len(summary["rows"]) == 5 * 8
    assert all(r["clips"] == 16 and r["seconds"] > 0 and 0 <= r["top1"] <= 100 for r in results)
    tokens = {(r["model"], r["dataset"], r["reduction"], r["schedule"]): r["tokens"] for r in results}
    assert tokens[("vivit", "temporal", "-", "constant")] == []
    assert tokens[("vivit", "temporal", "merge", "constant")] == [257, 219, 181, 143, 105]
    assert tokens[("videomae", "appearance", "drop", "constant")] == [256, 218, 180, 142, 104]
    assert tokens[("timesformer", "temporal", "random merge", "constant")] == [64, 55, 46, 37, 28]  # per frame
    assert tokens[("motionformer", "appearance", "hybrid", "constant")] == [64, 55, 46, 37, 28]  # per slot
    assert tokens[("vivit", "appearance", "merge", "decreasing")] == [257, 181, 131, 106, 106]
    assert tokens[("vivit", "appearance", "merge", "increasing")] == [257, 257, 232, 182, 106]
    assert tokens[("vjepa2", "temporal", "hybrid", "constant")] == [256, 218, 180, 142, 104]
    table = (tmp_path / "table1.md").read_text()
    assert table.count("\n") == 2 + 5 * 8 and "| 9×4 | merge |" in table and "| Motionformer | 0 | - |" in table


def test_missing_checkpoints_are_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--quick", "--checkpoints", str(tmp_path), "--out", str(tmp_path)])
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())  # rich's error box wraps the line
    assert "no trained checkpoint" in text and "train_testbed.py" in text


def test_quick_partitions_demo_keeps_the_budget_and_checks_vtms_findings(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--partitions", "--quick", "--out", str(tmp_path)], terminal_width=160)
    assert result.exit_code == 0, result.output
    for text in ("alternate (ToMe)", "stride (naive)", "center", "boundary", "motion", "center beats stride",
                 "motion beats stride"):
        assert text in result.output, text
    summary = json.loads((tmp_path / "partitions.json").read_text())
    results = summary["results"]
    assert summary["same_budget"] and len(results) == 2 * 5 * 6 and len(summary["rows"]) == 5 * 6  # 5 models
    tokens = {(r["model"], r["dataset"], r["reduction"]): r["tokens"] for r in results}
    for partition in ("alternate", "stride", "center", "boundary", "motion"):  # the same budget: the alternate's
        assert tokens[("vivit", "temporal", partition)] == [257, 219, 181, 143, 105]
        assert tokens[("timesformer", "appearance", partition)] == [64, 55, 46, 37, 28]
    gammas = {r["reduction"]: r["gamma"] for r in results if r["mode"] is not None}
    assert gammas == {"alternate": None, "stride": 6, "center": 6, "boundary": 6, "motion": 6}
    # The VTM partitions match fewer pairs: their FLOP-ideal speedup is a little above the alternate's.
    flops = {(r["model"], r["reduction"]): r["flop_speedup"] for r in results if r["dataset"] == "temporal"}
    assert flops[("vivit", "center")] > flops[("vivit", "alternate")] > 1
    assert (tmp_path / "partitions.md").read_text().count("\n") == 2 + 5 * 6
