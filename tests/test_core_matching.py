"""Matching and reduction against slow, obvious reference code."""

import math

import pytest
import torch

from vtome import reduce
from vtome.matching import bipartite_match


def reference_match(metric: torch.Tensor, r: int, protected: int):
    """One sequence (N, C): plain loops over A = even positions, B = odd positions."""
    n = metric.shape[0]
    a_pos, b_pos = list(range(0, n, 2)), list(range(1, n, 2))
    unit = metric / metric.norm(dim=-1, keepdim=True)
    best = []
    for i, pa in enumerate(a_pos):
        sims = [float(unit[pa] @ unit[pb]) for pb in b_pos]
        j = max(range(len(b_pos)), key=lambda k: sims[k])
        best.append((-math.inf if (protected and i == 0) else sims[j], i, j))
    ranked = sorted(best, key=lambda t: -t[0])
    leaving = ranked[:r]
    staying = ranked[r:]
    if protected:
        staying = sorted(staying, key=lambda t: t[1])
    return [t[1] for t in staying], [(t[1], t[2]) for t in leaving]


@pytest.mark.parametrize("n, protected", [(11, 1), (12, 0), (9, 0)])
def test_matching_agrees_with_reference(n, protected):
    metric = torch.randn(3, n, 8)
    r = 3
    m = bipartite_match(metric, r, protected)
    for b in range(3):
        staying, leaving = reference_match(metric[b], r, protected)
        assert m.unm_idx[b].tolist() == staying
        assert list(zip(m.src_idx[b].tolist(), m.dst_idx[b].tolist(), strict=True)) == leaving


def test_r_is_clamped_and_zero_is_nothing():
    metric = torch.randn(1, 7, 4)
    assert bipartite_match(metric, 100, protected=1).r == 3
    assert bipartite_match(metric, 100, protected=0).r == 3
    assert bipartite_match(torch.randn(1, 2, 4), 5, protected=1) is None
    assert bipartite_match(metric, 0) is None


def test_class_token_stays_first():
    metric = torch.randn(2, 9, 4)
    metric[:, 0] = metric[:, 1]  # the class token is the most similar token of all, and still stays
    m = bipartite_match(metric, 4, protected=1)
    assert (m.unm_idx[:, 0] == 0).all()
    assert (m.src_idx != 0).all()


def test_merge_is_size_weighted_average():
    # A = positions 0, 2, 4; B = positions 1, 3, 5. Best partners (cosine): pos0 -> pos5 (0.02),
    # pos2 -> pos3 (0.995), pos4 -> pos1 (0.05). The two best edges leave: pos2 into pos3, pos4 into pos1.
    metric = torch.tensor([[[1.0, 0, -0.02], [0, 0, 1], [0, 1, 0.1], [0, 1, 0], [1, 0, 0.05], [0, 0, -1]]])
    x = torch.arange(6 * 2, dtype=torch.float32).reshape(1, 6, 2)
    size = torch.tensor([[[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]]])
    m = bipartite_match(metric, 2, protected=0)
    assert m.src_idx.tolist() == [[1, 2]] and m.dst_idx.tolist() == [[1, 0]]
    out, new_size = reduce.merge(x, size, m)
    expected = torch.stack([
        x[0, 0],                          # pos0 stays (the unmerged A tokens come first)
        (x[0, 1] * 2 + x[0, 4] * 5) / 7,  # B pos1 with A pos4, weighted by size
        (x[0, 3] * 4 + x[0, 2] * 3) / 7,  # B pos3 with A pos2
        x[0, 5],                          # B pos5 alone
    ])
    torch.testing.assert_close(out[0], expected)
    assert new_size[0, :, 0].tolist() == [1.0, 7.0, 7.0, 6.0]


def test_drop_keeps_survivors_bit_for_bit():
    x = torch.randn(2, 10, 5)
    size = torch.rand(2, 10, 1) + 1
    m = bipartite_match(torch.randn(2, 10, 3), 3)
    out, new_size = reduce.drop(x, size, m)
    for b in range(2):
        kept = [2 * i for i in m.unm_idx[b].tolist()] + list(range(1, 10, 2))
        assert torch.equal(out[b], x[b, kept])
        assert torch.equal(new_size[b], size[b, kept])


def test_hybrid_edges_below_threshold_drop():
    x = torch.randn(1, 8, 4)
    m = bipartite_match(torch.randn(1, 8, 3), 3)
    merge_edge = torch.tensor([[True, False, True]])
    out, size = reduce.merge(x, None, m, merge_edge)
    dropped_a = 2 * m.src_idx[0, 1]
    assert size.sum() == 8 - 1  # one token gone, the others all counted
    for row in out[0]:
        assert not torch.allclose(row, x[0, dropped_a])
    everything, _ = reduce.merge(x, None, m, torch.ones(1, 3, dtype=torch.bool))
    assert torch.equal(everything, reduce.merge(x, None, m)[0])


def test_positions_follow_tokens_and_partition_inputs():
    n = 13
    x = torch.randn(2, n, 4)
    assignment = torch.arange(n).expand(2, n)
    size = None
    for r in (4, 3, 2):
        m = bipartite_match(torch.randn(2, x.shape[1], 3), r, protected=1)
        assignment = reduce.follow(assignment, reduce.new_positions(m, x.shape[1], None))
        x, size = reduce.merge(x, size, m)
        source = reduce.source_matrix(assignment, x.shape[1])
        assert (source.sum(1) == 1).all()  # every input token is in exactly one token
        assert torch.equal(source.sum(-1).float(), size[..., 0])
        assert source[:, 0].sum(-1).tolist() == [1, 1] and source[:, 0, 0].all()  # class token alone, first


def test_dropped_inputs_leave_the_source():
    m = bipartite_match(torch.randn(1, 6, 3), 2)
    positions = reduce.new_positions(m, 6, torch.ones(1, 2, dtype=torch.bool))
    assert (positions == -1).sum() == 2
    assert sorted(positions[positions >= 0].tolist()) == [0, 1, 2, 3]
