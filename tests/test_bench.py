"""`vtome bench` and `vtome sweep` on tiny models: JSON keys and values, CSV and PNG; no timing assertions."""

import csv
import json

import pytest
import torch
from typer.testing import CliRunner

import vtome
from vtome.bench import baseline_attention
from vtome.cli import app
from vtome.commands.checks import parse_r
from vtome.flops import model_flops
from vtome.models import load_model, random_input

runner = CliRunner()
KEYS = {"model", "r", "schedule", "mode", "baseline_s", "patched_s", "speedup", "flop_speedup", "efficiency",
        "merge_share", "tokens"}


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # --threads sets torch's global thread count


def _bench(tmp_path, *args):
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "--runs", "2", "--warmup", "0", "--threads", "1", "--json-out", str(out),
                                 *args])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), result.output


def test_bench_json(tmp_path):
    res, output = _bench(tmp_path, "--model", "vivit-tiny", "--r", "20", "--schedule", "constant", "-b", "2")
    assert KEYS <= res.keys()
    assert (res["model"], res["r"], res["schedule"], res["mode"], res["batch_size"]) == ("vivit-tiny", 20,
                                                                                          "constant", "merge", 2)
    assert res["tokens"] == [257, 237, 217, 197, 177] and res["r_per_layer"] == res["r_scheduled"] == [20] * 4
    assert len(res["baseline_runs_s"]) == len(res["patched_runs_s"]) == 2
    assert res["baseline_s"] > 0 and res["patched_s"] > 0 and res["speedup"] > 0
    ratios = sorted(b / p for b, p in zip(res["baseline_runs_s"], res["patched_runs_s"], strict=True))
    assert res["speedup"] == pytest.approx(sum(ratios) / 2)  # median of two pairs
    assert res["efficiency"] == pytest.approx(res["speedup"] / res["flop_speedup"])
    assert res["baseline_clips_per_s"] == pytest.approx(2 / res["baseline_s"])
    assert res["patched_frames_per_s"] == pytest.approx(2 * 8 / res["patched_s"])
    model = load_model("vivit-tiny")
    assert res["gflops_baseline"] == pytest.approx(model_flops(model).total / 1e9)
    assert res["gflops_patched"] == pytest.approx(model_flops(model, res["tokens"]).total / 1e9)
    assert res["flop_speedup"] == pytest.approx(res["gflops_baseline"] / res["gflops_patched"])
    assert 1 < res["flop_speedup"] < res["flop_speedup_layers"]
    assert 0 < res["merge_share"] < 1
    assert res["peak_mem_baseline_mib"] > 0 and res["peak_mem_patched_mib"] > 0
    assert "speedup" in output and "FLOP-ideal" in output


def test_bench_r0_divided_eager_fraction(tmp_path):
    res, _ = _bench(tmp_path, "--model", "timesformer-tiny", "--r", "0", "--attn-impl", "eager")
    assert res["r"] == 0 and res["flop_speedup"] == 1.0 and res["tokens"] == [64] * 5
    assert res["attn_impl"] == "eager" and res["threads"] == res["threads_used"] == 1
    res, _ = _bench(tmp_path, "--model", "timesformer-tiny", "--r", "0.25", "--schedule", "decreasing")
    assert res["r"] == 0.25 and res["r_scheduled"] == [32, 21, 10, 0]
    assert res["tokens"] == [64, 32, 16, 8, 8] and res["r_per_layer"] == [32, 16, 8, 0]  # capped at half


def test_parse_r():
    assert parse_r(300) == 300 and isinstance(parse_r(300.0), int)
    assert parse_r(0) == 0 and isinstance(parse_r(0.0), int)
    assert parse_r(0.1) == 0.1 and isinstance(parse_r(0.1), float)


