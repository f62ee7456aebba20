"""Layer duplication: Q merge-only copies of one layer, for any layer and any depth."""

import pytest
import torch

import vtome
from tiny import BUILDERS, clip_for, logits, tiny_vivit
from vtome import reduce
from vtome.matching import bipartite_match
from vtome.vis.duplicate import duplicate_layer, model_depth
from vtome.vis.trace import trace

FAMILIES = ["vivit", "videomae", "timesformer", "motionformer", "vjepa2", "vit"]


@pytest.mark.parametrize("depth", [3, 5])
@pytest.mark.parametrize("name", FAMILIES)
def test_any_layer_any_depth(name, depth):
    model = BUILDERS[name](layers=depth)
    x = clip_for(model, batch=2)
    before = logits(model, x)
    assert model_depth(model) == depth
    expected = [trace(model, x, r=3).tokens[0]]
    protected = int(name in ("vivit", "vit"))
    for _ in range(depth + 2):
        expected.append(expected[-1] - min(3, (expected[-1] - protected) // 2))
    for layer in (1, depth // 2 + 1, depth):
        traced = duplicate_layer(model, x, layer, copies=depth + 2, r=3)
        assert traced.tokens == expected
        for row in traced.assignment:
            assert len(row.unique()) == traced.tokens[-1]
    assert torch.equal(logits(model, x), before)  # left unpatched
    assert not any(hasattr(m, "_vtome") for m in model.modules())
    with pytest.raises(ValueError, match="layer"):
        duplicate_layer(model, x, depth + 1, copies=2, r=3)


@pytest.mark.parametrize("depth", [3, 5])
@pytest.mark.parametrize("name", ["vivit", "videomae", "motionformer", "vjepa2", "vit"])
def test_one_copy_merges_like_the_model_does_in_that_layer(name, depth):
    """One copy of layer 1 on the embeddings is the model's own first merge; one copy of layer L on the tokens
    entering L (unmerged) is the model merging only in layer L. Fails if another layer's keys were used.
    (Not TimeSformer: its layers merge after their temporal attention residual, which copies leave out.)"""
    model = BUILDERS[name](layers=depth)
    x = clip_for(model, batch=2)
    ours = duplicate_layer(model, x, 1, copies=1, r=4)
    assert torch.equal(ours.assignment, trace(model, x, layer=1, r=4).assignment)
    ours = duplicate_layer(model, x, depth, copies=1, r=4, start="layer")
    only_last = [0] * (depth - 1) + [4]
    assert torch.equal(ours.assignment, trace(model, x, layer=depth, schedule=only_last).assignment)


def test_copies_only_average_tokens_by_the_layers_keys():
    """Reference: ViViT, two copies of layer 2 from the embeddings, written out by hand."""
    model = tiny_vivit(layers=3)
    x = clip_for(model, batch=2)
    layer = model.vivit.layers[1]
    with torch.no_grad():
        tokens = model.vivit.embeddings(x)
        size = torch.ones(*tokens.shape[:2], 1)
        assignment = torch.arange(tokens.shape[1]).expand(2, -1)
        for _ in range(2):
            keys = layer.attention.k_proj(layer.layernorm_before(tokens)).view(*tokens.shape[:2], 4, -1)
            m = bipartite_match(keys.mean(2), 5, protected=1)
            assignment = reduce.follow(assignment, reduce.new_positions(m, tokens.shape[1], None))
            tokens, size = reduce.merge(tokens, size, m)
    ours = duplicate_layer(model, x, 2, copies=2, r=5)
    assert torch.equal(ours.assignment, assignment)
    other = duplicate_layer(model, x, 3, copies=2, r=5)
    assert not torch.equal(other.assignment, assignment)


def test_patched_settings_are_dropped_and_bad_arguments_raise():
    model = tiny_vivit(layers=3)
    x = clip_for(model)
    vtome.patch(model, r=2)
    duplicate_layer(model, x, 1, copies=2, r=2, mode="drop")
    assert not hasattr(model, "_vtome")
    with pytest.raises(ValueError, match="start"):
        duplicate_layer(model, x, 1, copies=2, r=2, start="middle")
    with pytest.raises(ValueError, match="copies"):
        duplicate_layer(model, x, 1, copies=0, r=2)
