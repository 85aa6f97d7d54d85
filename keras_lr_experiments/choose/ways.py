"""The ways of choosing the rate, each trained within the same budget.

Every way of `WAYS` trains the workload's model from the seed's starting
weights on the seed's batches (`loop.batch_indices`), with AdamW
(Keras' defaults but the rate) unless it says otherwise. A search spends
steps out of the budget first; the training at its answer gets the rest.

- `keras_default`: AdamW at Keras' default rate, 0.001.
- `article_adam`: Adam at 0.001 (the seed article's).
- `valley`: the range test, then constant at its valley reading.
- `valley_one_cycle`: the same range test, then one-cycle peaking at the
  valley (fastai's `fit_one_cycle`: `pct_start` 0.25, `div` 25, final
  `div` 1e5).
- `race`: `keras_lr.choose_learning_rate`, then constant at its pick.
- `race_wsd`: the same race, then warmup-stable-decay peaking at the
  pick (10% warmup, 20% 1-sqrt cooldown).
- `pbt`: Ray's PBT, population 4; its best final trial.
- `asha`: Ray's ASHA; its best final trial.
- `schedule_free`: ScheduleFreeAdamW at its default rate, 0.0025.
- `grid`: 19 fixed rates, the whole budget each (19x); the best final
  validation loss.

A record holds the way's curve: after every `eval_every` steps of
training, `[steps spent so far, search included, val_loss, test_loss,
test metric]`, and its `final` point.
"""

import time
import warnings

import keras
import numpy as np

import keras_lr
from keras_lr_experiments.choose import loop

WAYS = (
    "keras_default",
    "article_adam",
    "valley",
    "valley_one_cycle",
    "race",
    "race_wsd",
    "pbt",
    "asha",
    "schedule_free",
    "grid",
)
LABELS = {
    "keras_default": "AdamW at Keras' default 0.001",
    "article_adam": "Adam at 0.001 (seed article)",
    "valley": "range test valley, constant",
    "valley_one_cycle": "valley as one-cycle peak",
    "race": "race, then its pick",
    "race_wsd": "race pick as WSD peak",
    "pbt": "PBT (Ray Tune, population 4)",
    "asha": "ASHA (Ray Tune)",
    "schedule_free": "schedule-free AdamW, default 0.0025",
    "grid": "best of a 19-rate grid (19x budget)",
}
RAY_WAYS = ("pbt", "asha")
LOCAL_WAYS = tuple(w for w in WAYS if w not in RAY_WAYS + ("grid",))
# Which search each local way needs; ways sharing one run it once.
SEARCH_OF = {
    "valley": "range_test",
    "valley_one_cycle": "range_test",
    "race": "race",
    "race_wsd": "race",
}


class Context:
    """One process's compiled models for one workload: the loop trainers
    and the counting model the searches run on."""

    def __init__(self, workload, counter):
        self.workload = workload
        self.counter = counter
        self.trainers = {}
        self.inits = {}
        inputs, outputs = workload.build_model()
        self.search_model = counter.model(inputs, outputs)
        self.search_model.compile(
            optimizer=loop.make_optimizer("adamw", 1e-3),
            loss=workload.loss,
            jit_compile=False,
        )

    def trainer(self, optimizer: str) -> loop.Trainer:
        if optimizer not in self.trainers:
            self.trainers[optimizer] = loop.Trainer(self.workload, optimizer)
        return self.trainers[optimizer]

    def init(self, seed: int) -> list:
        if seed not in self.inits:
            self.inits[seed] = loop.initial_weights(self.workload, seed)
        return self.inits[seed]


def train_curve(context, optimizer, seed, rates, offset, eval_every) -> dict:
    """Trains `len(rates)` steps from the seed's start at `rates`;
    returns the steps counted and the curve (steps offset by the
    search's)."""
    trainer = context.trainer(optimizer)
    trainer.reset(context.init(seed))
    steps = len(rates)
    indices = loop.batch_indices(len(context.workload.y_train), steps, seed)
    metric = "test_" + context.workload.metric
    curve = []
    done = 0
    while done < steps:
        n = min(eval_every, steps - done)
        trainer.train(indices[done : done + n], rates[done : done + n])
        done += n
        e = trainer.evaluate()
        curve.append(
            [offset + trainer.steps, e["val_loss"], e["test_loss"], e[metric]]
        )
    return {"trained": trainer.steps, "curve": curve}


def schedule_values(schedule, steps: int) -> np.ndarray:
    """A `keras_lr` schedule's rate at steps 0 .. `steps - 1`."""
    values = schedule(keras.ops.arange(steps, dtype="float32"))
    return np.asarray(keras.ops.convert_to_numpy(values), "float64")


