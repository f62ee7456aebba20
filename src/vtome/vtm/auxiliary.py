"""The auxiliary path of learnable VTM on any patched model.

Sampling the targets from the saliency is not differentiable, so the paper trains the saliency through a second
path that exists only in training: the same tokens, attention with s_j added to the logit of every key j
(saliency-guided attention), merged with the main path's partition and matching. vtome runs both paths in one
forward pass of a doubled batch:

    vtome.patch(model, r=0.5, partition="saliency", saliency=heads)
    enable_auxiliary(model)
    model.train()
    logits = model(x).logits                 # (2B, classes): rows [0, B) main path, [B, 2B) auxiliary path
    loss = task_loss(logits, labels, lam=1.0)   # task(main) + lam * task(aux)

The batch is doubled as it enters the first patched layer (a forward pre-hook, removed by unpatch); every layer
matches on the main rows and applies the matching to both halves (MergeState.reduce) and every adapter's attention
adds MergeState.key_bias. In eval mode nothing of this runs: B rows, as without it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vtome.patch.state import MergeState


def patched_state(model: nn.Module) -> MergeState:
    state = getattr(model, "_vtome", None)
    if not isinstance(state, MergeState):
        raise ValueError("this model has no patched layer: call vtome.patch(model, r=..., partition='saliency', "
                         "saliency=heads) first")
    return state


def first_layer(state: MergeState) -> nn.Module:
    """The patched module of layer 1 that holds the others of that layer (its attention is patched too)."""
    first = [m for m, _ in state.patched if m.__dict__.get("_vtome_layer") == 0]
    for module in first:
        inside = {id(m) for m in module.modules()}
        if all(id(m) in inside for m in first):
            return module
    raise RuntimeError("vtome: no patched first layer found")


def _hidden_states(args: tuple, kwargs: dict) -> tuple[torch.Tensor, bool]:
    if args:
        return args[0], True
    for name in ("hidden_states", "x"):
        if name in kwargs:
            return kwargs[name], False
    raise RuntimeError("vtome: the first patched layer was called without its hidden states")


def enable_auxiliary(model: nn.Module) -> nn.Module:
    """Run the auxiliary path in every training-mode forward pass of a model patched with partition="saliency"
    (see the module's docstring). Returns the model."""
    state = patched_state(model)
    if state.settings.partition != "saliency" or state.saliency is None:
        raise ValueError("the auxiliary path trains saliency heads: patch with partition='saliency', saliency=heads "
                         f"(this model uses partition={state.settings.partition!r})")
    if state.auxiliary:
        return model
    layer = first_layer(state)

    def double(module: nn.Module, args: tuple, kwargs: dict):
        state.doubled = module.training
        if not module.training:
            return None
        hidden, positional = _hidden_states(args, kwargs)
        hidden = torch.cat([hidden, hidden])
        if positional:
            return (hidden, *args[1:]), kwargs
        return args, {**kwargs, ("hidden_states" if "hidden_states" in kwargs else "x"): hidden}

    state.hooks.append(layer.register_forward_pre_hook(double, with_kwargs=True))
    state.auxiliary = True
    return model


def disable_auxiliary(model: nn.Module) -> nn.Module:
    state = patched_state(model)
    for handle in state.hooks:
        handle.remove()
    state.hooks.clear()
    state.auxiliary = state.doubled = False
    state.main_rows = None
    return model


def split_rows(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(2B, ...) -> main (B, ...), auxiliary (B, ...)."""
    if output.shape[0] % 2:
        raise ValueError(f"an auxiliary-path output has an even number of rows [main; aux]; got {output.shape[0]}")
    return output.chunk(2)


def task_loss(
    output: torch.Tensor, labels: torch.Tensor, lam: float = 1.0,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """task(main) + lam * task(aux) for output (2B, ...) and labels (B, ...); returns (total, main, aux)."""
    main, aux = split_rows(output)
    main_loss, aux_loss = loss_fn(main, labels), loss_fn(aux, labels)
    return main_loss + lam * aux_loss, main_loss, aux_loss
