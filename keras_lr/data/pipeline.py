"""The native `tf.data` pipeline of `GrowingBatchLoader.as_dataset()`.

A pipeline is endless: epoch after epoch, each opened lazily when `fit`
asks for its first batch. What an epoch holds comes from one immutable
`EpochPlan` that the loader posts on its `PlanBoard` (see
`keras_lr.data.plan`); the pipeline reads nothing else of the loader. The
split rules for a distribution strategy live in `keras_lr.distribute`.

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
until the callback has opened the next epoch, or `fit` has ended:
its `on_train_end` (`end_training()`), or, for a `fit` that raises
(Keras then calls no `on_train_end`), the release of the iterator
`fit` was reading, as the error leaves `fit`; so the error reaches
the caller and the iterator can be deleted.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from keras_lr import _keras_internals
from keras_lr import distribute

SPE_UNDER_STRATEGY = (
    "`loader.as_dataset()` under a distribution strategy needs "
    "`steps_per_execution=1`: its per-replica pipelines cannot end an "
    "epoch in the middle of a multi-step call. Pass the loader itself to "
    "`fit` instead. Received: steps_per_execution={}"
)


@dataclasses.dataclass(frozen=True)
class DatasetUse:
    """The strategy an `as_dataset()` pipeline was built under."""

    strategy: object
    distributed: bool
    multi_worker: bool


def strategy_in_scope(steps_per_execution: int) -> DatasetUse:
    """The strategy of the current scope, refused unless a pipeline can
    serve it with `steps_per_execution`."""
    strategy = tf.distribute.get_strategy()
    distributed = tf.distribute.has_strategy()
    multi_worker = distributed and isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    )
    if distributed and not (
        multi_worker or isinstance(strategy, tf.distribute.MirroredStrategy)
    ):
        raise ValueError(
            "`as_dataset()` supports the default strategy, "
            "`tf.distribute.MirroredStrategy` and "
            "`tf.distribute.MultiWorkerMirroredStrategy`. Received: a "
            f"{type(strategy).__name__} scope. Pass the loader itself "
            "to `fit`."
        )
    if distributed and steps_per_execution > 1:
        raise ValueError(SPE_UNDER_STRATEGY.format(steps_per_execution))
    return DatasetUse(strategy, distributed, multi_worker)


class _Cursor:
    """Which epoch one pipeline opens next.

    A pipeline (one per replica under `MirroredStrategy`, one per worker
    under `MultiWorkerMirroredStrategy`) calls `next_cycle` from its own
    thread each time `fit` asks for a batch past the end of the previous
    cycle. A cycle is either an epoch (the ids of the samples still to
    serve, and the batch size), or, right after an epoch whose number of
    batches is not a multiple of `steps_per_execution`, an empty cycle:
    `fit`'s multi-step call sees it as the end of the data and stops there
    instead of running into the next epoch, and the next call opens the
    next epoch.

    When Python posted a plan since the last cycle (a batch-size
    callback's `begin_epoch`, `set_state`), the cycle follows it, at its
    start position; otherwise the pipeline advances to the next epoch on
    its own, so a loader without a callback still reshuffles every epoch.
    """

    def __init__(self, board):
        self._board = board
        self._generation = None
        self._opened = 0
        self._end_due = False

    def next_cycle(self):
        # While a callback drives a multi-worker loader, this waits until
        # it has posted the epoch after the one served (see `PlanBoard`).
        plan, steps_per_execution = self._board.next_plan(
            None if self._end_due else self._generation
        )
        if self._end_due and plan.generation == self._generation:
            self._end_due = False
            return np.zeros(0, np.int64), np.int64(plan.batch_size)
        # An end owed by an epoch that was cut short (`stop_training`) is
        # void once Python has posted the next epoch.
        self._end_due = False
        if plan.generation != self._generation:
            self._generation = plan.generation
            self._opened = 0
        plan = plan.following(self._opened)
        self._opened += 1
        position = min(plan.position, plan.total_batches)
        self._end_due = (
            plan.total_batches - position
        ) % steps_per_execution != 0
        return plan.remaining_ids(), np.int64(plan.batch_size)


def build(loader, use: DatasetUse, chunk_bytes: int):
    """The pipeline(s) of `loader` for `use`: a `tf.data.Dataset`, or a
    distributed dataset with one pipeline per replica (`MirroredStrategy`)
    or per worker (`MultiWorkerMirroredStrategy`). Each gathers samples
    about `chunk_bytes` at a time (whole batches, at least one)."""
    tensors = [loader.x]
    if loader.y is not None or loader.sample_weight is not None:
        tensors.append(loader.y)
    if loader.sample_weight is not None:
        tensors.append(loader.sample_weight)
    tensors = tf.nest.map_structure(tf.convert_to_tensor, tuple(tensors))
    row_bytes = sum(
        a.dtype.size * math.prod(a.shape[1:]) for a in tf.nest.flatten(tensors)
    )
    chunk_rows = max(chunk_bytes // max(row_bytes, 1), 1)
    board = loader.board
    if not use.distributed:
        return _pipeline(board, tensors, chunk_rows, 0, 1)
    strategy = use.strategy
    replicas = strategy.num_replicas_in_sync
    if use.multi_worker:
        # One pipeline per worker, serving its replicas' shares of every
        # global batch in turn (the order in which the strategy hands a
        # worker's elements to its replicas).
        local = distribute.local_replicas(strategy)
        dataset = strategy.distribute_datasets_from_function(
            lambda context: _pipeline(
                board,
                tensors,
                chunk_rows,
                context.input_pipeline_id * local,
                replicas,
                local,
            ),
            _options(tf.distribute.InputReplicationMode.PER_WORKER),
        )
        # The hold at each epoch's end lasts no longer than the iterator
        # that reads the pipeline (see `PlanBoard.track`).
        _keras_internals.on_each_iterator(dataset, board.track)
        return dataset
    return strategy.distribute_datasets_from_function(
        lambda context: _pipeline(
            board, tensors, chunk_rows, context.input_pipeline_id, replicas
        ),
        _options(tf.distribute.InputReplicationMode.PER_REPLICA),
    )


def _options(mode):
    return tf.distribute.InputOptions(
        experimental_replication_mode=mode,
        experimental_fetch_to_device=False,
    )


def _pipeline(
    board,
    tensors,
    chunk_rows: int,
    replica: int,
    replicas: int,
    local: int = 1,
):
    """One endless pipeline: epoch after epoch, each opened lazily.

    It serves the shares of replicas `replica` to `replica + local - 1`
    of every global batch, one after the other."""
    cursor = _Cursor(board)

    def gather(ids):
        return tf.nest.map_structure(lambda a: tf.gather(a, ids), tensors)

    def share(ids, replica=replica):
        # Replica `r` takes its slice of a global batch (the last axis of
        # `ids`), as Keras' own split of a batch does: ceil(B / R) each,
        # the last replicas less.
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
        # `chunk_bytes`), then served batch by batch: small batches then
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
            has_tail = tf.cast(rows > full * batch_size, tf.int64)
            if local > 1:
                return (
                    tf.data.Dataset.from_tensor_slices(body)
                    .concatenate(tf.data.Dataset.from_tensors(tail).take(has_tail))
                    .flat_map(shares)
                )
            if replicas > 1:
                body, tail = share(body), share(tail)
            return tf.data.Dataset.from_tensor_slices(gather(body)).concatenate(
                tf.data.Dataset.from_tensors(gather(tail)).take(has_tail)
            )

        return tf.data.Dataset.range(chunks).flat_map(batches).prefetch(2)

    options = tf.data.Options()
    # `repeat()` opens the next cycle only when `fit` asks for its first
    # batch, and passes the empty cycle that ends an epoch on to `fit` as
    # an end of data. Any prefetch after it (such as the one tf.data
    # injects by default) would read ahead into the next epoch and turn
    # that end into a permanent one.
    options.experimental_optimization.inject_prefetch = False
    return (
        tf.data.Dataset.from_tensors(np.int64(0))
        .flat_map(open_cycle)
        .repeat()
        .with_options(options)
    )
