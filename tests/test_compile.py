"""torch.compile and torch.export of patched models: no graph break, no recompilation, the eager numbers."""

import pytest
import torch
import torch._dynamo as dynamo

import vtome
from tiny import BUILDERS, clip_for, logits
from vtome.bench import CPP_WRAPPER

MODES = [dict(mode="merge"), dict(mode="drop"), dict(mode="random_drop"), dict(mode="random_merge"),
         dict(mode="hybrid", threshold=0.2)]


def output_logits(out):
    if isinstance(out, dict):
        return out["logits"]
    return out.logits if hasattr(out, "logits") else out


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    dynamo.reset()
    yield
    dynamo.reset()


@pytest.mark.parametrize("settings", MODES, ids=[m["mode"] for m in MODES])
def test_no_graph_break_in_any_mode(family, settings):
    model = BUILDERS[family]()
    vtome.patch(model, r=3, schedule="decreasing", trace_source=True, **settings)
    with torch.no_grad():
        explained = dynamo.explain(model)(clip_for(model))
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


@pytest.mark.parametrize("partition", ["stride", "center", "motion", "saliency"])
@pytest.mark.parametrize("family", ["vivit", "timesformer", "motionformer"])  # joint, divided (both layouts)
def test_no_graph_break_with_a_partition(family, partition):
    model = BUILDERS[family]()
    extra = dict(saliency=torch.randn(3, 8)) if partition == "saliency" else {}
    vtome.patch(model, r=0.3, partition=partition, merge_weighting="uniform", **extra)
    layout = model._vtome.layout
    if partition == "motion":
        vtome.set_prior(model, torch.rand(2, layout.frames, layout.height, layout.width))
    with torch.no_grad():
        explained = dynamo.explain(model)(clip_for(model))
    assert explained.graph_break_count == 0, explained.break_reasons


def test_compiled_fullgraph_runs_without_recompiling_and_matches_eager(family):
    check_compiled_against_eager(family, dynamic=False)


def test_dynamic_compile_runs_without_recompiling_and_matches_eager():
    # dynamic=True (vtome bench --compile --dynamic). One joint family only: tracing the divided ones symbolically
    # takes minutes even for tiny models.
    check_compiled_against_eager("vivit", dynamic=True)


def test_cpp_wrapper_compile_runs_without_recompiling_and_matches_eager():
    # inductor's cpp_wrapper (vtome bench --compile --cpp-wrapper): a graph's kernels built as one C++ unit.
    check_compiled_against_eager("timesformer", dynamic=False, options=CPP_WRAPPER)


def check_compiled_against_eager(family: str, dynamic: bool, options: dict | None = None) -> None:
    model = BUILDERS[family](layers=2)
    vtome.patch(model, r=3, schedule="decreasing", trace_source=True)
    x = clip_for(model)
    expected = logits(model, x)
    eager_info = vtome.info(model)
    compiled = torch.compile(model, fullgraph=True, dynamic=dynamic, options=options)
    with torch.no_grad():
        compiled(x)
        with dynamo.config.patch(error_on_recompile=True):
            for _ in range(3):
                vtome.info(model)  # reading the state between calls must not invalidate the graph
                out = compiled(x)
    torch.testing.assert_close(output_logits(out), expected, atol=1e-4, rtol=1e-4)
    info = vtome.info(model)
    assert info["tokens"] == eager_info["tokens"] and info["tokens"][0] > info["tokens"][-1]
    assert torch.equal(info["source"], eager_info["source"])
    torch.testing.assert_close(info["size"], eager_info["size"])


@pytest.mark.parametrize("family", ["timesformer", "motionformer"])
def test_compiled_merge_where_every_source_leaves(family):
    # r = half the tokens per frame: no A token stays, so the merged rows are B alone, in the per-frame grouping's
    # strides (TimeSformer-B reaches this in its last layer at r = 18).
    model = BUILDERS[family](layers=1)
    vtome.patch(model, r=8)
    x = clip_for(model, batch=1)
    expected = logits(model, x)
    assert vtome.info(model)["tokens"] == [16, 8]
    with torch.no_grad():
        out = torch.compile(model, fullgraph=True)(x)
    torch.testing.assert_close(output_logits(out), expected, atol=1e-4, rtol=1e-4)


def test_repatching_and_unpatching_a_compiled_model_take_effect():
    model = BUILDERS["vit"](layers=2)
    vtome.patch(model, r=3)
    x = clip_for(model)
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(output_logits(compiled(x)), logits(model, x), atol=1e-4, rtol=1e-4)
    # Other settings and unpatching recompile, as they should, and give the eager numbers.
    vtome.patch(model, r=1)
    with torch.no_grad():
        torch.testing.assert_close(output_logits(compiled(x)), logits(model, x), atol=1e-4, rtol=1e-4)
    vtome.unpatch(model)
    with torch.no_grad():
        torch.testing.assert_close(output_logits(compiled(x)), logits(model, x), atol=1e-4, rtol=1e-4)


