"""The paper's findings (Sec. 4.3), checked on the demo's results: do they hold on the testbed?

Each check looks at the constant-schedule rows of every (model, dataset) pair and says in how many pairs the
finding holds. Results: as for table.table_rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from vtome.testbed.models import DIVIDED, JOINT
from vtome.testbed.table import MODEL_NAMES


@dataclass
class Finding:
    claim: str
    held: int  # pairs (or comparisons) where it holds
    total: int
    detail: str
    tied: int = 0  # pairs where the two sides score the same (e.g. both at 100%): neither for nor against

    @property
    def holds(self) -> bool:
        return self.total > 0 and self.held == self.total


def _top1(results: list[dict]) -> dict[tuple[str, str, str], float]:
    """(model, dataset, reduction) -> top-1 of the constant-schedule rows (the baseline under "-")."""
    return {(r["model"], r["dataset"], r["reduction"]): r["top1"] for r in results if r["schedule"] == "constant"}


def _pairs(top1: dict) -> list[tuple[str, str]]:
    return sorted({(m, d) for m, d, _ in top1})


def _detail(lost: list[str], tied: list[str]) -> str:
    parts = (["not in " + "; ".join(lost)] if lost else []) + (["tied in " + "; ".join(tied)] if tied else [])
    return ". ".join(parts)


def beats(top1: dict, winner: str, loser: str) -> Finding:
    pairs = [p for p in _pairs(top1) if (*p, winner) in top1 and (*p, loser) in top1]
    text = {p: f"{MODEL_NAMES[p[0]]} {p[1]}: {top1[(*p, winner)]:.1f} vs {top1[(*p, loser)]:.1f}" for p in pairs}
    lost = [text[p] for p in pairs if top1[(*p, winner)] < top1[(*p, loser)]]
    tied = [text[p] for p in pairs if top1[(*p, winner)] == top1[(*p, loser)]]
    held = len(pairs) - len(lost) - len(tied)
    return Finding(f"{winner} beats {loser}", held, len(pairs), _detail(lost, tied), len(tied))


def _random_merge_worst(top1: dict) -> Finding:
    pairs = [p for p in _pairs(top1) if (*p, "random merge") in top1]
    lost, tied = [], []
    for m, d in pairs:
        others = {k[2]: v for k, v in top1.items() if k[:2] == (m, d) and k[2] not in ("-", "random merge")}
        if not others:
            continue
        mine, worst = top1[(m, d, "random merge")], min(others, key=others.get)
        if mine >= others[worst]:
            text = f"{MODEL_NAMES[m]} {d}: random merge {mine:.1f}, {worst} {others[worst]:.1f}"
            (tied if mine == others[worst] else lost).append(text)
    return Finding("random merge is the worst reduction", len(pairs) - len(lost) - len(tied), len(pairs),
                   _detail(lost, tied), len(tied))


def _divided_loses_more(top1: dict, dataset: str = "temporal") -> Finding:
    """Every (divided, joint) pair of models: does the divided one lose more top-1 to merging on the set?"""

    def loss(model: str) -> float | None:
        base, merged = top1.get((model, dataset, "-")), top1.get((model, dataset, "merge"))
        return None if base is None or merged is None else base - merged

    divided = {m: loss(m) for m in DIVIDED if loss(m) is not None}
    joint = {m: loss(m) for m in JOINT if loss(m) is not None}
    names = ", ".join(MODEL_NAMES[m] for m in divided or DIVIDED)
    claim = f"divided space-time ({names}) loses more to merging on the {dataset} set than joint space-time"
    if not divided or not joint:
        return Finding(claim, 0, 0, "not evaluated")
    changes = ", ".join(f"{MODEL_NAMES[m]} {-v:+.1f}" for m, v in {**divided, **joint}.items())
    pairs = [(d, j) for d in divided for j in joint]
    lost = [f"{MODEL_NAMES[d]} vs {MODEL_NAMES[j]}" for d, j in pairs if divided[d] <= joint[j]]
    detail = f"top-1 change with merging: {changes}" + (f"; not for {', '.join(lost)}" if lost else "")
    return Finding(claim, len(pairs) - len(lost), len(pairs), detail)


def check_findings(results: list[dict]) -> list[Finding]:
    """merge > drop, merge > random merge, random merge worst, divided loses more on the temporal set."""
    top1 = _top1(results)
    return [
        beats(top1, "merge", "drop"),
        beats(top1, "merge", "random merge"),
        _random_merge_worst(top1),
        _divided_loses_more(top1),
    ]
