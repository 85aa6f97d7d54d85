"""A data loader whose batch size can change between epochs inside `fit`."""

import math
import sys
import threading
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_lr import _checks
from keras_lr import distribute


class _LiveBatchCount:
    """The loader's current number of batches, read at the moment of use.

    Keras' `fit` reads `num_batches` once, before the first epoch, and keeps
    the object it got: the epoch iterator uses it as the number of steps of
    every epoch and the progress bar as its total. A plain `int` frozen at
    the first epoch's value makes every epoch after a batch-size change end
    with "Your input ran out of data" and show a stale total. Handing out
    this view instead keeps both right: each comparison, `range()` or
    division sees the count for the batch size in force at that moment,
    which a batch-size callback sets in `on_epoch_begin`, before `fit`
    starts reading the epoch.
    """

    __slots__ = ("_loader",)

    def __init__(self, loader):
        self._loader = loader

    def __index__(self):
        return self._loader._current_num_batches()

    __int__ = __index__

    def __float__(self):
        return float(self.__index__())

    def __bool__(self):
        return self.__index__() != 0

    def __repr__(self):
        return repr(self.__index__())

    __str__ = __repr__

    def __format__(self, spec):
        return format(self.__index__(), spec)

    def __eq__(self, other):
        return self.__index__() == other

    def __ne__(self, other):
        return self.__index__() != other

    def __lt__(self, other):
        return self.__index__() < other

    def __le__(self, other):
        return self.__index__() <= other

    def __gt__(self, other):
        return self.__index__() > other

    def __ge__(self, other):
        return self.__index__() >= other

    __hash__ = None

    def __add__(self, other):
        return self.__index__() + other

    def __radd__(self, other):
        return other + self.__index__()

    def __sub__(self, other):
        return self.__index__() - other

    def __rsub__(self, other):
        return other - self.__index__()

    def __mul__(self, other):
        return self.__index__() * other

    def __rmul__(self, other):
        return other * self.__index__()

    def __truediv__(self, other):
        return self.__index__() / other

    def __rtruediv__(self, other):
        return other / self.__index__()

    def __floordiv__(self, other):
        return self.__index__() // other

    def __rfloordiv__(self, other):
        return other // self.__index__()

    def __mod__(self, other):
        return self.__index__() % other

    def __rmod__(self, other):
        return other % self.__index__()


# About how many bytes of samples an `as_dataset()` pipeline gathers at
# once (whole batches, at least one).
_CHUNK_BYTES = 2**20

_SPE_UNDER_STRATEGY = (
    "`loader.as_dataset()` under a distribution strategy needs "
    "`steps_per_execution=1`: its per-replica pipelines cannot end an "
    "epoch in the middle of a multi-step call. Pass the loader itself to "
    "`fit` instead. Received: steps_per_execution={}"
)


# How often a pipeline waiting for the next epoch checks that `fit` is
# still running.
_HOLD_CHECK_SECONDS = 0.25


