"""The LVU-shape benchmark's mechanics on a small network (the real shapes are measured by `vtome vtm bench`)."""

import pytest
import torch

from vtome.vtm import lvu
from vtome.vtm.measure import forward_memory_mib
from vtome.vtm.net import VARIANTS, VTMConfig, flops


def small(variant: str) -> VTMConfig:
    return VTMConfig(frames=12, height=4, width=4, channels=16, classes=3, windows=(2, 6, 12), head_width=8,
                     variant=variant)


def test_rows_and_ratios_against_none():
    rows = lvu.bench_setting(2, "sdpa", list(VARIANTS[1:]), torch.device("cpu"), runs=1, warmup=0,
                             make_config=small)
    assert [r["variant"] for r in rows] == list(VARIANTS)
    none = rows[0]
    assert none["throughput_ratio"] == 1 and none["memory_ratio"] == 1 and none["flop_ratio"] == 1
    for row in rows:
        assert {"variant", "throughput_ratio", "memory_ratio", "flop_ratio", "clips_per_s", "peak_mib"} <= set(row)
        assert row["flop_ratio"] == pytest.approx(flops(small("none")) / flops(small(row["variant"])))
        assert row["clips_per_s"] == pytest.approx(2 / row["seconds"])
    assert rows[1]["tokens"] == [(32, 10), (30, 10), (20, 6)]


def test_eager_is_skipped_where_its_maps_do_not_fit(monkeypatch):
    monkeypatch.setattr(lvu, "free_bytes", lambda device: 1000)
    rows = lvu.bench_setting(1, "eager", ["naive"], torch.device("cpu"), runs=1, warmup=0, make_config=small)
    assert [r["variant"] for r in rows] == ["none", "naive"]
    assert all("free on cpu" in r["skipped"] and "GiB" in r["skipped"] for r in rows)


def test_eager_map_estimate_at_lvu_shapes():
    # none's last block: one window of 60 x 256 = 15360 tokens, 256 channels = 4 heads of 64; three float32 copies.
    assert lvu.eager_map_bytes(lvu.lvu_config("none"), 1) == 3 * 4 * 4 * 15360**2
    assert lvu.lvu_config("none").heads(0) == 16


def test_peak_memory_of_a_known_allocation():
    def two_hundred_mb():
        a = torch.ones(25 * 2**20)
        b = a * 2
        del a
        return b.sum()

    forward_memory_mib(two_hundred_mb, torch.device("cpu"))
    assert forward_memory_mib(two_hundred_mb, torch.device("cpu")) == pytest.approx(200, abs=15)
