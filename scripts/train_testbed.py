"""Train the testbed's tiny ViViT, VideoMAE, TimeSformer and Motionformer on the two synthetic datasets (CPU, from
scratch).

    .venv/bin/python scripts/train_testbed.py            # all 8 checkpoints into src/vtome/testbed/checkpoints/

One backbone per model family learns both sets at once, with one classifier per set (the loss of a clip only
sees its own set's classes); it is then saved as two ordinary checkpoints, <model>-appearance and
<model>-temporal, each holding its own set's classifier. Training stops when the validation accuracy of both sets
reaches --target (or after --steps). Clips are generated on the fly, so no data is stored.

Each checkpoint directory gets model.safetensors + config.json (save_pretrained; Motionformer's own for vtome's
Motionformer), preprocessor_config.json and
training.json (the command, the settings, the time it took and the test accuracy). Deterministic given the seed
and the thread count.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from vtome.testbed.clips import CLASSES, DATASETS, SPLIT_SIZES, make_clips
from vtome.testbed.models import MODELS, build_model, checkpoint_dir, classifier_keys, model_input, save_checkpoint

# Joint label space: appearance classes first, then temporal ones.
OFFSETS = {"appearance": 0, "temporal": len(CLASSES["appearance"])}
LABELS = [c for d in DATASETS for c in CLASSES[d]]


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up to peak, then cosine decay to zero at `steps`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * min(step - warmup, steps - warmup) / max(steps - warmup, 1)))


def own_logits(logits: torch.Tensor, dataset: str) -> torch.Tensor:
    """(B, all classes) -> (B, classes of `dataset`): one set's classifier."""
    start = OFFSETS[dataset]
    return logits[:, start:start + len(CLASSES[dataset])]


@torch.inference_mode()
def accuracy(model: nn.Module, dataset: str, frames: torch.Tensor, labels: torch.Tensor, batch: int = 100) -> float:
    """Top-1 (fraction) of the joint model on one set, its own classifier only."""
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch):
        logits = own_logits(model(model_input(frames[i:i + batch], model)).logits, dataset)
        correct += int((logits.argmax(-1) == labels[i:i + batch]).sum())
    model.train()
    return correct / len(labels)


