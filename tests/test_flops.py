"""Analytic FLOPs: hand-computed counts, agreement with torch.utils.flop_counter, the ideal speedup."""

import dataclasses

import pytest
import torch

import vtome
from vtome.flops import (
    SplitRule,
    arch,
    counted_flops,
    divided_layer_flops,
    flop_speedup,
    joint_layer_flops,
    model_flops,
    motionformer_layer_flops,
    planned_tokens,
    schedule_tokens,
    unmerged_tokens,
)
from vtome.models import load_model, random_input
from vtome.schedule import layer_r

TINY = ["vivit-tiny", "videomae-tiny", "timesformer-tiny", "motionformer-tiny", "vjepa2-tiny", "vit-tiny"]
R = {"vivit-tiny": 30, "videomae-tiny": 30, "timesformer-tiny": 6, "motionformer-tiny": 6, "vjepa2-tiny": 30,
     "vit-tiny": 6}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: load_model(name) for name in TINY}


def test_vivit_tiny_by_hand(models):
    # vivit-tiny: D=64, M=128, 4 layers, 4x8x8 = 256 patches + class token, tubelet 2x8x8 over 3 channels, 10 labels.
    layer = 8 * 257 * 64 * 64 + 4 * 257 * 257 * 64 + 4 * 257 * 64 * 128  # qkv+proj, QK^T and AV, MLP
    embed = 2 * 256 * 64 * (3 * 2 * 8 * 8)
    head = 2 * 64 * 10
    count = model_flops(models["vivit-tiny"])
    assert layer == 33_751_296
    assert count.layers == [layer] * 4 and count.embed == embed and count.head == head and count.matching == 0
    assert count.total == 147_589_376


def test_merged_layer_by_hand(models):
    a = arch(models["vivit-tiny"])
    # 257 tokens in, 227 out: attention at 257, matching of 129 A x 128 B keys of head_dim 16, MLP at 227.
    total, match = joint_layer_flops(a, 257, 227, 16)
    assert match == 2 * 129 * 128 * 16
    assert total == 8 * 257 * 64 * 64 + 4 * 257 * 257 * 64 + match + 4 * 227 * 64 * 128
    assert joint_layer_flops(a, 257, 257, 16) == (joint_layer_flops(a, 257, 227, 16)[0] - match
                                                   + 4 * 30 * 64 * 128, 0)


def test_divided_layer_by_hand(models):
    a = arch(models["timesformer-tiny"])  # 4 frames of 8x8 = 64 patches, D=64, M=128, one class token
    assert (a.divided, a.frames, a.prefix) == (True, 4, 1)
    temporal = 64 * 4 * (2 * 64 * 3 * 64 + 2 * 64 * 64 + 2 * 64 * 64) + 64 * (4 * 4 * 64) * 4
    spatial = 4 * (65 * (2 * 64 * 3 * 64 + 2 * 64 * 64) + 2 * 65 * 65 * 64 * 2)
    match = 4 * 2 * 32 * 32 * 16
    mlp = (1 + 4 * 59) * 2 * 64 * 128 * 2
    assert divided_layer_flops(a, 64, 59, 16) == (temporal + spatial + match + mlp, match)


