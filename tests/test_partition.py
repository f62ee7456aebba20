"""Partition strategies (Video Token Merging): which tokens are targets."""

import pytest
import torch

import vtome
from tiny import BUILDERS, clip_for, logits, tiny_videomae, tiny_vit, tiny_vivit
from vtome import partition, reduce
from vtome.matching import Split, bipartite_match

MODES = [dict(mode="merge"), dict(mode="drop"), dict(mode="random_drop"), dict(mode="random_merge"),
         dict(mode="hybrid", threshold=0.2)]
PARTITIONS = ["stride", "center", "boundary", "saliency"]


def partition_kwargs(model, name: str) -> dict:
    if name != "saliency":
        return {}
    width = 8  # tiny models: 32 channels over 4 heads, keys averaged over heads
    return dict(saliency=torch.randn(len(vtome.patch(model, r=0)._vtome.r), width))


@pytest.mark.parametrize("settings", MODES, ids=[m["mode"] for m in MODES])
def test_stride_gamma_2_is_the_alternate_split_bit_for_bit(family, settings):
    model = BUILDERS[family]()
    x = clip_for(model)
    vtome.patch(model, r=5, schedule="decreasing", trace_source=True, **settings)
    alternate, info = logits(model, x), vtome.info(model)
    vtome.patch(model, r=5, schedule="decreasing", trace_source=True, partition="stride", gamma=2, **settings)
    assert torch.equal(logits(model, x), alternate)
    assert vtome.info(model)["tokens"] == info["tokens"]
    assert torch.equal(vtome.info(model)["source"], info["source"])