def batch_at(order: torch.Tensor, step: int, size: int) -> dict[str, list[int]]:
    """Clip indices per set of one batch: order lists items 2i (appearance clip i) and 2i + 1 (temporal clip i)."""
    items = order[(step * size + torch.arange(size)) % len(order)]
    return {d: [int(i) // 2 for i in items if int(i) % 2 == k] for k, d in enumerate(DATASETS)}


def turning_more(indices: list[int], every: int) -> list[int]:
    """Every `every`-th temporal clip of a batch swapped for a turning one (labels 6 and 7 of the same block of 8
    clips): the pair the models learn last."""
    return [8 * (i // 8) + 6 + i % 2 if k % every == 0 else i for k, i in enumerate(indices)]


def split_head(model: nn.Module, name: str, dataset: str) -> nn.Module:
    """The joint model as an ordinary model for one set: the same backbone, that set's classifier rows."""
    single = build_model(name, dataset)
    state = model.state_dict()
    rows = slice(OFFSETS[dataset], OFFSETS[dataset] + len(CLASSES[dataset]))
    for key in classifier_keys(name):
        state[key] = state[key][rows]
    single.load_state_dict(state)
    return single.eval()


@torch.no_grad()
def sinusoidal_init(model: nn.Module) -> None:
    """Start learned position embeddings (zeros in HF) from VideoMAE's fixed sinusoid table.

    From zeros, ViViT had not learned the temporal set after 900 steps while VideoMAE, whose positions are this
    table, had reached 58%. ViViT: one table row per patch in the order of its sequence (time, row, column), the
    class token's stays 0. TimeSformer: rows 0..S-1 for the S patches of a frame, rows 0, S, 2S, .. for frames.
    """
    from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

    embeddings = getattr(getattr(model, "vivit", None) or getattr(model, "timesformer", None), "embeddings", None)
    if embeddings is None:  # VideoMAE: already the table, as a buffer
        return
    dim = embeddings.position_embeddings.shape[-1]
    patches = embeddings.position_embeddings.shape[1] - 1
    embeddings.position_embeddings[0, 1:] = get_sinusoid_encoding_table(patches, dim)[0]
    if hasattr(embeddings, "time_embeddings"):
        frames = embeddings.time_embeddings.shape[1]
        embeddings.time_embeddings[0] = get_sinusoid_encoding_table(patches * frames, dim)[0, ::patches]


def joint_state(model: nn.Module, name: str, root: str) -> dict:
    """Load the two per-set checkpoints of a previous run (one backbone, two classifiers) into the joint model;
    returns the earlier run's training record."""
    from vtome.models import load_model

    heads = [load_model(str(checkpoint_dir(name, d, root))).state_dict() for d in DATASETS]
    state = dict(heads[0])
    for key in classifier_keys(name):
        state[key] = torch.cat([h[key] for h in heads])
    model.load_state_dict(state)
    return json.loads((checkpoint_dir(name, DATASETS[0], root) / "training.json").read_text())


def train(name: str, val: dict, test: dict, args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    model = build_model(name, None, LABELS).train()
    sinusoidal_init(model)
    previous = None
    if args.resume:
        previous = joint_state(model, name, args.resume)
        print(f"  {name}: resuming from {args.resume} (trained {previous['steps']} steps)", flush=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    order = torch.randperm(2 * args.train_clips, generator=torch.Generator().manual_seed(args.seed))
    start, seen, hits, history = time.perf_counter(), 0, 0, []
    step = 0
    while step < args.steps:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        losses = []
        optimizer.zero_grad(set_to_none=True)
        for dataset, indices in batch_at(order, step, args.batch).items():
            if not indices:
                continue
            if dataset == "temporal" and args.turning_every:
                indices = turning_more(indices, args.turning_every)
            frames = torch.stack([make_clips(dataset, "train", 1, i)[0][0] for i in indices])
            labels = torch.tensor([i % len(CLASSES[dataset]) for i in indices])
            logits = own_logits(model(model_input(frames, model)).logits, dataset)
            loss = F.cross_entropy(logits, labels, reduction="sum") / args.batch
            loss.backward()
            losses.append(loss.item())
            hits += int((logits.argmax(-1) == labels).sum())
            seen += len(indices)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % args.log_every == 0:
            print(f"  {name} step {step} loss {sum(losses):.3f} train acc {hits / seen:.3f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            hits = seen = 0
        if step % args.eval_every == 0 or step == args.steps:
            scores = {d: accuracy(model, d, *val[d]) for d in DATASETS}
            history.append({"step": step, "seconds": round(time.perf_counter() - start, 1), **scores})
            print(f"  {name} step {step} validation {scores}", flush=True)
            if step >= args.min_steps and all(v >= args.target for v in scores.values()):
                break
    seconds = time.perf_counter() - start
    records = {}
    for dataset in DATASETS:
        single = split_head(model, name, dataset)
        frames, labels = test[dataset]
        with torch.inference_mode():
            preds = torch.cat([single(model_input(frames[i:i + 100], single)).logits.argmax(-1)
                               for i in range(0, len(labels), 100)])
        test_acc = float((preds == labels).float().mean())
        print(f"{name}-{dataset}: test accuracy {test_acc:.4f} on {len(labels)} clips "
              f"(joint training {seconds:.0f} s, {step} steps)", flush=True)
        records[dataset] = {
            "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv]),
            "settings": {k: v for k, v in vars(args).items() if k != "out"},
            "trained_with": "one backbone on both sets, one classifier per set; this checkpoint keeps its set's",
            "train_seconds": round(seconds, 1),
            "steps": step,
            "validation": history,
            "test_accuracy": test_acc,
            "test_clips": len(labels),
            "torch": torch.__version__,
        }
        if previous is not None:
            records[dataset]["resumed_from"] = {k: v for k, v in previous.items() if k != "validation"}
        out = checkpoint_dir(name, dataset, args.out)
        save_checkpoint(single, out, records[dataset])
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--train-clips", type=int, default=SPLIT_SIZES["train"], help="clips per set to draw from")
    parser.add_argument("--val-clips", type=int, default=100, help="validation clips per set")
    parser.add_argument("--test-clips", type=int, default=500, help="test clips per set, for training.json")
    parser.add_argument("--steps", type=int, default=2000, help="at most this many steps (the cosine's length)")
    parser.add_argument("--min-steps", type=int, default=100)
    parser.add_argument("--target", type=float, default=0.97, help="stop when both validation accuracies reach it")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=30, help="warm-up steps")
    parser.add_argument("--seed", type=int, default=0)
    # One thread: on a CPU shared with other jobs, two OpenMP threads made a step 20x slower (they wait for each
    # other); tiny models gain little from a second thread anyway.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--turning-every", type=int, default=0, help="swap every N-th temporal clip of a batch for "
                        "a turning one (0: no oversampling)")
    parser.add_argument("--resume", default=None, help="continue from the checkpoints of a run in this directory "
                        "(a new warm-up and cosine; its record is kept under resumed_from)")
    parser.add_argument("--out", default=None, help="directory for the checkpoints (default: the package's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    total = time.perf_counter()
    val = {d: make_clips(d, "val", args.val_clips) for d in DATASETS}
    test = {d: make_clips(d, "test", args.test_clips) for d in DATASETS}
    print(f"generated validation and test clips in {time.perf_counter() - total:.0f} s", flush=True)
    results = {name: train(name, val, test, args) for name in args.models}
    print(f"total {time.perf_counter() - total:.0f} s")
    print(json.dumps({f"{n}-{d}": r["test_accuracy"] for n, by in results.items() for d, r in by.items()}, indent=2))


if __name__ == "__main__":
    main()