def _fit_frame(model=None):
    """The frame of the `fit` call training `model` (of any Keras model
    when `None`) on this thread's stack, or `None` outside `fit`."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "fit":
            owner = frame.f_locals.get("self")
            if owner is model or (
                model is None and isinstance(owner, keras.Model)
            ):
                return frame
        frame = frame.f_back
    return None


class _Cursor:
    """Which epoch one `as_dataset()` pipeline opens next.

    A pipeline (one per replica under `MirroredStrategy`, one per worker
    under `MultiWorkerMirroredStrategy`) calls
    `next_cycle` from its own thread each time `fit` asks for a batch past
    the end of the previous cycle. A cycle is either an epoch (the ids of
    the samples still to serve, and the batch size), or, right after an
    epoch whose number of batches is not a multiple of
    `steps_per_execution`, an empty cycle: `fit`'s multi-step call sees it
    as the end of the data and stops there instead of running into the
    next epoch, and the next call opens the next epoch.

    When the epoch was set from Python since the last cycle (a batch-size
    callback's `begin_epoch`, `set_state`), the cycle follows it, at its
    start position; otherwise the pipeline advances to the next epoch on
    its own, so a loader without a callback still reshuffles every epoch.
    """

    def __init__(self, loader):
        self._loader = loader
        self._generation = None
        self._opened = 0
        self._end_due = False

    def next_cycle(self):
        loader = self._loader
        with loader._lock:
            # A multi-worker iterator reads ahead into the next epoch;
            # while a callback drives the loader, wait until it has opened
            # that epoch (or training ended) rather than guess it.
            while (
                loader._hold_epochs
                and self._generation is not None
                and loader._generation == self._generation
                and not self._end_due
            ):
                if not loader._epoch_opened.wait(_HOLD_CHECK_SECONDS) and (
                    not loader._fit_running()
                ):
                    # `fit` raised (Keras then calls no `on_train_end`):
                    # stop holding, or deleting this pipeline's iterator
                    # would wait for this thread forever.
                    loader._hold_epochs = False
            generation = loader._generation
            batch_size = loader._batch_size
            epoch = loader._epoch
            position = loader._position
            steps_per_execution = loader._steps_per_execution
        if self._end_due and generation == self._generation:
            self._end_due = False
            return np.zeros(0, np.int64), np.int64(batch_size)
        # An end owed by an epoch that was cut short (`stop_training`) is
        # void once Python has set the next epoch.
        self._end_due = False
        if generation != self._generation:
            self._generation = generation
            self._opened = 0
        epoch += self._opened
        if self._opened:
            position = 0
        self._opened += 1
        total = math.ceil(loader.num_samples / batch_size)
        position = min(position, total)
        self._end_due = (total - position) % steps_per_execution != 0
        order = loader._order_for(epoch)
        ids = order[position * batch_size :].astype(np.int64)
        return ids, np.int64(batch_size)


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "__getitem__")


def _flatten(value):
    return keras.tree.flatten(value) if value is not None else []


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
        self._sample_mode = not all(_is_array(a) for a in _flatten(x))
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
        self.num_samples = self._check_lengths()
        if self.num_samples == 0:
            raise ValueError(
                "Argument `x` must hold at least one sample. Received: "
                "an empty `x`"
            )
        self.shuffle = shuffle
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self.seed = seed
        # Guards what `as_dataset()` pipelines read from their own threads.
        self._lock = threading.Lock()
        # Signalled when Python opens an epoch or training ends.
        self._epoch_opened = threading.Condition(self._lock)
        self._hold_epochs = False
        # The thread and `fit` frame a callback drives the loader from
        # (`configure_for`), to tell when that `fit` has raised.
        self._fit = None
        self._batch_size = self._capped(batch_size)
        # A size asked for by `request_batch_size`, for the next epoch.
        self._requested = None
        self._epoch = 0
        self._position = 0
        # The epoch and batch size last opened from outside (a callback's
        # `begin_epoch`, `set_state`): what `trained_batches` count in.
        self._opened = (0, self._batch_size)
        self._in_epoch = False
        self._count = _LiveBatchCount(self)
        self._order = self._permutation(0)
        # Bumped whenever the epoch is set from Python, so `as_dataset()`
        # pipelines know whether to follow it or to advance on their own.
        self._generation = 0
        self._steps_per_execution = 1
        self._dataset_strategy = None
        self._dataset_distributed = False
        self._dataset_multi_worker = False
        # The multi-worker strategy whose replicas share every batch
        # (`as_dataset()` built in its scope, or `fit(loader)` under it).
        self._split_strategy = None
        self._last_input = None

    def _check_lengths(self) -> int:
        if self._sample_mode:
            if not hasattr(self.x, "__len__") or not hasattr(
                self.x, "__getitem__"
            ):
                raise TypeError(
                    "Argument `x` must be an array, a structure of arrays, "
                    "or an indexable dataset with `__len__` and "
                    f"`__getitem__`. Received: x of type {type(self.x)}"
                )
            return len(self.x)
        lengths = {}
        for name, value in (
            ("x", self.x),
            ("y", self.y),
            ("sample_weight", self.sample_weight),
        ):
            for array in _flatten(value):
                if _is_array(array):
                    lengths.setdefault(name, set()).add(int(array.shape[0]))
                else:
                    raise TypeError(
                        f"Argument `{name}` must be an array or a structure "
                        f"of arrays. Received: an item of type "
                        f"{type(array).__name__}"
                    )
        for name, found in lengths.items():
            if len(found) > 1:
                raise ValueError(
                    f"Argument `{name}` holds arrays of different lengths. "
                    f"Received: lengths {sorted(found)}"
                )
        per_arg = {name: found.pop() for name, found in lengths.items()}
        if len(set(per_arg.values())) > 1:
            described = ", ".join(f"len({k})={v}" for k, v in per_arg.items())
            names = " and ".join(f"`{k}`" for k in per_arg)
            raise ValueError(
                f"Arguments {names} must have the same number of samples. "
                f"Received: {described}"
            )
        return per_arg["x"]

    # What the batch-size callbacks use ---------------------------------
    #
    # The loader owns its batch size, epoch and position; callbacks change
    # them only through `request_batch_size`, `begin_epoch`,
    # `configure_for` and the state methods below.

    @property
    def batch_size(self) -> int:
        """The batch size of the current epoch (its last batch may be
        smaller)."""
        return self._batch_size

    @property
    def next_batch_size(self) -> int:
        """The batch size the next epoch opened at its start will use."""
        return self._batch_size if self._requested is None else self._requested

    @property
    def epoch(self) -> int:
        """The index of the current epoch (it sets the permutation)."""
        return self._epoch

    @property
    def position(self) -> int:
        """Batches of the current epoch skipped at its start (a resumed
        epoch serves only the rest)."""
        return self._position

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
        self._check_split(requested)
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
        frame = _fit_frame(model)
        with self._lock:
            self._steps_per_execution = steps_per_execution
            self._hold_epochs = (
                self._dataset_multi_worker and self._last_input == "dataset"
            )
            # The frame's id and code, not the frame: holding the frame
            # would keep `fit`'s locals (its iterator) alive after it ends.
            self._fit = (
                None
                if frame is None
                else (threading.get_ident(), id(frame), frame.f_code)
            )
        if self._last_input != "dataset":
            self._split_for(model.distribute_strategy)
            return
        strategy = model.distribute_strategy
        if strategy is not self._dataset_strategy:
            raise ValueError(
                "`loader.as_dataset()` was built outside the distribution "
                "strategy of the model: call it inside the same "
                "`strategy.scope()` (Keras' own distribution of a dataset "
                "prefetches across epochs, so a new batch size would take "
                f"effect late). Model strategy: {type(strategy).__name__}; "
                "dataset built under: "
                f"{type(self._dataset_strategy).__name__}"
            )
        if self._dataset_distributed and steps_per_execution > 1:
            raise ValueError(_SPE_UNDER_STRATEGY.format(steps_per_execution))

    def _fit_running(self) -> bool:
        """Whether the `fit` of the last `configure_for` is still on its
        thread's stack (`True` when it was not found: hold as before)."""
        if self._fit is None:
            return True
        thread, fit_id, fit_code = self._fit
        frame = sys._current_frames().get(thread)
        while frame is not None:
            if id(frame) == fit_id and frame.f_code is fit_code:
                return True
            frame = frame.f_back
        return False

    def end_training(self) -> None:
        """Tells the loader that `fit` is over: an `as_dataset()` pipeline
        under several workers stops waiting for the next epoch (see
        `as_dataset()`). The batch-size callbacks call it from
        `on_train_end`."""
        with self._lock:
            self._hold_epochs = False
            self._fit = None
            self._epoch_opened.notify_all()

    def _capped(self, value, stacklevel: int = 3) -> int:
        _checks.check_positive_int("batch_size", value)
        if value > self.num_samples:
            warnings.warn(
                f"`batch_size`={value} is larger than the dataset "
                f"({self.num_samples} samples); using batch_size="
                f"{self.num_samples}.",
                stacklevel=stacklevel,
            )
            value = self.num_samples
        return int(value)

    def _check_fit_split(self) -> None:
        """`fit(loader)` reads batch 0 from its own thread before anything
        else (Keras takes the data's signature from it, then builds the
        model from the replicas' mean of the first batch, which fails in a
        collective when the shares differ): under several workers, check
        the split here, before that build."""
        frame = _fit_frame()
        if frame is not None:
            self._split_for(frame.f_locals["self"].distribute_strategy)

    def _split_for(self, strategy) -> None:
        """`fit(loader)` under `strategy`: under several workers Keras
        splits every batch over all the replicas, so the rules of
        `as_dataset()` hold; checks the batch size and any requested."""
        multi_worker = isinstance(
            strategy, tf.distribute.MultiWorkerMirroredStrategy
        )
        self._split_strategy = strategy if multi_worker else None
        self._check_split(self._batch_size)
        if self._requested is not None:
            self._check_split(self._requested)

    def largest_even_batch_size(self, limit: int) -> int | None:
        """The largest batch size <= `limit` whose batches (the last of an
        epoch too) split evenly over the replicas of the multi-worker
        strategy the loader serves (`limit` itself on one worker; `None`
        when no size fits)."""
        for size in range(int(limit), 0, -1):
            try:
                self._check_split(size)
            except ValueError:
                continue
            return size
        return None

    def _check_split(self, batch_size: int) -> None:
        """Under several workers, every batch of an epoch (its last one
        too) must split evenly over the replicas."""
        strategy = self._split_strategy
        if strategy is None:
            return
        distribute.check_batch_split(batch_size, strategy)
        last = self.num_samples % batch_size
        replicas = strategy.num_replicas_in_sync
        if last % replicas:
            raise ValueError(
                "Argument `batch_size` must leave a last batch per epoch "
                f"that is a multiple of the {replicas} replicas too (every "
                "replica gets an equal share of every batch): "
                f"{self.num_samples} samples in batches of {batch_size} "
                f"leave {last}. Received: batch_size={batch_size}"
            )

    def _permutation(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_samples)
        rng = np.random.default_rng([self.seed, epoch])
        return rng.permutation(self.num_samples)

    def _current_num_batches(self) -> int:
        total = math.ceil(self.num_samples / self._batch_size)
        return max(total - self._position, 0)

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
        self._opened = (self._epoch, self._batch_size)

    def _open(
        self, epoch: int, batch_size: int | None = None, position: int = 0
    ) -> None:
        if batch_size is not None:
            batch_size = self._capped(batch_size, stacklevel=3)
            self._check_split(batch_size)
            self._requested = None
        elif position == 0 and self._requested is not None:
            batch_size, self._requested = self._requested, None
        order = self._order
        if epoch != self._epoch or self.shuffle is False:
            order = self._permutation(epoch)
        with self._lock:
            if batch_size is not None:
                self._batch_size = batch_size
            self._order = order
            self._epoch = int(epoch)
            self._position = int(position)
            self._generation += 1
            self._epoch_opened.notify_all()

    @property
    def num_batches(self):
        """A live view of the current number of batches (see above)."""
        return self._count

    @property
    def steps_per_epoch(self):
        """The current number of batches per epoch, for `as_dataset()`.

        Pass it as `fit(..., steps_per_epoch=loader.steps_per_epoch)`: it
        is a live view (see `num_batches`), not a frozen `int`. `fit` puts
        it in `history.params["steps"]`; the batch-size callbacks replace
        that entry by a plain `int` (the current count) at the start of
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

        Under a `tf.distribute.MirroredStrategy`, call it inside
        `strategy.scope()`: it then returns a distributed dataset with one
        pipeline per replica, each taking its share of every global batch,
        without the prefetching across epochs of Keras' own distribution
        (which would open an epoch before its batch size is set). That
        combination needs `steps_per_execution=1` (the per-replica
        pipelines are read without the end-of-data check that ends an
        epoch inside a multi-step call), and a first batch that splits
        evenly over the replicas (Keras builds the model from their mean
        of it; this holds for any input, not only this one).

        Under a `tf.distribute.MultiWorkerMirroredStrategy` (one process
        per worker, each running the same script), call it inside
        `strategy.scope()` too: every worker then serves its replicas'
        shares of every global batch, so that across the workers each
        sample is seen once per epoch. Every batch, the last of an epoch
        included, must split evenly over all the replicas (uneven shares
        would weigh samples unequally; `ValueError` otherwise, also from
        `request_batch_size`). The strategy's iterator reads ahead, which
        would open the next epoch before the callbacks set its batch
        size: while a batch-size
        callback drives the loader, the pipeline waits at each epoch's end
        until the callback has opened the next epoch, or `fit` has ended
        (a `fit` that raises calls no `on_train_end`: the pipeline sees
        within a quarter second that `fit` is no longer running, so the
        error reaches the caller and the iterator can be deleted).

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
        if self._sample_mode:
            raise TypeError(
                "`as_dataset()` needs array data; this loader holds an "
                f"indexable dataset of type {type(self.x).__name__}. Pass "
                "the loader itself to `fit`."
            )
        strategy = tf.distribute.get_strategy()
        distributed = tf.distribute.has_strategy()
        multi_worker = distributed and isinstance(
            strategy, tf.distribute.MultiWorkerMirroredStrategy
        )
        if distributed and not (
            multi_worker
            or isinstance(strategy, tf.distribute.MirroredStrategy)
        ):
            raise ValueError(
                "`as_dataset()` supports the default strategy, "
                "`tf.distribute.MirroredStrategy` and "
                "`tf.distribute.MultiWorkerMirroredStrategy`. Received: a "
                f"{type(strategy).__name__} scope. Pass the loader itself "
                "to `fit`."
            )
        if distributed and steps_per_execution > 1:
            raise ValueError(_SPE_UNDER_STRATEGY.format(steps_per_execution))
        replicas = strategy.num_replicas_in_sync
        first = min(
            self._batch_size,
            self.num_samples - self._position * self._batch_size,
        )
        if multi_worker:
            with self._lock:
                self._dataset_strategy = strategy
                self._dataset_multi_worker = True
                self._split_strategy = strategy
            self._check_split(self._batch_size)
            if self._requested is not None:
                self._check_split(self._requested)
        elif distributed and first % replicas:
            raise ValueError(
                "Under `MirroredStrategy`, the first batch `fit` reads must "
                f"be a multiple of the {replicas} replicas: Keras builds the "
                "model from the replicas' mean of that batch, which needs "
                "equal parts (later batches may split unevenly). Received: "
                f"a first batch of {first} (batch_size={self._batch_size})"
            )
        with self._lock:
            self._steps_per_execution = int(steps_per_execution)
            self._dataset_strategy = strategy
            self._dataset_distributed = distributed
            self._dataset_multi_worker = multi_worker
            self._split_strategy = strategy if multi_worker else None
            self._last_input = "dataset"
        tensors = [self.x]
        if self.y is not None or self.sample_weight is not None:
            tensors.append(self.y)
        if self.sample_weight is not None:
            tensors.append(self.sample_weight)
        tensors = tf.nest.map_structure(tf.convert_to_tensor, tuple(tensors))
        row_bytes = sum(
            a.dtype.size * math.prod(a.shape[1:])
            for a in tf.nest.flatten(tensors)
        )
        chunk_rows = max(_CHUNK_BYTES // max(row_bytes, 1), 1)
        if not distributed:
            return self._pipeline(tensors, chunk_rows, 0, 1)
        if multi_worker:
            # One pipeline per worker, serving its replicas' shares of
            # every global batch in turn (the order in which the strategy
            # hands a worker's elements to its replicas).
            local = distribute.local_replicas(strategy)
            options = tf.distribute.InputOptions(
                experimental_replication_mode=(
                    tf.distribute.InputReplicationMode.PER_WORKER
                ),
                experimental_fetch_to_device=False,
            )
            return strategy.distribute_datasets_from_function(
                lambda context: self._pipeline(
                    tensors,
                    chunk_rows,
                    context.input_pipeline_id * local,
                    replicas,
                    local,
                ),
                options,
            )
        options = tf.distribute.InputOptions(
            experimental_replication_mode=(
                tf.distribute.InputReplicationMode.PER_REPLICA
            ),
            experimental_fetch_to_device=False,
        )
        return strategy.distribute_datasets_from_function(
            lambda context: self._pipeline(
                tensors,
                chunk_rows,
                context.input_pipeline_id,
                replicas,
            ),
            options,
        )

    def _pipeline(
        self,
        tensors,
        chunk_rows: int,
        replica: int,
        replicas: int,
        local: int = 1,
    ):
        """One endless pipeline: epoch after epoch, each opened lazily.

        It serves the shares of replicas `replica` to `replica + local - 1`
        of every global batch, one after the other."""
        cursor = _Cursor(self)

        def gather(ids):
            return tf.nest.map_structure(lambda a: tf.gather(a, ids), tensors)

        def share(ids, replica=replica):
            # Replica `r` takes its slice of a global batch (the last axis
            # of `ids`), as Keras' own split of a batch does: ceil(B / R)
            # each, the last replicas less.
            size = tf.shape(ids, out_type=tf.int64)[-1]
            per = (size + replicas - 1) // replicas
            return ids[..., replica * per : (replica + 1) * per]

        def shares(batch_ids):
            return tf.data.Dataset.range(local).map(
                lambda r: gather(share(batch_ids, replica + r))
            )

        def open_cycle(_):
            ids, batch_size = tf.numpy_function(
                cursor.next_cycle, [], (tf.int64, tf.int64), stateful=True
            )
            ids = tf.ensure_shape(ids, [None])
            batch_size = tf.ensure_shape(batch_size, [])
            # Samples are gathered a chunk of whole batches at a time (about
            # _CHUNK_BYTES), then served batch by batch: small batches then
            # cost one gather per chunk rather than one per batch.
            per_chunk = tf.maximum(chunk_rows // batch_size, 1) * batch_size
            size = tf.size(ids, out_type=tf.int64)
            chunks = (size + per_chunk - 1) // per_chunk

            def batches(index):
                part = ids[index * per_chunk : (index + 1) * per_chunk]
                rows = tf.size(part, out_type=tf.int64)
                full = rows // batch_size
                body = tf.reshape(part[: full * batch_size], [full, batch_size])
                tail = part[full * batch_size :]
                if local > 1:
                    has_tail = tf.cast(rows > full * batch_size, tf.int64)
                    return (
                        tf.data.Dataset.from_tensor_slices(body)
                        .concatenate(
                            tf.data.Dataset.from_tensors(tail).take(has_tail)
                        )
                        .flat_map(shares)
                    )
                if replicas > 1:
                    body, tail = share(body), share(tail)
                return tf.data.Dataset.from_tensor_slices(
                    gather(body)
                ).concatenate(
                    tf.data.Dataset.from_tensors(gather(tail)).take(
                        tf.cast(rows > full * batch_size, tf.int64)
                    )
                )

            return tf.data.Dataset.range(chunks).flat_map(batches).prefetch(2)

        options = tf.data.Options()
        # `repeat()` opens the next cycle only when `fit` asks for its
        # first batch, and passes the empty cycle that ends an epoch on to
        # `fit` as an end of data. Any prefetch after it (such as the one
        # tf.data injects by default) would read ahead into the next epoch
        # and turn that end into a permanent one.
        options.experimental_optimization.inject_prefetch = False
        return (
            tf.data.Dataset.from_tensors(np.int64(0))
            .flat_map(open_cycle)
            .repeat()
            .with_options(options)
        )

    def _order_for(self, epoch: int) -> np.ndarray:
        with self._lock:
            if epoch == self._epoch:
                return self._order
        return self._permutation(epoch)

    def __len__(self):
        return self._current_num_batches()

    def __getitem__(self, index):
        if index == 0:
            self._check_fit_split()
        # One read of each attribute: a prefetching thread may call this
        # while the main thread prepares the next epoch.
        batch_size, order, position = (
            self._batch_size,
            self._order,
            self._position,
        )
        total = math.ceil(self.num_samples / batch_size)
        index = int(index) + position
        if not position <= index < total:
            raise IndexError(
                f"Batch index {index - position} out of range for an epoch "
                f"of {total - position} batches"
            )
        ids = order[index * batch_size : (index + 1) * batch_size]
        return self.take(ids)

    def take(self, ids: np.ndarray):
        """The batch `(x, y, sample_weight)` of the samples `ids`."""
        if self._sample_mode:
            items = [self.x[int(i)] for i in ids]
            if not isinstance(items[0], (tuple, list)):
                items = [(item,) for item in items]
            batch = keras.tree.map_structure(
                lambda *parts: np.stack(parts), *items
            )
            return tuple(batch)
        batch = [keras.tree.map_structure(lambda a: a[ids], self.x)]
        if self.y is not None or self.sample_weight is not None:
            batch.append(
                None
                if self.y is None
                else keras.tree.map_structure(lambda a: a[ids], self.y)
            )
        if self.sample_weight is not None:
            batch.append(
                keras.tree.map_structure(lambda a: a[ids], self.sample_weight)
            )
        return tuple(batch)

    def on_epoch_begin(self):
        self._in_epoch = True

    def on_epoch_end(self):
        # Only `fit(loader)` calls this (also once before training): the
        # batch-size callbacks learn which input `fit` is reading.
        self._last_input = "loader"
        # Without a callback driving it, the loader moves to a new
        # permutation after each epoch it served (a callback's
        # `trained_batches` still count in the epoch it opened).
        # `_in_epoch` keeps the call before training from counting.
        if self._in_epoch:
            self._in_epoch = False
            self._open(self._epoch + 1)

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
        epoch, position = self._epoch, self._position
        batch_size, requested = self._batch_size, self._requested
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
        order = self._permutation(epoch)
        with self._lock:
            self._batch_size = batch_size
            self._requested = requested
            self._epoch = epoch
            self._position = int(state["position"])
            self._order = order
            self._generation += 1
            self._epoch_opened.notify_all()
        self._opened = (epoch, batch_size)
        self._in_epoch = False