def search(context, kind: str, seed: int, budget) -> dict:
    """The range test or the race from the seed's start; the steps it
    trained (counted), its answer and its warnings."""
    model = context.search_model
    model.set_weights(context.init(seed))
    w = context.workload
    low, high = budget.range_test_range
    before = context.counter.count
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if kind == "range_test":
            result = keras_lr.find_learning_rate(
                model,
                w.x_train,
                w.y_train,
                batch_size=loop.BATCH_SIZE,
                start_lr=low,
                end_lr=high,
                num_steps=budget.range_test_steps,
                seed=seed,
                warn=False,
            )
            rate = result.suggestion("valley")
        else:
            result = keras_lr.choose_learning_rate(
                model,
                w.x_train,
                w.y_train,
                validation_data=(w.x_val, w.y_val),
                batch_size=loop.BATCH_SIZE,
                budget=budget.race_budget,
                candidates=budget.race_candidates,
                num_steps=budget.range_test_steps,
                start_lr=low,
                end_lr=high,
                seed=seed,
            )
            rate = result.learning_rate
    return {
        "steps": context.counter.count - before,
        "learning_rate": float(rate),
        # The library's own warnings (the race's winner at an edge of its
        # bracket); `catch_warnings` also catches other threads' (Ray's).
        "warnings": [
            str(c.message) for c in caught if c.category is UserWarning
        ],
    }


def run_local_way(context, way: str, seed: int, budget, found=None) -> dict:
    """One local way (`LOCAL_WAYS`) for one seed; `found` the result of
    its search (`search`) where it has one."""
    start = time.monotonic()
    search_steps = 0
    notes = []
    optimizer = "adamw"
    if way in SEARCH_OF:
        search_steps = found["steps"]
        notes = list(found["warnings"])
        rate = found["learning_rate"]
    elif way == "article_adam":
        optimizer, rate = "adam", 1e-3
    elif way == "schedule_free":
        optimizer, rate = "schedule_free_adamw", 0.0025
    else:
        rate = 1e-3
    steps = budget.steps - search_steps
    if way == "valley_one_cycle":
        rates = schedule_values(
            keras_lr.schedules.OneCycle(
                rate,
                total_steps=steps,
                pct_start=0.25,
                div_factor=25.0,
                final_div_factor=1e5,
            ),
            steps,
        )
    elif way == "race_wsd":
        warmup = round(0.1 * steps)
        decay = round(0.2 * steps)
        rates = schedule_values(
            keras_lr.schedules.WarmupStableDecay(
                rate,
                warmup_steps=warmup,
                stable_steps=steps - warmup - decay,
                decay_steps=decay,
            ),
            steps,
        )
    else:
        rates = np.full(steps, rate)
    run = train_curve(
        context, optimizer, seed, rates, search_steps, budget.eval_every
    )
    return _record(
        way,
        context.workload,
        seed,
        rate,
        search_steps,
        run["trained"],
        run["curve"],
        notes,
        time.monotonic() - start,
    )


def run_grid_rate(context, rate: float, seed: int, budget) -> dict:
    """One rate of the grid reference: the whole budget at `rate`."""
    start = time.monotonic()
    run = train_curve(
        context,
        "adamw",
        seed,
        np.full(budget.steps, rate),
        0,
        budget.eval_every,
    )
    record = _record(
        "grid",
        context.workload,
        seed,
        rate,
        0,
        run["trained"],
        run["curve"],
        [],
        time.monotonic() - start,
    )
    return record


def grid_rates(budget) -> list[float]:
    low, high = budget.grid_range
    exponents = np.linspace(np.log10(low), np.log10(high), budget.grid_rates)
    return [float(10.0**e) for e in exponents]


def population_record(way, workload, seed, found: dict, seconds) -> dict:
    """PBT's or ASHA's record from every result Ray took, in order: the
    answer at each report is the trial whose latest report has the best
    validation loss; the steps are every trial's, summed."""
    latest = {}
    curve = []
    spent = 0
    for result in found["results"]:
        spent += result["trained"]
        latest[result["trial"]] = result
        best = min(latest.values(), key=lambda r: _finite(r["val_loss"]))
        curve.append(
            [
                spent,
                best["val_loss"],
                best["test_loss"],
                best["test_" + workload.metric],
            ]
        )
    best = min(latest.values(), key=lambda r: _finite(r["val_loss"]))
    record = _record(
        way,
        workload,
        seed,
        best["learning_rate"],
        spent,
        0,
        curve,
        [],
        seconds,
    )
    record["trials"] = len(latest)
    record["results"] = found["results"]
    return record


def _finite(value) -> float:
    value = float(value)
    return value if np.isfinite(value) else float("inf")


def _record(way, workload, seed, rate, search, trained, curve, notes, seconds):
    last = curve[-1] if curve else [0, None, None, None]
    return {
        "way": way,
        "workload": workload.name,
        "seed": seed,
        "learning_rate": float(rate),
        "search_steps": int(search),
        "train_steps": int(trained),
        "steps": int(search + trained),
        "curve": [[int(c[0])] + [_json_float(v) for v in c[1:]] for c in curve],
        "final": {
            "val_loss": _json_float(last[1]),
            "test_loss": _json_float(last[2]),
            "test_" + workload.metric: _json_float(last[3]),
        },
        "notes": notes,
        "wall_time_s": round(seconds, 3),
    }


def _json_float(value):
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None
