"""The race: a range test that ends in successive halving of candidates.

No reading of a range-test curve suits every optimizer (our bank of ten
settings: the best fixed rate sits near where the curve turns up for
plain SGD and well before it for Adam). `choose_learning_rate` uses the
curve for what it is good at, a bracket (from where the loss starts to
fall to where it diverges), and lets training decide inside it:

1. The range test on the training data (`find_learning_rate`).
2. `candidates` rates, log-spaced across the bracket with the curve's
   `valley` and `steepest` readings among them, each trained from the same
   starting state (restored bitwise) on the same batches and scored on
   held-out data. The better `1 / reduction` go on training from where
   they stopped, each rung `reduction` times longer than the last, until
   one is left or the `budget` of training steps is spent.

The model is restored bitwise afterwards, whatever happened.
"""

import dataclasses
import json
import math
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_lr import _checks
from keras_lr import snapshot
from keras_lr.callbacks._rules import resolve_mode
from keras_lr.callbacks._rules import say
from keras_lr.control import rate_controller
from keras_lr.range_test.callback import check_compiled
from keras_lr.range_test.find import _is_array_data
from keras_lr.range_test.find import _num_samples
from keras_lr.range_test.find import _sweep_indices
from keras_lr.range_test.find import _take
from keras_lr.range_test.find import find_learning_rate
from keras_lr.range_test.result import RangeTestResult

# The bracket starts where the smoothed loss has fallen by this fraction of
# its whole fall (from its highest point after the settling tenth of the
# sweep to its lowest), and at most this many decades below its top.
FALL_FRACTION = 0.1
MAX_DECADES = 3.0
# The curve readings put among the candidates.
READINGS = ("valley", "steepest")


# The bracket ---------------------------------------------------------------


