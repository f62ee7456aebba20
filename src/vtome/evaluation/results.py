"""The files of an evaluation run in OUT: predictions.jsonl (one JSON object per clip, appended as clips are
done) and metrics.json. Reading tolerates a last line cut off by an interrupted run.

predictions.jsonl keys, per clip:
    id        str        the sample id (K400: path in the split file; SSv2: video id; EPIC: narration_id)
    path      str        the video file or frame folder read
    label     int        ground-truth class (EPIC: the action, verb * num_nouns + noun)
    pred      int|null   top-1 prediction (null when the clip could not be read)
    top5      list[int]  top-5 predictions, best first ([] when unreadable; fewer with fewer classes)
    error     str        only on unreadable clips: "<ExceptionType>: <reason>"
    padded    bool       only on clips with fewer frames than the sampling needs (some frames repeat): true
    prior_source str     only with --partition motion: where the clip's motion prior came from (motion_vectors or
                         frame_difference; see vtome.motion)
  EPIC only: verb_label, verb_pred, verb_top5, noun_label, noun_pred, noun_top5 (same meanings per head)
  with --save-logits: logits  list[float]  classifier outputs, averaged over views (EPIC: verbs then nouns)
With several processes each writes predictions.rank<K>.jsonl during the run; they are merged into
predictions.jsonl (in dataset order, one line per id, the latest winning) at the start and end of every run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

PREDICTIONS = "predictions.jsonl"
METRICS = "metrics.json"
PART_GLOB = "predictions.rank*.jsonl"


def part_file(out: str | Path, rank: int) -> Path:
    """Where process `rank` appends its predictions in a distributed run."""
    return Path(out) / f"predictions.rank{rank}.jsonl"


def read_records(path: str | Path) -> list[dict]:
    """The JSON lines of `path` ([] if missing); lines that do not parse (a cut-off last line) are skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "id" in record:
            records.append(record)
    return records


def write_records(path: str | Path, records: Iterable[dict]) -> None:
    """Replace `path` with `records`, atomically (a crash leaves the old file or the new one)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    os.replace(tmp, path)


def consolidate(out: str | Path, order: list[str] | None = None) -> list[dict]:
    """Merge predictions.jsonl and any per-process part files into predictions.jsonl: one record per id (the
    latest), ids of `order` first in that order, then any others as first seen. Returns the records."""
    out = Path(out)
    parts = sorted(out.glob(PART_GLOB))
    latest: dict[str, dict] = {}
    for path in [out / PREDICTIONS, *parts]:
        for record in read_records(path):
            latest.pop(record["id"], None)  # re-insert so that the latest keeps its place last
            latest[record["id"]] = record
    if order is not None:
        rank = {sample_id: i for i, sample_id in enumerate(order)}
        ordered = sorted(latest.values(), key=lambda r: rank.get(r["id"], len(rank)))
    else:
        ordered = list(latest.values())
    if ordered or (out / PREDICTIONS).exists():
        write_records(out / PREDICTIONS, ordered)
    for path in parts:
        path.unlink()
    return ordered


class RecordWriter:
    """Appends records to a JSON-lines file, flushed line by line (an interrupted run keeps what it did)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a")

    def write(self, records: Iterable[dict]) -> None:
        for record in records:
            self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_metrics(out: str | Path, metrics: dict) -> Path:
    """Write OUT/metrics.json (atomically) and return its path."""
    path = Path(out) / METRICS
    tmp = path.with_name(METRICS + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, path)
    return path
