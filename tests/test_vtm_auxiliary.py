"""Learnable VTM on patched models: saliency heads, the auxiliary path (a doubled batch), train_saliency."""

import pytest
import torch
import torch.nn.functional as F

import vtome
from tiny import BUILDERS, clip_for, logits, tiny_vit, tiny_vivit
from vtome.attention import attend
from vtome.vtm import SaliencyHeads, enable_auxiliary, split_rows, task_loss
from vtome.vtm.auxiliary import first_layer
from vtome.vtm.train import train_saliency


def saliency_model(family: str, r=0.3):
    model = BUILDERS[family]()
    heads = SaliencyHeads.for_model(model)
    vtome.patch(model, r=r, partition="saliency", saliency=heads)
    return model, heads


def output(model, x):
    out = model(x)
    return out.logits if hasattr(out, "logits") else out


def test_zero_heads_auxiliary_equals_main_exactly(family):
    model, heads = saliency_model(family)
    enable_auxiliary(model).train()
    x = clip_for(model)
    out = output(model, x)
    assert out.shape[0] == 2 * x.shape[0]
    main, aux = split_rows(out)
    assert torch.equal(main, aux)
    with torch.no_grad():
        heads.weight.normal_()  # any saliency now biases the auxiliary attention
    main, aux = split_rows(output(model, x))
    assert not torch.allclose(main, aux, atol=1e-4)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(output(model, x), main, atol=1e-5, rtol=0)  # the main path is the model's


def test_gradients_reach_only_the_heads_and_only_through_the_auxiliary_half(family):
    model, heads = saliency_model(family)
    with torch.no_grad():
        heads.weight.normal_()
    model.requires_grad_(False)
    enable_auxiliary(model).train()
    labels = torch.tensor([1, 3])
    main, aux = split_rows(output(model, clip_for(model)))
    main_loss = F.cross_entropy(main, labels)
    main_grad = torch.autograd.grad(main_loss, heads.weight, allow_unused=True, retain_graph=True)[0]
    assert main_grad is None or not main_grad.any()  # the partition is sampled: no gradient from the main path
    loss, _, aux_loss = task_loss(torch.cat([main, aux]), labels, lam=0.5)
    total_grad = torch.autograd.grad(loss, heads.weight, retain_graph=True)[0]
    aux_grad = torch.autograd.grad(aux_loss, heads.weight, retain_graph=True)[0]
    assert aux_grad.abs().sum() > 0
    torch.testing.assert_close(total_grad, 0.5 * aux_grad)  # all of it through the auxiliary half
    loss.backward()
    assert all(p.grad is None for p in model.parameters())  # the frozen backbone gets none


def test_eval_runs_b_rows(family):
    model, heads = saliency_model(family)
    enable_auxiliary(model)
    rows = []
    layer = first_layer(model._vtome)
    layer.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))  # after the doubling hook
    biases = []
    key_bias = model._vtome.key_bias
    model._vtome.key_bias = lambda *args, **kwargs: biases.append(key_bias(*args, **kwargs)) or biases[-1]
    x = clip_for(model)
    model.eval()
    assert logits(model, x).shape[0] == x.shape[0]
    assert rows == [x.shape[0]] and all(b is None for b in biases)  # nothing of the auxiliary path
    model.train()
    output(model, x)
    assert rows[1:] == [2 * x.shape[0]] and any(b is not None for b in biases)


def test_key_bias_is_added_to_every_query_logit():
    q, k, v = torch.randn(3, 2, 2, 5, 4).unbind(0)
    bias = torch.randn(2, 5)
    size = torch.rand(2, 5, 1) + 0.5
    fused, _ = attend(q, k, v, size, 0.5, key_bias=bias)
    weights = (q @ k.transpose(-1, -2) * 0.5 + size.log()[:, None, None, :, 0] + bias[:, None, None, :]).softmax(-1)
    torch.testing.assert_close(fused, weights @ v)
    eager, maps = attend(q, k, v, None, 0.5, eager=True, key_bias=bias)
    torch.testing.assert_close(maps, (q @ k.transpose(-1, -2) * 0.5 + bias[:, None, None, :]).softmax(-1))


