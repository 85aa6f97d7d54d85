"""`RaceRunner`: the race of candidates, run inside `fit`, and the restore
of the model after it."""

import math

import keras
import numpy as np

from keras_lr import _backend
from keras_lr import snapshot
from keras_lr.callbacks._rules import resolve_mode
from keras_lr.callbacks._rules import say
from keras_lr.control import rate_controller
from keras_lr.range_test import data


class RaceRunner(keras.callbacks.Callback):
    """Runs the race inside `fit` and restores the model when it ends.

    The rungs run back to back in one `fit` call: rung `i` is, for each of
    its candidates in turn, the same batches `[steps_{i-1}, steps_i)` of
    one seeded stream. At the end of each candidate's share this callback
    keeps the candidate's state (a device copy), scores it on the held-out
    data and puts the next candidate's state in place; at the end of a
    rung it ranks them. A new `fit` starts only when divergences leave a
    rung with fewer candidates than planned.

    One runner runs one race: every attribute is made in `__init__`;
    `__enter__` fills in the starting state (which `__exit__` puts back,
    whatever happened) and `run` what it reads off the model before
    training (the starting score, the reference rate, the stream).

    Args:
        model: The compiled model.
        train: `(x, y, sample_weight)` of the training data, or
            `(dataset, None, None)`.
        held_out: `dict(x=, y=, sample_weight=)` of held-out arrays, or
            `dict(x=dataset)`.
        rates: The candidates' rates (peak rates over the race).
        plan: The rungs, from `keras_lr.range_test.rungs.rung_plan`.
        batch_size: An integer, for array data.
        monitor: The held-out metric (`"val_"` is prefixed if missing).
        mode: `"auto"`, `"min"` or `"max"`.
        seed: An integer or `None`: seeds the stream of batches.
        verbose: 0, or 1 for a line per rung.
    """

    def __init__(
        self,
        model,
        train,
        held_out,
        *,
        rates,
        plan,
        batch_size,
        monitor,
        mode,
        seed,
        verbose,
    ):
        super().__init__()
        # What the race runs.
        self._model_ref = model
        self.train = train
        self.held_out = held_out
        self.plan = plan
        self.batch_size = batch_size
        self.monitor = (
            monitor if monitor.startswith("val_") else ("val_" + monitor)
        )
        self.requested_mode = mode
        self.seed = seed
        self.verbose = verbose
        # The starting state, and what `__exit__` puts back (`__enter__`).
        self.controller = None
        self.start_step = None
        self.snapshot = None
        self.initial = None
        self.saved_stop_training = False
        self.saved_history = None
        # Read off the model when the race starts (`run`).
        self.initial_score = math.nan
        self.mode = None
        self.reference = None
        self.stream = None
        self._array_chunks = None
        # The race so far: rows of finished rungs, the rung running, the
        # candidates it runs (`queue`) and its rows so far, each
        # candidate's state after its last share, and its steps.
        self.entries = []
        self.rung = 0
        self.queue = [float(r) for r in rates]
        self.rows = []
        self.states = {}
        self.steps_trained = {}
        self.winner = None
        # The `fit` running: where each share of it ends, the share in
        # place, and whether the race stopped it to start another.
        self.boundaries = np.zeros(0, dtype=np.int64)
        self.position = 0
        self.stopped_short = False

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

    def score_start(self) -> float:
        """The held-out `monitor` of the starting state; settles `mode`."""
        value = self.score()
        self.mode = resolve_mode(
            self.requested_mode, self.monitor, self._model_ref
        )
        return value

    def reference_rates(self, horizon: int) -> np.ndarray:
        """The model's own rate at each of the race's first `horizon`
        steps: the candidates are multiples of it."""
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
            # Off TensorFlow, a `tf.data` batch goes to the host first:
            # `test_on_batch` there takes arrays, not TensorFlow tensors.
            host = not _backend.is_tensorflow()
            return (
                keras.utils.unpack_x_y_sample_weight(
                    keras.tree.map_structure(np.asarray, batch)
                    if host
                    else batch
                )
                for batch in held["x"]
            )
        if self._array_chunks is None:
            n = data.num_samples(held["x"], held["y"], held["sample_weight"])
            size = max(self.batch_size, 1024)
            # As tensors, converted once: `test_on_batch` hands its input
            # to the test function as it is, which would convert arrays
            # (to the same dtypes) at every score.
            self._array_chunks = [
                tuple(
                    data.as_tensors(
                        data.take(
                            held[k], np.arange(first, min(first + size, n))
                        )
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

    def _worse(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    # The stream of batches --------------------------------------------------

    def _stream(self) -> np.ndarray | None:
        """The race's sample indices, end to end (array data), else
        `None`: a dataset streams its own batches."""
        x, y, sample_weight = self.train
        if not data.is_array_data(x):
            return None
        rng = np.random.default_rng(
            None if self.seed is None else [self.seed, 1]
        )
        n = data.num_samples(x, y, sample_weight)
        horizon = self.plan[-1]["steps"]
        return data.sweep_indices(n, horizon * self.batch_size, rng)

    def _segment_data(self, segments) -> dict:
        """`fit` arguments running `segments` ((first, last) step ranges of
        the stream) back to back."""
        x, y, sample_weight = self.train
        if not data.is_array_data(x):
            parts = [
                x.repeat().skip(first).take(last - first)
                for first, last in segments
            ]
            joined = parts[0]
            for part in parts[1:]:
                joined = joined.concatenate(part)
            return dict(x=joined, shuffle=False)
        size = self.batch_size
        indices = np.concatenate(
            [
                self.stream[first * size : last * size]
                for first, last in segments
            ]
        )
        return data.fit_rows(x, y, sample_weight, indices, size)

    # The race ---------------------------------------------------------------

    def run(self) -> float:
        """Runs the race (inside the `with` block); returns the winner."""
        self.initial_score = self.score_start()
        horizon = self.plan[-1]["steps"]
        self.reference = float(np.max(self.reference_rates(horizon)))
        self.stream = self._stream()
        model = self._model_ref
        while self.rung < len(self.plan):
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
            if not self.stopped_short and self.rung < len(self.plan):
                raise RuntimeError(
                    "The race's fit ended before its last rung; a callback "
                    "or the data stopped it early."
                )
        return self.winner

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
