"""Run a patched model on a clip and read which input tokens each token holds after a given layer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import vtome


@dataclass
class Trace:
    """assignment: (rows, N0) long, the token holding each input token after `layer` (-1: dropped).

    tokens: tokens per source row entering layer 1 and after each layer (see vtome.info).
    layer: 0 is the input (nothing merged yet), i the output of layer i; L the final tokens.
    """

    assignment: torch.Tensor
    tokens: list[int]
    layer: int


def num_layers(model: nn.Module) -> int:
    """How many layers a patched model merges in."""
    return model._vtome.num_layers


def trace(model: nn.Module, x: torch.Tensor, layer: int | None = None, prior: torch.Tensor | None = None,
          **patch_kwargs) -> Trace:
    """Patch `model` with source tracing (patch_kwargs go to vtome.patch: r, schedule, mode, partition, ...), run x
    and return the assignment after `layer` (1-based; None: the last layer). The model stays patched.
    prior: the motion prior of x (partition="motion"; see vtome.motion_prior)."""
    vtome.patch(model, trace_source=True, **patch_kwargs)
    if prior is not None:
        vtome.set_prior(model, prior)
    depth = num_layers(model)
    layer = depth if layer is None else layer
    if not 0 <= layer <= depth:
        raise ValueError(f"layer must be in 0..{depth} (0: the input, {depth}: the final tokens); got {layer}")
    with torch.inference_mode():
        model(x)
    info = vtome.info(model)
    return Trace(info["assignments"][layer].cpu(), info["tokens"], layer)  # drawn with numpy
