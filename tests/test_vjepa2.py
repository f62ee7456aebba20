"""V-JEPA 2: the encoder alone, rotary positions carried through merges, the attentive pooler with proportional
attention, and bad input. (The generic tests run on V-JEPA 2's classifier too: tiny.BUILDERS.)"""

import pytest
import torch
from transformers import VJEPA2Model

import vtome
from tiny import clip_for, logits, tiny_vjepa2
from vtome.patch.vjepa2 import grid, rotary_ids
from vtome.schedule import layer_r

MODES = [dict(mode="merge"), dict(mode="drop"), dict(mode="random_drop"), dict(mode="random_merge"),
         dict(mode="hybrid", threshold=0.2)]


def encoder(**kw) -> VJEPA2Model:
    return tiny_vjepa2(**kw).vjepa2


def encode(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x, skip_predictor=True).last_hidden_state


def index_positions(config, n: int) -> torch.Tensor:
    """(n, 3) (frame, row, column) of the layer-1 tokens, written out here as a reference."""
    _, rows, columns = grid(config)
    return torch.tensor([[i // (rows * columns), (i // columns) % rows, i % columns] for i in range(n)],
                        dtype=torch.float32)


def test_encoder_r0_equals_unpatched_and_unpatch_is_bit_exact():
    model = encoder()
    x = clip_for(model)
    before = encode(model, x)
    vtome.patch(model, r=0)
    torch.testing.assert_close(encode(model, x), before, atol=1e-5, rtol=0)
    vtome.patch(model, r=4)
    assert encode(model, x).shape == (2, 32 - 3 * 4, 32)
    vtome.unpatch(model)
    assert torch.equal(encode(model, x), before)
    with torch.no_grad():
        model(x)  # the predictor runs again once unpatched


def test_classifier_r0_is_bit_exact():
    model = tiny_vjepa2()
    x = clip_for(model)
    before = logits(model, x)
    vtome.patch(model, r=0)
    assert torch.equal(logits(model, x), before)


def test_grid_is_the_tubelet_grid():
    config = tiny_vjepa2(frames=6, image=48).config  # 3 tubelets of 6 x 6 patches of 8 px
    assert grid(config) == (3, 6, 6)
    assert grid(config, frames=10) == (5, 6, 6)


@pytest.mark.parametrize("schedule", ["constant", "decreasing", "increasing"])
def test_tokens_per_layer_follow_the_schedule(schedule):
    model = tiny_vjepa2(layers=6, frames=8, image=64)  # 4 x 8 x 8 = 256 tokens
    vtome.patch(model, r=0.1, schedule=schedule)
    logits(model, clip_for(model, batch=1))
    info = vtome.info(model)
    r = layer_r(25, schedule, 6, 256)  # 10% of 256 = 25 tokens per layer
    assert info["r"] == r
    tokens = [256]
    for ri in r:
        tokens.append(tokens[-1] - min(ri, tokens[-1] // 2))
    assert info["tokens"] == tokens and tokens[-1] < 256


@pytest.mark.parametrize("settings", MODES, ids=[m["mode"] for m in MODES])
def test_encoder_batch_of_two_equals_each_clip_alone(settings):
    model = encoder()
    vtome.patch(model, r=3, **settings)
    x = clip_for(model)
    both = encode(model, x)
    for i in range(2):
        torch.testing.assert_close(encode(model, x[i:i + 1]), both[i:i + 1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode, threshold", [("merge", None), ("hybrid", 0.2), ("random_merge", None)])
def test_positions_are_the_size_weighted_mean_of_the_traced_sources(mode, threshold):
    model = tiny_vjepa2()
    vtome.patch(model, r=6, schedule="decreasing", mode=mode, threshold=threshold, trace_source=True)
    logits(model, clip_for(model))
    state, info = model._vtome, vtome.info(model)
    start = index_positions(model.config, 32)
    assert info["tokens"] == [32, 20, 14, 14]  # r = 12, 6, 0
    for layer, assignment in enumerate(info["assignments"]):
        position = state.position(layer)
        for b in range(2):
            for i in range(info["tokens"][layer]):
                held = (assignment[b] == i).nonzero()[:, 0]
                torch.testing.assert_close(position[b, i], start[held].mean(0))
    final = state.position(3)
    assert (final != final.round()).any()  # some tokens sit between grid points


def test_position_rules_place_merged_tokens_differently():
    model = tiny_vjepa2()
    x = clip_for(model)
    placed = {}
    for rule in ("mean", "target", "source"):
        vtome.patch(model, r=6, position=rule, trace_source=True)
        out = logits(model, x)
        placed[rule] = (model._vtome.position(3), out)
        assert vtome.info(model)["position"] == rule
    # The target rule keeps grid points; all three agree on the sources each token holds but not on where it sits.
    assert torch.equal(placed["target"][0], placed["target"][0].round())
    assert not torch.equal(placed["mean"][0], placed["target"][0])
    assert not torch.equal(placed["mean"][0], placed["source"][0])
    assert not torch.allclose(placed["mean"][1], placed["target"][1])


def test_rope_on_carried_positions_is_transformers_rope_bit_for_bit():
    model = tiny_vjepa2(layers=2)
    x = clip_for(model)
    vtome.patch(model, r=0)
    logits(model, x)
    attention = model.vjepa2.encoder.layer[0].attention
    q = torch.randn(2, 4, 32, 8)  # (batch, heads, N, head_dim)
    theirs = attention.apply_rotary_embeddings(q, attention.get_position_ids(torch.zeros(2, 32, 32)))
    for layer in (0, 1, 2):  # at r = 0 every layer's tokens sit at their index positions
        ours = attention.apply_rotary_embeddings(q, rotary_ids(model._vtome.position(layer), q.dtype))
        assert torch.equal(ours, theirs)


def test_unmerged_tokens_rotate_as_at_their_index():
    """A token that was never merged carries its grid position exactly: its rotation equals transformers' for the
    input token it holds, in any later layer."""
    model = tiny_vjepa2(layers=2)
    vtome.patch(model, r=8, trace_source=True)
    logits(model, clip_for(model))
    attention = model.vjepa2.encoder.layer[0].attention
    q = torch.randn(2, 4, 32, 8)
    at_index = attention.apply_rotary_embeddings(q, attention.get_position_ids(torch.zeros(2, 32, 32)))
    assignment, size = vtome.info(model)["assignments"][1], model._vtome.records[1].size
    held = torch.stack([torch.stack([(assignment[b] == i).nonzero()[0, 0] for i in range(24)]) for b in range(2)])
    q_held = q.gather(2, held[:, None, :, None].expand(-1, 4, -1, 8))  # token i gets the vector of input held[i]
    rotated = attention.apply_rotary_embeddings(q_held, rotary_ids(model._vtome.position(1), q.dtype))
    checked = 0
    for b in range(2):
        for i in range(24):
            if size[b, i, 0] == 1:
                assert torch.equal(rotated[b, :, i], at_index[b, :, held[b, i]])
                checked += 1
    assert checked >= 2 * (24 - 8)  # at most 8 of the 24 tokens hold more than one input


def test_pooler_with_proportional_attention_is_exact_for_duplicates():
    """Pooling tokens where one appears twice equals pooling them merged into one token of size 2."""
    model = tiny_vjepa2(pooler_layers=2)
    unpatched_pooler = model.pooler
    tokens = torch.randn(2, 7, 32)
    duplicated = torch.cat([tokens, tokens[:, 3:4]], dim=1)  # token 3 twice
    with torch.no_grad():
        reference = unpatched_pooler(duplicated)
        vtome.patch(model, r=2)
        size = torch.ones(2, 7, 1)
        size[:, 3] = 2
        pooled = model.pooler(tokens, size=size)
        plain = model.pooler(tokens)
    torch.testing.assert_close(pooled, reference, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(plain, reference, atol=1e-4)


def test_pooler_weighs_the_merged_tokens_by_size():
    """The classifier's pooler takes the encoder's merged tokens and their sizes: the same as transformers' own
    pooler layers given log(size) as an additive attention mask (with SDPA, which honours the mask)."""
    model = tiny_vjepa2(pooler_layers=2, attn_implementation="sdpa")
    x = clip_for(model)
    vtome.patch(model, r=5)
    seen = {}
    model.vjepa2.register_forward_hook(lambda m, i, o: seen.update(tokens=o.last_hidden_state))
    out = logits(model, x)
    size = model._vtome.size
    assert seen["tokens"].shape[1] == size.shape[1] == 32 - 3 * 5 and size.max() > 1
    vtome.unpatch(model)
    bias = size.log()[:, None, None, :, 0]  # (batch, 1, 1, N)
    with torch.no_grad():
        h = seen["tokens"]
        for layer in model.pooler.self_attention_layers:
            h = layer(h, attention_mask=bias)[0]
        queries = model.pooler.query_tokens.repeat(2, 1, 1)
        pooled = model.pooler.cross_attention_layer(queries, h, attention_mask=bias)[0].squeeze(1)
    torch.testing.assert_close(out, model.classifier(pooled), atol=1e-5, rtol=1e-5)

    vtome.patch(model, r=5, prop_attn=False)  # no sizes anywhere: the pooler is transformers' own
    out = logits(model, x)
    vtome.unpatch(model)
    with torch.no_grad():
        torch.testing.assert_close(out, model.classifier(model.pooler(seen["tokens"])), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape, message", [
    ((1, 3, 3, 32, 32), "multiple of 2 frames"),
    ((1, 4, 3, 48, 48), "takes 32x32 frames"),
    ((1, 4, 1, 32, 32), "3 channels"),
    ((4, 3, 32, 32), "5-D"),
])
def test_wrong_clip_shape_is_a_clear_error(shape, message):
    model = vtome.patch(tiny_vjepa2(), r=2)
    with pytest.raises(ValueError, match=message):
        model(torch.randn(shape))


def test_other_frame_counts_work():
    model = tiny_vjepa2()
    x = torch.randn(1, 8, 3, 32, 32)  # 4 tubelets where the config says 2
    before = logits(model, x)
    vtome.patch(model, r=0)
    assert torch.equal(logits(model, x), before)
    vtome.patch(model, r=5)
    logits(model, x)
    assert vtome.info(model)["tokens"][0] == 64


def test_masks_and_the_predictor_on_a_patched_encoder_are_refused():
    model = vtome.patch(encoder(), r=2)
    x = clip_for(model)
    mask = [torch.arange(8).expand(2, 8)]
    with pytest.raises(ValueError, match="skip_predictor=True"):
        model(x)
    with pytest.raises(ValueError, match="context_mask / target_mask are not supported"):
        model(x, context_mask=mask, target_mask=mask, skip_predictor=True)
    with pytest.raises(ValueError, match="context_mask / target_mask are not supported"):
        model(x, context_mask=mask)
