"""Merging in Motionformer: per frame on its frame-major layout, proportional attention exact, and the paper's
"(s f)" grouping on request (compat="paper")."""

from __future__ import annotations

import pytest
import torch

import vtome
from test_motionformer_model import randomise
from tiny import clip_for, logits, tiny_motionformer
from vtome.flops import arch, planned_tokens
from vtome.models.motionformer import Block, TrajectoryAttention
from vtome.patch.motionformer import group, ungroup
from vtome.schedule import layer_r

SETTINGS = [dict(), dict(compat="paper"), dict(attn_impl="eager"), dict(mode="drop"), dict(mode="random_merge")]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(map(str, s.values())) or "default")
def test_r0_is_bit_identical_and_unpatch_restores_it(settings):
    model = randomise(tiny_motionformer(attn_implementation=settings.get("attn_impl", "sdpa")))
    x = clip_for(model)
    before = logits(model, x)
    vtome.patch(model, r=0, **settings)
    assert torch.equal(logits(model, x), before)
    vtome.patch(model, r=4, **settings)
    assert not torch.allclose(logits(model, x), before, atol=1e-4)
    vtome.unpatch(model)
    assert torch.equal(logits(model, x), before)
    assert type(model.blocks[0]) is Block and type(model.blocks[0].attn) is TrajectoryAttention


def _duplicate_clip(model, a: int = 4, b: int = 5):
    """A clip in which patch b of every slot repeats patch a: pixels and position rows equal. Tokens a, b of a
    slot are then equal wherever they go: an A token (even) and its B partner (odd) of similarity 1."""
    p = model.config.patch_size
    x = torch.randn(1, model.config.num_frames, 3, 32, 32, dtype=torch.float64)
    cols = 32 // p
    (ra, ca), (rb, cb) = divmod(a, cols), divmod(b, cols)
    x[..., rb * p:(rb + 1) * p, cb * p:(cb + 1) * p] = x[..., ra * p:(ra + 1) * p, ca * p:(ca + 1) * p]
    with torch.no_grad():
        model.pos_embed[0, 1 + b] = model.pos_embed[0, 1 + a]
    return x


def test_merging_duplicates_with_proportional_attention_changes_nothing():
    model = randomise(tiny_motionformer(layers=3, frames=6), scale=0.1).double()
    x = _duplicate_clip(model)
    before = logits(model, x)
    vtome.patch(model, r=0, schedule=[1], trace_source=True)  # one token per slot, in the first layer only
    merged = logits(model, x)
    info = vtome.info(model)
    assert info["tokens"] == [16, 15, 15, 15]
    assert (info["size"].max(dim=1).values == 2).all()  # in every slot the pair merged, nothing else
    torch.testing.assert_close(merged, before, atol=1e-10, rtol=0)  # float64 rounding only
    # Without the log-size bias the merged copy counts once; the paper's groups are not frames.
    vtome.patch(model, r=0, schedule=[1], prop_attn=False)
    assert (logits(model, x) - before).abs().max() > 1e-5
    vtome.patch(model, r=0, schedule=[1], compat="paper")
    assert (logits(model, x) - before).abs().max() > 1e-5


def test_tokens_come_from_their_own_frame_and_average_it():
    """Blocks that add nothing (zero output projections) leave the embeddings: every final token must then be the
    mean of the embedded patches its sources name, all in the frame (slot) of its row."""
    model = randomise(tiny_motionformer(layers=3, frames=6)).double()
    with torch.no_grad():
        for block in model.blocks:
            for linear in (block.attn.proj, block.mlp.fc2):
                linear.weight.zero_()
                linear.bias.zero_()
    x = torch.randn(2, 6, 3, 32, 32, dtype=torch.float64)
    embedded = model.embed(x)
    final = {}
    model.blocks[-1].register_forward_hook(lambda m, i, o: final.update(x=o[0]))
    vtome.patch(model, r=3, trace_source=True)
    logits(model, x)
    info = vtome.info(model)
    slots, per_slot = 3, 16
    assert info["tokens"] == [16, 13, 10, 7] and info["source"].shape == (2 * slots, 7, per_slot)
    for b in range(2):
        for f in range(slots):
            frame = embedded[b, 1 + f * per_slot:1 + (f + 1) * per_slot]
            for j in range(7):
                members = info["source"][b * slots + f, j]
                torch.testing.assert_close(final["x"][b, 1 + f * 7 + j], frame[members].mean(0))