@pytest.mark.parametrize("name", PARTITIONS)
def test_r0_is_identity_for_every_partition(family, name):
    model = BUILDERS[family]()
    x = clip_for(model)
    before = logits(model, x)
    vtome.patch(model, r=0, partition=name, **partition_kwargs(model, name))
    torch.testing.assert_close(logits(model, x), before, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", PARTITIONS)
def test_sources_partition_the_inputs_and_anchors_follow_them(family, name):
    model = BUILDERS[family]()
    vtome.patch(model, r=0.4, partition=name, trace_source=True, **partition_kwargs(model, name))
    logits(model, clip_for(model))
    info = vtome.info(model)
    assert info["tokens"][-1] < info["tokens"][0] * 0.5
    source = info["source"]
    assert (source.sum(1) == 1).all()
    assert torch.equal(source.sum(-1).float(), info["size"][..., 0])
    if name in ("center", "boundary"):
        assert len(info["anchors"]) == len(info["assignments"])
        for anchor, assignment in zip(info["anchors"], info["assignments"], strict=True):
            # Every token's anchor is one of the layer-1 tokens it holds.
            held = assignment.gather(1, anchor)
            assert torch.equal(held, torch.arange(anchor.shape[1]).expand_as(anchor))


def test_gamma_4_with_r_every_source_leaves_a_quarter():
    model = tiny_videomae(layers=1)  # 32 tokens, no class token
    vtome.patch(model, r=100, partition="stride", gamma=4)
    logits(model, clip_for(model))
    assert vtome.info(model)["tokens"] == [32, 8]
    assert vtome.info(model)["targets"] == [8]


def test_stride_with_fewer_tokens_than_gamma_merges_nothing():
    # 32 -> 6 -> 3 tokens: at 3 < gamma no position is a target, so layer 3 passes its tokens on (no crash).
    model = tiny_videomae(layers=3)
    vtome.patch(model, schedule=[26, 3, 2], partition="stride", gamma=6)
    logits(model, clip_for(model))
    assert vtome.info(model)["tokens"] == [32, 6, 3, 3]
    assert partition.stride(1, 5, 6).limit == 0


def test_stride_targets_the_last_of_every_gamma():
    split = partition.stride(2, 13, 4, protected=1)
    assert split.b_pos[0].tolist() == [3, 7, 11]
    assert split.a_pos[0].tolist() == [0, 1, 2, 4, 5, 6, 8, 9, 10, 12]
    assert split.limit == 12 * 3 // 4


def test_merged_values_by_hand_size_and_uniform():
    # Sources 0, 1, 2 (positions), target 3; sources 4, 5, target 6 — keys make 0 and 1 join 3, 4 join 6.
    metric = torch.tensor([[[1.0, 0.02], [1, 0.04], [-1, 0.5], [1, 0.03], [0.03, 1], [-1, -1], [0, 1]]])
    split = Split(torch.tensor([[0, 1, 2, 4, 5]]), torch.tensor([[3, 6]]), limit=5)
    m = bipartite_match(metric, 3, split=split)
    assert sorted(zip(m.src_idx[0].tolist(), m.dst_idx[0].tolist(), strict=True)) == [(0, 0), (1, 0), (3, 1)]
    assert m.unm_idx[0].tolist() == [2, 4]  # sources at positions 2 and 5, by descending best similarity
    x = torch.arange(7.0)[None, :, None] * torch.tensor([1.0, 10.0])
    size = torch.tensor([[1.0, 2, 1, 3, 1, 1, 2]])[..., None]
    out, new_size = reduce.merge(x, size, m)
    # [unmerged sources 2, 5 (by descending best similarity), then targets 3, 6]
    assert out.shape == (1, 4, 2)
    torch.testing.assert_close(out[0, -2, 0], torch.tensor((0 * 1 + 1 * 2 + 3 * 3) / 6))
    torch.testing.assert_close(out[0, -1, 0], torch.tensor((4 * 1 + 6 * 2) / 3))
    assert new_size[0, -2:, 0].tolist() == [6, 3]
    uniform, uniform_size = reduce.merge(x, size, m, uniform=True)
    torch.testing.assert_close(uniform[0, -2, 0], torch.tensor((0 + 1 + 3) / 3))
    torch.testing.assert_close(uniform[0, -1, 0], torch.tensor((4 + 6) / 2))
    assert torch.equal(uniform_size, new_size)


@pytest.mark.parametrize("kind", ["center", "boundary"])
def test_region_quota_at_layer_1(kind):
    model = tiny_vivit(layers=1, frames=4, image=64)  # 2 x 8 x 8 tubelets: box 4 x 4 per slot, R = 3B
    vtome.patch(model, r=100, partition=kind, gamma=4, trace_source=True)
    logits(model, clip_for(model))
    info = vtome.info(model)
    count = info["targets"][0]
    assert count == 128 // 4
    targets = info["anchors"][1][:, -count:]  # targets come last and keep their own layer-1 index as anchor
    box = model._vtome.layout.box()
    in_box = box[targets].sum(1)
    expected = count // 2 if kind == "center" else round(count * (1 / 3) * 32 / (32 / 3 + 96))
    assert in_box.tolist() == [expected, expected]
    assert kind == "boundary" or expected == 16
    # ... spread evenly: every tubelet slot of the box gets its share
    slots = (targets[0][box[targets[0]]] - 1) // 64
    assert torch.bincount(slots, minlength=2).tolist() == [expected // 2, expected - expected // 2]


def test_region_is_per_frame_for_divided_models():
    from tiny import tiny_timesformer

    model = tiny_timesformer(layers=1, frames=2, image=64)  # frames of 8 x 8
    vtome.patch(model, r=100, partition="center", gamma=4)
    logits(model, clip_for(model))
    info = vtome.info(model)
    count = info["targets"][0]
    assert count == 64 // 4
    targets = info["anchors"][1][:, -count:]
    assert (model._vtome.layout.box()[targets].sum(1) == count // 2).all()  # every frame of every clip


def test_saliency_top_targets_are_the_most_salient():
    model = tiny_vit(layers=1)
    u = torch.randn(1, 8)
    vtome.patch(model, r=100, partition="saliency", saliency=u, sample=False, gamma=4, trace_source=True)
    keys = {}

    def grab(module, args, kwargs, out):
        keys["metric"] = out[1]

    model.blocks[0].attn.register_forward_hook(grab, with_kwargs=True)
    logits(model, clip_for(model))
    s = torch.tanh(keys["metric"] @ u[0])
    s[:, 0] = -2  # the class token is never a target
    count = vtome.info(model)["targets"][0]
    expected = s.topk(count, dim=1).indices.sort(dim=1).values
    final = vtome.info(model)["source"]  # (batch, N', N0): the last `count` tokens are the targets, in order
    for b in range(2):
        for j, token in enumerate(expected[b].tolist()):
            assert final[b, final.shape[1] - count + j, token]  # a target still holds its own input token


def test_sampled_partition_repeats_and_does_not_depend_on_the_batch():
    logits_ = torch.randn(3, 40)
    one = partition.sampled(logits_, 4, protected=1, stream=(0, 1, 2))
    again = partition.sampled(logits_, 4, protected=1, stream=(0, 1, 2))
    other = partition.sampled(logits_, 4, protected=1, stream=(1, 1, 2))
    alone = partition.sampled(logits_[1:2], 4, protected=1, stream=(0, 1, 2))
    assert torch.equal(one.b_pos, again.b_pos) and not torch.equal(one.b_pos, other.b_pos)
    assert torch.equal(alone.b_pos[0], one.b_pos[1])
    assert (one.a_pos[:, 0] == 0).all() and not (one.b_pos == 0).any()


def test_sampling_follows_softmax_probabilities():
    # Token 5 has logit +4, the rest 0: drawn as one of 2 targets far more often than any other token.
    logits_ = torch.zeros(1, 12)
    logits_[0, 5] = 4.0
    hits = torch.zeros(12)
    for seed in range(300):
        split = partition.sampled(logits_, 6, stream=(seed, 0, 2))
        hits[split.b_pos[0]] += 1
    assert hits[5] > 280 and hits.sum() == 600
    assert hits[torch.arange(12) != 5].max() < 60


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(partition="diagonal"), "unknown partition"),
        (dict(partition="stride", gamma=1), "gamma must be an int >= 2"),
        (dict(partition="stride", gamma=2.5), "gamma must be an int >= 2"),
        (dict(partition="alternate", gamma=4), "partition='stride'"),
        (dict(partition="stride", gamma=4, r=0.8), r"\(0, 0.75\]"),
        (dict(partition="saliency"), "needs saliency="),
        (dict(partition="stride", saliency=torch.ones(3, 8)), "applies only to partition='saliency'"),
        (dict(merge_weighting="median"), "merge_weighting"),
        (dict(partition="motion", tau=0), "tau must be > 0"),
    ],
)
def test_bad_partition_settings(kwargs, message):
    model = tiny_vivit()
    with pytest.raises(ValueError, match=message):
        vtome.patch(model, **{"r": 2, **kwargs})
    assert not hasattr(model, "_vtome")