def test_motionformer_layer_by_hand(models):
    a = arch(models["motionformer-tiny"])  # 4 slots of 8x8 = 64 patches, D=64, M=128, 4 heads, one class token
    assert (a.divided, a.frames, a.prefix, a.heads, a.patches) == (True, 4, 1, 4, 256)
    n, length = 4 * 64, 1 + 4 * 64
    qkv_proj = length * 2 * 64 * 3 * 64 + length * 2 * 64 * 64
    cls = 2 * (2 * length * 64)  # one query: QK^T and AV over every token
    spatial = 2 * (2 * n * (4 * 64) * 64)  # every query against the 64 patches of each of the 4 slots
    proj_q, key = n * 2 * 64 * 64, n * 2 * 64 * 64  # own-slot query; the key projection applied to it
    scores = n * 2 * 4 * 64 * 4  # (F x D) . (D x h) per query
    match = 4 * 2 * 32 * 32 * 16
    mlp = (1 + 4 * 55) * 2 * 64 * 128 * 2
    assert motionformer_layer_flops(a, 64, 55, 16) == (qkv_proj + cls + spatial + proj_q + key + scores + match
                                                       + mlp, match)
    fixed = dataclasses.replace(a, projected_values=True)  # values through proj_kv: weighted sums, then V
    extra = n * 2 * 4 * 4 * 64 + n * 2 * 64 * 64
    assert motionformer_layer_flops(fixed, 64, 64, 16)[0] == motionformer_layer_flops(a, 64, 64, 16)[0] + extra


def test_motionformer_b_terms_are_the_spec_table():
    # specs/motionformer.md §1, GMAC per block at full length: qkv 2.78, spatial 1.89 + 1.89, proj_q 0.92,
    # proj 0.93, MLP 7.40; upstream's proj_kv on the N x F points (14.80) is replaced by 0.92 + 0.12 here.
    with torch.device("meta"):
        model = load_model("motionformer-b")
    full = motionformer_layer_flops(arch(model), 196, 196, None)[0] / 2e9
    assert full == pytest.approx(2.78 + 3.78 + 0.92 + 0.93 + 7.40 + 0.92 + 0.116, abs=0.02)
    total = model_flops(model).total / 2e9  # embedding and head included
    assert total + 12 * (14.80 - 0.92 - 0.116) == pytest.approx(369, abs=1.0)  # upstream's whole model


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("attn_impl", ["sdpa", "eager"])
def test_agrees_with_torch_flop_counter(models, name, attn_impl):
    model = models[name]
    x = random_input(model, batch_size=2)
    assert counted_flops(model, x) == 2 * model_flops(model).total
    vtome.patch(model, r=R[name], schedule="decreasing", attn_impl=attn_impl)
    try:
        counted = counted_flops(model, x)
        tokens = vtome.info(model)["tokens"]
        assert tokens[-1] < tokens[0]
        assert counted == 2 * model_flops(model, tokens).total
        assert model_flops(model, tokens).matching > 0
    finally:
        vtome.unpatch(model)


def test_random_modes_count_no_matching_matmul(models):
    model = models["vivit-tiny"]
    vtome.patch(model, r=30, mode="random_merge")
    try:
        counted = counted_flops(model, random_input(model))
        assert model_flops(model).matching == 0
        assert counted == model_flops(model).total
    finally:
        vtome.unpatch(model)


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("schedule", ["constant", "decreasing", "increasing"])
def test_planned_tokens_match_a_forward_pass(models, name, schedule):
    model = models[name]
    a = arch(model)
    vtome.patch(model, r=R[name] * 2, schedule=schedule)  # large enough to hit the clamp
    try:
        with torch.inference_mode():
            model(random_input(model))
        info = vtome.info(model)
        assert planned_tokens(a, info["r"]) == info["tokens"]
        assert schedule_tokens(a, R[name] * 2, schedule) == info["tokens"]
    finally:
        vtome.unpatch(model)


def test_no_merging_is_ideal_speedup_one(models):
    model = models["videomae-tiny"]
    a = arch(model)
    assert flop_speedup(model) == 1.0
    vtome.patch(model, r=0)
    try:
        with torch.inference_mode():
            model(random_input(model))
        assert vtome.info(model)["tokens"] == unmerged_tokens(a)
        assert flop_speedup(model) == 1.0 and flop_speedup(model, layers_only=True) == 1.0
    finally:
        vtome.unpatch(model)
    assert flop_speedup(model, planned_tokens(a, [10, 10, 10, 10])) > 1.0


