"""Sources -> token and pixel groups, the per-layer trace, and drawing (sizes, one colour per group)."""

import numpy as np
import pytest
import torch
from PIL import Image

import vtome
from tiny import clip_for, tiny_motionformer, tiny_timesformer, tiny_videomae, tiny_vit, tiny_vivit, tiny_vjepa2
from vtome.reduce import source_matrix
from vtome.vis.clips import model_input, synthetic_clip
from vtome.vis.groups import assignment_from_source, compact, group_sizes, pixel_groups, token_groups
from vtome.vis.layout import token_layout
from vtome.vis.picture import merged_picture, write
from vtome.vis.render import borders, grid, render, with_title
from vtome.vis.trace import trace


def test_layouts_match_the_models_token_counts():
    for build, expected in [(tiny_vivit, 33), (tiny_videomae, 32), (tiny_timesformer, 16), (tiny_motionformer, 16),
                            (tiny_vit, 65), (tiny_vjepa2, 32)]:
        model = build()
        layout = token_layout(model)
        assert layout.num_tokens == expected
        vtome.patch(model, r=0, trace_source=True)
        with torch.no_grad():
            model(clip_for(model, batch=1))
        assert vtome.info(model)["assignments"][0].shape[1] == layout.num_tokens


def test_assignment_from_source_inverts_source_matrix():
    assignment = torch.tensor([[0, 2, 2, -1, 1, 0], [1, 1, 0, 2, -1, -1]])
    assert torch.equal(assignment_from_source(source_matrix(assignment, 3)), assignment)


