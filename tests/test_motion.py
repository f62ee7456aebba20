"""Motion priors (vtome.motion_prior) and the motion partition they drive, on a clip with one moving square."""

import numpy as np
import pytest
import torch

import vtome
from clipdata import FRAMES, HEIGHT, LEFT, SIDE, TOP, WIDTH, square_clip, write_frames, write_mjpeg, write_mp4
from tiny import logits, tiny_timesformer, tiny_videomae
from vtome.data.samplers import FrameSampler, default_sampler
from vtome.motion import paint


def square_cover(model, margin: int = 0) -> torch.Tensor:
    """(frames', 8, 8) bool: the tokens whose tubelet and patch the square (grown by `margin` px) touches, from the
    clip's geometry: the sampled frames, VideoMAE's centre crop of 64 x 64 from 64 x 96 (columns 16..80), 8 px
    patches."""
    sampled = default_sampler(model)(FRAMES)
    tube = model.config.tubelet_size
    cover = torch.zeros(len(sampled) // tube, HEIGHT // 8, HEIGHT // 8, dtype=torch.bool)
    for i, t in enumerate(sampled):
        top, bottom = max(TOP - margin, 0), TOP + SIDE + margin  # rows [top, bottom), columns [left, right)
        left = LEFT + t - (WIDTH - HEIGHT) // 2 - margin
        right = left + SIDE + 2 * margin
        cover[i // tube, top // 8:(bottom - 1) // 8 + 1, max(left, 0) // 8:(right - 1) // 8 + 1] = True
    return cover


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("motion")
    frames = square_clip()
    return {"mp4": write_mp4(root / "square.mp4", frames), "mjpeg": write_mjpeg(root / "square.avi", frames),
            "folder": write_frames(root / "square", frames, pattern="{:03d}.png"), "frames": frames}


def assert_square_is_highest(prior: torch.Tensor, model) -> None:
    """The highest value of every slot is on the square; tokens a 16 px block or more away hold next to nothing."""
    cover, near = square_cover(model), square_cover(model, margin=16)
    assert prior.shape == (1, *cover.shape)
    for slot in range(cover.shape[0]):
        assert prior[0, slot][cover[slot]].max() == prior[0, slot].max(), f"slot {slot}: the maximum is off the square"
    on = prior[0][cover].mean()
    assert on > 5 * prior[0][~cover].mean()
    assert prior[0][~near].max() < 0.1 * on


def test_motion_vectors_are_highest_on_the_square(clips):
    model = tiny_videomae(frames=8, image=64)
    found = vtome.motion_prior(clips["mp4"], model)
    assert found.source == "motion_vectors"
    assert_square_is_highest(found.prior, model)
    # 1 px a frame at VideoMAE's scale 1: the square's tokens hold about 1 (the codec's half-pel vectors).
    assert 0.5 < found.prior[0][square_cover(model)].max() < 3


@pytest.mark.parametrize("kind", ["mjpeg", "folder", "frames"])
def test_frame_difference_without_vectors(clips, kind):
    model = tiny_videomae(frames=8, image=64)
    video = torch.from_numpy(clips["frames"][default_sampler(model)(FRAMES)]) if kind == "frames" else clips[kind]
    found = vtome.motion_prior(video, model)
    assert found.source == "frame_difference"
    assert_square_is_highest(found.prior, model)


def test_frame_difference_by_hand():
    # Two frames, the second brighter by 30 levels in one 8 x 8 patch: that patch's token holds 30 (in both
    # frames: the first takes the second's difference), every other token 0.
    model = tiny_timesformer(frames=2, image=32)  # tubelet 1, 4 x 4 patches, no resize (VideoMAE-like defaults)
    frames = torch.full((2, 32, 32, 3), 100, dtype=torch.uint8)
    frames[1, 8:16, 16:24] += 30
    prior = vtome.motion_prior(frames, model).prior
    expected = torch.zeros(1, 2, 4, 4)
    expected[0, :, 1, 2] = 30
    torch.testing.assert_close(prior, expected, atol=1e-3, rtol=0)
    # The model's float input gives the same numbers (converted back to levels), for every clip of a batch.
    from vtome.data.transforms import clip_transform

    x = clip_transform(model)(frames)
    batch = vtome.motion_prior(torch.stack([x, x.flip(0)]), model).prior
    torch.testing.assert_close(batch[0], expected[0], atol=1e-3, rtol=0)
    torch.testing.assert_close(batch[1], expected[0], atol=1e-3, rtol=0)


def test_paint_blocks_by_hand():
    fields = [("source", "i4"), ("w", "u1"), ("h", "u1"), ("src_x", "i2"), ("src_y", "i2"), ("dst_x", "i2"),
              ("dst_y", "i2"), ("flags", "u8"), ("motion_x", "i4"), ("motion_y", "i4"), ("motion_scale", "u2")]
    vectors = np.array([(-1, 16, 16, 0, 0, 8, 8, 0, 12, 16, 4),     # 16 x 16 at the top left: length 5
                        (-1, 8, 8, 0, 0, 20, 4, 0, 3, 0, 1),        # 8 x 8 at columns 16..24, rows 0..8: 3
                        (1, 8, 8, 0, 0, 20, 4, 0, 0, -8, 2)],       # the same block's backward vector: 4
                       dtype=fields)
    canvas = paint(vectors, 20, 30)
    expected = np.zeros((20, 30), np.float32)
    expected[:16, :16] = 5
    expected[:8, 16:24] = 4
    np.testing.assert_allclose(canvas, expected)


def test_prior_per_temporal_view_and_per_frame_for_divided_models(clips):
    divided = tiny_timesformer(frames=8, image=64)
    found = vtome.motion_prior(clips["mp4"], divided)
    assert found.prior.shape == (1, 8, 8, 8)  # one value per patch of every frame
    views = vtome.motion_prior(clips["mp4"], divided, sampler=FrameSampler(8, rate=2, views=3))
    assert views.prior.shape == (3, 8, 8, 8)


def motion_targets(model, x, prior, seed=0) -> torch.Tensor:
    """(batch, count) the layer-1 indices of layer 1's targets under partition="motion"."""
    vtome.patch(model, r=100, partition="motion", gamma=4, seed=seed, trace_source=True)
    vtome.set_prior(model, prior)
    logits(model, x)
    count = vtome.info(model)["targets"][0]
    return vtome.info(model)["anchors"][1][:, -count:]  # targets come last, anchored at their own index


@pytest.mark.parametrize("kind", ["mp4", "mjpeg"])
def test_motion_partition_keeps_the_square_more_often_than_chance(clips, kind):
    model = tiny_videomae(frames=8, image=64, layers=1)
    from vtome.data.transforms import clip_transform

    x = clip_transform(model)(torch.from_numpy(clips["frames"][default_sampler(model)(FRAMES)]))[None]
    prior = vtome.motion_prior(clips[kind], model).prior
    cover = square_cover(model).flatten()
    chance = cover.float().mean().item()  # the square's share of the tokens: a uniform draw's share of targets
    shares = [cover[motion_targets(model, x, prior, seed)].float().mean().item() for seed in range(10)]
    assert sum(shares) / len(shares) > 1.5 * chance
    # Same seed, same partition; another seed, another one.
    assert torch.equal(motion_targets(model, x, prior, 3), motion_targets(model, x, prior, 3))
    assert not torch.equal(motion_targets(model, x, prior, 3), motion_targets(model, x, prior, 4))


def test_motion_partition_does_not_depend_on_the_batch(clips):
    model = tiny_videomae(frames=8, image=64, layers=1)
    from vtome.data.transforms import clip_transform

    x = clip_transform(model)(torch.from_numpy(clips["frames"][default_sampler(model)(FRAMES)]))[None]
    prior = vtome.motion_prior(clips["mp4"], model).prior
    alone = motion_targets(model, x, prior)
    other = torch.rand_like(prior) * 3
    together = motion_targets(model, torch.cat([torch.randn_like(x), x]), torch.cat([other, prior]))
    assert torch.equal(together[1:], alone)


def test_bad_inputs(clips, tmp_path):
    model = tiny_videomae(frames=8, image=64)
    with pytest.raises(FileNotFoundError):
        vtome.motion_prior(tmp_path / "missing.mp4", model)
    with pytest.raises(ValueError, match="the model takes 8"):
        vtome.motion_prior(torch.zeros(4, 64, 96, 3, dtype=torch.uint8), model)
    with pytest.raises(ValueError, match="video model"):
        from tiny import tiny_vit

        vtome.motion_prior(clips["mp4"], tiny_vit())
    vtome.patch(model, r=10, partition="motion")
    with pytest.raises(ValueError, match="prior must be"):
        vtome.set_prior(model, torch.zeros(1, 8, 8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no accelerator on this machine")
def test_motion_on_an_accelerator_matches_cpu():
    from vtome.data.transforms import clip_transform

    model = tiny_videomae(frames=8, image=64, layers=2)
    x = clip_transform(model)(torch.from_numpy(square_clip()[default_sampler(model)(FRAMES)]))[None]
    results = []
    for device in ("cpu", "cuda"):
        model, x = model.to(device), x.to(device)
        prior = vtome.motion_prior(x, model).prior  # from the model's input, on its device
        assert prior.device.type == device
        vtome.patch(model, r=0.5, partition="motion", gamma=4, trace_source=True)
        vtome.set_prior(model, prior)
        results.append((logits(model, x).cpu(), prior.cpu(), [a.cpu() for a in vtome.info(model)["anchors"]]))
    (cpu_logits, cpu_prior, cpu_anchors), (gpu_logits, gpu_prior, gpu_anchors) = results
    torch.testing.assert_close(gpu_prior, cpu_prior, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(gpu_logits, cpu_logits, atol=1e-4, rtol=1e-4)
    assert all(torch.equal(a, b) for a, b in zip(gpu_anchors, cpu_anchors, strict=True))  # the same targets
