"""Device-agnostic: a patched model on every available device (CPU always, CUDA where present) gives the CPU
result, merges the same tokens (random modes and sampled partitions included: their numbers are a hash, not a
device RNG), and compiles there."""

import pytest
import torch
import torch._dynamo as dynamo

import vtome
from tiny import BUILDERS, clip_for, logits

ACCELERATORS = ["cuda"] if torch.cuda.is_available() else []
SETTINGS = [dict(mode="merge"), dict(mode="random_merge"), dict(mode="hybrid", threshold=0.2),
            dict(mode="merge", partition="center"), dict(mode="merge", partition="saliency")]


def with_saliency(settings: dict) -> dict:
    if settings.get("partition") == "saliency":
        return {**settings, "saliency": torch.randn(3, 8, generator=torch.Generator().manual_seed(0))}
    return settings


@pytest.mark.skipif(not ACCELERATORS, reason="no accelerator on this machine")
@pytest.mark.parametrize("device", ACCELERATORS)
@pytest.mark.parametrize("settings", SETTINGS, ids=[f"{s['mode']}-{s.get('partition', 'alternate')}" for s in SETTINGS])
def test_accelerator_matches_cpu(family, device, settings):
    model = BUILDERS[family]()
    x = clip_for(model)
    vtome.patch(model, r=4, trace_source=True, **with_saliency(settings))
    expected, source = logits(model, x), vtome.info(model)["source"]
    model.to(device)
    got = logits(model, x.to(device))
    torch.testing.assert_close(got.cpu(), expected, atol=1e-4, rtol=1e-4)
    assert torch.equal(vtome.info(model)["source"].cpu(), source)
    assert vtome.info(model)["size"].device.type == device


@pytest.mark.skipif(not ACCELERATORS, reason="no accelerator on this machine")
@pytest.mark.parametrize("device", ACCELERATORS)
def test_accelerator_compiles_and_runs_bfloat16(family, device):
    dynamo.reset()
    model = BUILDERS[family]().to(device)
    vtome.patch(model, r=4, schedule="decreasing")
    x = clip_for(model)
    expected = logits(model, x)
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        compiled(x)
        with dynamo.config.patch(error_on_recompile=True):
            out = compiled(x)
    out = out.logits if hasattr(out, "logits") else out
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=1e-3)
    model.to(torch.bfloat16)
    half = logits(model, x.bfloat16())
    assert half.dtype == torch.bfloat16 and torch.isfinite(half).all()
    assert vtome.info(model)["size"].dtype == torch.float32


def test_random_numbers_are_the_same_on_every_device():
    from vtome import rand

    cpu = rand.uniform((3, 1000), 7, 2, 0)
    assert 0.45 < cpu.mean() < 0.55 and cpu.min() >= 0 and cpu.max() < 1
    assert not torch.equal(cpu, rand.uniform((3, 1000), 7, 3, 0))
    for device in ACCELERATORS:
        assert torch.equal(rand.uniform((3, 1000), 7, 2, 0, device=device).cpu(), cpu)
