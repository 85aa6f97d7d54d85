"""Reading a search's trials back, and summing them up.

A trial is a dict: its `trial_id`, `config`, folder (`path`), `error`
and `history`, its reports in order from Ray's `progress.csv` (appended
to across restarts and exploits, unlike `result.json`). From those:
PBT's exploits, the budget in epochs, the best trial at the end, the
trials as JSON, and the mean over seeds per method.
"""

import os

from keras_lr_experiments import _files
from keras_lr_experiments import report
from keras_lr_experiments.tune.space import METHODS

# What a trial's JSON keeps of each report.
KEPT = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "lr_multiplier",
    "iterations",
    "batch_size",
    "restored_from_trial",
    "restored_from_epoch",
    "start_learning_rate",
    "start_iterations",
    "time_total_s",
)


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_progress(trial_dir: str) -> list[dict]:
    """A trial's reports in order, from Ray's `progress.csv` (appended to
    across restarts and exploits, unlike `result.json`)."""
    path = os.path.join(trial_dir, "progress.csv")
    if not os.path.exists(path):
        return []
    return [
        {key: _number(value) for key, value in row.items()}
        for row in _files.read_csv(path)
    ]


def read_trials(result_grid) -> list[dict]:
    """Each trial of a Ray `ResultGrid`: its id, config, folder, error
    and reports in order."""
    trials = []
    for result in result_grid:
        rows = read_progress(result.path)
        trial_id = rows[0]["trial_id"] if rows else None
        trials.append(
            {
                "trial_id": trial_id,
                "config": result.config,
                "path": result.path,
                "error": None if result.error is None else str(result.error),
                "history": rows,
            }
        )
    return trials


def exploits(trial: dict) -> list[dict]:
    """The restores of a trial from another trial's checkpoint."""
    events = []
    seen = set()
    for row in trial["history"]:
        donor = row.get("restored_from_trial") or ""
        key = (
            donor,
            row.get("restored_from_epoch"),
            row.get("start_iterations"),
        )
        if donor and donor != trial["trial_id"] and key not in seen:
            seen.add(key)
            events.append(
                {
                    "epoch": int(row["restored_from_epoch"]),
                    "donor": donor,
                    "start_learning_rate": row["start_learning_rate"],
                }
            )
    return events


def budget(trials: list[dict]) -> int:
    """Epochs trained, summed over trials (reports, restarts excluded)."""
    return sum(len(t["history"]) for t in trials)


def final_score(trials: list[dict]) -> dict:
    """The best trial at the end: by the last reported `val_loss` among the
    trials that ran the most epochs."""
    longest = max(
        int(t["history"][-1]["epoch"]) for t in trials if t["history"]
    )
    finished = [
        t
        for t in trials
        if t["history"] and t["history"][-1]["epoch"] == longest
    ]
    best = min(finished, key=lambda t: t["history"][-1]["val_loss"])
    last = best["history"][-1]
    return {
        "trial_id": best["trial_id"],
        "val_loss": float(last["val_loss"]),
        "val_accuracy": float(last["val_accuracy"]),
        # The rate of its last epoch's end (PBT may have perturbed the
        # config once more after it).
        "learning_rate": float(last["learning_rate"]),
        "epochs": longest,
    }


def save_trials(path, trials: list[dict]) -> None:
    """The trials' histories as JSON (for the figure and the table)."""
    out = []
    for trial in trials:
        out.append(
            {
                "trial_id": trial["trial_id"],
                "config": {
                    k: trial["config"][k]
                    for k in ("learning_rate", "batch_size", "seed", "epochs")
                },
                "error": trial["error"],
                "history": [
                    {k: row.get(k) for k in KEPT} for row in trial["history"]
                ],
            }
        )
    _files.write_json(path, _files.json_safe(out))


def summarize(searches: list[dict]) -> dict:
    """Mean and spread (sample std) over seeds, per method."""
    table = {}
    for method in METHODS:
        rows = [s for s in searches if s["method"] == method]
        if not rows:
            continue
        loss = report.mean_std([s["best"]["val_loss"] for s in rows])
        accuracy = report.mean_std([s["best"]["val_accuracy"] for s in rows])
        table[method] = {
            "seeds": [s["seed"] for s in rows],
            "trials": [len(s["trials"]) for s in rows],
            "budget_epochs": [s["budget_epochs"] for s in rows],
            "final_val_loss_mean": loss[0],
            "final_val_loss_std": loss[1],
            "final_val_accuracy_mean": accuracy[0],
            "final_val_accuracy_std": accuracy[1],
            "best": [s["best"] for s in rows],
            "exploits": [s["exploits"] for s in rows],
            "wall_time_s": [s["wall_time_s"] for s in rows],
        }
    return table
