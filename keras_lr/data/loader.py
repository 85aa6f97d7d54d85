"""A data loader whose batch size can change between epochs inside `fit`.

The loader's epoch (permutation, batch size, start position) is one
immutable `EpochPlan` at a time, posted on its `board` for the threads
that read it: Keras' prefetching of `fit(loader)` and the pipelines of
`as_dataset()` (`keras_lr.data.plan`, `keras_lr.data.pipeline`). Its life
inside `fit` is explicit, and no frame or stack is read: the batch-size
callbacks call `configure_for(model)` from `on_train_begin` and
`end_training()` from `on_train_end`; after a `fit` that raises (no
`on_train_end`), a multi-worker pipeline waiting for the next epoch is
released with the iterator `fit` was reading (`PlanBoard.track`).
`fit(loader)` under several workers checks the batch split when Keras
reads batch 0, before it builds the model from the replicas' mean of it,
against `keras_lr.distribute.cluster_strategy()` (Keras' `fit` trains
across workers only under that strategy). Keras reads an epoch's number
of steps once per `fit`: `num_batches` and `steps_per_epoch` are a count
it re-reads at each use (`keras_lr._keras_internals.step_count`).
"""

import math

import keras
import numpy as np

from keras_lr import _checks
from keras_lr import _keras_internals
from keras_lr import distribute
from keras_lr.data import _samples
from keras_lr.data import _strategy
from keras_lr.data.plan import PlanBoard
from keras_lr.data.plan import make_plan

# About how many bytes of samples an `as_dataset()` pipeline gathers at
# once (whole batches, at least one).
_CHUNK_BYTES = 2**20


