"""How many tokens each layer merges (r per layer).

r is a count of tokens (an int) or a fraction of the initial mergeable token count (a float in (0, 0.5]).
Schedules follow the paper and ToMe: linear interpolation over the layers, truncated to integers.
"""

from __future__ import annotations

from collections.abc import Sequence

SCHEDULES = ("constant", "decreasing", "increasing")

Schedule = str | Sequence[int]


def check_r(r: int | float, max_fraction: float = 0.5) -> None:
    """Raise ValueError unless r is a non-negative int or a float in [0, max_fraction].

    max_fraction: the share of tokens that may leave in one layer: 0.5 for ToMe's alternate split, 1 - 1/gamma
    for a partition with one target in gamma tokens.
    """
    cap = f"{max_fraction:.3g}"
    if isinstance(r, bool) or not isinstance(r, int | float):
        raise ValueError(f"r must be an int (tokens per layer) or a float in (0, {cap}] (fraction); got {r!r}")
    if r < 0:
        raise ValueError(f"r must be >= 0; got {r}")
    if isinstance(r, float) and r > max_fraction:
        share = "half the tokens" if max_fraction == 0.5 else f"a {cap} share of the tokens (1 - 1/gamma)"
        raise ValueError(
            f"a fractional r must be in (0, {cap}] (at most {share} can leave in a layer); got {r}. "
            "Pass an int to give a count of tokens."
        )


def check_schedule(schedule: Schedule, num_layers: int | None = None) -> None:
    """Raise ValueError unless schedule is a known name or a list of non-negative ints (<= num_layers long)."""
    if isinstance(schedule, str):
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; use one of {', '.join(SCHEDULES)} or a list of ints")
        return
    if not isinstance(schedule, Sequence) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in schedule
    ):
        raise ValueError(f"a schedule list must hold non-negative ints (r per layer); got {schedule!r}")
    if num_layers is not None and len(schedule) > num_layers:
        raise ValueError(f"the schedule lists r for {len(schedule)} layers but the model has {num_layers}")


def tokens_to_merge(r: int | float, num_tokens: int, max_fraction: float = 0.5) -> int:
    """r as a count: a float is a fraction of num_tokens (0.1 of 3136 -> 313)."""
    check_r(r, max_fraction)
    return int(r * num_tokens) if isinstance(r, float) else r


def layer_r(
    r: int | float, schedule: Schedule, num_layers: int, num_tokens: int, max_fraction: float = 0.5
) -> list[int]:
    """r for each of num_layers layers.

    num_tokens is the mergeable token count entering layer 1 (class token excluded; per frame for divided
    space-time models); it turns a fractional r into a count. A list schedule is returned as is, padded with 0.
    max_fraction: the cap of a fractional r (see check_r).

    >>> layer_r(150, "decreasing", 12, 1568)
    [300, 272, 245, 218, 190, 163, 136, 109, 81, 54, 27, 0]
    """
    check_schedule(schedule, num_layers)
    if not isinstance(schedule, str):
        return list(schedule) + [0] * (num_layers - len(schedule))
    base = tokens_to_merge(r, num_tokens, max_fraction)
    if schedule == "constant" or num_layers == 1:
        return [base] * num_layers
    start, end = (2 * base, 0) if schedule == "decreasing" else (0, 2 * base)
    # Same float arithmetic as the paper's code (start + step * i, then truncation), so values match exactly.
    step = (end - start) / (num_layers - 1)
    return [int(start + step * i) for i in range(num_layers)]
