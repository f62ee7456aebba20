"""The public patching functions: patch, unpatch, info. The mechanism is in `family.py` (class swapping) and
`state.py` (what a forward pass tracks); one adapter per model family, listed in `registry.py`."""

from __future__ import annotations

from torch import nn

from vtome.patch.registry import find_family
from vtome.patch.state import ATTN_IMPLS, COMPATS, HEAD_AGGREGATIONS, MODES, POSITIONS, MergeState, Settings
from vtome.reduce import source_matrix
from vtome.schedule import Schedule, check_r, check_schedule


def patch(
    model: nn.Module,
    r: int | float = 0,
    schedule: Schedule = "constant",
    mode: str = "merge",
    prop_attn: bool | None = None,
    trace_source: bool = False,
    threshold: float | None = None,
    seed: int = 0,
    *,
    head_aggregation: str = "mean",
    attn_impl: str | None = None,
    compat: str | None = None,
    position: str = "mean",
) -> nn.Module:
    """Make `model` merge tokens inside its layers, in place. Returns the model.

    r: tokens merged per layer (an int; per frame for divided space-time models) or a float in (0, 0.5], a
        fraction of the initial token count (class token excluded).
    schedule: "constant" (r in every layer), "decreasing" (2r -> 0), "increasing" (0 -> 2r), or a list of r per
        layer (then `r` is not used).
    mode: "merge" (size-weighted average), "drop" (remove the chosen tokens), "random_drop", "random_merge"
        (random choice and pairing, from `seed`), "hybrid" (merge an edge whose similarity >= threshold, else
        drop).
    prop_attn: proportional attention (add log size to the attention logits); None: the paper's choice for the
        model (off for VideoMAE, on otherwise).
    trace_source: track which input tokens each token holds (see `vtome.info(model)["source"]`).
    head_aggregation: match on keys averaged over heads ("mean") or concatenated ("concat").
    attn_impl: "sdpa" or "eager" (explicit softmax, like the paper's code); None keeps the model's choice.
    compat: "paper" reproduces the paper's code where vtome deliberately differs from it (see the README);
        None (default) is vtome's behaviour.
    position: for models with rotary positions (V-JEPA 2), where a merged token sits: "mean" (the size-weighted
        mean of its members' positions), "target" (its target's) or "source" (the mean of the sources that joined).

    Patching an already patched model replaces its settings.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "hybrid" and threshold is None:
        raise ValueError("mode='hybrid' needs a threshold: edges with similarity >= threshold merge, others drop")
    if mode != "hybrid" and threshold is not None:
        raise ValueError(f"threshold applies only to mode='hybrid', not {mode!r}")
    if head_aggregation not in HEAD_AGGREGATIONS:
        raise ValueError(f"head_aggregation must be one of {HEAD_AGGREGATIONS}; got {head_aggregation!r}")
    if attn_impl is not None and attn_impl not in ATTN_IMPLS:
        raise ValueError(f"attn_impl must be one of {ATTN_IMPLS} or None; got {attn_impl!r}")
    if compat is not None and compat not in COMPATS:
        raise ValueError(f"compat must be one of {COMPATS} or None; got {compat!r}")
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}; got {position!r}")
    if not isinstance(seed, int):
        raise ValueError(f"seed must be an int; got {seed!r}")
    check_r(r)
    check_schedule(schedule)

    unpatch(model)
    family = find_family(model)
    settings = Settings(
        r=r,
        schedule=schedule if isinstance(schedule, str) else list(schedule),
        mode=mode,
        prop_attn=family.prop_attn if prop_attn is None else bool(prop_attn),
        trace_source=trace_source,
        threshold=None if threshold is None else float(threshold),
        seed=seed,
        head_aggregation=head_aggregation,
        attn_impl=attn_impl,
        compat=compat,
        position=position,
    )
    state = family.apply(model, settings)
    model._vtome = state
    return model


def _state(model: nn.Module) -> MergeState | None:
    state = getattr(model, "_vtome", None)
    return state if isinstance(state, MergeState) else None


def unpatch(model: nn.Module) -> nn.Module:
    """Restore the original classes (and so the original forward, bit for bit). A no-op if not patched."""
    state = _state(model)
    if state is None:
        return model
    for module, original in reversed(state.patched):
        module.__class__ = original
        module.__dict__.pop("_vtome", None)
        module.__dict__.pop("_vtome_layer", None)
    model.__dict__.pop("_vtome", None)
    return model


def info(model: nn.Module) -> dict:
    """What the patched model does and did in its last forward pass.

    r: r scheduled for each layer (clamped at run time to half the mergeable tokens).
    tokens: tokens entering layer 1, then after each layer (L + 1 values); per clip with the class token for
        joint space-time models, per frame without it for divided ones. Empty before the first forward.
    size: (batch, N, 1) how many input tokens each final token stands for (batch * frames for divided models).
    source: (batch, N, N0) bool, which of the N0 layer-1 input tokens each final token holds (trace_source).
    assignments: (trace_source) L + 1 tensors (batch, N0) long, entering layer 1 then after each layer: the
        index of the token holding each input token (-1 if dropped); `reduce.source_matrix(assignments[i],
        tokens[i])` is the source after layer i.
    """
    state = _state(model)
    if state is None:
        raise ValueError("this model is not patched: call vtome.patch(model, r=...) first")
    s = state.settings
    source = None
    if state.assignment is not None and state.tokens:
        source = source_matrix(state.assignment, state.tokens[-1])
    return {
        "r": list(state.r),
        "tokens": list(state.tokens),
        "size": state.size,
        "source": source,
        "assignments": list(state.assignments),
        "mode": s.mode,
        "schedule": s.schedule,
        "prop_attn": s.prop_attn,
        "threshold": s.threshold,
        "seed": s.seed,
        "head_aggregation": s.head_aggregation,
        "compat": s.compat,
        "position": s.position,
    }

