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


def _vtome_ops(graph_module: torch.fx.GraphModule) -> set[str]:
    """vtome's operators called in a graph, by name (match, merge, slot_attention)."""
    return {t.split(".")[1] for t in _call_targets(graph_module) if t.startswith("vtome.")}


def test_matching_and_merging_are_single_operators_only_when_compiled_without_gradients(family):
    # Under torch.compile without gradients matching and merging run as vtome::match and vtome::merge (and
    # Motionformer's spatial step as vtome::slot_attention), so that inductor does not build kernels for them in
    # every layer; with gradients (they have no backward) and under export everything stays plain aten.
    model = BUILDERS[family]()
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
    ops = {"match", "merge"} | ({"slot_attention"} if family == "motionformer" else set())
    assert _vtome_ops(graphs[-1]) == ops
    dynamo.reset()
    torch.compile(model, backend=capture, fullgraph=True)(x)
    assert _vtome_ops(graphs[-1]) == set()
    exported = torch.export.export(model, (x,))
    assert _vtome_ops(exported.graph_module) == set()
    assert torch.equal(output_logits(exported.module()(x)), expected)


def _matching_inputs(split: bool) -> dict:
    """Arguments of vtome::match: 2 rows of 9 tokens, the first protected; an alternate or a given split."""
    metric = torch.randn(2, 9, 6)
    if not split:
        return dict(metric=metric, r=3, protected=1, a_pos=None, b_pos=None)
    a_pos = torch.tensor([[0, 1, 2, 4, 5, 7], [0, 2, 3, 4, 6, 8]])
    b_pos = torch.tensor([[3, 6, 8], [1, 5, 7]])
    return dict(metric=metric, r=3, protected=1, a_pos=a_pos, b_pos=b_pos)


@pytest.mark.parametrize("split", [False, True], ids=["alternate", "split"])
@pytest.mark.parametrize("draw", [None, [4, 1, 1, 0], [4, 1, 1, 1]], ids=["similar", "random", "random_per_row"])
def test_match_operator(split, draw):
    from vtome.matching import match_op

    torch.library.opcheck(match_op, (), kwargs=dict(_matching_inputs(split), draw=draw))


@pytest.mark.parametrize("split", [False, True], ids=["alternate", "split"])
@pytest.mark.parametrize("extra", [{}, dict(uniform=True), dict(merge_edge=True), dict(drop_dst=True)],
                         ids=["size", "uniform", "merge_edge", "drop_dst"])
def test_merge_operator(split, extra):
    from vtome.matching import match_op
    from vtome.reduce import merge_op

    inputs = _matching_inputs(split)
    unm_idx, src_idx, dst_idx, score = match_op(**inputs, draw=None)
    num_b = 4 if inputs["b_pos"] is None else inputs["b_pos"].shape[1]
    kwargs = dict(
        x=torch.randn(2, 9, 5, dtype=torch.bfloat16), size=torch.rand(2, 9, 1) + 1, unm_idx=unm_idx, src_idx=src_idx,
        dst_idx=dst_idx, num_b=num_b, a_pos=inputs["a_pos"], b_pos=inputs["b_pos"],
        merge_edge=score > score.median() if "merge_edge" in extra else None, uniform="uniform" in extra,
        drop_dst=None,
    )
    if "drop_dst" in extra:  # only B tokens that some A token joins (else nothing is left to average)
        joined = torch.zeros(2, num_b, dtype=torch.bool).scatter_(1, dst_idx, True)
        kwargs["drop_dst"] = joined & (torch.rand(2, num_b) > 0.5)
    torch.library.opcheck(merge_op, (), kwargs=kwargs)
