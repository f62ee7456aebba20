"""Where should a merged token sit? The testbed's V-JEPA 2 under the three position rules of vtome.patch.

    .venv/bin/python benchmarks/vjepa2_positions.py                 # 1000 test clips per set, r = 15% and 25%

V-JEPA 2 rotates queries and keys by each token's (frame, row, column); after a merge the token's position is
the size-weighted mean of its members' ("mean", vtome's default), its target's ("target") or the mean of the
sources that joined it ("source"). Prints top-1 (%) per rule, set, r and schedule as a markdown table.
"""

from __future__ import annotations

import argparse

import torch

import vtome
from vtome.testbed.clips import DATASETS, make_clips
from vtome.testbed.models import load_testbed_model, model_input

RULES = ("mean", "target", "source")


@torch.inference_mode()
def top1(model, frames: torch.Tensor, labels: torch.Tensor, batch: int = 100, **patch_kwargs) -> float:
    if patch_kwargs:
        vtome.patch(model, **patch_kwargs)
    correct = 0
    for start in range(0, len(labels), batch):
        x = model_input(frames[start:start + batch], model)
        correct += int((model(x).logits.argmax(-1) == labels[start:start + batch]).sum())
    vtome.unpatch(model)
    return 100.0 * correct / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=1000, help="test clips per set")
    parser.add_argument("--r", type=float, nargs="+", default=[0.15, 0.25])
    parser.add_argument("--schedules", nargs="+", default=["constant", "decreasing"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoints", default=None, help="a directory of vjepa2-<set> checkpoints instead of the "
                        "shipped ones")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| set | r | schedule | unmerged | " + " | ".join(RULES) + " |")
    print("|---|---|---|---|" + "---|" * len(RULES))
    for dataset in DATASETS:
        model = load_testbed_model("vjepa2", dataset, args.checkpoints)
        frames, labels = make_clips(dataset, "test", args.clips)
        base = top1(model, frames, labels)
        for r in args.r:
            for schedule in args.schedules:
                scores = [top1(model, frames, labels, r=r, schedule=schedule, position=rule) for rule in RULES]
                best = max(scores)
                cells = [f"**{s:.2f}**" if s == best else f"{s:.2f}" for s in scores]
                print(f"| {dataset} | {r:g} | {schedule} | {base:.2f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
