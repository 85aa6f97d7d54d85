"""The plan of a race's rungs: how many candidates run, to how many
steps (successive halving)."""

import math


def rung_plan(
    candidates: int, reduction: int, budget: int, multiple: int = 1
) -> list[dict]:
    """The rungs of a race: how many candidates run, to how many steps.

    Rung `i` runs `ceil(candidates / reduction**i)` candidates to
    `base * reduction**i` steps in all (each goes on from where the last
    rung left it), until one is left; `base` is the largest multiple of
    `multiple` (the model's `steps_per_execution`) that keeps the sum
    within `budget`.

    Raises:
        ValueError: when `budget` cannot give every rung a step.
    """
    counts = [candidates]
    while counts[-1] > 1:
        counts.append(math.ceil(counts[-1] / reduction))
    counts = counts[:-1] or [candidates]
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
