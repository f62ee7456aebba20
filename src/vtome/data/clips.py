"""The torch Dataset of the evaluation: Samples -> model input, with unreadable clips reported, not raised.

    dataset = ClipDataset(samples, sampler, transform, crops=1)
    item = dataset[0]   # {"id", "path", "label", "verb_label", "noun_label", "video", "error", "padded"}
    loader = DataLoader(dataset, batch_size=8, num_workers=2, collate_fn=collate)

item["video"]: float32 (V, T, 3, H, W), V = sampler.views * crops views of one clip; an empty tensor when the
clip could not be read, and then item["error"] says why ("FileNotFoundError: video not found: ..."). item["padded"]:
the clip has fewer frames than the sampler needs, so some frames repeat (see FrameSampler).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from vtome.data.samplers import FrameSampler
from vtome.data.samples import Sample, load_frames
from vtome.data.transforms import ClipTransform


class ClipDataset(Dataset):
    """Samples read, sampled and transformed into views of one clip each."""

    def __init__(self, samples: Sequence[Sample], sampler: FrameSampler, transform: ClipTransform, crops: int = 1,
                 backend: str | None = None):
        self.samples = list(samples)
        self.sampler = sampler
        self.transform = transform
        self.crops = crops
        self.backend = backend

    def __len__(self) -> int:
        return len(self.samples)

    def video(self, sample: Sample) -> tuple[torch.Tensor, bool]:
        """float32 (views * crops, T, 3, H, W) for one sample, and whether frames repeat in a view (the clip is too
        short for the sampler); raises when it cannot be read."""
        wanted: list[list[int]] = []

        def indices(total: int) -> list[int]:  # every frame any view needs, read in one pass
            wanted.extend(self.sampler(total, view) for view in range(self.sampler.views))
            return sorted({i for view in wanted for i in view})

        frames = load_frames(sample, indices, backend=self.backend)
        where = {frame: row for row, frame in enumerate(sorted({i for view in wanted for i in view}))}
        views = [self.transform.spatial_views(frames[[where[i] for i in view]], self.crops) for view in wanted]
        return torch.cat(views), any(len(set(view)) < len(view) for view in wanted)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        item = {
            "id": sample.id, "path": sample.path, "label": sample.label,
            "verb_label": sample.labels.get("verb", -1), "noun_label": sample.labels.get("noun", -1),
            "video": torch.empty(0), "error": "", "padded": False,
        }
        try:
            item["video"], item["padded"] = self.video(sample)
        except Exception as err:  # any unreadable clip is a result to report, never a crash
            item["error"] = f"{type(err).__name__}: {err}"
        return item


def collate(items: list[dict]) -> dict:
    """A batch: lists of ids/paths/errors, label tensors, and "video" (B_ok, V, T, 3, H, W) of the readable
    items only (None if none), with "ok" (B,) bool marking which they are and "padded" (B,) bool the clips whose
    frames repeat."""
    ok = torch.tensor([not item["error"] for item in items])
    videos = [item["video"] for item in items if not item["error"]]
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
    }
