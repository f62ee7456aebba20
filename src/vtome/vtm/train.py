"""Training saliency heads on a patched model: the auxiliary path, AdamW, progress and a resumable checkpoint.

    heads = SaliencyHeads.for_model(model)
    vtome.patch(model, r=0.5, partition="saliency", saliency=heads)
    history = train_saliency(model, heads, loader, epochs=2, checkpoint="heads.ckpt")

The loss is task(main) + lam * task(aux) (cross-entropy by default). With the backbone frozen (the default) the
heads are the only parameters trained and their only gradient comes through the auxiliary path's attention bias:
the main path reads the saliency only through the sampled partition, which has no gradient.

The checkpoint (torch.save of the heads, the optimizer and the step, written whole and then moved into place) is
written every `checkpoint_every` steps, at the end, and when the run is interrupted (Ctrl-C). Calling again with
the same checkpoint resumes at the next step: the batches already seen are skipped, so with a loader that gives
the same batches in the same order the resumed run ends where an uninterrupted one would have.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from vtome.vtm.auxiliary import disable_auxiliary, enable_auxiliary, patched_state, task_loss
from vtome.vtm.heads import SaliencyHeads


def default_inputs(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch -> (model input, labels): a (x, y) pair, or a dict with pixel_values / x / frames and labels /
    label."""
    if isinstance(batch, list | tuple) and len(batch) == 2:
        return batch[0], batch[1]
    if isinstance(batch, dict):
        x = next((batch[k] for k in ("pixel_values", "x", "frames") if k in batch), None)
        y = next((batch[k] for k in ("labels", "label") if k in batch), None)
        if x is not None and y is not None:
            return x, torch.as_tensor(y)
    raise ValueError("a batch must be (inputs, labels) or a dict with pixel_values and labels; pass inputs= to read "
                     f"another kind (got {type(batch).__name__})")


def _logits(output) -> torch.Tensor:
    return output.logits if hasattr(output, "logits") else output


def check_training(model: nn.Module, heads: SaliencyHeads, loader: Iterable) -> None:
    """Refuse, before any work, a model with nothing to train heads for, heads of another shape, an empty loader."""
    state = patched_state(model)
    if not any(r > 0 for r in state.r):
        raise ValueError("no patched layer merges anything (r = 0 in every layer): the saliency would decide nothing")
    if state.saliency is not heads:
        raise ValueError("the model is not patched with these heads: vtome.patch(model, r=..., partition='saliency', "
                         "saliency=heads)")
    if heads.layers != state.num_layers:
        raise ValueError(f"the heads have {heads.layers} layers; the model has {state.num_layers} patched layers")
    if hasattr(loader, "__len__") and len(loader) == 0:
        raise ValueError("the loader is empty: nothing to train on")


def _save(path: Path, heads: SaliencyHeads, optimizer: torch.optim.Optimizer, step: int, extra: dict) -> None:
    partial = path.with_name(path.name + ".partial")
    torch.save({"heads": heads.weight.detach().cpu(), "optimizer": optimizer.state_dict(), "step": step, **extra},
               partial)
    os.replace(partial, path)


def _resume(path: Path | None, heads: SaliencyHeads, optimizer: torch.optim.Optimizer, settings: dict) -> int:
    if path is None or not path.is_file():
        return 0
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if tuple(saved["heads"].shape) != tuple(heads.weight.shape):
        raise ValueError(f"checkpoint {path} holds heads of shape {tuple(saved['heads'].shape)}, these are "
                         f"{tuple(heads.weight.shape)}: a checkpoint of another model")
    if saved.get("settings") != settings:
        raise ValueError(f"checkpoint {path} was written with other settings ({saved.get('settings')}); give another "
                         "checkpoint path or the same settings")
    with torch.no_grad():
        heads.weight.copy_(saved["heads"])
    optimizer.load_state_dict(saved["optimizer"])
    return int(saved["step"])


def train_saliency(
    model: nn.Module,
    heads: SaliencyHeads,
    loader: Iterable,
    *,
    epochs: int = 1,
    steps: int | None = None,
    lam: float = 1.0,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    freeze_backbone: bool = True,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    inputs: Callable = default_inputs,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    progress: bool = True,
) -> list[dict]:
    """Train `heads` (the saliency of a model patched with partition="saliency", saliency=heads) through the
    auxiliary path. Returns one record per step run now: {"step", "loss", "main", "aux"}.

    epochs, steps: passes over the loader, or at most `steps` batches in all (whichever ends first).
    lam: weight of the auxiliary loss. freeze_backbone: train the heads alone (else the model too).
    inputs: batch -> (model input, labels). checkpoint: a file to resume from and save to.
    Every step draws its own targets (the partition's seed is the step), so training sees many partitions.
    """
    check_training(model, heads, loader)
    state = patched_state(model)
    if epochs < 1 or (steps is not None and steps < 1) or checkpoint_every < 1:
        raise ValueError("epochs, steps and checkpoint_every must be >= 1")
    path = None if checkpoint is None else Path(checkpoint)
    trainable = [p for p in model.parameters() if p.requires_grad]
    backbone_flags = [(p, p.requires_grad) for p in model.parameters()]
    if freeze_backbone:
        for p in model.parameters():
            p.requires_grad_(False)
    heads.to(next(iter(model.parameters())).device)
    params = list(heads.parameters()) + ([] if freeze_backbone else trainable)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    settings = {"lam": lam, "lr": lr, "weight_decay": weight_decay, "freeze_backbone": freeze_backbone,
                "seed": state.settings.seed}
    done = _resume(path, heads, optimizer, settings)
    per_epoch = len(loader) if hasattr(loader, "__len__") else None
    total = epochs * per_epoch if per_epoch is not None else steps
    total = min(total, steps) if steps is not None and total is not None else total

    was_training, original = model.training, state.settings
    enable_auxiliary(model)
    model.train()
    history: list[dict] = []
    step = completed = 0
    bar = tqdm(total=total, initial=min(done, total or done), disable=not progress, desc="saliency heads",
               unit="step")
    try:
        for _epoch in range(epochs):
            seen = 0
            for batch in loader:
                seen += 1
                if steps is not None and step >= steps:
                    break
                step += 1
                if step <= done:
                    continue  # seen before the interruption
                x, labels = inputs(batch)
                state.settings = dataclasses.replace(original, seed=original.seed + step)
                optimizer.zero_grad(set_to_none=True)
                loss, main, aux = task_loss(_logits(model(x)), labels, lam, loss_fn)
                loss.backward()
                optimizer.step()
                completed = step
                history.append({"step": step, "loss": loss.item(), "main": main.item(), "aux": aux.item()})
                bar.update(1)
                bar.set_postfix(main=f"{main.item():.3f}", aux=f"{aux.item():.3f}")
                if path is not None and step % checkpoint_every == 0:
                    _save(path, heads, optimizer, step, {"settings": settings})
            if seen == 0:
                raise ValueError("the loader yielded no batch: nothing to train on")
        if path is not None:
            _save(path, heads, optimizer, max(step, done), {"settings": settings})
    except KeyboardInterrupt:
        if path is not None:
            _save(path, heads, optimizer, max(completed, done), {"settings": settings})  # a step in flight is lost
        raise
    finally:
        bar.close()
        state.settings = original
        disable_auxiliary(model)
        model.train(was_training)
        for p, flag in backbone_flags:
            p.requires_grad_(flag)
    return history
