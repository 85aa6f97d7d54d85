"""Replays answer rules on recorded races, scored on the one-seed grid.

A race's entries (every candidate's held-out score at every rung) are
kept in `race_bank.py`'s JSON, so a rule that turns entries into an answer
(which candidate, or a rate between them) can be compared with another on
the same races without training anything: each answer is scored by the
grid's loss at that rate, interpolated linearly in log rate between grid
points (a proxy for the protocol's training; it smooths the grid's
seed noise). This is how the third round's rules were chosen, on design
settings only:

    PYTHONPATH=$PWD python benchmarks/race_bank_replay.py \\
        --grid saved_runs/range_test/race_bank_grid.json \\
        --out <a race_bank.py JSON> --part design

Rules: `recorded` (the answer the race gave when it ran, on the code of
that run), `ranked` (successive halving's winner), `held` (the fall-back of
`keras_lr.range_test.held`, as it is now), `refined` (what the race
answers now: `held`, then `keras_lr.range_test.refine.between_finalists`
when the winner held) and `finalists_gmean` (the geometric mean of the
last rung's candidates, a rule that ignores their scores, for contrast);
`held_down` (the fall-back, but only to a candidate below the winner;
the winner stays when none below held);
and `best_candidate`, the race's candidate that the grid scores best (an
oracle no rule can beat by picking a candidate).
"""

import argparse
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import race_bank  # noqa: E402
import race_bank_settings as bank  # noqa: E402

from keras_lr.range_test.held import held_winner  # noqa: E402
from keras_lr.range_test.refine import between_finalists  # noqa: E402


def grid_loss(grid, rate) -> float:
    """The grid's loss at `rate`, linear in log rate between grid points
    (the end values beyond the grid; a diverged point counts as 1e30)."""
    x = np.log(grid["grid_lrs"])
    y = np.array(grid["grid_losses"], dtype="float64")
    y = np.where(np.isfinite(y), y, 1e30)
    return float(np.interp(math.log(rate), x, y))


def answers(result) -> dict:
    entries = [dict(e, score=float(e["score"])) for e in result["entries"]]
    initial = float(result["initial_score"])
    mode = result["mode"]
    held = held_winner(entries, initial, mode)
    refined = held["learning_rate"]
    if held["held"] and not held["fallback"]:
        refined = between_finalists(entries, mode) or refined
    last = max(e["rung"] for e in entries)
    finalists = [e["candidate"] for e in entries if e["rung"] == last]
    # The fall-back restricted to rates below the ranked winner (a winner
    # that got worse is no sign that a higher rate is safer).
    below = [e for e in entries if e["candidate"] <= held["ranked"]]
    down = held_winner(below, initial, mode) if held["fallback"] else held
    if down["ranked"] != held["ranked"]:
        down = held  # the winner itself must stay the ranked one
    return {
        "recorded": float(result["learning_rate"]),
        "ranked": held["ranked"],
        "held": held["learning_rate"],
        "refined": refined,
        "finalists_gmean": float(np.exp(np.mean(np.log(finalists)))),
        "held_down": down["learning_rate"],
    }


def near_best(grid, rate) -> bool:
    """Within 3x of a grid rate whose loss is within 10% of the best."""
    best = grid["best_loss"]
    return any(
        abs(math.log(rate / r)) <= math.log(3.0) + 1e-9
        for r, loss in zip(grid["grid_lrs"], grid["grid_losses"])
        if loss <= 1.1 * best
    )


def replay(grids, out, names) -> dict:
    tally = {}
    for name in names:
        grid = grids[name]
        for race in out[name]["races"]:
            rates = answers(race["result"])
            # An oracle, for reference: the candidate the grid scores best.
            rates["best_candidate"] = min(
                race["result"]["candidates"],
                key=lambda rate: grid_loss(grid, rate),
            )
            for rule, rate in rates.items():
                row = tally.setdefault(rule, {"within": 0, "near": 0, "n": 0})
                loss = grid_loss(grid, rate)
                row["within"] += loss <= 1.1 * grid["best_loss"]
                row["near"] += near_best(grid, rate)
                row["n"] += 1
    return tally


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", required=True)
    parser.add_argument("--out", required=True, help="race_bank.py's JSON")
    parser.add_argument("--part", choices=race_bank.PARTS, required=True)
    args = parser.parse_args()
    grids, out = race_bank._load(args.grid), race_bank._load(args.out)
    names = [n for n in bank.split()[args.part] if n in out and n in grids]
    print(
        f"{args.part}: {len(names)} settings, scored on the grid "
        "interpolated in log rate"
    )
    for rule, row in replay(grids, out, names).items():
        print(
            f"{rule:16s} within 10% of the best fixed rate's loss on "
            f"{row['within']} of {row['n']} races; within 3x of a near-best "
            f"rate on {row['near']} of {row['n']}"
        )


if __name__ == "__main__":
    main()
