"""`vtome report`: the paper's Table 1 layout from metrics.json files."""

from __future__ import annotations

import csv
import json

from typer.testing import CliRunner

from vtome.cli import app
from vtome.evaluation.report import table_rows, to_markdown


def _metrics(name, model_type, dataset, r, mode, clips_per_s, complete=True, schedule="constant", **acc):
    base = {"name": name, "model_type": model_type, "dataset": dataset, "r": r, "mode": mode, "schedule": schedule,
            "threshold": None, "patched": r != 0, "num_frames": 8, "complete": complete,
            "throughput": {"clips_per_s": clips_per_s}}
    return base | acc


RESULTS = [
    _metrics("ViViT", "vivit", "k400", 300, "merge", 24.6, top1=63.08),
    _metrics("ViViT", "vivit", "k400", 0, "merge", 10.0, top1=63.43),
    _metrics("ViViT", "vivit", "ssv2", 0, "merge", 20.0, top1=50.63),
    _metrics("ViViT", "vivit", "ssv2", 300, "merge", 50.0, top1=50.15),
    _metrics("ViViT", "vivit", "k400", 300, "drop", 24.7, top1=58.0, complete=False),
    _metrics("ViViT", "vivit", "k400", 300, "merge", 41.4, top1=60.0, schedule="decreasing"),
    _metrics("TimeSformer", "timesformer", "epic", 0, "merge", 5.0, action_top1=31.32, verb_top1=55.48,
             noun_top1=47.23),
    _metrics("TimeSformer", "timesformer", "epic", 18, "random_drop", 10.2, action_top1=12.78, verb_top1=34.03,
             noun_top1=28.31),
]


def test_rows_and_speedup():
    rows = table_rows(RESULTS)
    keys = [(r["Model"], r["r"], r["Reduction"]) for r in rows]
    assert keys == [("TimeSformer", "0", "-"), ("TimeSformer", "18×8", "random drop"), ("ViViT", "0", "-"),
                    ("ViViT", "300", "drop"), ("ViViT", "300", "merge"), ("ViViT ↓", "300", "merge")]
    merge = rows[4]
    assert (merge["K400"], merge["SSv2"]) == ("63.08", "50.15")
    assert merge["Speedup (x)"] == "2.48"  # mean of 24.6 / 10 and 50 / 20
    assert rows[2]["Speedup (x)"] == "1.00" and rows[3]["K400"] == "58.00*" and rows[3]["SSv2"] == ""
    assert (rows[1]["EK-100 Action"], rows[1]["EK-100 Verb"], rows[1]["EK-100 Noun"]) == ("12.78", "34.03", "28.31")
    assert rows[1]["Speedup (x)"] == "2.04"


def test_markdown_layout():
    text = to_markdown(table_rows(RESULTS))
    lines = text.splitlines()
    header = "| Model | r | Reduction | K400 | SSv2 | EK-100 Action | EK-100 Verb | EK-100 Noun | Speedup (x) |"
    assert lines[0] == header
    assert lines[4] == "| ViViT | 0 | - | 63.43 | 50.63 |  |  |  | 1.00 |"
    assert lines[5].startswith("|  | 300 | drop | 58.00* |")  # the model name once per group
    assert "incomplete run" in text


def test_report_command(tmp_path):
    for i, m in enumerate(RESULTS):
        (tmp_path / f"run{i}").mkdir()
        (tmp_path / f"run{i}" / "metrics.json").write_text(json.dumps(m))
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--csv", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    assert "| ViViT ↓ | 300 | merge | 60.00 |" in result.output
    with (tmp_path / "t.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and rows[3]["Model"] == "ViViT" and rows[3]["K400"] == "58.00*"
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")])
    assert missing.exit_code != 0