def test_wrong_token_list_is_refused(models):
    with pytest.raises(ValueError, match="5 counts"):
        model_flops(models["vivit-tiny"], [257, 200])


def test_paper_settings_reach_the_design_numbers():
    # DESIGN.md: the FLOP-ideal speedups of the paper's constant settings are 2.56 / 2.47 / 2.18 (encoder layers).
    expected = {("vivit-b", 300): 2.56, ("videomae-b", 150): 2.47, ("timesformer-b", 18): 2.18}
    with torch.device("meta"):
        for (name, r), ideal in expected.items():
            model = load_model(name)
            a = arch(model)
            mergeable = unmerged_tokens(a)[0] - (0 if a.divided else a.prefix)
            tokens = planned_tokens(a, layer_r(r, "constant", a.layers, mergeable))
            assert flop_speedup(model, tokens, layers_only=True) == pytest.approx(ideal, abs=0.005)
            assert 1 < flop_speedup(model, tokens) < ideal  # the whole pass: embedding and matching included


PARTITIONS = [("stride", 4), ("center", 6), ("boundary", 6), ("motion", 6), ("saliency", 6)]


def _patch_partition(model, name: str, gamma: int, r) -> None:
    a = arch(model)
    saliency = torch.randn(a.layers, a.dim // a.heads) if name == "saliency" else None
    vtome.patch(model, r=r, partition=name, gamma=gamma, saliency=saliency)


def _prior(model, batch: int) -> None:
    if model._vtome.settings.partition == "motion":
        layout = model._vtome.layout
        vtome.set_prior(model, torch.rand(batch, layout.frames, layout.height, layout.width))


def test_partition_matching_by_hand(models):
    a = arch(models["vivit-tiny"])  # 257 tokens with the class token; keys averaged over heads: c = 16
    # stride, gamma 6: targets at p = 5, 11, ..., 257 // 6 = 42 of them; 215 sources (the class token among them).
    _, match = joint_layer_flops(a, 257, 100, 16, SplitRule("stride", 6))
    assert match == 2 * 215 * 42 * 16
    # center, gamma 6: (257 - 1) // 6 = 42 targets as well; alternate: 129 x 128.
    assert joint_layer_flops(a, 257, 100, 16, SplitRule("center", 6))[1] == 2 * 215 * 42 * 16
    assert joint_layer_flops(a, 257, 100, 16)[1] == 2 * 129 * 128 * 16
    # Divided: per frame of 64 patches, 4 frames, motion gamma 4: 16 targets, 48 sources; saliency adds the scores.
    t = arch(models["timesformer-tiny"])
    assert divided_layer_flops(t, 64, 30, 16, SplitRule("motion", 4))[1] == 4 * 2 * 48 * 16 * 16
    assert divided_layer_flops(t, 64, 30, 16, SplitRule("saliency", 4))[1] == 4 * (2 * 48 * 16 * 16 + 2 * 64 * 16)


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize(("partition", "gamma"), PARTITIONS, ids=[p for p, _ in PARTITIONS])
def test_partition_flops_agree_with_torch_flop_counter(models, name, partition, gamma):
    model = models[name]
    x = random_input(model, batch_size=2)
    _patch_partition(model, partition, gamma, 0.3)  # every layer merges (a layer clamped to r = 0 matches nothing)
    try:
        _prior(model, 2)
        counted = counted_flops(model, x)
        tokens = vtome.info(model)["tokens"]
        assert all(after < before for before, after in zip(tokens, tokens[1:], strict=False))
        assert counted == 2 * model_flops(model, tokens).total
        assert model_flops(model, tokens).matching < model_flops(model, tokens, SplitRule()).matching
        # The token counts are what the partition's clamp plans.
        rule = SplitRule(partition, gamma)
        assert planned_tokens(arch(model), vtome.info(model)["r"], rule) == tokens
        assert schedule_tokens(arch(model), 0.3, "constant", rule) == tokens
    finally:
        vtome.unpatch(model)