def test_heads_save_load_and_another_models_file(tmp_path):
    model = tiny_vivit()
    heads = SaliencyHeads.for_model(model)
    assert heads.weight.shape == (3, 8) and not heads.weight.any()
    keys = set(model.state_dict())
    vtome.patch(model, r=2, partition="saliency", saliency=heads)
    with torch.no_grad():
        heads.weight.normal_()
    path = heads.save(tmp_path / "heads.safetensors")
    assert set(model.state_dict()) == keys  # the heads are not in the model's state_dict
    again = SaliencyHeads.for_model(model).load(path)
    assert torch.equal(again.weight, heads.weight)
    assert torch.equal(SaliencyHeads.from_file(path).weight, heads.weight)
    other = SaliencyHeads(2, 8).save(tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match=r"2 layers x 8 wide; these heads are 3 x 8 \(a heads file for another"):
        again.load(other)
    with pytest.raises(ValueError, match="3 layers x 8 wide; these heads are 3 x 16"):
        SaliencyHeads(3, 16).load(path)
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="not a safetensors file"):
        heads.load(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="heads made for another model"):
        vtome.patch(model, r=2, partition="saliency", saliency=SaliencyHeads(3, 16))
        logits(model, clip_for(model))


def loader(model, batches=4, batch=2, seed=0):
    return [(clip_for(model, batch=batch, seed=seed + i), (torch.arange(batch) + i) % 5) for i in range(batches)]


def test_training_errors_before_any_work():
    model = tiny_vit()
    heads = SaliencyHeads.for_model(model)
    with pytest.raises(ValueError, match="no patched layer"):
        train_saliency(model, heads, loader(model), progress=False)
    vtome.patch(model, r=0, partition="saliency", saliency=heads)
    with pytest.raises(ValueError, match="r = 0 in every layer"):
        train_saliency(model, heads, loader(model), progress=False)
    vtome.patch(model, r=4, partition="saliency", saliency=heads)
    with pytest.raises(ValueError, match="not patched with these heads"):
        train_saliency(model, SaliencyHeads.for_model(model), loader(model), progress=False)
    with pytest.raises(ValueError, match="loader is empty"):
        train_saliency(model, heads, [], progress=False)
    with pytest.raises(ValueError, match="yielded no batch"):
        train_saliency(model, heads, iter([]), progress=False)
    vtome.patch(model, r=4, partition="stride", gamma=4)
    with pytest.raises(ValueError, match="not patched with these heads"):
        train_saliency(model, heads, loader(model), progress=False)


def test_training_leaves_the_backbone_bit_identical_and_unpatch_restores_it(family):
    model = BUILDERS[family]()
    x = clip_for(model)
    before_out = logits(model, x)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainable = [p.requires_grad for p in model.parameters()]  # Motionformer's unused 2-D patch_embed is frozen
    heads = SaliencyHeads.for_model(model)
    vtome.patch(model, r=0.3, partition="saliency", saliency=heads)
    history = train_saliency(model, heads, loader(model, batches=3), progress=False)
    assert len(history) == 3 and heads.weight.abs().sum() > 0
    assert [p.requires_grad for p in model.parameters()] == trainable and not model.training
    vtome.unpatch(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_pre_hooks for m in model.modules())
    assert torch.equal(logits(model, x), before_out)


def test_interrupted_training_resumes_where_it_stopped(tmp_path):
    def run(checkpoint, stop_at=None):
        torch.manual_seed(0)
        model = tiny_vit()
        heads = SaliencyHeads.for_model(model)
        vtome.patch(model, r=4, partition="saliency", saliency=heads)
        calls = []

        def loss(out, labels):
            calls.append(1)
            if stop_at is not None and len(calls) == 2 * stop_at - 1:
                raise KeyboardInterrupt
            return F.cross_entropy(out, labels)

        history = train_saliency(model, heads, loader(model, batches=5), loss_fn=loss, checkpoint=checkpoint,
                                 checkpoint_every=100, progress=False)
        return heads, history

    whole, history = run(tmp_path / "whole.ckpt")
    assert [h["step"] for h in history] == [1, 2, 3, 4, 5]
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut.ckpt", stop_at=3)
    assert torch.load(tmp_path / "cut.ckpt", weights_only=True)["step"] == 2
    resumed, history = run(tmp_path / "cut.ckpt")
    assert [h["step"] for h in history] == [3, 4, 5]
    assert torch.equal(resumed.weight, whole.weight)
