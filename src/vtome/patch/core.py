"""The public patching functions: patch, unpatch, info. The mechanism is in `family.py` (class swapping) and
`state.py` (what a forward pass tracks); one adapter per model family, listed in `registry.py`."""

from __future__ import annotations

from torch import nn

from vtome.partition import GAMMA_DEFAULTS, PARTITIONS, FixedSaliency
from vtome.patch.registry import find_family
from vtome.patch.state import (
    ATTN_IMPLS,
    COMPATS,
    HEAD_AGGREGATIONS,
    MERGE_WEIGHTINGS,
    MODES,
    POSITIONS,
    MergeState,
    Settings,
)
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
    partition: str = "alternate",
    gamma: int | None = None,
    merge_weighting: str = "size",
    sample: bool = True,
    tau: float = 1.0,
    saliency=None,
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
    partition: which tokens are targets (Video Token Merging, Lee et al.): "alternate" (ToMe's), "stride" (every
        gamma-th), "center" / "boundary" (targets concentrated in / outside the central box of every frame),
        "motion" (drawn by a motion prior: `vtome.set_prior`), "saliency" (drawn by s = tanh(K u)). See
        vtome.partition. A fractional r may then go up to 1 - 1/gamma.
    gamma: partition factor, an int >= 2 (about one target in gamma tokens); None: 2 for alternate and stride,
        6 (VTM's best) for the others.
    merge_weighting: "size" (ToMe's size-weighted average) or "uniform" (VTM's plain average).
    sample: motion / saliency: draw targets with probability softmax (seeded); False takes the top ones.
    tau: motion: the temperature of softmax(v / tau).
    saliency: partition="saliency": fixed vectors u, a tensor (layers, C') with C' the metric's width, or an object
        with scores(layer, keys) -> (batch, N) such as vtome.vtm.SaliencyHeads.

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
    gamma, saliency_scores = check_partition(partition, gamma, merge_weighting, tau, saliency)
    check_r(r, 1 - 1 / gamma)
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
        partition=partition,
        gamma=gamma,
        merge_weighting=merge_weighting,
        sample=bool(sample),
        tau=float(tau),
    )
    state = family.apply(model, settings)
    state.layout = family.layout(model) if family.layout is not None else None
    state.saliency = saliency_scores
    if partition in ("center", "boundary", "motion") and state.layout is None:
        unpatch(model)
        raise ValueError(f"partition={partition!r} needs the model's patch grid, which vtome does not know for a "
                         f"{family.name} model")
    model._vtome = state
    return model


def check_partition(partition: str, gamma: int | None, merge_weighting: str, tau: float, saliency):
    """Validate the partition settings; returns gamma (its default filled in) and the saliency scorer."""
    if partition not in PARTITIONS:
        raise ValueError(f"unknown partition {partition!r}; use one of {', '.join(PARTITIONS)}")
    if gamma is None:
        gamma = GAMMA_DEFAULTS[partition]
    if isinstance(gamma, bool) or not isinstance(gamma, int) or gamma < 2:
        raise ValueError(f"gamma must be an int >= 2 (about one target in gamma tokens); got {gamma!r}")
    if partition == "alternate" and gamma != 2:
        raise ValueError(f"partition='alternate' is ToMe's split (gamma 2); got gamma={gamma}: use "
                         "partition='stride' for another gamma")
    if merge_weighting not in MERGE_WEIGHTINGS:
        raise ValueError(f"merge_weighting must be one of {MERGE_WEIGHTINGS}; got {merge_weighting!r}")
    if not tau > 0:
        raise ValueError(f"tau must be > 0; got {tau!r}")
    if partition == "saliency":
        if saliency is None:
            raise ValueError("partition='saliency' needs saliency=: vectors (layers, C') or vtome.vtm.SaliencyHeads")
        return gamma, saliency if hasattr(saliency, "scores") else FixedSaliency(saliency)
    if saliency is not None:
        raise ValueError(f"saliency= applies only to partition='saliency', not {partition!r}")
    return gamma, None


def _state(model: nn.Module) -> MergeState | None:
    state = getattr(model, "_vtome", None)
    return state if isinstance(state, MergeState) else None


def unpatch(model: nn.Module) -> nn.Module:
    """Restore the original classes (and so the original forward, bit for bit). A no-op if not patched."""
    state = _state(model)
    if state is None:
        return model
    for handle in state.hooks:
        handle.remove()
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
    partition, gamma, merge_weighting: the partition settings; targets: the targets chosen in each layer (None
        where a layer merged nothing); anchors: (center / boundary / motion) L + 1 tensors (batch, N), the
        layer-1 index each token is anchored at.
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
        "partition": s.partition,
        "gamma": s.gamma,
        "merge_weighting": s.merge_weighting,
        "targets": list(state.targets),
        "anchors": list(state.anchors),
    }



def set_prior(model: nn.Module, prior) -> nn.Module:
    """Give a model patched with partition="motion" the motion prior of its next forward pass.

    prior: (batch, frames, height, width), one value per layer-1 token of the model's grid (tubelet slots x patch
    rows x patch columns; TimeSformer: frames x patches), e.g. from `vtome.motion_prior(video, model)`. It is used
    by the next forward pass only.
    """
    import torch

    state = _state(model)
    if state is None:
        raise ValueError("this model is not patched: call vtome.patch(model, r=..., partition='motion') first")
    if state.settings.partition != "motion":
        raise ValueError(f"set_prior applies to partition='motion'; this model uses {state.settings.partition!r}")
    prior = torch.as_tensor(prior)
    state.layout.prior_rows(prior)  # the shape check, now rather than in the forward pass
    state.prior = prior
    return model
