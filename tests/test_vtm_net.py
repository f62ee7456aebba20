"""VTMNet: the reference transformer, token counts per block, windows, the auxiliary path, bad input."""

import math

import pytest
import torch
import torch.nn.functional as F

from vtome.vtm import task_loss
from vtome.vtm.net import VARIANTS, VTMConfig, VTMNet, flops, plan_tokens

SMALL = dict(frames=12, height=4, width=4, channels=16, classes=3, windows=(2, 6, 12), head_width=8)


def net_for(variant: str, **kw) -> VTMNet:
    torch.manual_seed(0)
    return VTMNet(VTMConfig(**{**SMALL, "variant": variant, **kw})).eval()


def inputs(batch: int = 2, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 12, 16, 16, generator=g), torch.rand(batch, 12, 4, 4, generator=g)


def reference(net: VTMNet, features: torch.Tensor) -> torch.Tensor:
    """A plain windowed transformer written out here: per block, for every window of L frames on its own,
    x + proj(softmax(q k^T / sqrt(d)) v) over the window's tokens (heads split by hand), then GELU(fc(x)); the mean
    of all tokens, LayerNorm, head."""
    batch, frames, per_frame, _ = features.shape
    x = features
    for block, length in zip(net.blocks, net.config.windows, strict=True):
        out = []
        for b in range(batch):
            windows = []
            for start in range(0, frames, length):
                w = x[b, start:start + length].reshape(length * per_frame, -1)
                n, c = w.shape
                q, k, v = block.qkv(block.norm(w)).split(c, dim=-1)
                heads = []
                for h in range(block.heads):
                    part = slice(h * c // block.heads, (h + 1) * c // block.heads)
                    scores = q[:, part] @ k[:, part].T / math.sqrt(c // block.heads)
                    heads.append(scores.softmax(-1) @ v[:, part])
                w = w + block.proj(torch.cat(heads, -1))
                windows.append(F.gelu(block.fc(w)).reshape(length, per_frame, -1))
            out.append(torch.cat(windows))
        x = torch.stack(out)
    return net.head(net.norm(x.reshape(batch, frames * per_frame, -1).mean(1)))


def test_none_equals_a_plain_windowed_transformer():
    net = net_for("none")
    assert [b.heads for b in net.blocks] == [2, 1, 1]
    features, _ = inputs()
    with torch.no_grad():
        torch.testing.assert_close(net(features), reference(net, features), atol=1e-5, rtol=1e-5)
        net.attn_impl = "eager"
        torch.testing.assert_close(net(features), reference(net, features), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS[1:])
def test_tokens_per_block_follow_gamma_and_r(variant):
    net = net_for(variant)
    features, motion = inputs()
    with torch.no_grad():
        net(features, motion)
    # Block 1: windows of 2 frames = 32 tokens, |T| = 32 // 6 = 5, |S| = 27, R = round(0.8 * 27) = 22 -> 10.
    # Block 2: 3 windows of 10 -> 30: |T| = 5, |S| = 25, R = 20 -> 10. Block 3: 2 x 10 = 20: |T| = 3, R = 14 -> 6.
    assert net.tokens == [(32, 10), (30, 10), (20, 6)]
    assert [p[1:] for p in plan_tokens(net.config)] == net.tokens
    every = net_for(variant, gamma=2, ratio=1.0)  # every source leaves: half the tokens per block
    with torch.no_grad():
        every(features, motion)
    assert every.tokens == [(32, 16), (48, 24), (48, 24)]


def test_flops_by_hand():
    config = VTMConfig(**{**SMALL, "variant": "none"})
    # 16 channels: 6 windows of 32 tokens; 8 channels: 2 of 96; 4 channels: 1 of 192; head 2 x 2 x 3.
    expected = (6 * (8 * 32 * 256 + 4 * 32 * 32 * 16 + 32 * 256) + 2 * (8 * 96 * 64 + 4 * 96 * 96 * 8 + 96 * 64)
                + (8 * 192 * 16 + 4 * 192 * 192 * 4 + 192 * 16) + 2 * 2 * 3)
    assert flops(config) == expected
    merged = VTMConfig(**{**SMALL, "variant": "naive"})
    assert flops(merged) < flops(config)


@pytest.mark.parametrize("variant", VARIANTS)
def test_windows_are_respected(variant):
    """Perturbing frame 0 changes only window 0 of block 1 and the block-2 window holding it."""
    net = net_for(variant)
    features, motion = inputs()
    outputs = {}
    for i, block in enumerate(net.blocks):
        block.fc.register_forward_hook(lambda m, a, out, i=i: outputs.__setitem__(i, out))
    with torch.no_grad():
        net(features, motion)
        before = dict(outputs)
        changed = features.clone()
        changed[:, 0] += torch.randn_like(changed[:, 0])
        net(changed, motion)
    one = before[0].reshape(2, 6, -1, before[0].shape[-1])  # (clips, windows of block 1, tokens, channels)
    two = before[1].reshape(2, 2, -1, before[1].shape[-1])
    after_one = outputs[0].reshape(one.shape)
    after_two = outputs[1].reshape(two.shape)
    assert not torch.equal(after_one[:, 0], one[:, 0])
    assert torch.equal(after_one[:, 1:], one[:, 1:])  # the other block-1 windows, bit for bit
    assert not torch.equal(after_two[:, 0], two[:, 0])
    assert torch.equal(after_two[:, 1], two[:, 1])  # frames 6-11: the other block-2 window
    assert not torch.equal(outputs[2], before[2])  # the global block sees everything


def test_learnable_auxiliary_path():
    net = net_for("learnable")
    features, motion = inputs()
    net.train()
    out = net(features, motion)
    assert out.shape == (4, 3)
    assert torch.equal(out[:2], out[2:])  # zero saliency: the auxiliary path equals the main one
    with torch.no_grad():
        for block in net.blocks:
            block.saliency.normal_()
    labels = torch.tensor([0, 2])
    out = net(features, motion)
    main_loss = F.cross_entropy(out[:2], labels)
    grads = torch.autograd.grad(main_loss, [b.saliency for b in net.blocks], retain_graph=True, allow_unused=True)
    assert all(g is None or not g.any() for g in grads)  # the main path reads s only through the sampled partition
    total, _, aux = task_loss(out, labels)
    assert all(g.abs().sum() > 0 for g in torch.autograd.grad(aux, [b.saliency for b in net.blocks]))
    net.eval()
    with torch.no_grad():
        assert net(features, motion).shape == (2, 3)  # eval: B rows
        net.auxiliary = False
        net.train()
        assert net(features, motion).shape == (2, 3)


def test_sampled_partitions_draw_every_step_and_once_at_evaluation():
    net = net_for("motion")
    features, motion = inputs()
    with torch.no_grad():
        net.draw = 5
        evaluated = [net(features, motion) for _ in range(2)]
        net.draw = 0
        assert torch.equal(net(features, motion), evaluated[0])  # evaluation: one fixed draw
        net.train()
        drawn = []
        for draw in (0, 1):
            net.draw = draw
            drawn.append(net(features, motion))
        top = net_for("motion", eval_sample=False)
        top_k = top(features, motion)
    assert torch.equal(*evaluated)
    assert not torch.equal(*drawn)
    assert not torch.equal(top_k, evaluated[0])


def test_center_keeps_half_the_targets_in_the_box():
    net = net_for("center", gamma=4)
    features, motion = inputs()
    kept = []
    from vtome import reduce

    take = reduce.take
    with torch.no_grad(), pytest.MonkeyPatch.context() as mp:
        mp.setattr(reduce, "take", lambda t, m: kept.append((t.clone(), m.split.b_pos)) or take(t, m))
        net(features, motion)
    anchors, targets = kept[0]  # block 1: windows of 2 frames x 4 x 4, box = the central 2 x 2 of each frame
    in_box = torch.tensor([5, 6, 9, 10])
    chosen = anchors.gather(1, targets) % 16
    assert targets.shape[1] == 8
    assert (torch.isin(chosen, in_box).sum(1) == 4).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(variant="random"), "unknown VTM variant"),
        (dict(windows=(5, 12)), "must divide the 12 frames"),
        (dict(windows=(4, 6, 12)), "multiple of the one before"),
        (dict(gamma=1), "gamma must be an int >= 2"),
        (dict(ratio=1.5), r"ratio \(R / \|S\|\) must be in \[0, 1\]"),
        (dict(channels=4), "channels >= 2 \\*\\* blocks"),
    ],
)
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VTMConfig(**{**SMALL, **kwargs})


def test_features_of_the_wrong_shape():
    net = net_for("motion")
    features, motion = inputs()
    with pytest.raises(ValueError, match=r"features must be \(batch, 12 frames, 16 tokens per frame \(4 x 4\), 16 "):
        net(features[:, :10], motion)
    with pytest.raises(ValueError, match="features must be"):
        net(features.reshape(2, 12, 4, 4, 16), motion)
    with pytest.raises(ValueError, match=r"variant 'motion' needs motion \(batch, frames, height, width\) = "):
        net(features)
    with pytest.raises(ValueError, match="needs motion"):
        net(features, motion[:, :, :2])