def test_joint_pixels_follow_time_row_column_order():
    """Identity assignment: every pixel shows the index of the tubelet (t, row, col) that covers it."""
    layout = token_layout(tiny_vivit(frames=4, image=32))  # tube 2, 8x8 patches: 2 x 4 x 4 tokens + class token
    identity = torch.arange(layout.num_tokens)[None]
    pixels = pixel_groups(token_groups(identity, layout), layout)[0]
    assert pixels.shape == (4, 32, 32)
    for f in range(4):
        for y in range(0, 32, 3):
            for x in range(0, 32, 5):
                assert pixels[f, y, x] == 1 + (f // 2) * 16 + (y // 8) * 4 + x // 8


def test_divided_pixels_are_per_frame_groups():
    layout = token_layout(tiny_timesformer(frames=4, image=32))  # 4 x 4 patches per frame, rows = frames
    assignment = torch.arange(16).repeat(4, 1)  # each frame: token i holds patch i
    assignment[2] = 0  # frame 2: everything in one token
    pixels = pixel_groups(token_groups(assignment, layout), layout)[0]
    assert pixels.shape == (4, 32, 32)
    assert len(pixels[2].unique()) == 1
    for f in (0, 1, 3):
        assert len(pixels[f].unique()) == 16
    for f, g in [(0, 1), (0, 2), (1, 3)]:  # no group shared between frames
        assert not set(pixels[f].unique().tolist()) & set(pixels[g].unique().tolist())
    assert pixels[1, 9, 17] == 16 + 1 * 4 + 2  # frame offset 16, row 1, column 2


def test_motionformer_groups_are_per_slot_of_two_frames():
    layout = token_layout(tiny_motionformer(frames=6, image=32))  # 3 slots of 2 frames, 4 x 4 patches each
    assert (layout.rows_per_clip, layout.tube, layout.num_tokens) == (3, 2, 16)
    assignment = torch.arange(16).repeat(2 * 3, 1)  # 2 clips x 3 slots
    assignment[4] = 5  # clip 1, slot 1: one token
    pixels = pixel_groups(token_groups(assignment, layout), layout)
    assert pixels.shape == (2, 6, 32, 32)
    assert len(pixels[1, 2:4].unique()) == 1 and len(pixels[1, 0:2].unique()) == 16
    for f in range(0, 6, 2):  # both frames of a slot show the same groups; slots share none
        assert torch.equal(pixels[0, f], pixels[0, f + 1])
        assert not set(pixels[0, f].unique().tolist()) & set(pixels[0, (f + 2) % 6].unique().tolist())
    assert pixels[0, 5, 9, 17] == 2 * 16 + 1 * 4 + 2  # slot 2 (offset 32), row 1, column 2


def test_compact_and_sizes():
    groups = torch.tensor([[7, 7, -1], [3, 9, 9]])
    ids, count = compact(groups)
    assert count == 3 and ids.tolist() == [[1, 1, -1], [0, 2, 2]]
    assert group_sizes(groups).tolist() == [1, 2, 2]


def test_trace_after_each_layer_matches_token_counts_and_final_source():
    model = tiny_vivit(layers=3)
    x = clip_for(model, batch=2)
    first = trace(model, x, layer=0, r=4)
    assert torch.equal(first.assignment, torch.arange(33).expand(2, 33))
    for layer in (1, 2, 3):
        traced = trace(model, x, layer=layer, r=4)
        assert traced.tokens == [33, 29, 25, 21]
        for row in traced.assignment:
            assert len(row.unique()) == traced.tokens[layer]  # every token holds at least itself
    assert torch.equal(traced.assignment, assignment_from_source(vtome.info(model)["source"]))
    with pytest.raises(ValueError, match="layer"):
        trace(model, x, layer=4, r=4)


def test_borders_mark_both_sides_of_a_boundary():
    groups = np.zeros((1, 4, 6), dtype=np.int64)
    groups[:, :, 3:] = 1
    edge = borders(groups, width=1)
    assert edge[0, :, 2:4].all() and not edge[0, :, [0, 1, 4, 5]].any()


def test_render_and_grid_sizes(tmp_path):
    frames = synthetic_clip("shapes", 4, 32, 32)
    groups = torch.arange(4 * 32 * 32).reshape(4, 32, 32) // 64
    out = render(frames, groups, scale=3)
    assert out.shape == (4, 96, 96, 3) and out.dtype == np.uint8
    picture = grid([out, out], columns=3, gap=2)
    assert picture.shape == (2 * 2 * 98 - 2, 3 * 98 - 2, 3)  # 2 bands of (2 rows), 3 columns
    assert with_title(picture, "t").shape == (picture.shape[0] + 16, picture.shape[1], 3)
    with pytest.raises(ValueError, match="fill"):
        render(frames, groups, fill="median")


def _colours_per_group(picture, scale):
    """For each group: the set of fill colours (inner pixels) and of border colours, over all frames."""
    ids = compact(picture.groups)[0].numpy().repeat(scale, 1).repeat(scale, 2)
    edge = borders(ids, width=1)
    fills, lines = {}, {}
    for mask, table in ((~edge, fills), (edge, lines)):
        for g, colour in zip(ids[mask], picture.merged[mask], strict=True):
            table.setdefault(int(g), set()).add(tuple(colour))
    return ids, fills, lines


@pytest.mark.parametrize("build", [tiny_vivit, tiny_timesformer, tiny_motionformer])
def test_each_group_has_one_fill_and_one_border_colour_in_every_frame(build, tmp_path):
    model = build(layers=3, frames=4, image=32)
    frames = synthetic_clip("shapes", 4, 32, 32)
    picture = merged_picture(model, frames, r=5, scale=2, border=1)
    ids, fills, lines = _colours_per_group(picture, 2)
    assert all(len(c) == 1 for c in fills.values()) and all(len(c) == 1 for c in lines.values())
    frames_of = {g: {f for f in range(4) if (ids[f] == g).any()} for g in fills}
    layout = token_layout(model)
    if layout.divided:  # within one frame (Motionformer: one slot of 2 frames)
        assert all(len({f // layout.tube for f in frames}) == 1 for frames in frames_of.values())
    else:
        assert any(len(f) > 1 for f in frames_of.values())  # tubelets: groups span frames, same colour in each
    # The fill is the mean colour of the group's pixels in the clip.
    big = np.asarray(frames).repeat(2, 1).repeat(2, 2)
    for g, colours in fills.items():
        mean = big[ids == g].mean(0)
        assert np.abs(np.array(next(iter(colours))) - mean).max() <= 0.5 + 1e-9

    paths = write(picture, tmp_path / "p.png", title=None)
    with Image.open(paths[0]) as png:
        assert png.size == (4 * (64 + 2) - 2, 2 * (64 + 2) - 2)
    with Image.open(paths[1]) as gif:
        assert gif.n_frames == 4 and gif.size == (64 + 2 + 64, 64)


def test_pixels_fill_keeps_the_frames_inside_groups():
    model = tiny_videomae(layers=3)
    frames = synthetic_clip("shapes", 4, 32, 32)
    picture = merged_picture(model, frames, r=5, fill="pixels", border=1)
    inner = ~borders(compact(picture.groups)[0].numpy(), 1)
    assert np.array_equal(picture.merged[inner], frames.numpy()[inner])


def test_model_input_checks_the_size():
    model = tiny_vivit()
    with pytest.raises(ValueError, match="input size"):
        model_input(synthetic_clip("halves", 4, 40, 32), model)
