"""vtome.patch / info / unpatch on every supported family."""

import pytest
import torch

import vtome
from tiny import BUILDERS, clip_for, logits, tiny_timesformer, tiny_videomae, tiny_vivit

MODES = [
    dict(mode="merge"),
    dict(mode="drop"),
    dict(mode="random_drop"),
    dict(mode="random_merge"),
    dict(mode="hybrid", threshold=0.2),
]


def test_r0_is_identical_and_unpatch_restores_bit_for_bit(family):
    model = BUILDERS[family]()
    x = clip_for(model)
    before = logits(model, x)
    vtome.patch(model, r=0)
    torch.testing.assert_close(logits(model, x), before, atol=1e-5, rtol=0)
    vtome.patch(model, r=3, trace_source=True)
    assert not torch.allclose(logits(model, x), before, atol=1e-5)
    vtome.unpatch(model)
    assert torch.equal(logits(model, x), before)
    assert not any(hasattr(m, "_vtome") for m in model.modules())


def test_patching_twice_replaces_settings(family):
    model = BUILDERS[family]()
    x = clip_for(model)
    before = logits(model, x)
    vtome.patch(model, r=3)
    once = logits(model, x)
    vtome.patch(model, r=3)
    assert torch.equal(logits(model, x), once)
    vtome.patch(model, r=5)
    vtome.patch(model, r=0)
    torch.testing.assert_close(logits(model, x), before, atol=1e-5, rtol=0)
    vtome.unpatch(model)
    assert torch.equal(logits(model, x), before)


@pytest.mark.parametrize("settings", MODES, ids=[s["mode"] for s in MODES])
def test_batch_of_two_equals_each_clip_alone(family, settings):
    model = BUILDERS[family]()
    vtome.patch(model, r=3, **settings)
    x = clip_for(model, batch=2)
    both = logits(model, x)
    for i in range(2):
        torch.testing.assert_close(logits(model, x[i : i + 1]), both[i : i + 1], atol=1e-4, rtol=1e-4)


def test_tokens_per_layer_vivit_b_layout():
    # ViViT-B's token layout (32 frames, tubelet 2x16x16 at 224 px: 3137 tokens) with a narrow width.
    model = tiny_vivit(layers=12, frames=32, image=224, hidden=16, patch=16)
    vtome.patch(model, r=300)
    logits(model, clip_for(model, batch=1))
    assert vtome.info(model)["tokens"] == [3137, 2837, 2537, 2237, 1937, 1637, 1337, 1037, 737, 437, 219, 110, 56]
    assert vtome.info(model)["r"] == [300] * 12