class GrowingBatchLoader(keras.utils.PyDataset):
    """Batches of in-memory data whose batch size may change between epochs.

    Pass the loader to `model.fit` in place of `x`/`y`, and let a
    `keras_lr.callbacks.BatchSizeScheduler` or
    `keras_lr.callbacks.IncreaseBatchSizeOnPlateau` change its batch size.
    Every epoch is one pass over a permutation of all samples: each sample
    appears exactly once, and the last batch holds the remainder (it may
    be smaller). The permutation of epoch `e` depends only on `(seed, e)`,
    so runs are reproducible and a resumed run sees the same order.

    The number of batches `fit` sees follows the batch size in force: the
    step count, the progress bar's total and the end of each epoch are
    right after every change, and Keras' "Your input ran out of data"
    warning does not appear. The batch dimension of the input signature is
    unknown, so the compiled train step is traced once for all sizes.

    Two ways to feed `fit`, with the same epochs:

    - `fit(loader.as_dataset(), steps_per_epoch=loader.steps_per_epoch)`:
      a native `tf.data` pipeline, no Python call per batch. For array
      data; on one device with any `steps_per_execution`, and under
      `MirroredStrategy` or `MultiWorkerMirroredStrategy` (built inside
      its scope) with `steps_per_execution=1`. See `as_dataset()`.
    - `fit(loader)`: Keras' `PyDataset` path, which calls the loader from
      Python for every batch (through `tf.data.Dataset.from_generator`),
      slower for small batches. For indexable datasets of samples, and
      for a distribution strategy with `steps_per_execution` > 1.

    The loader owns its batch size, epoch and position. A callback asks
    for a new size with `request_batch_size(n)` (it applies from the next
    epoch), opens epochs with `begin_epoch`, hands the model to
    `configure_for(model)` at the start of training, and saves and
    restores the loader with `get_state(trained_batches)`/`set_state`.

    The loader shuffles samples itself; pass `shuffle=False` to `fit`.
    (With `shuffle=True`, Keras additionally permutes the order of the
    batches with Python's global `random` module: every sample is still
    seen once per epoch, but runs repeat only under
    `keras.utils.set_random_seed`, and a mid-epoch position is lost.)

    Args:
        x: Input data: a NumPy array (or anything array-like with `shape`
            and NumPy indexing), or a dict/list/tuple of them; or an
            indexable dataset (`len(x)` and `x[i]`) whose items are single
            samples, `(x_i, y_i)` or `(x_i, y_i, w_i)`, stacked per batch.
        y: Targets, with the same number of samples as `x`, or `None`.
        sample_weight: Per-sample weights, or `None`.
        batch_size: A Python int > 0. The initial batch size, capped at
            the number of samples (with a warning).
        shuffle: A bool. Whether each epoch uses a new permutation.
        seed: A Python int or `None` (a seed is drawn once, and kept in
            the state so that the run can resume exactly).

    Raises:
        ValueError: if `batch_size` <= 0, the data are empty, or `x`, `y`
            and `sample_weight` have different numbers of samples.

    Example:

    ```python
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=32, seed=0)
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([10, 20], factor=5)
    )
    model.fit(loader.as_dataset(), steps_per_epoch=loader.steps_per_epoch,
              epochs=30, shuffle=False, callbacks=[grow])
    ```

    Reference:
        Smith, Kindermans, Ying and Le, "Don't Decay the Learning Rate,
        Increase the Batch Size", ICLR 2018.
    """

    def __init__(
        self,
        x,
        y=None,
        sample_weight=None,
        batch_size=32,
        shuffle=True,
        seed=None,
    ):
        super().__init__()
        _checks.check_bool("shuffle", shuffle)
        if seed is not None:
            _checks.check_non_negative_int("seed", seed)
        if x is None:
            raise ValueError("Argument `x` must not be None. Received: x=None")
        self._sample_mode = not _samples.all_arrays(x)
        if self._sample_mode and (y is not None or sample_weight is not None):
            raise ValueError(
                "Arguments `y` and `sample_weight` must be None when `x` is "
                "an indexable dataset of samples (each item holds its own "
                f"target). Received: x of type {type(x).__name__}, "
                f"y={'set' if y is not None else None}, "
                f"sample_weight={'set' if sample_weight is not None else None}"
            )
        self.x = x
        self.y = y
        self.sample_weight = sample_weight
        mode = self._sample_mode
        self.num_samples = _samples.count(x, y, sample_weight, mode)
        if self.num_samples == 0:
            raise ValueError(
                "Argument `x` must hold at least one sample. Received: "
                "an empty `x`"
            )
        self.shuffle = shuffle
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self.seed = seed
        # A size asked for by `request_batch_size`, for the next epoch.
        self._requested = None
        self._generation = 0
        self.board = PlanBoard(self._make_plan(0, self._capped(batch_size), 0))
        # The epoch and batch size last opened from outside (a callback's
        # `begin_epoch`, `set_state`): what `trained_batches` count in.
        self._opened = (0, self.batch_size)
        self._in_epoch = False
        self._served_in_epoch = 0  # batches read since `on_epoch_begin`
        self._count = _keras_internals.step_count(
            lambda: self.board.plan.num_batches
        )
        self._link = _strategy.StrategyLink(self.num_samples)

    def _make_plan(self, epoch, batch_size, position, order=None):
        self._generation += 1
        n, seed, shuffle = self.num_samples, self.seed, self.shuffle
        generation = self._generation
        return make_plan(
            n, seed, shuffle, epoch, batch_size, position, generation, order
        )

    @property
    def plan(self):
        """The `EpochPlan` in force (immutable)."""
        return self.board.plan

    @property
    def batch_size(self) -> int:
        """The batch size of the current epoch (its last batch may be
        smaller)."""
        return self.plan.batch_size

    @property
    def next_batch_size(self) -> int:
        """The batch size the next epoch opened at its start will use."""
        return self.batch_size if self._requested is None else self._requested

    @property
    def epoch(self) -> int:
        """The index of the current epoch (it sets the permutation)."""
        return self.plan.epoch

    @property
    def position(self) -> int:
        """Batches of the current epoch skipped at its start (a resumed
        epoch serves only the rest)."""
        return self.plan.position

    def request_batch_size(self, batch_size: int) -> int:
        """Asks for a batch size from the next epoch on.

        The size takes effect when the next epoch is opened at its start
        (`begin_epoch` with `position=0`, which the batch-size callbacks
        call from `on_epoch_begin`, or the loader's own move to the next
        epoch), so the epoch in progress keeps its batch size, and its
        position stays counted in it.

        Args:
            batch_size: A Python int > 0. Capped at the number of samples,
                with a warning.

        Returns:
            The batch size the next epoch will use.

        Raises:
            ValueError: if `batch_size` <= 0.
            TypeError: if `batch_size` is not an int.
        """
        requested = self._capped(batch_size, stacklevel=3)
        self._link.check(requested)
        self._requested = requested
        return self._requested

    def configure_for(self, model) -> None:
        """Adapts the loader to the model `fit` trains, before the first
        step.

        Takes the model's `steps_per_execution` (an `as_dataset()`
        pipeline ends each epoch by it), and refuses, in words, the
        combinations an `as_dataset()` pipeline that `fit` is reading
        cannot serve exactly. The batch-size callbacks call it from
        `on_train_begin`; without them, pass `steps_per_execution` to
        `as_dataset()`.

        Args:
            model: The compiled `keras.Model` being trained.

        Raises:
            ValueError: if the last `as_dataset()` pipeline was built
                outside the model's distribution strategy, or under a
                strategy with `steps_per_execution` > 1.
        """
        steps_per_execution = int(getattr(model, "steps_per_execution", 1))
        self.board.configure(steps_per_execution, self._link.holds_epochs)
        self._link.for_model(
            model, steps_per_execution, (self.batch_size, self._requested)
        )

    def end_training(self) -> None:
        """Tells the loader that `fit` is over: an `as_dataset()` pipeline
        under several workers stops waiting for the next epoch (see
        `as_dataset()`). The batch-size callbacks call it from
        `on_train_end`; call it yourself after driving a loader by hand."""
        self.board.release()

    def _capped(self, value, stacklevel: int = 3) -> int:
        return _samples.capped(value, self.num_samples, stacklevel + 1)

    def largest_even_batch_size(self, limit: int) -> int | None:
        """The largest batch size <= `limit` whose batches (the last of an
        epoch too) split evenly over the replicas of the multi-worker
        strategy the loader serves (`limit` itself on one worker; `None`
        when no size fits)."""
        return self._link.largest_even_batch_size(limit)

    def begin_epoch(
        self, epoch: int, batch_size: int | None = None, position: int = 0
    ) -> None:
        """Opens an epoch: its permutation, batch size and start position.

        Called by the batch-size callbacks from `on_epoch_begin`, before
        `fit` reads the epoch's number of batches.

        Args:
            epoch: A Python int >= 0, the index of the epoch.
            batch_size: A Python int > 0, or `None`: the size asked for by
                `request_batch_size` when the epoch opens at its start,
                else the current one. An explicit size replaces a request.
            position: A Python int >= 0: batches of this epoch already
                trained on (a resumed run); the epoch serves the rest. An
                epoch resumed this way keeps the current batch size (the
                position is counted in it) unless `batch_size` is given,
                and a request waits for the next epoch.
        """
        _checks.check_non_negative_int("epoch", epoch)
        _checks.check_non_negative_int("position", position)
        self._open(epoch, batch_size, position)
        self._opened = (self.epoch, self.batch_size)

    def _open(
        self, epoch: int, batch_size: int | None = None, position: int = 0
    ) -> None:
        if batch_size is not None:
            batch_size = self._capped(batch_size, stacklevel=3)
            self._link.check(batch_size)
            self._requested = None
        elif position == 0 and self._requested is not None:
            batch_size, self._requested = self._requested, None
        plan = self.plan
        same = (epoch, self.seed, self.shuffle) == (
            plan.epoch, plan.seed, plan.shuffle
        )
        self.board.post(
            self._make_plan(
                epoch,
                plan.batch_size if batch_size is None else batch_size,
                position,
                plan.order if same else None,
            )
        )

    @property
    def num_batches(self):
        """The number of batches of the epoch in force, re-read by `fit`
        at each use (see the module's docstring)."""
        return self._count

    @property
    def steps_per_epoch(self):
        """The current number of batches per epoch, for `as_dataset()`.

        Pass it as `fit(..., steps_per_epoch=loader.steps_per_epoch)`: like
        `num_batches`, `fit` re-reads it at each use, so each epoch takes
        the count of its own batch size. `fit` puts it in
        `history.params["steps"]`; the batch-size callbacks replace that
        entry by a plain `int` (the current count) at the start of
        training and of every epoch, so the params stay JSON-serializable.
        """
        return self._count

    def as_dataset(self, steps_per_execution: int = 1):
        """The same epochs as a native `tf.data` pipeline, for array data.

        The fast way to feed `fit` (no Python call per batch). Every
        behaviour of the loader holds: each epoch is the loader's own
        permutation of all samples (the same order the loader serves), at
        the batch size and start position in force when `fit` asks for the
        epoch's first batch, i.e. after the callbacks' `on_epoch_begin`.
        Use it with the live step count:

        ```python
        model.fit(loader.as_dataset(), steps_per_epoch=loader.steps_per_epoch,
                  shuffle=False, callbacks=[grow])
        ```

        With `steps_per_execution` > 1, `fit` asks for up to that many
        batches per call; the pipeline then ends each epoch whose number
        of batches is not a multiple of it with one empty read, so that no
        call runs into the next epoch. The batch-size callbacks set this
        from the model (`configure_for`); without them, pass the model's
        value here.

        Under a `tf.distribute.MirroredStrategy` or
        `MultiWorkerMirroredStrategy`, call it inside `strategy.scope()`:
        it then returns a distributed dataset, one pipeline per replica or
        per worker, each serving its share of every global batch; the
        rules and the waits are `keras_lr.data.pipeline`'s docstring.

        Args:
            steps_per_execution: A Python int > 0, the model's
                `steps_per_execution` (only needed without a batch-size
                callback).

        Returns:
            An endless `tf.data.Dataset` of `(x, y, sample_weight)` batches
            (as many entries as the loader has), or, inside a
            `MirroredStrategy` scope, a `tf.distribute.DistributedDataset`
            of them.

        Raises:
            BackendError: on a Keras backend other than TensorFlow.
            TypeError: if the loader holds an indexable dataset of samples
                rather than arrays.
            ValueError: inside the scope of a strategy other than
                `MirroredStrategy` or `MultiWorkerMirroredStrategy`; for a
                batch that does not split over the workers' replicas;
                inside a `MirroredStrategy` scope,
                with `steps_per_execution` > 1 or a first batch that is
                not a multiple of the number of replicas.
        """
        _checks.check_positive_int("steps_per_execution", steps_per_execution)
        _strategy.require_tensorflow()
        if self._sample_mode:
            raise TypeError(
                "`as_dataset()` needs array data; this loader holds an "
                f"indexable dataset of type {type(self.x).__name__}. Pass "
                "the loader itself to `fit`."
            )
        use = self._link.for_dataset(
            steps_per_execution, self.plan, self._requested
        )
        self.board.configure(steps_per_execution, hold=False)
        return _strategy.build_pipeline(self, use, _CHUNK_BYTES)

    def __len__(self):
        return self.plan.num_batches

    def __getitem__(self, index):
        if index == 0:
            # `fit(loader)` reads batch 0 first, from its own thread: under
            # several workers, check the split before Keras builds with it.
            strategy = distribute.cluster_strategy()
            if strategy is not None:
                self._link.split_for(strategy, self.batch_size, self._requested)
        self._served_in_epoch += 1
        # One plan, read once: a prefetching thread may call this while
        # the main thread posts the next epoch's.
        plan = self.plan
        served = plan.num_batches
        index = int(index)
        if not 0 <= index < served:
            raise IndexError(
                f"Batch index {index} out of range for an epoch "
                f"of {served} batches"
            )
        return self.take(plan.ids(index))

    def take(self, ids: np.ndarray):
        """The batch `(x, y, sample_weight)` of the samples `ids`."""
        return _samples.gather(
            self.x, self.y, self.sample_weight, self._sample_mode, ids
        )

    def on_epoch_begin(self):
        self._in_epoch = True
        self._served_in_epoch = 0

    def on_epoch_end(self):
        # Only `fit(loader)` calls this (also once before training): the
        # batch-size callbacks learn which input `fit` is reading.
        self._link.last_input = "loader"
        # Unless a callback drives it, the loader moves on after each epoch
        # it served: not after the call before training, nor after reading
        # only batch 0 of several (JAX's and PyTorch's `fit` build with it).
        built_only = self._served_in_epoch == 1 and self.plan.num_batches > 1
        if self._in_epoch and not built_only:
            self._open(self.epoch + 1)
        self._in_epoch = False

    def get_state(self, trained_batches: int | None = None) -> dict:
        """The loader's state, JSON-native, for an exact resume.

        Args:
            trained_batches: A Python int >= 0 or `None`. How many batches
                of the epoch last opened by `begin_epoch` or `set_state`
                the model has trained on, counted from the optimizer's
                steps (the loader cannot tell: `fit` reads ahead, and
                `fit(loader)` moves it on after each epoch). The state then
                resumes right after them, or at the start of the next epoch
                (with the requested batch size) once that epoch is
                complete. `None`: the loader as it is.

        Returns:
            A dict: `batch_size`, `epoch`, `position`, `seed`, `shuffle`,
            `num_samples`, and `next_batch_size` while a requested size
            still waits for the next epoch.
        """
        plan = self.plan
        epoch, position = plan.epoch, plan.position
        batch_size, requested = plan.batch_size, self._requested
        if trained_batches is not None:
            _checks.check_non_negative_int("trained_batches", trained_batches)
            epoch, batch_size = self._opened
            position = int(trained_batches)
            if position >= math.ceil(self.num_samples / batch_size):
                epoch, position = epoch + 1, 0
                batch_size, requested = self.next_batch_size, None
        state = {
            "batch_size": batch_size,
            "epoch": epoch,
            "position": position,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "num_samples": self.num_samples,
        }
        if requested is not None:
            state["next_batch_size"] = requested
        return state

    def set_state(self, state: dict) -> None:
        """Restores `get_state()`'s output (same data, same order)."""
        if int(state["num_samples"]) != self.num_samples:
            raise ValueError(
                "The state was saved for a dataset of "
                f"{state['num_samples']} samples; this loader holds "
                f"{self.num_samples}."
            )
        self.seed = int(state["seed"])
        self.shuffle = bool(state["shuffle"])
        batch_size = self._capped(int(state["batch_size"]), stacklevel=3)
        requested = state.get("next_batch_size")
        if requested is not None:
            requested = self._capped(int(requested), stacklevel=3)
        epoch = int(state["epoch"])
        self._requested = requested
        self.board.post(
            self._make_plan(epoch, batch_size, int(state["position"]))
        )
        self._opened = (epoch, batch_size)
        self._in_epoch = False
