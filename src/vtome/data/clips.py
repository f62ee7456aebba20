"""The torch Dataset of the evaluation: Samples -> model input, with unreadable clips reported, not raised.

    dataset = ClipDataset(samples, sampler, transform, crops=1)
    item = dataset[0]   # {"id", "path", "label", "verb_label", "noun_label", "video", "error", "padded"}
    loader = DataLoader(dataset, batch_size=8, num_workers=2, collate_fn=collate)

item["video"]: float32 (V, T, 3, H, W), V = sampler.views * crops views of one clip; an empty tensor when the
clip could not be read, and then item["error"] says why ("FileNotFoundError: video not found: ..."). item["padded"]:
the clip has fewer frames than the sampler needs, so some frames repeat (see FrameSampler). With `prior_grid` (the
model's token grid, for partition="motion"), item["prior"]: float32 (V, frames, height, width), the motion prior of
every view (vtome.motion: the file's motion vectors, else the frame difference of the decoded frames), and
item["prior_source"] which of the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from vtome.data.samplers import FrameSampler
from vtome.data.samples import Sample, load_frames
from vtome.data.transforms import ClipTransform
from vtome.motion import MotionPrior, views_prior
from vtome.partition import Layout


class ClipDataset(Dataset):
    """Samples read, sampled and transformed into views of one clip each."""

    def __init__(self, samples: Sequence[Sample], sampler: FrameSampler, transform: ClipTransform, crops: int = 1,
                 backend: str | None = None, prior_grid: Layout | None = None):
        self.samples = list(samples)
        self.sampler = sampler
        self.transform = transform
        self.crops = crops
        self.backend = backend
        self.prior_grid = prior_grid

    def __len__(self) -> int:
        return len(self.samples)

    def video(self, sample: Sample) -> tuple[torch.Tensor, bool, MotionPrior | None]:
        """float32 (views * crops, T, 3, H, W) for one sample, whether frames repeat in a view (the clip is too
        short for the sampler), and the motion prior of the views (None without prior_grid); raises when it cannot
        be read."""
        wanted: list[list[int]] = []

        def indices(total: int) -> list[int]:  # every frame any view needs, read in one pass
            wanted.extend(self.sampler(total, view) for view in range(self.sampler.views))
            return sorted({i for view in wanted for i in view})

        frames = load_frames(sample, indices, backend=self.backend)
        where = {frame: row for row, frame in enumerate(sorted({i for view in wanted for i in view}))}
        per_view = [frames[[where[i] for i in view]] for view in wanted]
        views = [self.transform.spatial_views(view, self.crops) for view in per_view]
        prior = None
        if self.prior_grid is not None:
            # A video file or frame folder: its motion vectors when it has some; frame lists and numbered frames:
            # the frame difference of what was just decoded.
            path = Path(sample.path) if sample.frames is None and sample.template is None else None
            prior = views_prior(path, wanted, self.prior_grid, self.transform, self.crops, per_view, self.backend)
        return torch.cat(views), any(len(set(view)) < len(view) for view in wanted), prior

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        item = {
            "id": sample.id, "path": sample.path, "label": sample.label,
            "verb_label": sample.labels.get("verb", -1), "noun_label": sample.labels.get("noun", -1),
            "video": torch.empty(0), "error": "", "padded": False,
        }
        try:
            item["video"], item["padded"], prior = self.video(sample)
            if prior is not None:
                item["prior"], item["prior_source"] = prior.prior, prior.source
        except Exception as err:  # any unreadable clip is a result to report, never a crash
            item["error"] = f"{type(err).__name__}: {err}"
        return item


def collate(items: list[dict]) -> dict:
    """A batch: lists of ids/paths/errors, label tensors, and "video" (B_ok, V, T, 3, H, W) of the readable
    items only (None if none), with "ok" (B,) bool marking which they are and "padded" (B,) bool the clips whose
    frames repeat; with priors, "prior" (B_ok, V, frames, height, width) and "prior_source" (B,) ("" when
    unread)."""
    ok = torch.tensor([not item["error"] for item in items])
    videos = [item["video"] for item in items if not item["error"]]
    priors = [item["prior"] for item in items if not item["error"] and "prior" in item]
    return {
        "id": [item["id"] for item in items],
        "path": [item["path"] for item in items],
        "error": [item["error"] for item in items],
        "label": torch.tensor([item["label"] for item in items]),
        "verb_label": torch.tensor([item["verb_label"] for item in items]),
        "noun_label": torch.tensor([item["noun_label"] for item in items]),
        "ok": ok,
        "padded": torch.tensor([bool(item.get("padded")) for item in items]),
        "video": torch.stack(videos) if videos else None,
        "prior": torch.stack(priors) if priors else None,
        "prior_source": [item.get("prior_source", "") for item in items],
    }
