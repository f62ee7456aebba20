"""EPIC-KITCHENS-100: `EPIC_100_validation.csv` annotations over extracted `rgb_frames`.

    samples = epic_samples("EPIC_100_validation.csv", root="/data/EPIC-KITCHENS")

Frames are `root/PXX/PXX_YY/rgb_frames/frame_%010d.jpg` (participant first, the default), or
`root/PXX_YY/rgb_frames/frame_%010d.jpg` with participant_first=False; any other layout through `template`,
with the fields {participant}, {video} and {frame} (e.g. "{participant}/rgb_frames/{video}/frame_{frame:010d}.jpg").
A segment is frames start_frame..stop_frame (inclusive, numbered from 1). Each Sample carries
labels {"verb", "noun"} and label = the action index verb * num_nouns + noun.
"""

from __future__ import annotations

import csv
from pathlib import Path

from vtome.data.samples import Sample
from vtome.data.splits import require_file

NUM_VERBS = 97
NUM_NOUNS = 300
PARTICIPANT_FIRST = "{participant}/{video}/rgb_frames/frame_{frame:010d}.jpg"
VIDEO_FIRST = "{video}/rgb_frames/frame_{frame:010d}.jpg"
COLUMNS = ("narration_id", "participant_id", "video_id", "start_frame", "stop_frame", "verb_class", "noun_class")


def action_index(verb: int, noun: int, num_nouns: int = NUM_NOUNS) -> int:
    """The action of a (verb, noun) pair as one index (its position in a verb-major grid)."""
    return verb * num_nouns + noun


def epic_samples(split: str | Path, root: str | Path = "", participant_first: bool = True,
                 template: str | None = None, num_nouns: int = NUM_NOUNS) -> list[Sample]:
    """One Sample per annotation row; ids are narration ids (e.g. "P01_11_0")."""
    split = require_file(split, "EPIC-KITCHENS-100 annotation csv (e.g. EPIC_100_validation.csv)")
    template = template or (PARTICIPANT_FIRST if participant_first else VIDEO_FIRST)
    samples = []
    with split.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{split}: missing columns {missing}; is this an EPIC-KITCHENS-100 annotation csv?")
        for row in reader:
            participant, video = row["participant_id"], row["video_id"]
            start, stop = int(row["start_frame"]), int(row["stop_frame"])
            verb, noun = int(row["verb_class"]), int(row["noun_class"])
            # Fill in participant and video now; the frame number stays a field for load_frames.
            pattern = str(Path(root, template.replace("{participant}", participant).replace("{video}", video)))
            samples.append(Sample(
                id=row["narration_id"], path=str(Path(pattern).parent), label=action_index(verb, noun, num_nouns),
                labels={"verb": verb, "noun": noun}, template=pattern, first=start, count=max(stop - start + 1, 0),
            ))
    return samples