def _run_bracket(run: RangeTestResult) -> tuple[float, float]:
    lrs = np.asarray(run.learning_rates, dtype=np.float64)
    losses = np.asarray(run.smoothed_losses, dtype=np.float64)
    finite = np.isfinite(losses)
    if not finite.any():
        raise ValueError(
            "The range test recorded no finite loss, so it gives no "
            "bracket to race in: lower `start_lr`."
        )
    last_finite = int(np.flatnonzero(finite)[-1])
    lowest = int(np.argmin(np.where(finite, losses, np.inf)))
    settle = min(losses.size // 10, lowest)
    top_index = settle + int(np.argmax(losses[settle : lowest + 1]))
    top, bottom = losses[top_index], losses[lowest]
    if top - bottom > 1e-3 * abs(top):
        level = top - FALL_FRACTION * (top - bottom)
        low = lrs[top_index + int(np.argmax(losses[top_index:] <= level))]
        high = lrs[lowest]
    else:
        # The loss never fell: up to where it rises 2% above its start.
        rise = np.flatnonzero(
            ~finite | (losses > losses[0] + 0.02 * abs(losses[0]))
        )
        high = lrs[rise[0]] if rise.size else lrs[last_finite]
        low = lrs[0]
    low = max(low, high / 10**MAX_DECADES)
    return float(low), float(max(high, low))


def bracket(result: RangeTestResult) -> tuple[float, float]:
    """The rates a race runs across: `(low, high)`.

    `high` is where the loss starts to turn up: the rate of the lowest
    smoothed loss. `low` is where the loss starts to fall: where the
    smoothed loss has fallen by a tenth of its whole fall (from its
    highest point after the first tenth of the sweep to its lowest), but
    at most `MAX_DECADES` (3) decades below `high`: a rate 1000x below the
    turn trains too slowly to win a race. A curve that never falls gives
    the 3 decades below where it rises 2% above its start (or below the
    last rate). With repeats, the union over the runs.
    """
    pairs = [_run_bracket(run) for run in result.runs]
    return min(p[0] for p in pairs), max(p[1] for p in pairs)


def candidate_rates(result: RangeTestResult, count: int) -> np.ndarray:
    """`count` rates log-spaced across `bracket(result)`, with the curve's
    valley and steepest readings in place of the nearest of them."""
    low, high = bracket(result)
    rates = np.geomspace(low, high, count) if high > low else np.full(1, low)
    for method in READINGS:
        try:
            reading = result.suggestion(method)
        except ValueError:
            continue
        if low < reading < high and count > 2:
            inner = np.abs(np.log(rates[1:-1] / reading))
            rates[1 + int(np.argmin(inner))] = reading
    return np.unique(rates)


# The plan of rungs ---------------------------------------------------------


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


# The result ----------------------------------------------------------------


@dataclasses.dataclass
class RaceResult:
    """What `choose_learning_rate` found, and the whole race behind it.

    Attributes:
        learning_rate: The winner: the highest rate it ran at during the
            race (with a float rate, simply its rate).
        multiplier: The factor on the model's compiled rate (a float or a
            schedule) that the winner is; `apply(model)` multiplies the
            model's rate by it.
        range_test: The stage-1 `keras_lr.RangeTestResult`.
        bracket: `(low, high)`, the rates raced across.
        candidates: The rates raced, ascending.
        entries: One dict per candidate and rung: `candidate` (rate),
            `rung`, `steps` (trained in all), `score` (held-out
            `monitor`; `inf` or `-inf` for a diverged run) and `status`
            (`"ok"` or `"diverged"`).
        monitor: The held-out metric scored, e.g. `"val_loss"`.
        mode: `"min"` or `"max"`.
        initial_score: `monitor` of the model before the race.
        cost: `range_test_steps`, `race_steps`, `range_test_seconds`,
            `race_seconds`: what choosing cost.
        config: The arguments of the call.
    """

    learning_rate: float
    multiplier: float
    range_test: RangeTestResult
    bracket: tuple
    candidates: list
    entries: list
    monitor: str
    mode: str
    initial_score: float
    cost: dict
    config: dict

    def apply(self, model) -> float:
        """Multiplies `model`'s rate (float or schedule) by `multiplier`
        through its rate controller; returns the rate of the next step."""
        return rate_controller(model).multiply(self.multiplier)

    def rung_entries(self, rung: int) -> list[dict]:
        return [e for e in self.entries if e["rung"] == rung]

    @property
    def rungs(self) -> int:
        return 1 + max(e["rung"] for e in self.entries)

    @property
    def at_edge(self) -> str | None:
        """`"top"` or `"bottom"` when the winner is the highest or lowest
        of three or more candidates, else `None`. The best rate may then
        lie outside the bracket the range test gave."""
        ranked = sorted(self.candidates)
        if len(ranked) < 3:
            return None
        index = min(
            range(len(ranked)),
            key=lambda i: abs(math.log(ranked[i] / self.learning_rate)),
        )
        if index == len(ranked) - 1:
            return "top"
        if index == 0:
            return "bottom"
        return None

    def summary(self) -> str:
        """A one-line account of the race and its cost."""
        steps = ", ".join(
            str(self.rung_entries(i)[0]["steps"]) for i in range(self.rungs)
        )
        best = [e for e in self.entries if e["candidate"] == self.learning_rate]
        return (
            f"race: {len(self.candidates)} candidates in "
            f"[{self.bracket[0]:.3g}, {self.bracket[1]:.3g}], "
            f"{self.rungs} rung(s) to {steps} steps; winner "
            f"{self.learning_rate:.3g} ({self.monitor} "
            f"{best[-1]['score']:.4g}); cost {self.cost['range_test_steps']}"
            f" range-test + {self.cost['race_steps']} race steps, "
            f"{self.cost['range_test_seconds'] + self.cost['race_seconds']:.1f}"
            " s"
            + (
                ""
                if self.at_edge is None
                else f"; the winner is the {self.at_edge} candidate"
            )
        )

    def to_dict(self) -> dict:
        def number(x):
            return float(x) if math.isfinite(x) else str(float(x))

        return {
            "learning_rate": float(self.learning_rate),
            "multiplier": float(self.multiplier),
            "range_test": self.range_test.to_dict(),
            "bracket": [float(v) for v in self.bracket],
            "candidates": [float(v) for v in self.candidates],
            "entries": [
                dict(entry, score=number(entry["score"]))
                for entry in self.entries
            ],
            "monitor": self.monitor,
            "mode": self.mode,
            "initial_score": number(self.initial_score),
            "cost": dict(self.cost),
            "config": dict(self.config),
        }

    def save_json(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> "RaceResult":
        data = dict(data)
        data["range_test"] = RangeTestResult.from_dict(data["range_test"])
        data["bracket"] = tuple(data["bracket"])
        data["entries"] = [
            dict(entry, score=float(entry["score"]))
            for entry in data["entries"]
        ]
        data["initial_score"] = float(data["initial_score"])
        return cls(**data)

    def plot(self, path=None):
        """The range-test curve with the bracket shaded, above the race:
        each candidate's held-out score at each rung, the winner marked.

        Returns the matplotlib `Figure`.
        """
        from matplotlib.figure import Figure

        figure = Figure(figsize=(7, 7.5))
        top, bottom = figure.subplots(2, 1, sharex=True)
        self.range_test.plot(ax=top, methods=READINGS)
        top.axvspan(*self.bracket, color="C4", alpha=0.08, label="bracket")
        top.legend(loc="best", fontsize="small")
        top.set_xlabel("")
        scores = []
        for rung in range(self.rungs):
            rows = self.rung_entries(rung)
            finite = [e for e in rows if math.isfinite(e["score"])]
            scores += [e["score"] for e in finite]
            bottom.plot(
                [e["candidate"] for e in finite],
                [e["score"] for e in finite],
                "o-",
                color=f"C{rung}",
                label=f"rung {rung}: {rows[0]['steps']} steps",
            )
            lost = [e["candidate"] for e in rows if e["status"] == "diverged"]
            if lost:
                bottom.plot(
                    lost,
                    [max(scores or [1.0])] * len(lost),
                    "x",
                    color=f"C{rung}",
                    label=f"rung {rung}: diverged",
                )
        if math.isfinite(self.initial_score):
            bottom.axhline(
                self.initial_score,
                color="0.5",
                linestyle=":",
                label=f"before the race: {self.initial_score:.4g}",
            )
            scores.append(self.initial_score)
        positive = [v for v in scores if v > 0]
        if len(positive) == len(scores) and max(scores) > 20 * min(scores):
            bottom.set_yscale("log")
        bottom.axvline(
            self.learning_rate,
            color="k",
            linestyle="--",
            label=f"winner: {self.learning_rate:.3g}",
        )
        bottom.set_xscale("log")
        bottom.set_xlabel("learning rate (log scale)")
        bottom.set_ylabel(f"held-out {self.monitor}")
        bottom.set_title("race (successive halving)")
        bottom.legend(loc="best", fontsize="small")
        if path is not None:
            figure.savefig(path, dpi=120, bbox_inches="tight")
        return figure


# Running the race ----------------------------------------------------------


def _split(x, y, sample_weight, validation_split, batch_size, seed):
    """(train, held-out) parts of array data: a seeded shuffle, then the
    last `validation_split` of it held out."""
    n = _num_samples(x, y, sample_weight)
    held = int(round(n * validation_split))
    if held < 1 or n - held < batch_size:
        raise ValueError(
            "Argument `validation_split` leaves no samples to hold out or "
            f"fewer than batch_size={batch_size} to train on: {n} samples "
            f"split {n - held}/{held}. Pass `validation_data`, or more data. "
            f"Received: validation_split={validation_split!r}"
        )
    order = np.random.default_rng(seed).permutation(n)
    train, test = order[: n - held], order[n - held :]
    parts = [
        tuple(_take(s, idx) for s in (x, y, sample_weight))
        for idx in (train, test)
    ]
    return parts[0], parts[1]


def _as_tensors(value):
    if value is None:
        return None
    return keras.tree.map_structure(tf.convert_to_tensor, value)


def _held_out(validation_data):
    if isinstance(validation_data, tf.data.Dataset):
        return dict(x=validation_data)
    if not isinstance(validation_data, (tuple, list)) or not (
        2 <= len(validation_data) <= 3
    ):
        raise ValueError(
            "Argument `validation_data` must be a tuple `(x, y)` or "
            "`(x, y, sample_weight)`, or a batched `tf.data.Dataset`. "
            f"Received: validation_data of type {type(validation_data)}"
        )
    x, y, *rest = validation_data
    return dict(x=x, y=y, sample_weight=rest[0] if rest else None)


def choose_learning_rate(
    model,
    x,
    y=None,
    *,
    validation_data=None,
    validation_split=0.2,
    batch_size=32,
    budget=None,
    candidates=12,
    reduction=2,
    monitor="val_loss",
    mode="auto",
    start_lr=1e-7,
    end_lr=10.0,
    num_steps=100,
    seed=None,
    verbose=0,
    sample_weight=None,
) -> RaceResult:
    """Chooses a learning rate: a range test, then a race of candidates.

    Stage 1 is `keras_lr.find_learning_rate` on the training data, which
    gives a bracket (`keras_lr.range_test.race.bracket`). Stage 2 races
    `candidates` rates log-spaced across it (the curve's valley and
    steepest readings among them) by successive halving: every candidate
    trains from the model's current state (restored bitwise between
    candidates) on the same batches and is scored on held-out data; the
    best `1 / reduction` go on from where they stopped for a rung
    `reduction` times longer, until one is left. A candidate whose loss
    stops being finite is out. With a schedule, a candidate is a
    multiplier of the schedule (named by the highest rate it reaches in
    the race), so the winner keeps the schedule's shape.

    Afterwards the model's variables, every optimizer variable and the
    rate (or schedule) are as before, bitwise, whatever happened (an
    exception and `KeyboardInterrupt` included). Apply the answer with
    `result.apply(model)` (any rate) or compile with
    `result.learning_rate` (a float rate).

    When to use which: `find_learning_rate(...).suggestion()` costs one
    short sweep and is a reading of a curve, which on our bank of settings
    lands within 10% of the best fixed rate's loss on 3 of 10;
    `choose_learning_rate` also trains, which costs about a fifth of a
    19-rate grid with the defaults below and lands within 10% on more of
    them (README: "Choosing the rate").

    Args:
        model: A compiled Keras model.
        x, y, sample_weight: Training data, as NumPy arrays (or nested
            structures of them), or `x` a batched `tf.data.Dataset` (then
            `validation_data` is required and `budget` must be given).
        validation_data: `(x, y)`, `(x, y, sample_weight)` or a batched
            `tf.data.Dataset`, scored after each rung. If `None`, a seeded
            random `validation_split` of the array data is held out of
            both stages.
        validation_split: A float in (0, 1). Used without
            `validation_data`.
        batch_size: An integer > 0, for array data.
        budget: An integer > 0, the race's training steps in all (the
            range test's come on top). Default (array data): 20 epochs of
            the training part, which with `reduction=2` trains the last
            rung's candidates for about 5 epochs each. Set it to about 4x
            the steps of the training you plan, so the race ends at that
            length.
        candidates: An integer >= 2.
        reduction: An integer >= 2: rung `i + 1` keeps the best
            `1 / reduction` of rung `i` and trains them `reduction` times
            as long in all.
        monitor: The held-out metric to score, `"val_loss"` by default (a
            name of `model.evaluate`'s logs, with or without `val_`).
        mode: `"auto"`, `"min"` or `"max"` (auto as Keras 3 reads it).
        start_lr, end_lr, num_steps: The range test's sweep.
        seed: An integer or `None`: seeds the held-out split, the range
            test's and the race's shuffling. Same seed, same race.
        verbose: 0, or 1 for a line per rung and a summary.

    Returns:
        A `RaceResult`.

    Raises:
        ValueError: on a bad argument (named), a `monitor` missing from
            the held-out logs, or a race in which every candidate diverged.
    """
    check_compiled(model)
    _checks.check_positive_int("batch_size", batch_size)
    _checks.check_int("candidates", candidates)
    if candidates < 2:
        raise ValueError(
            "Argument `candidates` must be an integer >= 2: a race needs "
            f"two runners. Received: candidates={candidates!r}"
        )
    _checks.check_int("reduction", reduction)
    if reduction < 2:
        raise ValueError(
            "Argument `reduction` must be an integer >= 2. Received: "
            f"reduction={reduction!r}"
        )
    _checks.check_open_interval("validation_split", validation_split, 0, 1)
    _checks.check_choice("mode", mode, ("auto", "min", "max"))
    _checks.check_int("verbose", verbose)
    if not isinstance(monitor, str):
        raise TypeError(
            "Argument `monitor` must be a string such as 'val_loss'. "
            f"Received: monitor={monitor!r}"
        )
    if seed is not None:
        _checks.check_int("seed", seed)
    arrays = _is_array_data(x)
    if not arrays and not isinstance(x, tf.data.Dataset):
        raise TypeError(
            "Argument `x` must be NumPy arrays (or a nested structure of "
            "them) or a batched `tf.data.Dataset`. Received: x of type "
            f"{type(x)}"
        )
    if not arrays and validation_data is None:
        raise ValueError(
            "Argument `validation_data` is required when `x` is a "
            "`tf.data.Dataset` (a dataset cannot be split here). Received: "
            "validation_data=None"
        )
    if arrays:
        if validation_data is None:
            train, held = _split(
                x, y, sample_weight, validation_split, batch_size, seed
            )
            held_out = dict(x=held[0], y=held[1], sample_weight=held[2])
        else:
            _num_samples(x, y, sample_weight)
            train = (x, y, sample_weight)
            held_out = _held_out(validation_data)
        train_size = _num_samples(*train)
        if budget is None:
            budget = 20 * max(1, train_size // batch_size)
    else:
        train = (x, None, None)
        held_out = _held_out(validation_data)
        if budget is None:
            raise ValueError(
                "Argument `budget` is required when `x` is a "
                "`tf.data.Dataset`. Received: budget=None"
            )
    _checks.check_positive_int("budget", budget)
    multiple = int(getattr(model, "steps_per_execution", 1) or 1)
    plan = rung_plan(candidates, reduction, budget, multiple)  # checks budget
    config = {
        "batch_size": batch_size,
        "budget": budget,
        "candidates": candidates,
        "reduction": reduction,
        "monitor": monitor,
        "mode": mode,
        "validation_split": None
        if validation_data is not None
        else (validation_split),
        "seed": seed,
    }

    started = time.perf_counter()
    stage1 = find_learning_rate(
        model,
        train[0],
        train[1],
        sample_weight=train[2],
        batch_size=batch_size,
        start_lr=start_lr,
        end_lr=end_lr,
        num_steps=num_steps,
        seed=seed,
        warn=False,
    )
    range_test_seconds = time.perf_counter() - started
    rates = candidate_rates(stage1, candidates)
    # Readings that coincide leave fewer candidates: the same budget then
    # goes to fewer, longer shares.
    plan = rung_plan(rates.size, reduction, budget, multiple)
    if verbose:
        low, high = bracket(stage1)
        say(
            f"range test: {len(stage1.losses)} steps, bracket "
            f"[{low:.3g}, {high:.3g}]; racing {rates.size} candidates"
        )

    race = _Race(model, train, held_out, batch_size, monitor, mode, seed)
    with race:
        started = time.perf_counter()
        initial = race.initial_score()
        horizon = plan[-1]["steps"]
        reference = float(np.max(race.reference_rates(horizon)))
        entries, winner = race.run(rates, reference, plan, verbose)
        race_seconds = time.perf_counter() - started
    result = RaceResult(
        learning_rate=float(winner),
        multiplier=float(winner / reference),
        range_test=stage1,
        bracket=bracket(stage1),
        candidates=[float(r) for r in rates],
        entries=entries,
        monitor=race.monitor,
        mode=race.mode,
        initial_score=initial,
        cost={
            "range_test_steps": int(len(stage1.losses)),
            "race_steps": int(sum(race.steps_trained.values())),
            "range_test_seconds": round(range_test_seconds, 3),
            "race_seconds": round(race_seconds, 3),
        },
        config=config,
    )
    edge = result.at_edge
    if edge is not None:
        low, high = result.bracket
        warnings.warn(
            f"The race's winner {result.learning_rate:.3g} is the {edge} "
            f"candidate of the bracket [{low:.3g}, {high:.3g}] that the "
            "range test gave: the best rate may lie "
            f"{'above' if edge == 'top' else 'below'} it. Look at "
            "`result.plot()`; widen the range test (`start_lr`, `end_lr`, "
            "`num_steps`) or try another `seed`.",
            stacklevel=2,
        )
    if verbose:
        say(result.summary())
    return result


class _Race(keras.callbacks.Callback):
    """Runs the race inside `fit` and restores the model when it ends.

    The rungs run back to back in one `fit` call: rung `i` is, for each of
    its candidates in turn, the same batches `[steps_{i-1}, steps_i)` of
    one seeded stream. At the end of each candidate's share this callback
    keeps the candidate's state (a device copy), scores it on the held-out
    data and puts the next candidate's state in place; at the end of a
    rung it ranks them. A new `fit` starts only when divergences leave a
    rung with fewer candidates than planned.
    """

    def __init__(self, model, train, held_out, batch_size, monitor, mode, seed):
        super().__init__()
        self._model_ref = model
        self.train = train
        self.held_out = held_out
        self.batch_size = batch_size
        self.monitor = (
            monitor if monitor.startswith("val_") else ("val_" + monitor)
        )
        self.requested_mode = mode
        self.seed = seed
        self.steps_trained = {}
        self.verbose = 0
        self._array_chunks = None

    # Set-up and restore -----------------------------------------------------

    def __enter__(self):
        model = self._model_ref
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        self.controller = rate_controller(model)
        self.start_step = self.controller.step()
        self.snapshot = snapshot.DeviceSnapshot(
            snapshot.training_variables(model)
        )
        self.initial = self.snapshot.take()
        self.saved_stop_training = getattr(model, "stop_training", False)
        self.saved_history = getattr(model, "history", None)
        return self

    def __exit__(self, *exc_info):
        model = self._model_ref
        self.snapshot.put(self.initial)
        model.stop_training = self.saved_stop_training
        if self.saved_history is not None:
            model.history = self.saved_history
        return False

    def reference_rates(self, horizon: int) -> np.ndarray:
        steps = np.arange(self.start_step, self.start_step + max(1, horizon))
        rates = self.controller.rates_at(steps)
        if not np.max(rates) > 0:
            raise ValueError(
                "The model's rate is 0 over the race's steps, so no "
                "multiple of it can be raced: compile with a rate > 0."
            )
        return rates

    # Scoring ----------------------------------------------------------------

    def _chunks(self):
        """The held-out data in chunks: a dataset's batches, or array
        chunks of at most 1024 samples, cut once for every score."""
        held = self.held_out
        if "y" not in held:
            return (
                keras.utils.unpack_x_y_sample_weight(batch)
                for batch in held["x"]
            )
        if self._array_chunks is None:
            n = _num_samples(held["x"], held["y"], held["sample_weight"])
            size = max(self.batch_size, 1024)
            # As tensors, converted once: `test_on_batch` hands its input
            # to the test function as it is, which would convert arrays
            # (to the same dtypes) at every score.
            self._array_chunks = [
                tuple(
                    _as_tensors(
                        _take(held[k], np.arange(first, min(first + size, n)))
                    )
                    for k in ("x", "y", "sample_weight")
                )
                for first in range(0, n, size)
            ]
        return self._array_chunks

    def score(self) -> float:
        """The held-out `monitor`: one `test_on_batch` per chunk of at most
        1024 samples, averaged over the chunks by their sizes (exact for
        the loss and any metric that is a mean over samples)."""
        total, count = 0.0, 0
        for x, y, sample_weight in self._chunks():
            logs = self._model_ref.test_on_batch(
                x, y, sample_weight=sample_weight, return_dict=True
            )
            name = self.monitor.removeprefix("val_")
            if name not in logs:
                raise ValueError(
                    "Argument `monitor` must name a metric of the held-out "
                    f"evaluation; available: "
                    f"{sorted('val_' + k for k in logs)}. Received: "
                    f"monitor={self.monitor!r}"
                )
            size = int(keras.tree.flatten(x)[0].shape[0])
            total += float(logs[name]) * size
            count += size
        return total / count if count else math.nan

    def initial_score(self) -> float:
        value = self.score()
        self.mode = resolve_mode(
            self.requested_mode, self.monitor, self._model_ref
        )
        return value

    def _worse(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    # The stream of batches --------------------------------------------------

    def _segment_data(self, segments) -> dict:
        """`fit` arguments running `segments` ((first, last) step ranges of
        the stream) back to back."""
        x, y, sample_weight = self.train
        if not _is_array_data(x):
            parts = [
                x.repeat().skip(first).take(last - first)
                for first, last in segments
            ]
            data = parts[0]
            for part in parts[1:]:
                data = data.concatenate(part)
            return dict(x=data, shuffle=False)
        stream = self.stream
        size = self.batch_size
        indices = np.concatenate(
            [stream[first * size : last * size] for first, last in segments]
        )
        return dict(
            x=_take(x, indices),
            y=_take(y, indices),
            sample_weight=_take(sample_weight, indices),
            batch_size=size,
            shuffle=False,
        )

    # The race ---------------------------------------------------------------

    def run(self, rates, reference, plan, verbose):
        self.verbose = verbose
        self.plan = plan
        self.reference = reference
        horizon = plan[-1]["steps"]
        x, y, sample_weight = self.train
        if _is_array_data(x):
            rng = np.random.default_rng(
                None if self.seed is None else [self.seed, 1]
            )
            n = _num_samples(x, y, sample_weight)
            self.stream = _sweep_indices(n, horizon * self.batch_size, rng)
        self.entries = []
        self.states = {}
        self.rung = 0
        self.queue = [float(r) for r in rates]
        self.rows = []
        model = self._model_ref
        while self.rung < len(plan):
            segments = self._remaining_segments()
            self.position = 0
            self.boundaries = np.cumsum([b - a for a, b in segments])
            self.stopped_short = False
            model.fit(
                **self._segment_data(segments),
                epochs=1,
                verbose=0,
                callbacks=[self],
            )
            if not self.stopped_short and self.rung < len(plan):
                raise RuntimeError(
                    "The race's fit ended before its last rung; a callback "
                    "or the data stopped it early."
                )
        return self.entries, self.winner

    def _remaining_segments(self):
        """Step ranges of the rungs left, assuming the planned counts (or
        fewer, if fewer candidates are left)."""
        segments = []
        count = len(self.queue) - len(self.rows)
        for rung in range(self.rung, len(self.plan)):
            first = self.plan[rung - 1]["steps"] if rung else 0
            last = self.plan[rung]["steps"]
            segments += [(first, last)] * count
            count = min(
                self.plan[rung + 1]["candidates"]
                if rung + 1 < len(self.plan)
                else 0,
                count,
            )
        return segments

    def _load(self, rate) -> None:
        if rate in self.states:
            self.snapshot.put(self.states[rate])
        else:
            self.snapshot.put(self.initial)
            self.controller.scale(rate / self.reference)

    def on_train_begin(self, logs=None):
        self._load(self.queue[len(self.rows)])

    # The hooks are the start of a batch and the end of the epoch, not the
    # end of a batch: a callback with a batch-end hook makes Keras read
    # the logs back from the device after every step, and the race would
    # pay that at every step instead of at each share's end.

    def on_train_batch_begin(self, batch, logs=None):
        if self.position < len(self.boundaries) and (
            batch >= self.boundaries[self.position]
        ):
            self._end_share()
            if self.rung < len(self.plan) and not self.stopped_short:
                self._load(self.queue[len(self.rows)])

    def on_epoch_end(self, epoch, logs=None):
        if not self.stopped_short and self.position < len(self.boundaries):
            self._end_share()

    def _end_share(self) -> None:
        """The candidate in place has trained its share: keep its state,
        score it, and rank the rung if it was the last."""
        self.position += 1
        rate = self.queue[len(self.rows)]
        self.states[rate] = self.snapshot.take()
        steps = self.plan[self.rung]["steps"]
        self.steps_trained[rate] = steps
        value = self.score()
        status = "ok"
        if not math.isfinite(value):
            value, status = self._worse(), "diverged"
        self.rows.append(
            {
                "candidate": rate,
                "rung": self.rung,
                "steps": steps,
                "score": value,
                "status": status,
            }
        )
        if len(self.rows) == len(self.queue):
            self._end_rung()

    def _end_rung(self) -> None:
        rows, rung = self.rows, self.rung
        self.entries += rows
        ranked = sorted(
            (r for r in rows if r["status"] == "ok"),
            key=lambda r: r["score"] if self.mode == "min" else -r["score"],
        )
        if not ranked:
            rates = ", ".join(f"{r['candidate']:.3g}" for r in rows)
            raise ValueError(
                f"Every candidate of rung {rung} diverged (rates {rates}): "
                "the model does not train at any rate of the bracket; check "
                "the model and data or lower `start_lr`."
            )
        if self.verbose:
            say(
                f"race rung {rung + 1}/{len(self.plan)}: {len(rows)} "
                f"candidate(s) to {rows[0]['steps']} steps; best "
                f"{ranked[0]['candidate']:.3g} ({self.monitor} "
                f"{ranked[0]['score']:.4g}); {len(rows) - len(ranked)} "
                "diverged"
            )
        self.winner = ranked[0]["candidate"]
        self.rung += 1
        self.rows = []
        if self.rung == len(self.plan):
            self.queue = []
            return
        planned = self.plan[self.rung]["candidates"]
        self.queue = [r["candidate"] for r in ranked[:planned]]
        for rate in list(self.states):
            if rate not in self.queue:
                del self.states[rate]
        if len(self.queue) < planned:
            # The rest of this fit's data assumed more candidates: stop
            # (the batch that has begun runs on the last candidate's
            # state, which is already kept) and start a new fit.
            self.stopped_short = True
            self._model_ref.stop_training = True
