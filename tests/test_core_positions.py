"""Positions carried through merges (for rotary position embeddings): MergeState with positions at layer 0."""

import pytest
import torch

from vtome.patch.state import MergeState, Settings


def run_state(position_rule: str, mode: str = "merge", threshold=None, layers: int = 3, r: int = 5):
    settings = Settings(r=r, schedule="constant", mode=mode, prop_attn=True, trace_source=True, threshold=threshold,
                        seed=0, head_aggregation="mean", attn_impl=None, position=position_rule)
    state = MergeState(settings, layers, protected=0, groups=1, num_tokens=24)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 24, 8, generator=g)
    grid = torch.stack(torch.meshgrid(torch.arange(2.0), torch.arange(3.0), torch.arange(4.0), indexing="ij"), -1)
    start = grid.reshape(24, 3)  # (frame, row, column) of each input token
    for layer in range(layers):
        state.enter(layer, x, position=start if layer == 0 else None)
        x = state.reduce(layer, x, torch.randn(2, x.shape[1], 4, generator=g))
    return state, start


@pytest.mark.parametrize("mode, threshold", [("merge", None), ("hybrid", 0.3), ("drop", None)])
def test_mean_position_is_the_size_weighted_mean_of_the_sources(mode, threshold):
    state, start = run_state("mean", mode, threshold)
    assert state.tokens == [24, 19, 14, 9]
    for layer in range(4):
        record = state.records[layer]
        for b in range(2):
            for i in range(record.tokens):
                held = (record.assignment[b] == i).nonzero()[:, 0]
                torch.testing.assert_close(record.position[b, i], start[held].mean(0))
                assert record.size[b, i, 0] == len(held)


def test_target_and_source_rules():
    # One layer: each token's position is its target's (B, odd position) own, or the mean of its joined sources.
    for rule in ("target", "source"):
        state, start = run_state(rule, layers=1, r=5)
        record, first = state.records[1], state.records[0]
        for b in range(2):
            for i in range(record.tokens):
                held = (record.assignment[b] == i).nonzero()[:, 0].tolist()
                if len(held) == 1:
                    expected = start[held[0]]
                elif rule == "target":
                    expected = start[[j for j in held if j % 2 == 1][0]]
                else:
                    expected = start[[j for j in held if j % 2 == 0]].mean(0)
                torch.testing.assert_close(record.position[b, i], expected)
        assert first.position.shape == (2, 24, 3)


def test_no_positions_unless_given():
    settings = Settings(r=2, schedule="constant", mode="merge", prop_attn=True, trace_source=False, threshold=None,
                        seed=0, head_aggregation="mean", attn_impl=None)
    state = MergeState(settings, 1, protected=0, groups=1, num_tokens=8)
    x = torch.randn(1, 8, 4)
    state.enter(0, x)
    state.reduce(0, x, x)
    assert state.position(1) is None
