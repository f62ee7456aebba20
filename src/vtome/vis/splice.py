"""Clip splicing (paper Fig. 8): put frames of another clip into a clip and see whether groups cross over.

If merging were semantic, tokens of the same object in two clips of the same class would merge; the number
reported is the share of merged groups (tokens holding two or more input tokens) that hold tokens of both clips.
Frames are swapped in whole time units (a tubelet's frames for joint models), so that every input token comes
from one clip. Divided models merge each frame on its own, so their share is always 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PATTERNS = ("random", "alternate", "second-half")
CHOICES = ("random", "same-class", "nearest", "nearest-same-class")


def splice_mask(frames: int, span: int = 1, share: float = 0.5, pattern: str = "random", seed: int = 0) -> torch.Tensor:
    """(frames,) bool: which frames come from the other clip, chosen in units of `span` frames.

    pattern: "random" (round(share * units) units at random, from seed), "alternate" (every other unit,
    starting with the second), "second-half" (the last round(share * units) units).
    """
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}; got {pattern!r}")
    if frames % span:
        raise ValueError(f"{frames} frames do not split into units of {span}")
    units = frames // span
    count = round(share * units)
    if pattern == "random":
        chosen = torch.randperm(units, generator=torch.Generator().manual_seed(seed))[:count]
    elif pattern == "alternate":
        chosen = torch.arange(1, units, 2)
    else:
        chosen = torch.arange(units - count, units)
    mask = torch.zeros(units, dtype=torch.bool)
    mask[chosen] = True
    return mask.repeat_interleave(span)


def splice(clip: torch.Tensor, other: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """clip, other (T, H, W, 3); mask (T,) bool -> clip with other's frames where mask is True."""
    if clip.shape != other.shape:
        raise ValueError(f"clips must have the same shape to splice: {tuple(clip.shape)} vs {tuple(other.shape)}")
    return torch.where(mask[:, None, None, None], other, clip)


def unit_origin(mask: torch.Tensor, span: int) -> torch.Tensor:
    """(T,) frame mask -> (T // span,) which time units come from the other clip. Raises if a unit mixes both."""
    units = mask.reshape(-1, span)
    if bool((units.any(1) != units.all(1)).any()):
        raise ValueError(f"a time unit of {span} frames mixes both clips: splice in whole units")
    return units[:, 0]


@dataclass(frozen=True)
class SpanScore:
    """share = spanning / merged (0 when nothing merged)."""

    share: float
    spanning: int
    merged: int


def spanning_share(groups: torch.Tensor, origin: torch.Tensor) -> SpanScore:
    """groups (U, h, w) token group ids of one clip (-1: dropped); origin (U,) True for the other clip's units.

    Counts the groups holding at least two input tokens, and among them those holding tokens of both clips.
    """
    ids = groups.flatten()
    other = origin[:, None, None].expand_as(groups).flatten()
    kept = ids >= 0
    ids, other = ids[kept], other[kept]
    if ids.numel() == 0:
        return SpanScore(0.0, 0, 0)
    _, ids = torch.unique(ids, return_inverse=True)
    count = int(ids.max()) + 1
    size = torch.bincount(ids, minlength=count)
    from_other = torch.bincount(ids, weights=other.float(), minlength=count)
    merged = size >= 2
    spanning = merged & (from_other > 0) & (from_other < size)
    m, s = int(merged.sum()), int(spanning.sum())
    return SpanScore(s / m if m else 0.0, s, m)


def kl_divergence(logits: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """KL(p || q_i) between the softmax of logits (C,) and of each row of others (M, C) -> (M,)."""
    log_p = logits.float().log_softmax(-1)
    log_q = others.float().log_softmax(-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def choose_partner(source: dict, records: list[dict], how: str = "random", label_key: str = "label",
                   logits_key: str = "logits", logit_range: slice = slice(None), seed: int = 0) -> dict:
    """The record of the clip to splice into `source` (a record with "id", label_key and, for the nearest
    choices, logits_key), among `records` (predictions.jsonl lines); never the source itself.

    how: "random" | "same-class" (random, same label) | "nearest" (smallest KL divergence of the output
    distributions) | "nearest-same-class" (the paper's Fig. 8). logit_range: the part of the logits compared
    (e.g. the noun outputs of an EPIC model).
    """
    if how not in CHOICES:
        raise ValueError(f"how must be one of {CHOICES}; got {how!r}")
    pool = [r for r in records if r["id"] != source["id"] and r.get("error") is None]
    if how.endswith("same-class"):
        pool = [r for r in pool if r.get(label_key) == source.get(label_key)]
    if not pool:
        raise ValueError(f"no clip to splice in: no other readable clip{' of the same class' * ('same' in how)}")
    if not how.startswith("nearest"):
        return pool[int(torch.randint(len(pool), (1,), generator=torch.Generator().manual_seed(seed)))]
    pool = [r for r in pool if logits_key in r]
    if logits_key not in source or not pool:
        raise ValueError(f"choosing the nearest clip needs {logits_key!r} in the predictions (eval --save-logits)")
    others = torch.tensor([r[logits_key] for r in pool])[:, logit_range]
    kl = kl_divergence(torch.tensor(source[logits_key])[logit_range], others)
    return pool[int(kl.argmin())]


def spliced_picture(model, clip: torch.Tensor, other: torch.Tensor, mask: torch.Tensor, layer: int | None = None,
                    fill: str = "mean", border: int = 1, scale: int = 1, colours: int = 0, **patch_kwargs):
    """Splice other's frames into clip where mask (T,) is True, merge with `model` (patch_kwargs: r, schedule,
    ...) and score the groups. clip, other: uint8 (T, h, w, 3) at the model's input size.

    Returns (Picture of the spliced clip, SpanScore).
    """
    from vtome.vis.layout import token_layout
    from vtome.vis.picture import merged_picture

    layout = token_layout(model)
    picture = merged_picture(model, splice(clip, other, mask), layer, fill, border, scale, colours, **patch_kwargs)
    origin = unit_origin(mask, layout.tube)
    return picture, spanning_share(picture.units, origin)