def test_tokens_per_layer_videomae_decreasing_fraction():
    model = tiny_videomae(layers=12, frames=16, image=56, hidden=16)  # 8 x 7 x 7 = 392 tokens
    vtome.patch(model, r=0.1, schedule="decreasing")
    logits(model, clip_for(model, batch=1))
    info = vtome.info(model)
    r = [78, 70, 63, 56, 49, 42, 35, 28, 21, 14, 7, 0]  # 2 * int(0.1 * 392) = 78 -> 0, truncated
    assert info["r"] == r
    expected = [392]
    for ri in r:
        expected.append(expected[-1] - min(ri, expected[-1] // 2))
    assert info["tokens"] == expected


def test_timesformer_frames_keep_the_same_count():
    model = tiny_timesformer(layers=4, frames=4, image=64)  # 64 patches per frame
    vtome.patch(model, r=18, trace_source=True)
    logits(model, clip_for(model, batch=2))
    info = vtome.info(model)
    assert info["tokens"] == [64, 46, 28, 14, 7]  # per frame, class token excluded
    assert info["size"].shape == (2 * 4, 7, 1)
    assert info["source"].shape == (2 * 4, 7, 64)
    assert (info["size"].sum(1) == 64).all()  # every frame still accounts for all its patches


@pytest.mark.parametrize("family", ["vivit", "vit"])
def test_class_token_never_merged_and_first(family):
    model = BUILDERS[family]()
    vtome.patch(model, r=6, trace_source=True)
    logits(model, clip_for(model))
    source = vtome.info(model)["source"]
    assert source[:, 0, 0].all() and (source[:, 0].sum(-1) == 1).all()
    assert not source[:, 1:, 0].any()


def test_sources_partition_inputs_and_sizes_count_them(family):
    model = BUILDERS[family]()
    vtome.patch(model, r=4, trace_source=True)
    logits(model, clip_for(model))
    info = vtome.info(model)
    source, size = info["source"], info["size"]
    assert (source.sum(1) == 1).all()
    assert torch.equal(source.sum(-1).float(), size[..., 0])


def _capture_reduce(model):
    """Record (input, output) of every reduction step of the patched model."""
    state = model._vtome
    calls = []
    original = state.reduce

    def spy(layer, x, metric):
        out = original(layer, x, metric)
        calls.append((x.detach().clone(), out.detach().clone(), state.assignment.clone()))
        return out

    state.reduce = spy
    return calls


def test_merged_tokens_are_averages_of_their_members():
    model = tiny_vivit(layers=1)
    vtome.patch(model, r=10, trace_source=True)
    calls = _capture_reduce(model)
    logits(model, clip_for(model))
    (before, after, assignment), = calls
    for b in range(before.shape[0]):
        for i in range(after.shape[1]):
            members = (assignment[b] == i).nonzero()[:, 0]
            torch.testing.assert_close(after[b, i], before[b, members].mean(0))


def test_drop_keeps_surviving_tokens_unchanged():
    model = tiny_vivit(layers=1)
    vtome.patch(model, r=10, mode="drop", trace_source=True)
    calls = _capture_reduce(model)
    logits(model, clip_for(model))
    (before, after, assignment), = calls
    assert (assignment == -1).sum(1).tolist() == [10, 10]
    for b in range(2):
        for j in range(before.shape[1]):
            if assignment[b, j] >= 0:
                assert torch.equal(after[b, assignment[b, j]], before[b, j])


def test_hybrid_threshold_minus_one_equals_merge(family):
    model = BUILDERS[family]()
    x = clip_for(model)
    vtome.patch(model, r=4)
    merged = logits(model, x)
    vtome.patch(model, r=4, mode="hybrid", threshold=-1.0)
    assert torch.equal(logits(model, x), merged)
    vtome.patch(model, r=4, mode="hybrid", threshold=1.01)  # nothing is that similar: everything drops
    vtome.patch(model, r=4, mode="drop")
    dropped = logits(model, x)
    vtome.patch(model, r=4, mode="hybrid", threshold=1.01)
    torch.testing.assert_close(logits(model, x), dropped)


@pytest.mark.parametrize("mode", ["random_drop", "random_merge"])
def test_random_modes_repeat_with_a_seed_and_leave_global_rng(family, mode):
    model = BUILDERS[family]()
    x = clip_for(model)
    vtome.patch(model, r=4, mode=mode, seed=1)
    rng = torch.get_rng_state()
    first = logits(model, x)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(logits(model, x), first)
    vtome.patch(model, r=4, mode=mode, seed=2)
    assert not torch.allclose(logits(model, x), first)


def test_proportional_attention_is_exact_for_duplicates():
    """Merging two identical tokens into one of size 2 leaves the attention output of every token unchanged."""
    model = tiny_vivit(layers=1)
    vtome.patch(model, r=0)
    attention = model.vivit.layers[0].attention
    h = torch.randn(1, 6, 32)
    h[0, 4] = h[0, 1]  # token 4 duplicates token 1
    full, _, _ = attention(h)
    merged_h = h[:, [0, 1, 2, 3, 5]]
    size = torch.tensor([[[1.0], [2.0], [1.0], [1.0], [1.0]]])
    merged, _, _ = attention(merged_h, size=size)
    torch.testing.assert_close(merged, full[:, [0, 1, 2, 3, 5]], atol=1e-6, rtol=1e-5)
    without, _, _ = attention(merged_h)
    assert not torch.allclose(without, full[:, [0, 1, 2, 3, 5]], atol=1e-4)


def test_eager_and_sdpa_agree_with_proportional_attention():
    model = tiny_vivit()
    x = clip_for(model)
    vtome.patch(model, r=4, attn_impl="sdpa")
    fused = logits(model, x)
    vtome.patch(model, r=4, attn_impl="eager")
    torch.testing.assert_close(logits(model, x), fused, atol=1e-5, rtol=1e-5)


def test_videomae_pooling_counts_each_patch_once():
    model = tiny_videomae()
    vtome.patch(model, r=5, trace_source=True)
    seen = {}
    model.videomae.register_forward_hook(lambda m, i, o: seen.update(tokens=o.last_hidden_state))
    model.fc_norm.register_forward_hook(lambda m, i, o: seen.update(pooled=i[0]))
    logits(model, clip_for(model))
    source = vtome.info(model)["source"].float()  # (batch, N, N0)
    per_patch = source.transpose(1, 2) @ seen["tokens"]  # each input patch gets the token holding it
    torch.testing.assert_close(seen["pooled"], per_patch.mean(1))


def test_prop_attn_defaults_follow_the_paper():
    assert vtome.info(vtome.patch(tiny_videomae(), r=1))["prop_attn"] is False
    assert vtome.info(vtome.patch(tiny_vivit(), r=1))["prop_attn"] is True
    assert vtome.info(vtome.patch(tiny_videomae(), r=1, prop_attn=True))["prop_attn"] is True


def test_concat_heads_metric_runs_and_changes_choices():
    model = tiny_vivit()
    x = clip_for(model)
    vtome.patch(model, r=6, trace_source=True)
    logits(model, x)
    mean_source = vtome.info(model)["source"]
    vtome.patch(model, r=6, trace_source=True, head_aggregation="concat")
    logits(model, x)
    assert vtome.info(model)["tokens"] == [33, 27, 21, 15]
    assert not torch.equal(vtome.info(model)["source"], mean_source)


def test_train_mode_gradients_flow(family):
    model = BUILDERS[family]().train()
    vtome.patch(model, r=4)
    x = clip_for(model).requires_grad_(True)
    out = model(x)
    (out.logits if hasattr(out, "logits") else out).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    unused = ".predictor."  # V-JEPA 2's classifier never runs its predictor, patched or not
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad and unused not in n)


def test_bfloat16_runs(family):
    model = BUILDERS[family]().to(torch.bfloat16)
    vtome.patch(model, r=4)
    out = logits(model, clip_for(model))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    assert vtome.info(model)["size"].dtype == torch.float32


def test_save_pretrained_keeps_the_original_architecture(tmp_path):
    from transformers import VivitForVideoClassification

    model = tiny_vivit()
    keys = list(model.state_dict())
    vtome.patch(model, r=3)
    assert list(model.state_dict()) == keys
    model.save_pretrained(tmp_path)
    loaded = VivitForVideoClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.architectures == ["VivitForVideoClassification"]
    x = clip_for(model)
    vtome.unpatch(model)
    torch.testing.assert_close(logits(loaded, x), logits(model, x))


def test_timesformer_attentions_have_merged_shape():
    model = tiny_timesformer(layers=2, frames=2, image=32)  # 16 patches per frame
    vtome.patch(model, r=4)
    out = model(clip_for(model), output_attentions=True)
    assert out.attentions[0].shape == (2 * 2, 4, 17, 17)
    assert out.attentions[1].shape == (2 * 2, 4, 13, 13)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(r=-1), ValueError, ">= 0"),
        (dict(r=0.7), ValueError, "0.5"),
        (dict(r=2, mode="average"), ValueError, "unknown mode"),
        (dict(r=2, schedule="cosine"), ValueError, "unknown schedule"),
        (dict(r=2, mode="hybrid"), ValueError, "needs a threshold"),
        (dict(r=2, threshold=0.5), ValueError, "only to mode='hybrid'"),
        (dict(schedule=[1, 1, 1, 1]), ValueError, "4 layers but the model has 3"),
        (dict(r=2, head_aggregation="max"), ValueError, "head_aggregation"),
    ],
)
def test_bad_settings_raise(kwargs, error, message):
    model = tiny_vivit()
    with pytest.raises(error, match=message):
        vtome.patch(model, **kwargs)
    assert not hasattr(model, "_vtome")


def test_unsupported_model_names_the_supported_ones():
    with pytest.raises(TypeError, match="Supported: transformers VivitModel"):
        vtome.patch(torch.nn.Linear(2, 2), r=1)
    with pytest.raises(ValueError, match="not patched"):
        vtome.info(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("shape, message", [((1, 3, 3, 32, 32), "takes 4 frames"), ((1, 4, 3, 48, 48), "32x32")])
def test_wrong_clip_shape_is_a_clear_error(shape, message):
    model = vtome.patch(tiny_vivit(), r=2)
    with pytest.raises(ValueError, match=message):
        model(torch.randn(shape))


def test_base_models_patch_too():
    from transformers import VivitModel

    model = tiny_vivit()
    base = VivitModel(model.config, add_pooling_layer=False).eval()
    x = clip_for(base)
    before = base(x).last_hidden_state
    vtome.patch(base, r=3)
    assert base(x).last_hidden_state.shape == (2, 24, 32)
    vtome.unpatch(base)
    assert torch.equal(base(x).last_hidden_state, before)