def test_group_follows_the_layout_and_the_paper_pattern():
    # 3 slots of 4 patches, frame-major: position i is slot i // 4.
    t = torch.arange(12).view(1, 12, 1)
    assert group(t, 3, paper=False)[..., 0].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    # The paper's "(s f)": position i goes to group i mod 3.
    assert group(t, 3, paper=True)[..., 0].tolist() == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]
    for paper in (False, True):
        assert torch.equal(ungroup(group(t, 3, paper), 3, paper), t)
    # Motionformer-B: 8 slots of 196. The paper's group 0 holds 25 or 24 tokens of every frame, not one frame.
    base = torch.arange(8 * 196).view(1, -1, 1)
    frames_of_group_0 = group(base, 8, paper=True)[0, :, 0] // 196
    assert torch.bincount(frames_of_group_0).tolist() == [25, 24, 25, 24, 25, 24, 25, 24]
    assert (group(base, 8, paper=False)[:, :, 0] // 196 == torch.arange(8)[:, None]).all()


def test_paper_compat_merges_within_its_groups():
    """compat="paper", one layer: the tokens merged together are positions of one "(s f)" group."""
    model = randomise(tiny_motionformer(layers=1, frames=6)).double()
    with torch.no_grad():
        model.blocks[0].attn.proj.weight.zero_()
        model.blocks[0].attn.proj.bias.zero_()
    x = torch.randn(1, 6, 3, 32, 32, dtype=torch.float64)
    embedded = model.embed(x)
    merged = {}
    model.blocks[0].mlp.register_forward_pre_hook(lambda m, i: merged.update(x=i[0]))
    vtome.patch(model, r=5, compat="paper", trace_source=True)
    logits(model, x)
    source = vtome.info(model)["source"]  # (3 groups, 11, 16)
    out = ungroup(torch.arange(3 * 11).view(3, 11, 1), 3, paper=True)[0, :, 0]  # sequence position of each
    for g in range(3):
        positions = g + 3 * torch.arange(16)  # the group's patch positions in the sequence
        for j in range(11):
            want = embedded[0, 1 + positions[source[g, j]]].mean(0)
            where = int((out == g * 11 + j).nonzero())
            torch.testing.assert_close(merged["x"][0, 1 + where], model.blocks[0].norm2(want), atol=1e-12, rtol=0)


@pytest.mark.parametrize("r, schedule", [(3, "constant"), (4, "decreasing"), (4, "increasing"), (0, [9, 0, 2]),
                                         (0.25, "constant")])
def test_tokens_per_frame_follow_the_schedule(r, schedule):
    model = tiny_motionformer(layers=3, frames=6)  # 3 slots of 16
    vtome.patch(model, r=r, schedule=schedule)
    logits(model, clip_for(model))
    info = vtome.info(model)
    assert info["r"] == layer_r(r, schedule, 3, 16)
    assert info["tokens"] == planned_tokens(arch(model), info["r"])
    n = 16
    for ri, after in zip(info["r"], info["tokens"][1:], strict=True):
        n -= min(ri, n // 2)
        assert after == n


def test_sdpa_and_eager_agree_with_proportional_attention():
    model = randomise(tiny_motionformer())
    x = clip_for(model)
    vtome.patch(model, r=5, attn_impl="sdpa")
    fused = logits(model, x)
    vtome.patch(model, r=5, attn_impl="eager")
    torch.testing.assert_close(logits(model, x), fused, atol=1e-5, rtol=1e-5)
    out = model(x, output_attentions=True)
    assert out.attentions[2].spatial.shape == (2, 4, 2 * 6, 2, 6)  # 16 -> 11 -> 6 tokens per slot


def test_paper_compat_differs_and_says_so():
    model = randomise(tiny_motionformer())
    x = clip_for(model)
    vtome.patch(model, r=4)
    ours = logits(model, x)
    vtome.patch(model, r=4, compat="paper")
    assert vtome.info(model)["compat"] == "paper"
    assert not torch.allclose(logits(model, x), ours, atol=1e-4)
    assert list(model.state_dict()) == list(tiny_motionformer().state_dict())


@pytest.mark.parametrize("compat", [None, "paper"])
def test_log_size_reaches_the_class_token_unless_paper(compat):
    """One attention layer on a sequence where token 3 of every slot repeats token 1: the merged sequence (token
    3 gone, token 1 of size 2) gives the same patch outputs; the class token's only with its own bias."""
    model = randomise(tiny_motionformer(layers=1), scale=0.1).double()
    vtome.patch(model, r=0, compat=compat)
    attention = model.blocks[0].attn
    slots, per_slot = 2, 5
    x = torch.randn(1, 1 + slots * per_slot, 32, dtype=torch.float64)
    for f in range(slots):
        x[0, 1 + f * per_slot + 3] = x[0, 1 + f * per_slot + 1]
    full, _, _ = attention(x, slots)
    keep = [0] + [1 + f * per_slot + i for f in range(slots) for i in (0, 1, 2, 4)]
    size = torch.tensor([1.0, 2.0, 1.0, 1.0] * slots, dtype=torch.float64).view(1, -1, 1)
    merged, _, _ = attention(x[:, keep], slots, size=size)
    torch.testing.assert_close(merged[:, 1:], full[:, keep[1:]], atol=1e-12, rtol=0)
    if compat is None:
        torch.testing.assert_close(merged[:, 0], full[:, 0], atol=1e-12, rtol=0)
    else:
        assert (merged[:, 0] - full[:, 0]).abs().max() > 1e-6
