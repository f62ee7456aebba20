"""A generic dataset: one folder per class under `root`, each holding videos or folders of frames.

    samples = folder_samples("/data/my_clips")                         # classes in sorted order
    samples = folder_samples("/data/my_clips", model.config.label2id)  # the checkpoint's class indices
"""

from __future__ import annotations

from pathlib import Path

from vtome.data.samples import Sample
from vtome.data.splits import require_dir

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".gif")


def folder_classes(root: str | Path) -> list[str]:
    """The class folder names under root, sorted."""
    return sorted(p.name for p in require_dir(root, "dataset folder").iterdir() if p.is_dir())


def folder_samples(root: str | Path, class_to_index: dict[str, int] | None = None) -> list[Sample]:
    """Every video file (or frame folder) in a class folder; ids are `class/name`. Without `class_to_index`,
    class i is the i-th folder in sorted order."""
    classes = folder_classes(root)
    if class_to_index is None:
        class_to_index = {name: i for i, name in enumerate(classes)}
    unknown = [c for c in classes if c not in class_to_index]
    if unknown:
        raise ValueError(f"class folders {unknown[:5]} are not classes of the model")
    samples = []
    for name in classes:
        for item in sorted(Path(root, name).iterdir()):
            if item.is_dir() or item.suffix.lower() in VIDEO_SUFFIXES:
                samples.append(Sample(id=f"{name}/{item.name}", path=str(item), label=class_to_index[name]))
    return samples
