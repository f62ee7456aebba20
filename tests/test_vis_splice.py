"""Flat-colour clips: merged groups never cross colours; clip splicing and its spanning share."""

import pytest
import torch

from tiny import tiny_timesformer, tiny_videomae, tiny_vivit
from vtome.vis.clips import synthetic_clip
from vtome.vis.picture import merged_picture
from vtome.vis.splice import (
    SpanScore,
    choose_partner,
    kl_divergence,
    spanning_share,
    splice,
    splice_mask,
    spliced_picture,
    unit_origin,
)


def without_positions(model):
    """Zero the position (and time) embeddings: with random weights, identical patches then have identical keys,
    so matching is by exact similarity and only the pixels decide which tokens merge."""
    base = getattr(model, "vivit", None) or getattr(model, "videomae", None) or model.timesformer
    emb = base.embeddings
    with torch.no_grad():
        for name in ("position_embeddings", "time_embeddings"):
            value = getattr(emb, name, None)
            if isinstance(value, torch.nn.Parameter):
                value.zero_()
            elif isinstance(value, torch.Tensor):
                setattr(emb, name, torch.zeros_like(value))
    return model


BUILDS = {"vivit": tiny_vivit, "videomae": tiny_videomae, "timesformer": tiny_timesformer}


def flat(colour, frames=4, size=64):
    clip = torch.empty(frames, size, size, 3, dtype=torch.uint8)
    clip[:] = torch.tensor(colour, dtype=torch.uint8)
    return clip


@pytest.mark.parametrize("name", list(BUILDS))
def test_groups_never_cross_the_halves_of_a_two_colour_clip(name):
    model = without_positions(BUILDS[name](layers=3, frames=4, image=64))
    frames = synthetic_clip("halves", 4, 64, 64)
    r = 8 if name == "timesformer" else 16  # per frame (64 patches) / per clip (128 tubelets)
    picture = merged_picture(model, frames, r=r, border=0)
    groups = picture.groups
    left, right = set(groups[..., :32].unique().tolist()), set(groups[..., 32:].unique().tolist())
    assert not left & right
    expected = 4 * (64 - 3 * r) if name == "timesformer" else 128 - 3 * r  # merging did happen, 3 layers
    assert picture.num_groups == expected
    # Groups stay within one colour, so each group's mean colour is exactly that colour.
    assert (picture.merged[:, :, :32] == frames[0, 0, 0].numpy()).all()
    assert (picture.merged[:, :, 32:] == frames[0, 0, -1].numpy()).all()


def test_splice_mask_patterns_and_units():
    mask = splice_mask(8, span=2, pattern="alternate")
    assert mask.tolist() == [False, False, True, True, False, False, True, True]
    assert splice_mask(8, span=2, pattern="second-half").tolist() == [False] * 4 + [True] * 4
    random = splice_mask(16, span=2, share=0.5, pattern="random", seed=3)
    assert random.sum() == 8 and unit_origin(random, 2).sum() == 4
    assert torch.equal(random, splice_mask(16, span=2, share=0.5, pattern="random", seed=3))
    with pytest.raises(ValueError, match="mixes"):
        unit_origin(torch.tensor([True, False, False, False]), 2)
    a, b = flat([1, 2, 3], frames=4, size=8), flat([9, 9, 9], frames=4, size=8)
    spliced = splice(a, b, torch.tensor([False, True, False, True]))
    assert torch.equal(spliced[1], b[1]) and torch.equal(spliced[2], a[2])


def test_spanning_share_counts_merged_groups_only():
    origin = torch.tensor([False, True])  # unit 1 comes from the other clip
    groups = torch.tensor([[[0, 1], [2, 3]], [[0, 4], [5, 5]]])  # 0 spans, 1-4 alone, 5 merged within clip 2
    assert spanning_share(groups, origin) == SpanScore(0.5, 1, 2)
    groups = torch.tensor([[[0, 1], [2, 3]], [[4, 5], [6, 7]]])
    assert spanning_share(groups, origin) == SpanScore(0.0, 0, 0)


def test_spliced_share_is_zero_for_disjoint_flat_clips_and_positive_for_identical_ones():
    model = without_positions(tiny_vivit(layers=3, frames=8, image=32))
    mask = splice_mask(8, span=2, pattern="alternate")
    red, blue = flat([200, 30, 30], 8, 32), flat([30, 30, 200], 8, 32)
    _, disjoint = spliced_picture(model, red, blue, mask, r=12)
    assert disjoint.merged > 0 and disjoint.share == 0.0
    _, same = spliced_picture(model, red, red.clone(), mask, r=12)
    assert same.share > 0


def test_divided_models_never_span_clips():
    model = without_positions(tiny_timesformer(layers=3, frames=4, image=32))
    clip = synthetic_clip("shapes", 4, 32, 32)
    _, score = spliced_picture(model, clip, clip.clone(), splice_mask(4, pattern="alternate"), r=4)
    assert score.merged > 0 and score.share == 0.0


def test_choose_partner():
    records = [
        {"id": "a", "label": 1, "logits": [5.0, 0.0, 0.0, 3.0, 0.0]},
        {"id": "b", "label": 1, "logits": [0.0, 5.0, 0.0, 3.0, 0.0]},
        {"id": "c", "label": 2, "logits": [5.0, 0.0, 0.0, 0.0, 1.0]},
        {"id": "d", "label": 1, "logits": [5.0, 0.0, 0.0, 3.0, 0.0], "error": "VideoError: broken"},
    ]
    source = records[0]
    assert choose_partner(source, records, "nearest")["id"] == "c"
    assert choose_partner(source, records, "nearest-same-class")["id"] == "b"
    assert choose_partner(source, records, "same-class", seed=1)["id"] == "b"
    assert {choose_partner(source, records, "random", seed=s)["id"] for s in range(20)} == {"b", "c"}
    assert choose_partner(source, records, "nearest", logit_range=slice(3, None))["id"] == "b"
    with pytest.raises(ValueError, match="same class"):
        choose_partner({"id": "z", "label": 7}, records, "same-class")
    kl = kl_divergence(torch.tensor([1.0, 2.0]), torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    assert kl[0].abs() < 1e-6 and kl[1] > 0
