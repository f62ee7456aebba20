"""What a model family's adapter is made of: class swapping (ToMe's way) and the Family record.

A patched module becomes an instance of a subclass (mixin, original class) that is indistinguishable from the
original wherever a library looks a class up: same `__name__`, `__qualname__` and `__module__` (transformers
keys its output recording on the class's string and treats classes outside `transformers.` as custom code,
which changes how `save_pretrained` writes keys), and a `forward` with the original's signature. Weights and
state_dict keys are untouched; `unpatch` puts the original classes back.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from vtome.partition import Layout
from vtome.patch.state import MergeState, Settings

_SUBCLASSES: dict[tuple[type, type], type] = {}
_ORIGINALS: dict[type, type] = {}  # patched class -> the class it stands in for


def _with_signature(function: Callable, like: Callable) -> Callable:
    """A copy of function that reports like's signature (and docs) to inspect, without a wrapper call."""
    copy = types.FunctionType(
        function.__code__, function.__globals__, function.__name__, function.__defaults__, function.__closure__
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    functools.update_wrapper(copy, like, updated=())
    del copy.__wrapped__  # keep inspect on the signature below, not on the original function
    copy.__signature__ = inspect.signature(like)
    return copy


def patched_class(mixin: type, original: type) -> type:
    """The class (mixin, original) under original's names; made once per pair. A patched class given as original
    (an instance made by a patched class's from_pretrained) stands for its own original."""
    original = _ORIGINALS.get(original, original)
    cls = _SUBCLASSES.get((mixin, original))
    if cls is None:
        namespace = {name: getattr(original, name) for name in ("__qualname__", "__module__", "__doc__")}
        forward = getattr(mixin, "forward", None)
        if forward is not None and hasattr(original, "forward"):
            namespace["forward"] = _with_signature(forward, original.forward)
        cls = type(original.__name__, (mixin, original), namespace)
        _SUBCLASSES[(mixin, original)] = cls
        _ORIGINALS[cls] = original
    return cls


def swap_class(module: nn.Module, mixin: type, state: MergeState) -> None:
    """Make module an instance of (mixin, its class) and give it the shared state."""
    original = type(module)
    state.patched.append((module, original))
    module.__class__ = patched_class(mixin, original)
    module._vtome = state


@dataclass(frozen=True)
class Family:
    """One model family: how to recognise it and how to patch it."""

    name: str
    matches: Callable[[nn.Module], bool]
    apply: Callable[[nn.Module, Settings], MergeState]
    prop_attn: bool  # the paper's default
    layout: Callable[[nn.Module], Layout] | None = None  # the token grid, for region and motion partitions
