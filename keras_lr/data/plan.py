"""What a `GrowingBatchLoader` serves in one epoch, fixed once per epoch.

The loader owns its batch size, epoch and position; whenever they change
(a callback opens an epoch, a state is restored, the loader moves on by
itself) it builds one immutable `EpochPlan` and posts it on its
`PlanBoard`. Readers on other threads (the `tf.data` pipelines of
`as_dataset()`, Keras' prefetching of `fit(loader)`) read a whole plan or
none of it, never a mix of two epochs, and nothing else of the loader.

The board also carries the one cross-thread rule of a multi-worker
pipeline: the strategy's iterator reads ahead into the next epoch, so
while a batch-size callback drives the loader a pipeline that has served
an epoch waits until the next one is posted. That wait ends when the next
plan is posted, when training ends (`release`, from the callbacks'
`on_train_end`), or when the iterator reading the pipeline is released
(a `fit` that raises calls no `on_train_end`; Python drops its iterator
as the error unwinds `fit`, see `track`).
"""

import dataclasses
import math
import threading
import weakref

import numpy as np


def permutation(num_samples: int, seed: int, shuffle: bool, epoch: int):
    """The order of the samples in `epoch`: a function of `(seed, epoch)`
    only, so a resumed run sees the same order."""
    if not shuffle:
        return np.arange(num_samples)
    return np.random.default_rng([seed, epoch]).permutation(num_samples)


@dataclasses.dataclass(frozen=True)
class EpochPlan:
    """One epoch as the loader serves it.

    Args:
        epoch: A Python int >= 0, the index of the epoch (it sets the
            permutation).
        batch_size: A Python int > 0 (the epoch's last batch may be
            smaller).
        position: A Python int >= 0: batches of the epoch skipped at its
            start (a resumed epoch serves only the rest).
        order: The epoch's permutation of the sample ids (read-only).
        generation: A Python int, bumped each time Python sets the epoch;
            a pipeline follows a new generation and otherwise moves on to
            the next epoch by itself.
        seed: A Python int, the loader's seed.
        shuffle: A bool, whether each epoch has its own permutation.
    """

    epoch: int
    batch_size: int
    position: int
    order: np.ndarray
    generation: int
    seed: int
    shuffle: bool

    @property
    def num_samples(self) -> int:
        return int(self.order.shape[0])

    @property
    def total_batches(self) -> int:
        """Batches of the whole epoch, the skipped ones included."""
        return math.ceil(self.num_samples / self.batch_size)

    @property
    def num_batches(self) -> int:
        """Batches served: the epoch's, less the skipped ones."""
        return max(self.total_batches - self.position, 0)

    def ids(self, index: int) -> np.ndarray:
        """The sample ids of served batch `index` (0: the first served)."""
        start = (self.position + index) * self.batch_size
        return self.order[start : start + self.batch_size]

    def remaining_ids(self) -> np.ndarray:
        """The ids of every served batch, in order."""
        start = min(self.position, self.total_batches) * self.batch_size
        return self.order[start:]

    def following(self, count: int = 1) -> "EpochPlan":
        """The plan of the epoch `count` after this one, at its start and
        this batch size (what a pipeline serves by itself)."""
        if count == 0:
            return self
        epoch = self.epoch + count
        return dataclasses.replace(
            self,
            epoch=epoch,
            position=0,
            order=_frozen(
                permutation(self.num_samples, self.seed, self.shuffle, epoch)
            ),
        )


def make_plan(
    num_samples: int,
    seed: int,
    shuffle: bool,
    epoch: int,
    batch_size: int,
    position: int,
    generation: int,
    order: np.ndarray | None = None,
) -> EpochPlan:
    if order is None:
        order = permutation(num_samples, seed, shuffle, epoch)
    return EpochPlan(
        epoch=int(epoch),
        batch_size=int(batch_size),
        position=int(position),
        order=_frozen(order),
        generation=int(generation),
        seed=int(seed),
        shuffle=bool(shuffle),
    )


def _frozen(order: np.ndarray) -> np.ndarray:
    order = np.asarray(order, dtype=np.int64)
    order.flags.writeable = False
    return order


class PlanBoard:
    """Where a loader posts its current `EpochPlan` for other threads.

    Args:
        plan: The first `EpochPlan`.
    """

    def __init__(self, plan: EpochPlan):
        self._lock = threading.Lock()
        self._posted = threading.Condition(self._lock)
        self._plan = plan
        self._holding = False
        self._steps_per_execution = 1
        # Iterators handed out by `track`, and the last one's number.
        self._iterators = 0

    @property
    def plan(self) -> EpochPlan:
        return self._plan

    @property
    def steps_per_execution(self) -> int:
        return self._steps_per_execution

    def post(self, plan: EpochPlan) -> None:
        with self._lock:
            self._plan = plan
            self._posted.notify_all()

    def configure(self, steps_per_execution: int, hold: bool) -> None:
        """Set at the start of `fit`: the model's `steps_per_execution`,
        and whether pipelines wait for each next epoch to be posted."""
        with self._lock:
            self._steps_per_execution = int(steps_per_execution)
            self._holding = bool(hold)
            self._posted.notify_all()

    def release(self) -> None:
        """Training is over: no pipeline waits for a next epoch."""
        with self._lock:
            self._holding = False
            self._posted.notify_all()

    def next_plan(self, seen_generation: int | None):
        """The plan in force and `steps_per_execution`, after waiting
        (while holding) for a generation other than `seen_generation`."""
        with self._lock:
            while (
                self._holding
                and seen_generation is not None
                and self._plan.generation == seen_generation
            ):
                self._posted.wait()
            return self._plan, self._steps_per_execution

    def track(self, iterator) -> None:
        """Releases the board when `iterator`, the last one made over a
        pipeline of this board, is released by Python: its pipeline may
        be waiting for an epoch that its `fit` will never open, and TF
        destroys the pipeline only after that wait ends."""
        with self._lock:
            self._iterators += 1
            number = self._iterators
        weakref.finalize(iterator, self._iterator_released, number)

    def _iterator_released(self, number: int) -> None:
        with self._lock:
            if number == self._iterators:
                self._holding = False
                self._posted.notify_all()
