"""vtome's Motionformer: equal to a float64 reference of the paper's math, the official state_dict layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tiny import tiny_motionformer
from vtome.models import Motionformer, MotionformerConfig, input_shape, load_model, random_input


def randomise(model: torch.nn.Module, scale: float = 0.3, seed: int = 0) -> torch.nn.Module:
    """Every tensor random (the default init leaves small activations that would hide mistakes)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * scale)
    return model


def layer_norm(x, state, name, eps):
    return F.layer_norm(x, x.shape[-1:], state[f"{name}.weight"], state[f"{name}.bias"], eps)


def linear(x, state, name):
    return x @ state[f"{name}.weight"].T + state.get(f"{name}.bias", 0)


def reference_attention(x, state, name, c: MotionformerConfig):
    """Trajectory attention, step by step as in the Motionformer paper (and shared/specs/motionformer.md §1)."""
    batch, length, dim = x.shape
    heads, slots = c.num_attention_heads, c.temporal_resolution
    d, n = dim // heads, length - 1
    per_slot = n // slots
    q, k, v = linear(x, state, f"{name}.qkv").split(dim, dim=-1)
    q, k, v = (t.reshape(batch, length, heads, d).transpose(1, 2) for t in (q, k, v))  # (B, h, L, d)
    # 2. the class token attends to every token, itself included
    cls = torch.softmax(q[:, :, :1] @ k.transpose(-1, -2) / d**0.5, -1) @ v  # (B, h, 1, d)
    # 3. spatial step: for every patch query s and slot f, a softmax over that slot's P patches
    qs, ks, vs = q[:, :, 1:], k[:, :, 1:], v[:, :, 1:]
    logits = (qs @ ks.transpose(-1, -2) / d**0.5).reshape(batch, heads, n, slots, per_slot)
    attn = logits.softmax(-1)
    traj = torch.einsum("bhsfp,bhfpd->bhsfd", attn, vs.reshape(batch, heads, slots, per_slot, d))
    y = traj.permute(0, 2, 3, 1, 4).reshape(batch, n, slots, dim)  # 4. heads joined: (B, N, F, C)
    # 5. the query's own slot g(s) = s // P, projected
    own = y[:, torch.arange(n), torch.arange(n) // per_slot]  # (B, N, C)
    q2 = linear(own, state, f"{name}.proj_q").reshape(batch, n, heads, d) / d**0.5
    # 6. proj_kv on all N x F trajectory points
    k2, v2 = linear(y, state, f"{name}.proj_kv").split(dim, dim=-1)
    k2 = k2.reshape(batch, n, slots, heads, d)
    u = (y if c.use_original_code else v2).reshape(batch, n, slots, heads, d)
    # 7. temporal step: a softmax over the F points of the trajectory
    w = torch.einsum("bshd,bsfhd->bshf", q2, k2).softmax(-1)
    out = torch.einsum("bshf,bsfhd->bshd", w, u).reshape(batch, n, dim)
    out = torch.cat([cls.transpose(1, 2).reshape(batch, 1, dim), out], dim=1)
    return linear(out, state, f"{name}.proj")


def reference_logits(model: Motionformer, x: torch.Tensor) -> torch.Tensor:
    """x (B, T, 3, H, W) float64 -> logits, from the weights alone (the table is used at its stored size)."""
    c = model.config
    state = {k: v.double() for k, v in model.state_dict().items()}
    batch, frames, channels, height, width = x.shape
    p, t = c.patch_size, c.tubelet_size
    rows, cols, slots = height // p, width // p, frames // t
    # tubelets of t frames x p x p pixels, numbered (slot, row, column): frame-major
    pixels = x.reshape(batch, slots, t, channels, rows, p, cols, p)
    tokens = torch.einsum("bftcipjq,octpq->bfijo", pixels, state["patch_embed_3d.proj.weight"])
    tokens = (tokens + state["patch_embed_3d.proj.bias"]).reshape(batch, slots * rows * cols, -1)
    pos, temp = state["pos_embed"][0], state["temp_embed"][0]
    per_slot = rows * cols
    where = torch.stack([pos[1 + i % per_slot] + temp[i // per_slot] for i in range(slots * per_slot)])
    z = torch.cat([(state["cls_token"][0] + pos[0]).expand(batch, 1, -1), tokens + where], dim=1)
    eps = c.layer_norm_eps
    for i in range(c.num_hidden_layers):
        z = z + reference_attention(layer_norm(z, state, f"blocks.{i}.norm1", eps), state, f"blocks.{i}.attn", c)
        hidden = F.gelu(linear(layer_norm(z, state, f"blocks.{i}.norm2", eps), state, f"blocks.{i}.mlp.fc1"))
        z = z + linear(hidden, state, f"blocks.{i}.mlp.fc2")
    cls = layer_norm(z[:, 0], state, "norm", eps)
    if c.use_mlp:
        cls = {"tanh": torch.tanh, "gelu": F.gelu, "relu": torch.relu}[c.head_act](linear(cls, state, "pre_logits.fc"))
    if c.class_heads is None:
        return linear(cls, state, "head")
    return torch.cat([linear(cls, state, f"head{i}") for i in range(len(c.class_heads))], dim=-1)


VARIANTS = {
    "released": {},
    "fixed-values": dict(use_original_code=False),
    "no-bias-no-mlp": dict(qkv_bias=False, use_mlp=False),
    "epic-heads-gelu": dict(class_heads=[3, 4], head_act="gelu"),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_equals_a_float64_reference_of_the_math(variant, attn_implementation):
    model = randomise(tiny_motionformer(layers=2, frames=6, attn_implementation=attn_implementation,
                                        **VARIANTS[variant])).double()
    x = torch.randn(2, 6, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        got = model(x).logits
        want = reference_logits(model, x)
    assert got.shape == (2, model.config.num_labels)
    assert want.abs().max() > 0.1  # far from zero: a wrong step would show
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)


def test_the_two_value_choices_differ():
    model = randomise(tiny_motionformer(layers=2)).double()
    x = torch.randn(2, 4, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        released = model(x).logits
        for block in model.blocks:
            block.attn.use_original_code = False
        assert (model(x).logits - released).abs().max() > 1e-3


@pytest.mark.parametrize("height, width", [(48, 48), (32, 24)])
def test_other_crops_resize_the_position_table_bicubically(height, width):
    model = randomise(tiny_motionformer(layers=1, image=32)).double()  # 2 slots, a 4 x 4 table
    rows, cols = height // 8, width // 8
    with torch.no_grad():
        table = model.pos_embed[:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
        resized = F.interpolate(table, size=(rows, cols), mode="bicubic", align_corners=False)[0]  # (C, rows, cols)
        got = model.position_embedding(rows, cols)[0]
        assert got.shape == (1 + 2 * rows * cols, 32)
        torch.testing.assert_close(got[0], model.pos_embed[0, 0])
        for f in range(2):
            for i in range(rows):
                for j in range(cols):
                    want = resized[:, i, j] + model.temp_embed[0, f]
                    torch.testing.assert_close(got[1 + f * rows * cols + i * cols + j], want, atol=1e-12, rtol=0)
        logits = model(torch.randn(1, 4, 3, height, width, dtype=torch.float64)).logits
    assert torch.isfinite(logits).all()


def test_state_dict_has_the_official_keys_and_shapes():
    # Motionformer-B (spec §2): 205 keys, 109.14 M parameters, 16 tensors per block.
    with torch.device("meta"):
        model = load_model("motionformer-b")
    state = model.state_dict()
    assert len(state) == 205 and sum(p.numel() for p in model.parameters()) == 109_144_720
    head = ["cls_token", "pos_embed", "temp_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
            "patch_embed_3d.proj.weight", "patch_embed_3d.proj.bias"]
    assert list(state)[:7] == head
    shapes = {"cls_token": (1, 1, 768), "pos_embed": (1, 197, 768), "temp_embed": (1, 8, 768),
              "patch_embed.proj.weight": (768, 3, 16, 16), "patch_embed_3d.proj.weight": (768, 3, 2, 16, 16),
              "blocks.11.attn.qkv.weight": (2304, 768), "blocks.11.attn.proj_q.weight": (768, 768),
              "blocks.11.attn.proj_kv.weight": (1536, 768), "blocks.11.attn.proj.bias": (768,),
              "blocks.0.mlp.fc1.weight": (3072, 768), "blocks.0.mlp.fc2.weight": (768, 3072),
              "norm.weight": (768,), "pre_logits.fc.weight": (768, 768), "head.weight": (400, 768)}
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    block = sorted(k[len("blocks.3."):] for k in state if k.startswith("blocks.3."))
    assert block == sorted(f"{m}.{p}" for m in ("norm1", "attn.qkv", "attn.proj_q", "attn.proj_kv", "attn.proj",
                                                 "norm2", "mlp.fc1", "mlp.fc2") for p in ("weight", "bias"))
    epic = Motionformer(MotionformerConfig(class_heads=[97, 300], num_hidden_layers=1, hidden_size=64,
                                           num_attention_heads=1))
    assert {k for k in epic.state_dict() if k.startswith("head")} == {"head0.weight", "head0.bias", "head1.weight",
                                                                       "head1.bias"}
    assert epic.config.num_labels == 397 and (epic.config.num_verbs, epic.config.num_nouns) == (97, 300)


def test_presets_input_shape_and_random_input():
    tiny = load_model("motionformer-tiny")
    assert input_shape(tiny, 2) == (2, 8, 3, 64, 64)
    x = random_input(tiny, 2)
    assert tiny(pixel_values=x).logits.shape == (2, 10)
    with torch.device("meta"):
        base = load_model("motionformer-b")
    assert input_shape(base) == (1, 16, 3, 224, 224) and not base.training


@pytest.mark.parametrize("shape, message", [
    ((1, 6, 3, 32, 32), "takes 4 frames per clip"),
    ((1, 4, 1, 32, 32), "3 channels in dim 2"),
    ((4, 3, 32, 32), "must be 5-D"),
    ((1, 4, 3, 4, 32), "hold no 8-pixel patch"),
])
def test_wrong_input_is_a_clear_error(shape, message):
    with pytest.raises(ValueError, match=message):
        tiny_motionformer()(torch.randn(shape))


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="not a multiple of num_attention_heads"):
        MotionformerConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="head_act"):
        MotionformerConfig(head_act="swish")
    with pytest.raises(ValueError, match="two or more"):
        MotionformerConfig(class_heads=[10])
    with pytest.raises(ValueError, match="unknown keys"):
        MotionformerConfig.from_dict({"model_type": "motionformer", "depth": 3})


def test_eager_returns_attention_maps_that_sum_to_one():
    model = tiny_motionformer(layers=2)
    out = model(random_input(model, 2), output_attentions=True)
    maps = out.attentions[1]
    assert maps.cls.shape == (2, 4, 1, 33) and maps.spatial.shape == (2, 4, 32, 2, 16)
    assert maps.temporal.shape == (2, 4, 32, 2)
    for weights in maps:
        torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)))


def test_training_runs_with_dropout_and_drop_path():
    model = tiny_motionformer(attention_dropout=0.1, drop_path_rate=0.2).train()
    out = model(random_input(model, 2)).logits
    out.sum().backward()
    assert model.blocks[0].attn.qkv.weight.grad is not None
    assert not model.patch_embed.proj.weight.requires_grad  # the unused 2D stem
