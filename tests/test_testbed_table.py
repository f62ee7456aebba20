"""The demo's Table-1 rows and the paper's findings, from hand-made results (no model runs)."""

from __future__ import annotations

from vtome.testbed.findings import check_findings
from vtome.testbed.table import table_rows, to_markdown

REDUCTIONS = [("-", None), ("random drop", "random_drop"), ("drop", "drop"), ("random merge", "random_merge"),
              ("merge", "merge"), ("hybrid", "hybrid")]


def _results(top1: dict[tuple[str, str], list[float]], seconds: float = 2.0) -> list[dict]:
    """top1[(model, dataset)]: accuracies in REDUCTIONS order; the baseline takes 4 s, the others `seconds`."""
    out = []
    for (model, dataset), accs in top1.items():
        for (reduction, mode), acc in zip(REDUCTIONS, accs, strict=True):
            out.append({"model": model, "dataset": dataset, "reduction": reduction, "mode": mode,
                        "schedule": "constant", "r": 0.1 if mode else 0.0, "threshold": None, "top1": acc,
                        "seconds": 4.0 if mode is None else seconds,
                        "r_count": 6 if model in ("timesformer", "motionformer") else 25,
                        "frames": 4, "flop_speedup": 1.0 if mode is None else 1.5, "tokens": []})
    return out


def _paper_like() -> dict:
    # baseline, random drop, drop, random merge, merge, hybrid
    return {
        ("timesformer", "appearance"): [99, 90, 92, 60, 95, 94],
        ("timesformer", "temporal"): [98, 70, 72, 40, 80, 79],
        ("videomae", "appearance"): [99, 95, 96, 70, 97, 97],
        ("videomae", "temporal"): [98, 90, 91, 60, 95, 94],
        ("vivit", "appearance"): [99, 97, 97, 80, 98, 98],
        ("vivit", "temporal"): [98, 93, 94, 70, 97, 97],
    }


def test_findings_hold_on_paper_like_results():
    findings = check_findings(_results(_paper_like()))
    assert [f.holds for f in findings] == [True, True, True, True]
    assert [(f.held, f.total) for f in findings] == [(6, 6), (6, 6), (6, 6), (2, 2)]


def test_findings_report_where_they_fail():
    top1 = _paper_like()
    top1[("vivit", "temporal")] = [98, 93, 97, 70, 96, 96]  # drop beats merge here
    top1[("videomae", "appearance")] = [99, 60, 96, 70, 97, 97]  # random drop is the worst here
    top1[("videomae", "temporal")] = [98, 90, 91, 60, 70, 94]  # joint VideoMAE loses more than TimeSformer
    merge_drop, merge_random, random_worst, divided = check_findings(_results(top1))
    assert (merge_drop.held, merge_drop.holds) == (4, False)  # ViViT and VideoMAE temporal
    assert "ViViT temporal: 96.0 vs 97.0" in merge_drop.detail
    assert "VideoMAE temporal: 70.0 vs 91.0" in merge_drop.detail
    assert merge_random.holds
    assert (random_worst.held, random_worst.holds) == (5, False) and "random drop 60.0" in random_worst.detail
    assert (divided.held, divided.total) == (1, 2) and "TimeSformer -18.0, ViViT -2.0, VideoMAE -28.0" in divided.detail


def test_motionformer_counts_as_divided():
    top1 = {**_paper_like(), ("motionformer", "appearance"): [99, 91, 93, 61, 96, 95],
            ("motionformer", "temporal"): [98, 80, 82, 50, 96, 95]}
    divided = check_findings(_results(top1))[3]
    assert "TimeSformer, Motionformer" in divided.claim
    assert (divided.held, divided.total) == (3, 4)  # Motionformer loses 2 points: more than ViViT, less than VideoMAE
    assert "Motionformer -2.0" in divided.detail and "not for Motionformer vs VideoMAE" in divided.detail
    rows = table_rows(_results(top1))
    assert [r["Model"] for r in rows[::6]] == ["TimeSformer", "Motionformer", "VideoMAE", "ViViT"]
    assert rows[6 + 4]["r"] == "6×4"


def test_rows_in_paper_order_with_speedups_r_labels_and_bold():
    rows = table_rows(_results(_paper_like(), seconds=2.0))
    assert [r["Model"] for r in rows[::6]] == ["TimeSformer", "VideoMAE", "ViViT"]
    first, merge = rows[0], rows[4]
    assert (first["r"], first["Reduction"], first["Speedup"]) == ("0", "-", 1.0)
    assert (merge["r"], merge["Reduction"], merge["Speedup"], merge["FLOPs"]) == ("6×4", "merge", 2.0, 1.5)
    assert rows[10]["r"] == "25"
    assert merge["best"] == ["Appearance", "Temporal"] and first["best"] == []
    text = to_markdown(rows)
    assert "| TimeSformer | 0 | - | 99.00 | 98.00 | 1.00x | 1.00x |" in text
    assert "|  | 6×4 | merge | **95.00** | **80.00** | 2.00x | 1.50x |" in text


def test_schedules_get_their_own_rows():
    results = _results({("vivit", "temporal"): [98, 93, 94, 70, 97, 97]})
    results.append({**results[4], "schedule": "decreasing", "top1": 90.0, "seconds": 1.0})
    rows = table_rows(results)
    assert rows[-1]["Model"] == "ViViT ↓" and rows[-1]["Speedup"] == 4.0 and rows[-1]["best"] == []


def test_ties_are_reported_apart_from_failures():
    top1 = _paper_like()
    top1[("videomae", "appearance")] = [100, 100, 100, 100, 100, 100]  # every reduction at the ceiling
    merge_drop, merge_random, random_worst, _ = check_findings(_results(top1))
    assert (merge_drop.held, merge_drop.tied, merge_drop.total, merge_drop.holds) == (5, 1, 6, False)
    assert merge_drop.detail == "tied in VideoMAE appearance: 100.0 vs 100.0"
    assert (merge_random.held, merge_random.tied) == (5, 1)
    assert (random_worst.held, random_worst.tied) == (5, 1) and "not in" not in random_worst.detail
