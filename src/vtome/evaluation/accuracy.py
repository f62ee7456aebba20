"""Accuracy from prediction records (see vtome.evaluation.results for their keys), in percent.

A clip that could not be read has no prediction and counts as wrong: the denominator is every clip evaluated.
"""

from __future__ import annotations


def _rate(hits: int, total: int) -> float:
    return 100.0 * hits / total if total else 0.0


def head_accuracy(records: list[dict], prefix: str = "") -> dict[str, float]:
    """{"<prefix>top1", "<prefix>top5"} for the keys <prefix>label / <prefix>pred / <prefix>top5."""
    total = len(records)
    top1 = sum(r.get(f"{prefix}pred") is not None and r[f"{prefix}pred"] == r[f"{prefix}label"] for r in records)
    top5 = sum(r[f"{prefix}label"] in (r.get(f"{prefix}top5") or []) for r in records)
    return {f"{prefix}top1": _rate(top1, total), f"{prefix}top5": _rate(top5, total)}


def accuracy(records: list[dict], epic: bool = False) -> dict:
    """top1/top5; for EPIC also verb_/noun_/action_ top1/top5 (action: verb and noun both right, the same as
    top1/top5 over action indices). Counts: evaluated, correct, failed and the failures (id, path, error), padded
    (clips with too few frames for the sampling, whose frames repeat)."""
    failures = [{"id": r["id"], "path": r.get("path", ""), "error": r["error"]} for r in records if r.get("error")]
    out: dict = head_accuracy(records)
    if epic:
        out.update(head_accuracy(records, "verb_"))
        out.update(head_accuracy(records, "noun_"))
        out["action_top1"], out["action_top5"] = out["top1"], out["top5"]
    out["evaluated"] = len(records)
    out["correct"] = sum(r.get("pred") is not None and r["pred"] == r["label"] for r in records)
    out["failed"] = len(failures)
    out["failures"] = failures
    out["padded"] = sum(bool(r.get("padded")) for r in records)
    return out
