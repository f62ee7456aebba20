"""Confusion-matrix change (Fig. 4 / 10) and accuracy / speedup curves (Fig. 3) from small result files."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from vtome.vis.confusion import confusion, confusion_change, frequent_classes, plot_changes, read_class_names
from vtome.vis.curves import lines, load_points, percent, plot_curves


def records(pairs, prefix=""):
    return [{"id": f"c{i}", f"{prefix}label": label, f"{prefix}pred": pred} for i, (label, pred) in enumerate(pairs)]


def test_confusion_rows_are_shares_of_the_true_class():
    m = confusion([0, 0, 0, 1, 1, 2], [0, 1, 5, 1, 1, 0], classes=[0, 1])
    assert np.allclose(m, [[1 / 3, 1 / 3], [0, 1]])  # the prediction of class 5 counts in the row total
    assert np.array_equal(confusion([0, 0, 1], [0, 1, 1], [0, 1], normalize=False), [[1, 1], [0, 1]])
    assert frequent_classes([3, 1, 1, 2, 3, 5], k=2) == [1, 3]  # ties: smaller class first


def test_confusion_change_joins_on_ids_and_keeps_k_frequent_classes():
    base = records([(0, 0), (0, 0), (0, 0), (1, 1), (1, 1), (2, 2)])
    merged = records([(0, 0), (0, 1), (0, 1), (1, 1), (1, 0), (2, 2)])
    merged[0]["pred"] = None  # unreadable in the merged run: left out
    merged.append({"id": "extra", "label": 0, "pred": 0})  # only in one file: left out
    change = confusion_change(base, merged, k=2)
    assert change.classes == [0, 1] and change.clips == 5
    assert np.allclose(change.change, [[-1.0, 1.0], [0.5, -0.5]])
    with pytest.raises(ValueError, match="share no clip"):
        confusion_change(base, [{"id": "zz", "label": 0, "pred": 0}])


def test_epic_heads_and_plot(tmp_path):
    base = records([(0, 0), (1, 1), (1, 1)], "noun_")
    merged = records([(0, 1), (1, 1), (1, 0)], "noun_")
    change = confusion_change(base, merged, k=5, head="noun")
    assert change.classes == [1, 0] and np.allclose(change.change, [[-0.5, 0.5], [1.0, -1.0]])
    path = plot_changes([change, change], tmp_path / "c.png", {"noun": {0: "plate", 1: "knife"}})
    with Image.open(path) as png:
        assert png.size[0] > 1.5 * png.size[1]  # two panels side by side


def test_class_names_from_txt_json_and_csv(tmp_path):
    (tmp_path / "a.txt").write_text("take\nput\n")
    (tmp_path / "b.json").write_text(json.dumps({"take": 0, "put": 1}))
    (tmp_path / "c.json").write_text(json.dumps({"0": "take", "1": "put"}))
    (tmp_path / "d.csv").write_text("0,take\n1,put\n")
    for name in ("a.txt", "b.json", "c.json", "d.csv"):
        assert read_class_names(tmp_path / name) == {0: "take", 1: "put"}


def write_results(tmp_path):
    for r, top1, clips in [(0, 80.0, 10.0), (0.1, 75.0, 25.0), (0.2, 50.0, 40.0)]:
        run = tmp_path / "runs" / f"r{r}"
        run.mkdir(parents=True)
        metrics = {"model": "vivit-tiny", "dataset": "k400", "r": r, "schedule": "constant", "mode": "merge",
                   "top1": top1, "throughput": {"clips_per_s": clips}}
        (run / "metrics.json").write_text(json.dumps(metrics))
    with (tmp_path / "sweep.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "schedule", "r", "speedup", "flop_speedup", "tokens"])
        writer.writerows([["vivit-tiny", "decreasing", 0, 1.0, 1.0, "[257, 200]"],
                          ["vivit-tiny", "decreasing", 25, 3.5, 4.0, "[257, 200]"]])


def test_curves_points_from_metrics_and_csv(tmp_path):
    write_results(tmp_path)
    points = {(p.schedule, p.r): p for p in load_points([tmp_path / "runs", tmp_path / "sweep.csv"])}
    baseline = [p for p in points.values() if p.r == 0]
    assert len(baseline) == 1 and (baseline[0].accuracy, baseline[0].speedup) == (80.0, 1.0)  # joined
    assert points[("constant", 0.1)].speedup == pytest.approx(2.5)  # throughput over the r = 0 run
    assert points[("constant", 0.2)].percent == pytest.approx(20.0)
    assert points[("decreasing", 25)].percent == pytest.approx(100 * 25 / 257)
    assert points[("decreasing", 25)].accuracy is None
    by_line = lines(list(points.values()))
    assert [p.r for p in by_line[("vivit-tiny", "constant", "merge")]] == [0, 0.1, 0.2]
    assert [p.r for p in by_line[("vivit-tiny", "decreasing", "merge")]] == [0, 25]
    assert percent(32, None, "vivit-tiny") == pytest.approx(100 * 32 / 256)  # from the preset: 256 tubelets
    ideal = {p.r: p.speedup for p in load_points([tmp_path / "sweep.csv"], speedup="flop_speedup")}
    assert ideal == {0: 1.0, 25: 4.0}


def test_curves_plot_has_a_panel_per_kind_of_data(tmp_path):
    write_results(tmp_path)
    full = plot_curves(load_points([tmp_path / "runs"]), tmp_path / "a.png")
    speed_only = plot_curves(load_points([tmp_path / "sweep.csv"]), tmp_path / "b.png")
    with Image.open(full) as a, Image.open(speed_only) as b:
        assert a.size == (1800, 480) and b.size == (600, 480)  # 3 panels vs 1 (speedup vs r), 5 x 4 in each
