"""Dataset names -> Samples: `load_samples("k400" | "ssv2" | "epic" | "folder", root, split, ...)`."""

from __future__ import annotations

from pathlib import Path

from vtome.data.epic import NUM_NOUNS, epic_samples
from vtome.data.folder import folder_samples
from vtome.data.k400 import k400_samples
from vtome.data.samples import Sample
from vtome.data.ssv2 import ssv2_samples

DATASETS = ("k400", "ssv2", "epic", "folder")


def load_samples(name: str, root: str | Path | None = None, split: str | Path | None = None,
                 labels: str | Path | None = None, class_to_index: dict[str, int] | None = None,
                 participant_first: bool = True, template: str | None = None,
                 num_nouns: int = NUM_NOUNS) -> list[Sample]:
    """The Samples of a dataset, in the order of its split file. Missing dataset files raise FileNotFoundError.

    root: videos / frames directory (the path prefix of the split file's paths). split: the list or annotation
    file (not used by "folder"). labels: SSv2 labels json. class_to_index: class names -> indices for K400 names
    and folders. participant_first/template/num_nouns: EPIC layout and action indexing.
    """
    root = "" if root is None else root
    if name == "k400":
        return k400_samples(split, root, class_to_index)
    if name == "ssv2":
        return ssv2_samples(split, root, labels)
    if name == "epic":
        return epic_samples(split, root, participant_first, template, num_nouns)
    if name == "folder":
        return folder_samples(root, class_to_index)
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
