"""Whether a race's winner held: the finalists against their own earlier
scores, and the fall-back when the winner got worse.

Successive halving ranks the candidates of a rung against each other, so
a finalist that collapses in the last rung (its held-out loss back up
towards the untrained model's) still wins when the other finalist
collapsed further. `held_winner` compares each candidate with its own
earlier scores (and the score before the race) and returns a candidate
whose score held, or says that none did.
"""

import math


def _better(a: float, b: float, mode: str) -> bool:
    return a < b if mode == "min" else a > b


def _history_held(scores: list[float], initial: float, mode: str) -> bool:
    """The last score finite and no worse than any before it (the
    starting score included when it is finite): where the candidate
    ended is its best. A bump on the way that it recovered from is not a
    collapse."""
    last = scores[-1]
    if not math.isfinite(last):
        return False
    earlier = scores[:-1] + ([initial] if math.isfinite(initial) else [])
    return not any(_better(e, last, mode) for e in earlier)


def held_winner(entries: list[dict], initial_score: float, mode: str) -> dict:
    """The race's answer, from its entries (`RaceResult.entries`).

    The ranked winner is the best `"ok"` candidate of the last rung. It
    held when its last score is no worse than any of its earlier ones
    (nor than `initial_score`). If it did not, the answer falls back to the
    candidate whose scores all held and that got furthest (the latest
    rung, then the best score there); if no candidate held, the ranked
    winner stays the answer.

    Args:
        entries: The race's rows: `candidate`, `rung`, `score`, `status`.
        initial_score: The held-out score before the race.
        mode: `"min"` or `"max"`.

    Returns:
        A dict: `learning_rate` (the answer), `ranked` (the ranked
        winner), `held` (whether the answer's scores held) and `fallback`
        (`True` when the answer is not the ranked winner).
    """
    last = max(e["rung"] for e in entries)
    finalists = [
        e for e in entries if e["rung"] == last and e["status"] == "ok"
    ]
    if not finalists:
        raise ValueError("The race's last rung has no finite score.")
    ranked = finalists[0]
    for row in finalists[1:]:
        if _better(row["score"], ranked["score"], mode):
            ranked = row
    histories = {}
    for entry in sorted(entries, key=lambda e: e["rung"]):
        histories.setdefault(entry["candidate"], []).append(entry)
    held = {
        rate: _history_held([e["score"] for e in rows], initial_score, mode)
        for rate, rows in histories.items()
    }
    answer = {
        "learning_rate": ranked["candidate"],
        "ranked": ranked["candidate"],
        "held": held[ranked["candidate"]],
        "fallback": False,
    }
    if answer["held"]:
        return answer
    # The candidates that held, each at the last rung it ran. A candidate
    # cut at the first rung has one score: it never had the chance to get
    # worse, and it was cut for ranking in the worse part of its rung, so
    # it is no evidence of a rate that holds.
    best = None
    for rate, rows in histories.items():
        if not held[rate] or len(rows) < 2:
            continue
        row = rows[-1]
        if (
            best is None
            or row["rung"] > best["rung"]
            or (
                row["rung"] == best["rung"]
                and _better(row["score"], best["score"], mode)
            )
        ):
            best = row
    if best is not None:
        answer.update(learning_rate=best["candidate"], held=True, fallback=True)
    return answer