@pytest.mark.parametrize("name", ["vivit-tiny", "videomae-tiny", "timesformer-tiny", "vit-tiny"])
@pytest.mark.parametrize("attn_impl", ["sdpa", "eager"])
def test_baseline_attention_computes_the_same_and_restores(name, attn_impl):
    model = load_model(name)
    x = random_input(model)
    classes = [type(m) for m in model.modules()]
    with torch.inference_mode():
        reference = model(x)
        with baseline_attention(model, attn_impl):
            if name in ("vivit-tiny", "videomae-tiny"):
                assert model.config._attn_implementation == attn_impl
            if name == "vit-tiny":
                assert all(block.attn.fused_attn == (attn_impl == "sdpa") for block in model.blocks)
            if name == "timesformer-tiny":
                attention = [m for m in model.modules() if type(m).__name__.endswith("SelfAttention")]
                kinds = {type(m).__mro__[1].__name__ for m in attention}
                assert kinds == ({"_SdpaTimesformerSelfAttention"} if attn_impl == "sdpa" else {"Module"})
            out = model(x)
    logits = getattr(out, "logits", out)
    torch.testing.assert_close(logits, getattr(reference, "logits", reference), atol=1e-5, rtol=1e-4)
    assert [type(m) for m in model.modules()] == classes
    assert not hasattr(model, "_vtome")
    vtome.patch(model, r=2)  # still patchable


def test_sweep_flops_only(tmp_path):
    result = runner.invoke(app, ["sweep", "--model", "vivit-tiny", "--steps", "3", "--out", str(tmp_path),
                                 "--json-out", str(tmp_path / "sweep.json")])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "sweep.json").read_text())
    assert len(written["rows"]) == 9 and written["png"].endswith("sweep.png")
    rows = list(csv.DictReader((tmp_path / "sweep.csv").open()))
    assert len(rows) == 9  # r = 0, 0.25, 0.5 for three schedules
    assert {row["schedule"] for row in rows} == {"constant", "decreasing", "increasing"}
    zero = [row for row in rows if float(row["r"]) == 0]
    assert len(zero) == 3 and all(float(row["flop_speedup"]) == 1.0 for row in zero)
    half = {row["schedule"]: row for row in rows if float(row["r"]) == 0.5}
    assert json.loads(half["constant"]["tokens"]) == [257, 129, 65, 33, 17]
    assert json.loads(half["decreasing"]["tokens"]) == [257, 129, 65, 33, 33]  # 2r -> 0, clamped to half
    assert float(half["increasing"]["flop_speedup"]) < float(half["constant"]["flop_speedup"])
    assert all(row["speedup"] == "" for row in rows)
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_bench(tmp_path):
    args = ["sweep", "--bench", "--model", "vit-tiny", "--steps", "2", "--schedules", "constant,increasing",
            "--warmup", "0", "--threads", "1", "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "sweep.csv").open()))
    assert [(row["schedule"], float(row["r"])) for row in rows] == [
        ("constant", 0), ("increasing", 0), ("constant", 0.5), ("increasing", 0.5)]
    assert rows[0]["speedup"] == rows[1]["speedup"]  # the r = 0 point is measured once
    assert all(float(row["speedup"]) > 0 and float(row["patched_frames_per_s"]) > 0 for row in rows)
    assert json.loads(rows[2]["tokens"]) == [65, 33, 17, 9, 5]
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_fast_merge_matches_the_autograd_path_and_a_plain_loop():
    # reduce.merge writes into one buffer without autograd (a speed fix for the benchmarks); it must give the same
    # bits as its autograd path and the size-weighted average of a plain loop.
    from vtome import reduce
    from vtome.matching import bipartite_match

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 41, 16, generator=g, dtype=torch.float64)
    size = torch.randint(1, 5, (3, 41, 1), generator=g).to(torch.float32)
    m = bipartite_match(torch.randn(3, 41, 2, generator=g), 15, protected=1)  # 2-D keys: many A share a B
    fast, fast_size = reduce.merge(x, size, m)
    slow, slow_size = reduce.merge(x.clone().requires_grad_(), size, m)
    assert torch.equal(fast, slow.detach()) and torch.equal(fast_size, slow_size)
    for b in range(3):
        a_rows, b_rows = x[b, ::2], x[b, 1::2]
        total, weight = (b_rows * size[b, 1::2]).clone(), size[b, 1::2].clone()
        for src, dst in zip(m.src_idx[b].tolist(), m.dst_idx[b].tolist(), strict=True):
            total[dst] += a_rows[src] * size[b, 2 * src]
            weight[dst] += size[b, 2 * src]
        expected = torch.cat([a_rows[m.unm_idx[b]], total / weight])
        torch.testing.assert_close(fast[b], expected)
        assert torch.equal(fast_size[b, m.unm_idx.shape[1]:], weight)
