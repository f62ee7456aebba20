"""The testbed with each partition of Video Token Merging (`vtome demo --partitions`): merge with ToMe's alternate
split, then with VTM's naive (stride), center, boundary and motion partitions, all at the same token budget.

    results = run_partitions(clips=400)        # one dict per (dataset, model, partition)
    rows = partition_rows(results)             # the Table-1 layout: Model, r, Partition, one column per set, ...

The budget is the alternate merge's at r (a fraction of the input tokens per layer): the other partitions get its
realised r per layer as a list schedule, so that every row of a model has the same tokens in every layer (checked).
They use VTM's gamma = 6 (one target in six tokens); motion draws its targets by a frame-difference prior of each
clip (vtome.motion_prior: the testbed has no codec, so no motion vectors), computed outside the timed forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vtome.flops import SplitRule, arch, flop_speedup, schedule_tokens
from vtome.testbed.clips import DATASETS, make_clips
from vtome.testbed.evaluate import R, Variant, evaluate_variants
from vtome.testbed.findings import Finding, beats
from vtome.testbed.models import load_testbed_model
from vtome.testbed.table import DATASET_COLUMNS, DIVIDED, MODEL_NAMES, MODEL_ORDER, speedups

PARTITIONS = ("alternate", "stride", "center", "boundary", "motion")
NAMES = {"alternate": "alternate (ToMe)", "stride": "stride (naive)"}  # as printed; the others by their name
GAMMA = 6  # VTM's best partition factor
COLUMNS = ["Model", "r", "Partition", *DATASET_COLUMNS.values(), "Speedup", "FLOPs"]


def budget(model, r: float = R) -> tuple[int, ...]:
    """r per layer that the alternate merge at r realises on this model (per frame for TimeSformer)."""
    tokens = schedule_tokens(arch(model), r, "constant")
    return tuple(a - b for a, b in zip(tokens, tokens[1:], strict=False))


def partition_variants(model, r: float = R) -> list[Variant]:
    """The unreduced baseline, merge with the alternate split at r, then every VTM partition at its budget."""
    per_layer = budget(model, r)
    return [Variant("-"), Variant("alternate", "merge", r=r)] + [
        Variant(name, "merge", schedule=per_layer, partition=name, gamma=GAMMA) for name in PARTITIONS[1:]]


def run_partitions(
    clips: int = 400, r: float = R, batch_size: int = 50, seed: int = 0,
    step: Callable[[str], None] | None = None, root: str | Path | None = None,
) -> list[dict]:
    """Evaluate every (dataset, model) with every partition on the first `clips` test clips; one dict per cell
    (evaluate_variants' fields, "reduction" naming the partition, plus model, dataset, r_count, flop_speedup)."""
    results = []
    for dataset in DATASETS:
        frames, labels = make_clips(dataset, "test", clips)
        for name in MODEL_ORDER:
            if step:
                step(f"{MODEL_NAMES[name]} on the {dataset} set ({clips} clips, {len(PARTITIONS)} partitions)")
            model = load_testbed_model(name, dataset, root)
            variants = partition_variants(model, r)
            for row in evaluate_variants(model, frames, labels, variants, batch_size, seed):
                rule = SplitRule(row["partition"], row["gamma"] or 2)
                ideal = flop_speedup(model, row["tokens"], rule=rule) if row["tokens"] else 1.0
                row.update(model=name, dataset=dataset, frames=arch(model).frames, r_count=budget(model, r)[0],
                           flop_speedup=ideal)
                results.append(row)
    return results


def same_budget(results: list[dict]) -> bool:
    """Whether every partition of a (model, dataset) kept the same tokens in every layer as the alternate merge."""
    alternate = {(r["model"], r["dataset"]): r["tokens"] for r in results if r["reduction"] == "alternate"}
    return all(r["tokens"] == alternate[(r["model"], r["dataset"])] for r in results if r["mode"] is not None)


def partition_rows(results: list[dict]) -> list[dict]:
    """One dict per (model, partition): Model, r, Partition, a top-1 per dataset, Speedup and FLOPs (means over the
    datasets), and "best": the datasets where the partition is the most accurate of its model."""
    speed = speedups(results)
    best: dict[tuple[str, str], float] = {}
    for result in results:
        if result["mode"] is not None:
            key = (result["model"], result["dataset"])
            best[key] = max(best.get(key, -1.0), result["top1"])
    rows = []
    for model in [m for m in MODEL_ORDER if any(r["model"] == m for r in results)]:
        for reduction in dict.fromkeys(r["reduction"] for r in results if r["model"] == model):
            cells = {r["dataset"]: r for r in results if r["model"] == model and r["reduction"] == reduction}
            first = next(iter(cells.values()))
            count = "0" if first["mode"] is None else str(first["r_count"])
            row = {"Model": MODEL_NAMES[model], "Partition": NAMES.get(reduction, reduction), "best": [],
                   "r": f"{count}×{first['frames']}" if model in DIVIDED and count != "0" else count}
            for dataset, column in DATASET_COLUMNS.items():
                result = cells.get(dataset)
                row[column] = None if result is None else result["top1"]
                if result is not None and result["mode"] is not None and result["top1"] == best[(model, dataset)]:
                    row["best"].append(column)
            keys = [(model, d, c["schedule"], reduction) for d, c in cells.items()]
            times = [speed[k] for k in keys if k in speed]
            row["Speedup"] = sum(times) / len(times) if times else None
            row["FLOPs"] = sum(c["flop_speedup"] for c in cells.values()) / len(cells)
            rows.append(row)
    return rows


def check_partition_findings(results: list[dict]) -> list[Finding]:
    """VTM's (Table 1, LVU): center and motion beat the naive partition; center beats boundary. Plus how the
    naive partition does against ToMe's alternate split at the same budget."""
    top1 = {(r["model"], r["dataset"], r["reduction"]): r["top1"] for r in results if r["mode"] is not None}
    return [beats(top1, "center", "stride"), beats(top1, "motion", "stride"), beats(top1, "center", "boundary"),
            beats(top1, "alternate", "stride")]
