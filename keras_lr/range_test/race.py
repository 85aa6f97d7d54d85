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
   one is left or the `budget` of training steps is spent, in at most
   three rungs (`keras_lr.range_test.rungs`): a first rung long enough
   to tell a slow starter from a bad rate.
3. The winner is checked against its own earlier scores: one that got
   worse falls back to a candidate whose score held
   (`keras_lr.range_test.held`).
4. A winner that held is refined between the finalists: the vertex of a
   parabola, in log rate, through the scores of the deepest rung where
   three or more candidates trained (`keras_lr.range_test.refine`).

The model is restored bitwise afterwards, whatever happened.
"""

import time
import warnings

from keras_lr import _backend
from keras_lr import _checks
from keras_lr.callbacks._rules import say
from keras_lr.range_test import data
from keras_lr.range_test.bracket import candidate_rates
from keras_lr.range_test.bracket import read_bracket
from keras_lr.range_test.callback import check_compiled
from keras_lr.range_test.find import find_learning_rate
from keras_lr.range_test.held import held_winner
from keras_lr.range_test.race_result import RaceResult
from keras_lr.range_test.race_runner import RaceRunner
from keras_lr.range_test.refine import between_finalists
from keras_lr.range_test.rungs import rung_plan


def choose_learning_rate(
    model,
    x,
    y=None,
    *,
    validation_data=None,
    validation_split=0.2,
    batch_size=32,
    budget=None,
    candidates=8,
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
    gives a bracket (`keras_lr.range_test.bracket.bracket`). Stage 2 races
    `candidates` rates log-spaced across it (the curve's valley and
    steepest readings among them) by successive halving: every candidate
    trains from the model's current state (restored bitwise between
    candidates) on the same batches and is scored on held-out data; the
    best `1 / reduction` go on from where they stopped for a rung
    `reduction` times longer, in at most three rungs (the first a quarter
    of the last, with reduction 2). A candidate whose loss stops being
    finite is out. The ranked winner is checked against its own earlier
    scores: one that ended worse than it was falls back to the candidate
    that held and got furthest (`keras_lr.range_test.held`). A winner
    that held is refined between the finalists: the answer is the vertex
    of a parabola, in log rate, through the scores of the deepest rung
    where three or more candidates trained, kept between the last rung's
    finalists, unless the winner is the lowest or highest candidate
    (`result.refined_from` is then the winner;
    `keras_lr.range_test.refine`). A range test whose loss never fell
    gives no bracket: the race then runs across the whole swept range. A
    degenerate bracket (or none), a fall-back, a race where no candidate
    held and a winner at the bracket's edge each give a `UserWarning`,
    kept in `result.notices` (and printed at `verbose=1`). With a
    schedule, a candidate is a multiplier of the schedule (named by the
    highest rate it reaches in the race), so the winner keeps the
    schedule's shape.

    Afterwards the model's variables, every optimizer variable and the
    rate (or schedule) are as before, bitwise, whatever happened (an
    exception and `KeyboardInterrupt` included). Apply the answer with
    `result.apply(model)` (any rate) or compile with
    `result.learning_rate` (a float rate).

    When to use which: `find_learning_rate(...).suggestion()` costs one
    short sweep and is a reading of a curve; `choose_learning_rate` also
    trains, which costs about a quarter of a one-seed 19-rate grid with
    the defaults below (median 0.21 on the race bank's third held-out
    set). On those 15 settings (every Keras optimizer, fourteen model
    families, `docs/studies/race_bank.md`) it landed within 10% of the
    best fixed rate's loss on 16 of 45 races, the valley reading on 2 of
    15 settings; within 3x of a near-best rate on 34 of 45 (the valley: 8
    of 15). Look at `result.plot()` and the warnings before trusting it.

    Args:
        model: A compiled Keras model.
        x: Training inputs, as NumPy arrays (or nested structures of
            them), or a batched `tf.data.Dataset` (then `validation_data`
            is required and `budget` must be given).
        y: Training targets, as NumPy arrays (`None` for a dataset).
        sample_weight: Optional sample weights, as NumPy arrays.
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
        candidates: An integer >= 2 (default 8: with the default
            budget, finalists train about 5 epochs and the first rung
            a quarter of that).
        reduction: An integer >= 2: rung `i + 1` keeps the best
            `1 / reduction` of rung `i` and trains them `reduction` times
            as long in all.
        monitor: The held-out metric to score, `"val_loss"` by default (a
            name of `model.evaluate`'s logs, with or without `val_`).
        mode: `"auto"`, `"min"` or `"max"` (auto as Keras 3 reads it).
        start_lr: The range test's first rate.
        end_lr: The range test's last rate.
        num_steps: The range test's number of steps.
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
    arrays = data.is_array_data(x)
    if not arrays and not _backend.is_tf_dataset(x):
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
            train, held = data.split(
                x, y, sample_weight, validation_split, batch_size, seed
            )
            held_out = dict(x=held[0], y=held[1], sample_weight=held[2])
        else:
            data.num_samples(x, y, sample_weight)
            train = (x, y, sample_weight)
            held_out = data.held_out(validation_data)
        train_size = data.num_samples(*train)
        if budget is None:
            budget = 20 * max(1, train_size // batch_size)
    else:
        train = (x, None, None)
        held_out = data.held_out(validation_data)
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
    reading = read_bracket(stage1)
    notices = []
    if not reading["fell"]:
        notices.append(
            "The range test's loss never fell before it rose, so its curve "
            "gives no bracket: the race ran across the whole swept range "
            f"[{reading['low']:.3g}, {reading['high']:.3g}]. The model may "
            "need more steps than the sweep gave it (raise `num_steps`), "
            "or the optimizer's rate is not a step size (`Ftrl`); look at "
            "`result.range_test.plot()`."
        )
    elif reading["degenerate"]:
        notices.append(
            "The range test's curve gave a degenerate bracket "
            f"[{reading['read'][0]:.3g}, {reading['read'][1]:.3g}] "
            "(narrower than 3x): the race ran across "
            f"[{reading['low']:.3g}, {reading['high']:.3g}], two decades "
            "below its top. Look at `result.range_test.plot()`; widen the "
            "range test (`start_lr`, `end_lr`, `num_steps`) or try another "
            "`seed`."
        )
    if verbose:
        say(
            f"range test: {len(stage1.losses)} steps, bracket "
            f"[{reading['low']:.3g}, {reading['high']:.3g}]; racing "
            f"{rates.size} candidates"
        )

    runner = RaceRunner(
        model,
        train,
        held_out,
        rates=rates,
        plan=plan,
        batch_size=batch_size,
        monitor=monitor,
        mode=mode,
        seed=seed,
        verbose=verbose,
    )
    with runner:
        started = time.perf_counter()
        runner.run()
        race_seconds = time.perf_counter() - started
    answer = held_winner(runner.entries, runner.initial_score, runner.mode)
    winner = answer["learning_rate"]
    refined = None
    if answer["fallback"] or not answer["held"]:
        notices.append(
            _not_held(answer, runner.entries, runner.initial_score, monitor)
        )
    else:
        refined = between_finalists(runner.entries, runner.mode)
    answer_rate = winner if refined is None else refined
    result = RaceResult(
        learning_rate=float(answer_rate),
        multiplier=float(answer_rate / runner.reference),
        range_test=stage1,
        bracket=(reading["low"], reading["high"]),
        candidates=[float(r) for r in rates],
        entries=runner.entries,
        monitor=runner.monitor,
        mode=runner.mode,
        initial_score=runner.initial_score,
        cost={
            "range_test_steps": int(len(stage1.losses)),
            "race_steps": int(sum(runner.steps_trained.values())),
            "range_test_seconds": round(range_test_seconds, 3),
            "race_seconds": round(race_seconds, 3),
        },
        config=config,
        degenerate_bracket=reading["degenerate"],
        held=answer["held"],
        fallback_from=float(answer["ranked"]) if answer["fallback"] else None,
        refined_from=None if refined is None else float(winner),
        notices=notices,
    )
    edge = result.at_edge
    if edge is not None:
        low, high = result.bracket
        notices.append(
            f"The race's winner {result.winner:.3g} is the {edge} "
            f"candidate of the bracket [{low:.3g}, {high:.3g}] that the "
            "range test gave: the best rate may lie "
            f"{'above' if edge == 'top' else 'below'} it. Look at "
            "`result.plot()`; widen the range test (`start_lr`, `end_lr`, "
            "`num_steps`) or try another `seed`."
        )
    for notice in notices:
        warnings.warn(notice, stacklevel=2)
        if verbose:
            say(f"warning: {notice}")
    if verbose:
        say(result.summary())
    return result


def _scores(entries, rate) -> str:
    return " -> ".join(
        f"{e['score']:.4g}"
        for e in sorted(entries, key=lambda e: e["rung"])
        if e["candidate"] == rate
    )


def _not_held(answer, entries, initial_score, monitor) -> str:
    """The warning of a race whose ranked winner got worse."""
    ranked = answer["ranked"]
    said = (
        f"The race's ranked winner {ranked:.3g} got worse than its own "
        f"earlier held-out {monitor} (from {initial_score:.4g} before the "
        f"race: {_scores(entries, ranked)})"
    )
    if answer["fallback"]:
        rate = answer["learning_rate"]
        return (
            f"{said}; the answer falls back to {rate:.3g}, the candidate of "
            f"the furthest rung whose score held ({_scores(entries, rate)})."
        )
    return (
        f"{said}, and no candidate's score held: the answer stays the "
        "ranked winner. The race may be longer than this model trains "
        "well (overfitting), or every rate in the bracket unstable; look "
        "at `result.plot()`."
    )
