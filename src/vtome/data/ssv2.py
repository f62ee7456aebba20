"""Something-Something v2: the labels json with the validation json, or a SlowFast-style frame-list csv.

    samples = ssv2_samples("something-something-v2-validation.json", root="/data/ssv2/videos")
    samples = ssv2_samples("val.csv", root="/data/ssv2/frames")       # frames listed per video

Labels json: {"Approaching something with your camera": "0", ...}. Validation json: [{"id": "74225",
"template": "Spinning [something] that quickly stops spinning", ...}, ...]; a template without brackets is its
class name. Videos are `root/<id>.webm` (or `.mp4`), or frame folders `root/<id>/` when those exist.
Frame-list csv (space separated, one header line): `original_vido_id video_id frame_id path labels`, one row per
frame, paths relative to root; a video's label comes from the labels column when it is an integer, else from
the validation json next to the csv (or next to the labels json).
"""

from __future__ import annotations

import json
from pathlib import Path

from vtome.data.samples import Sample
from vtome.data.splits import require_file

LABELS_NAME = "something-something-v2-labels.json"
VALIDATION_NAME = "something-something-v2-validation.json"
VIDEO_SUFFIXES = (".webm", ".mp4")


def _class_name(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def _find_next_to(name: str, *paths: Path | None) -> Path | None:
    for path in paths:
        if path is not None and Path(path).with_name(name).is_file():
            return Path(path).with_name(name)
    return None


def ssv2_annotation_labels(annotations: Path, labels: Path) -> dict[str, int]:
    """video id -> class index, from the validation json and the labels json."""
    classes = {name: int(index) for name, index in json.loads(labels.read_text()).items()}
    out = {}
    for entry in json.loads(annotations.read_text()):
        name = _class_name(entry["template"])
        if name not in classes:
            raise ValueError(f"{annotations}: class {name!r} of video {entry['id']} is not in {labels}")
        out[str(entry["id"])] = classes[name]
    return out


def _video_path(root: Path, video_id: str) -> Path:
    if (root / video_id).is_dir():
        return root / video_id
    for suffix in VIDEO_SUFFIXES:
        if (root / f"{video_id}{suffix}").exists():
            return root / f"{video_id}{suffix}"
    return root / f"{video_id}{VIDEO_SUFFIXES[0]}"  # missing: reported when read


def _from_json(split: Path, root: Path, labels: Path | None) -> list[Sample]:
    labels = labels or _find_next_to(LABELS_NAME, split)
    labels = require_file(labels, f"SSv2 labels json ({LABELS_NAME}, pass it with --labels)")
    ids = ssv2_annotation_labels(split, labels)
    return [Sample(id=video, path=str(_video_path(root, video)), label=label) for video, label in ids.items()]


def _from_frame_list(split: Path, root: Path, labels: Path | None) -> list[Sample]:
    videos: dict[str, list[tuple[int, str]]] = {}
    column_labels: dict[str, str] = {}
    lines = split.read_text().splitlines()
    for number, raw in enumerate(lines[1:], 2):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) < 4:
            raise ValueError(f"{split}:{number}: expected `original_vido_id video_id frame_id path labels`")
        video, frame, path = parts[0], int(parts[2]), parts[3]
        videos.setdefault(video, []).append((frame, path))
        if len(parts) > 4:
            column_labels[video] = parts[4].strip('"').split(",")[0]
    by_id: dict[str, int] = {}
    if not all(column_labels.get(v, "").isdigit() for v in videos):
        annotations = _find_next_to(VALIDATION_NAME, split, labels)
        labels = labels or _find_next_to(LABELS_NAME, split)
        annotations = require_file(annotations, f"SSv2 validation json ({VALIDATION_NAME}) next to the frame list")
        by_id = ssv2_annotation_labels(annotations, require_file(labels, f"SSv2 labels json ({LABELS_NAME})"))
    samples = []
    for video, frames in videos.items():
        label = int(column_labels[video]) if column_labels.get(video, "").isdigit() else by_id.get(video)
        if label is None:
            raise ValueError(f"{split}: no label for video {video} in the validation json")
        files = tuple(str(root / path) for _, path in sorted(frames))
        samples.append(Sample(id=video, path=str(Path(files[0]).parent), label=label, frames=files))
    return samples


def ssv2_samples(split: str | Path, root: str | Path = "", labels: str | Path | None = None) -> list[Sample]:
    """Samples of a validation json (with the labels json) or of a frame-list csv."""
    split = require_file(split, "SSv2 split file (validation json or frame-list csv)")
    labels = Path(labels) if labels else None
    if split.suffix == ".json":
        return _from_json(split, Path(root), labels)
    return _from_frame_list(split, Path(root), labels)
