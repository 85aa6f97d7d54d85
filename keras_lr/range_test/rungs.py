"""The plan of a race's rungs: how many candidates run, to how many steps
(successive halving, at most `MAX_RUNGS` rungs)."""

import math

# A race has at most this many rungs, so its first rung is at least
# `1 / reduction**(MAX_RUNGS - 1)` of the finalists' length (a quarter,
# with reduction 2). Shorter first rungs cut the rates that are best over
# the whole length but start slower (short-horizon bias): with twelve
# candidates and four rungs the first rung was an eighth, about 20 steps.
MAX_RUNGS = 3


def rung_counts(candidates: int, reduction: int) -> list[int]:
    """How many candidates each rung runs: successive halving's counts
    (`ceil(candidates / reduction**i)` until one is left), of which the
    first rung keeps all `candidates` and the last `MAX_RUNGS - 1` rungs
    the counts successive halving ends with (a deeper first cut, not more
    and shorter rungs)."""
    counts = [candidates]
    while counts[-1] > 1:
        counts.append(math.ceil(counts[-1] / reduction))
    counts = counts[:-1] or [candidates]
    if len(counts) > MAX_RUNGS:
        counts = counts[:1] + counts[-(MAX_RUNGS - 1) :]
    return counts


def rung_plan(
    candidates: int, reduction: int, budget: int, multiple: int = 1
) -> list[dict]:
    """The rungs of a race: how many candidates run, to how many steps.

    Rung `i` runs `rung_counts(candidates, reduction)[i]` candidates to
    `base * reduction**i` steps in all (each goes on from where the last
    rung left it); `base` is the largest multiple of `multiple` (the
    model's `steps_per_execution`) that keeps the sum within `budget`.

    Raises:
        ValueError: when `budget` cannot give every rung a step.
    """
    counts = rung_counts(candidates, reduction)
    units = sum(
        n * (reduction**i - (reduction ** (i - 1) if i else 0))
        for i, n in enumerate(counts)
    )
    base = budget // units // multiple * multiple
    if base < 1:
        unit = "step" if multiple == 1 else f"{multiple} steps"
        raise ValueError(
            f"Argument `budget` is too small for {candidates} candidates "
            f"with reduction={reduction}: the race needs at least "
            f"{units * multiple} training steps ({unit} per candidate in "
            f"its first rung). Received: budget={budget!r}"
        )
    return [
        {"candidates": n, "steps": base * reduction**i}
        for i, n in enumerate(counts)
    ]