def test_compiled_random_mode_and_inference_mode():
    model = BUILDERS["vit"](layers=2)
    vtome.patch(model, r=4, mode="random_merge", seed=3)
    x = clip_for(model)
    expected = logits(model, x)
    compiled = torch.compile(model, fullgraph=True)
    with torch.inference_mode():
        compiled(x)
        with dynamo.config.patch(error_on_recompile=True):
            out = compiled(x)
    torch.testing.assert_close(output_logits(out), expected, atol=1e-4, rtol=1e-4)


def test_compiled_training_gives_the_eager_gradients():
    model = BUILDERS["videomae"]().train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    vtome.patch(model, r=3)
    x = clip_for(model)
    model(x).logits.square().mean().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    compiled = torch.compile(model, fullgraph=True)
    compiled(x).logits.square().mean().backward()
    for got, want in zip((p.grad for p in model.parameters()), expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("settings", [dict(mode="merge"), dict(mode="random_drop")], ids=["merge", "random_drop"])
def test_export_round_trips(family, settings):
    model = BUILDERS[family]()
    vtome.patch(model, r=3, **settings)
    x = clip_for(model)
    expected = logits(model, x)
    exported = torch.export.export(model, (x,))
    assert torch.equal(output_logits(exported.module()(x)), expected)


def test_bench_compile_times_both_compiled_variants():
    from vtome.bench import BenchConfig, bench

    result = bench(BenchConfig(model="vit-tiny", r=8, runs=2, warmup=1, compile=True))
    assert result["compile"] is True
    assert result["tokens"] == [65, 57, 49, 41, 33]  # timm ViT-tiny preset: 64 patches + class token, 4 layers
    for key in ("compile_s_baseline", "compile_s_patched", "patched_eager_s", "eager_over_compiled", "baseline_s",
                "patched_s"):
        assert result[key] > 0
    # The first (compiling) call takes longer than a compiled call.
    assert result["compile_s_patched"] > result["patched_s"]


@pytest.mark.parametrize("option, expected", [
    ("dynamic", {"dynamic": True, "options": None}),
    ("cpp_wrapper", {"dynamic": False, "options": {"cpp_wrapper": True, "cpp_wrapper_build_separate": True}}),
])
def test_bench_compiles_both_variants_afresh_with_its_options(monkeypatch, option, expected):
    from vtome.bench import BenchConfig, bench

    calls = []

    def record(module, **kwargs):
        calls.append(kwargs)
        return module  # run eager: only what reaches torch.compile is checked here

    monkeypatch.setattr(torch, "compile", record)
    monkeypatch.setattr(dynamo, "reset", lambda: calls.append("reset"))
    bench(BenchConfig(model="vit-tiny", r=8, runs=1, warmup=0, compile=True, **{option: True}))
    # A reset first: a cell must not reuse what an earlier cell in the same process compiled (its compile time).
    assert calls == ["reset", expected, expected]


def _call_targets(graph_module: torch.fx.GraphModule) -> set[str]:
    return {str(node.target) for node in graph_module.graph.nodes if node.op == "call_function"}


def test_motionformer_spatial_step_is_one_operator_only_when_compiled_without_gradients():
    # Under torch.compile without gradients the spatial step is vtome::slot_attention, so that inductor does not copy
    # the queries the slots share; with gradients (it has no backward) and under export it stays plain aten.
    model = BUILDERS["motionformer"]()
    vtome.patch(model, r=3)
    x = clip_for(model)
    expected = logits(model, x)
    graphs = []

    def capture(graph_module, inputs):
        graphs.append(graph_module)
        return graph_module.forward

    with torch.no_grad():
        out = torch.compile(model, backend=capture, fullgraph=True)(x)
    torch.testing.assert_close(output_logits(out), expected, atol=1e-5, rtol=1e-5)
    assert any("vtome.slot_attention" in t for t in _call_targets(graphs[-1]))
    dynamo.reset()
    torch.compile(model, backend=capture, fullgraph=True)(x)
    assert not any("vtome.slot_attention" in t for t in _call_targets(graphs[-1]))
    exported = torch.export.export(model, (x,))
    assert not any("vtome" in t for t in _call_targets(exported.graph_module))
    assert torch.equal(output_logits(exported.module()(x)), expected)
