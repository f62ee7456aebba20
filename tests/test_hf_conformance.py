"""A patched transformers model is still a full transformers model: outputs it can record, the files it saves,
gradient checkpointing, signatures and the other things transformers and users look up by class."""

import inspect

import pytest
import torch
from safetensors.torch import load_file

import vtome
from tiny import BUILDERS, clip_for, logits, tiny_vit

HF = ["vivit", "videomae", "timesformer", "vjepa2"]


def build(family: str):
    # Eager attention where transformers offers it, so that the unpatched model returns attention maps too.
    kwargs = {} if family == "timesformer" else dict(attn_implementation="eager")
    return BUILDERS[family](**kwargs)


def no_dropout(model):
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


@pytest.mark.parametrize("family", HF)
def test_r0_hidden_states_and_attentions_equal_the_unpatched(family):
    model = build(family)
    x = clip_for(model)
    with torch.no_grad():
        before = model(x, output_hidden_states=True, output_attentions=True)
        vtome.patch(model, r=0)
        after = model(x, output_hidden_states=True, output_attentions=True)
    layers = model.config.num_hidden_layers
    assert len(after.hidden_states) == layers + 1 and len(after.attentions) == layers
    # TimeSformer's patched layer computes spatial attention with SDPA: equal up to rounding.
    exact = family != "timesformer"
    for got, want in zip(after.hidden_states, before.hidden_states, strict=True):
        assert torch.equal(got, want) if exact else torch.allclose(got, want, atol=1e-5)
    for got, want in zip(after.attentions, before.attentions, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("family", HF)
def test_hidden_states_and_attentions_follow_the_merged_counts(family):
    model = build(family)
    vtome.patch(model, r=3, schedule="decreasing")
    with torch.no_grad():
        out = model(clip_for(model), output_hidden_states=True, output_attentions=True)
    tokens = vtome.info(model)["tokens"]
    assert tokens[0] > tokens[-1]
    if family == "timesformer":  # (batch, 1 + tokens per frame x frames, D); spatial attention per frame + class
        frames = model.config.num_frames
        assert [h.shape[1] for h in out.hidden_states] == [1 + n * frames for n in tokens]
        assert [a.shape[-1] for a in out.attentions] == [1 + n for n in tokens[:-1]]
        assert out.attentions[0].shape[0] == 2 * frames
    else:
        assert [h.shape[1] for h in out.hidden_states] == tokens
        assert [a.shape[-2:] for a in out.attentions] == [(n, n) for n in tokens[:-1]]
    for weights in out.attentions:  # rows of a softmax: proportional attention shifts weights, not their sum
        torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)))


@pytest.mark.parametrize("family", HF)
def test_save_pretrained_writes_the_unpatched_files(family, tmp_path):
    model = build(family)
    model.save_pretrained(tmp_path / "plain")
    vtome.patch(model, r=3)
    assert not type(model).is_custom_code()
    model.save_pretrained(tmp_path / "patched")
    plain = load_file(tmp_path / "plain" / "model.safetensors")
    patched = load_file(tmp_path / "patched" / "model.safetensors")
    assert list(patched) == list(plain)
    assert all(torch.equal(patched[k], plain[k]) for k in plain)
    assert (tmp_path / "patched" / "config.json").read_text() == (tmp_path / "plain" / "config.json").read_text()

    # ... and they load into an unpatched model, bit for bit.
    attn = {} if family == "timesformer" else dict(attn_implementation="eager")
    loaded = type(vtome.unpatch(build(family))).from_pretrained(tmp_path / "patched", **attn).eval()
    x = clip_for(model)
    vtome.unpatch(model)
    assert torch.equal(logits(loaded, x), logits(model, x))


@pytest.mark.parametrize("family", HF)
def test_patched_classes_look_like_the_originals(family):
    model = build(family)
    originals = {name: type(m) for name, m in model.named_modules()}
    vtome.patch(model, r=2)
    for name, module in model.named_modules():
        cls, original = type(module), originals[name]
        assert (cls.__name__, cls.__qualname__, cls.__module__) == (
            original.__name__, original.__qualname__, original.__module__
        )
        assert str(cls) == str(original)  # transformers keys output recording on this string
        assert inspect.signature(cls.forward) == inspect.signature(original.forward)


@pytest.mark.parametrize("use_reentrant", [True, False])
@pytest.mark.parametrize("family", HF)
def test_gradient_checkpointing_matches_no_checkpointing(family, use_reentrant):
    model = no_dropout(BUILDERS[family]()).train()
    vtome.patch(model, r=3, schedule="decreasing", trace_source=True)
    x, labels = clip_for(model), torch.tensor([1, 3])

    def step():
        model.zero_grad()
        loss = model(x, labels=labels).loss
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if ".predictor." not in n}  # V-JEPA 2's: unused
        return loss.detach(), grads, vtome.info(model)

    loss, grads, info = step()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})
    loss_ckpt, grads_ckpt, info_ckpt = step()
    torch.testing.assert_close(loss_ckpt, loss, atol=1e-5, rtol=0)
    for name, grad in grads.items():
        torch.testing.assert_close(grads_ckpt[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    assert info_ckpt["tokens"] == info["tokens"] and info["tokens"][0] > info["tokens"][-1]
    assert torch.equal(info_ckpt["source"], info["source"])


def test_timm_gradient_checkpointing_matches_no_checkpointing():
    model = tiny_vit().train()
    vtome.patch(model, r=6)
    x = clip_for(model)
    grads = []
    for checkpointing in (False, True):
        model.set_grad_checkpointing(checkpointing)
        model.zero_grad()
        model(x).square().mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for with_ckpt, without in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(with_ckpt, without, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("family", HF)
def test_return_dict_false_jit_trace_and_batch_equivalence(family):
    model = BUILDERS[family]()
    vtome.patch(model, r=3)
    x = clip_for(model)
    expected = logits(model, x)
    with torch.no_grad():
        as_tuple = model(x, return_dict=False)
        traced = torch.jit.trace(model, (x,), strict=False)
        traced_out = traced(x)
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], expected)
    torch.testing.assert_close(traced_out["logits"] if isinstance(traced_out, dict) else traced_out[0], expected)
    torch.testing.assert_close(logits(model, x[1:]), expected[1:], atol=1e-5, rtol=1e-5)


def test_from_pretrained_into_a_patched_class_gives_a_plain_model(tmp_path):
    model = build("videomae")
    model.save_pretrained(tmp_path)
    x = clip_for(model)
    expected = logits(model, x)
    vtome.patch(model, r=3)
    # The patched class, but nobody patched this instance.
    fresh = type(model).from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert torch.equal(logits(fresh, x), expected)
    vtome.patch(fresh, r=3)
    torch.testing.assert_close(logits(fresh, x), logits(model, x))


def test_a_user_attention_mask_is_refused_on_patched_vivit():
    model = vtome.patch(build("vivit"), r=2)
    with pytest.raises(ValueError, match="attention_mask is not supported"):
        model(clip_for(model), attention_mask=torch.ones(2, 33))


def test_dtype_and_device_moves_keep_working():
    model = vtome.patch(build("vivit"), r=3)
    x = clip_for(model)
    expected = logits(model, x)
    model.to(torch.float64)
    assert logits(model, x.double()).dtype == torch.float64
    model.to(dtype=torch.float32, device="cpu")
    torch.testing.assert_close(logits(model, x), expected)
