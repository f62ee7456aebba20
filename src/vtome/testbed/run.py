"""The demo's work: every shipped model on both test sets with every reduction, and the merged-token pictures.

    results = run_testbed(clips=400)                       # list of dicts, see testbed.table
    paths = write_pictures("demo_out")                     # ViViT and TimeSformer on a temporal clip
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

import vtome
from vtome.flops import arch, flop_speedup
from vtome.schedule import tokens_to_merge
from vtome.testbed.clips import DATASETS, TEMPORAL_CLASSES, make_clip, make_clips
from vtome.testbed.evaluate import R, Variant, evaluate_variants, table_variants
from vtome.testbed.models import frame_indices, load_testbed_model
from vtome.testbed.table import MODEL_NAMES, MODEL_ORDER


def _flop_speedup(model, row: dict) -> float:
    if row["mode"] is None or not row["tokens"]:
        return 1.0
    fields = {k: row[k] for k in ("reduction", "mode", "schedule", "r", "threshold")}
    vtome.patch(model, **Variant(**fields).patch_kwargs())
    try:
        return flop_speedup(model, row["tokens"])
    finally:
        vtome.unpatch(model)


def run_testbed(
    clips: int = 400, r: float = R, batch_size: int = 50, seed: int = 0,
    step: Callable[[str], None] | None = None, root: str | Path | None = None,
) -> list[dict]:
    """Evaluate every (dataset, model) on the first `clips` test clips; one result dict per table cell.

    root: a directory of <model>-<dataset> checkpoints instead of the shipped ones."""
    results = []
    for dataset in DATASETS:
        frames, labels = make_clips(dataset, "test", clips)
        for name in MODEL_ORDER:
            if step:
                step(f"{MODEL_NAMES[name]} on the {dataset} set ({clips} clips, 8 variants)")
            model = load_testbed_model(name, dataset, root)
            shape = arch(model)
            for row in evaluate_variants(model, frames, labels, table_variants(name, r), batch_size, seed):
                row.update(model=name, dataset=dataset, frames=shape.frames,
                           r_count=tokens_to_merge(r, shape.patches // shape.frames),
                           flop_speedup=_flop_speedup(model, row))
                results.append(row)
    return results


def write_pictures(out: str | Path, r: float = R, clip: int = TEMPORAL_CLASSES.index("clockwise"),
                   root: str | Path | None = None) -> list[Path]:
    """The final merged tokens of ViViT (joint: groups span frames), TimeSformer and Motionformer (divided: each
    frame, or slot of two frames, on its own) on one temporal test clip. Returns the PNG and GIF paths."""
    from vtome.vis.picture import merged_picture, write

    frames, label = make_clip("temporal", clip, "test")
    paths = []
    for name in ("vivit", "timesformer", "motionformer"):
        model = load_testbed_model(name, "temporal", root)
        taken = torch.from_numpy(frames[frame_indices(model)])
        picture = merged_picture(model, taken, r=r, scale=4, border=1)
        title = (f"{MODEL_NAMES[name]}, temporal set, '{TEMPORAL_CLASSES[label]}' clip, merge r={r:g} per layer: "
                 f"{picture.num_groups} tokens left")
        paths += write(picture, Path(out) / f"merged_tokens_{name}.png", title)
    return paths