def test_a_fraction_up_to_1_minus_1_over_gamma():
    model = tiny_videomae(layers=1)
    vtome.patch(model, r=0.75, partition="stride", gamma=4)
    logits(model, clip_for(model))
    assert vtome.info(model)["tokens"] == [32, 8]


def test_motion_without_a_prior_and_a_prior_of_the_wrong_shape():
    model = vtome.patch(tiny_vivit(), r=4, partition="motion")
    with pytest.raises(ValueError, match="needs a motion prior"):
        logits(model, clip_for(model))
    with pytest.raises(ValueError, match=r"prior must be \(batch, 2, 4, 4\)"):
        vtome.set_prior(model, torch.rand(2, 3, 4, 4))


def test_motion_prior_keeps_moving_tokens_as_targets():
    model = tiny_vivit(layers=1)  # 2 x 4 x 4 tubelets + class token
    prior = torch.zeros(2, 2, 4, 4)
    prior[:, :, 1, 2] = 8.0  # a strongly moving patch in both slots
    vtome.patch(model, r=100, partition="motion", gamma=8, trace_source=True)
    vtome.set_prior(model, prior)
    logits(model, clip_for(model))
    info = vtome.info(model)
    count = info["targets"][0]
    targets = info["anchors"][1][:, -count:]
    moving = torch.tensor([1 + 1 * 4 + 2, 1 + 16 + 1 * 4 + 2])
    assert all(set(moving.tolist()) <= set(row.tolist()) for row in targets)
