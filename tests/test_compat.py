"""compat="paper": where vtome deliberately differs from the paper's code, the paper's behaviour on request."""

import torch

import vtome
from tiny import clip_for, logits, tiny_timesformer, tiny_videomae, tiny_vivit
from vtome import reduce
from vtome.attention import attend
from vtome.matching import bipartite_match


def test_paper_hybrid_drops_the_b_token_and_keeps_the_a_tokens():
    torch.manual_seed(1)
    x, metric = torch.randn(1, 10, 4), torch.randn(1, 10, 3)
    m = bipartite_match(metric, 3)
    merge_edge = torch.tensor([[True, False, False]])  # edge 0 merges, edges 1 and 2 fall below the threshold
    dropped = reduce.dropped_b(m, merge_edge)[0]
    out, size = reduce.merge(x, None, m, drop_dst=dropped[None])
    num_unm = m.unm_idx.shape[1]
    for j in range(m.num_b):
        incoming = [2 * int(m.src_idx[0, e]) for e in range(3) if int(m.dst_idx[0, e]) == j]
        members = incoming if dropped[j] else incoming + [2 * j + 1]
        torch.testing.assert_close(out[0, num_unm + j], x[0, members].mean(0))
        assert size[0, num_unm + j, 0] == len(members)
    assert dropped.sum() >= 1  # edges 1 and 2 point somewhere: those B tokens were dropped
    # Their input patches are gone from the sources; the A tokens' are not.
    positions = reduce.new_positions(m, 10, None, dropped[None])
    for j in dropped.nonzero()[:, 0].tolist():
        assert positions[0, 2 * j + 1] == -1


def test_paper_hybrid_on_a_model_differs_from_vtome_hybrid():
    model = tiny_vivit()
    x = clip_for(model)
    vtome.patch(model, r=4, mode="hybrid", threshold=1.01, trace_source=True)
    ours = logits(model, x)
    assert (vtome.info(model)["size"] == 1).all()  # every edge below: vtome drops A tokens, nothing merges
    vtome.patch(model, r=4, mode="hybrid", threshold=1.01, trace_source=True, compat="paper")
    paper = logits(model, x)
    assert vtome.info(model)["compat"] == "paper"
    assert not torch.allclose(ours, paper)
    info = vtome.info(model)
    assert torch.equal(info["source"].sum(-1).float(), info["size"][..., 0])


def test_paper_random_patterns_are_drawn_per_clip_from_the_global_rng():
    model = tiny_vivit()
    one = clip_for(model, batch=1)
    x = one.repeat(2, 1, 1, 1, 1)  # two identical clips
    vtome.patch(model, r=6, mode="random_merge", trace_source=True)
    logits(model, x)
    source = vtome.info(model)["source"]
    assert torch.equal(source[0], source[1])  # vtome: one pattern per layer, shared by the clips
    vtome.patch(model, r=6, mode="random_merge", trace_source=True, compat="paper")
    state = torch.get_rng_state()
    logits(model, x)
    assert not torch.equal(torch.get_rng_state(), state)
    source = vtome.info(model)["source"]
    assert not torch.equal(source[0], source[1])


def test_paper_videomae_pools_with_a_plain_mean():
    model = tiny_videomae()
    seen = {}
    model.videomae.register_forward_hook(lambda m, i, o: seen.update(tokens=o.last_hidden_state))
    model.fc_norm.register_forward_hook(lambda m, i, o: seen.update(pooled=i[0]))
    vtome.patch(model, r=5, compat="paper")
    logits(model, clip_for(model))
    torch.testing.assert_close(seen["pooled"], seen["tokens"].mean(1))
    vtome.patch(model, r=5)
    logits(model, clip_for(model))
    assert not torch.allclose(seen["pooled"], seen["tokens"].mean(1))


def test_skip_first_query_leaves_the_class_row_unbiased():
    q, k, v = torch.randn(3, 2, 2, 5, 4).unbind(0)
    size = torch.tensor([[1.0, 2, 3, 1, 4], [1, 1, 5, 2, 1]])[..., None]
    biased, _ = attend(q, k, v, size, 0.5)
    plain, _ = attend(q, k, v, None, 0.5)
    mixed, _ = attend(q, k, v, size, 0.5, skip_first_query=True)
    torch.testing.assert_close(mixed[:, :, 0], plain[:, :, 0])
    torch.testing.assert_close(mixed[:, :, 1:], biased[:, :, 1:])


def test_paper_timesformer_differs_through_the_class_row():
    model = tiny_timesformer()
    x = clip_for(model)
    vtome.patch(model, r=4)
    ours = logits(model, x)
    vtome.patch(model, r=4, compat="paper")
    paper = logits(model, x)
    assert not torch.allclose(ours, paper)
