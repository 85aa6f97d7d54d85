"""Training on several machines: what keras_lr needs from the cluster.

Under `tf.distribute.MultiWorkerMirroredStrategy` every worker runs the
same script; gradients, and the metrics in `fit`'s logs, are all-reduced
over every replica of every worker, so a decision taken in Python from the
logs (a plateau cut, a divergence rollback, a batch-size change) is the
same on every worker. This module holds the few things that make that
true with Keras 3 and that the callbacks ask of the cluster: which worker
writes files (the chief), how many workers and replicas there are, the
rules by which a batch splits over them (the only place they live), and a
strategy that starts within a deadline and that Keras' `fit` can use.
"""

import json
import os
import socket
import threading
import time
import weakref
from typing import TYPE_CHECKING

from keras_lr import _backend

if TYPE_CHECKING:
    # Defined on first use (`__getattr__` below); named here for readers
    # and for the API reference.
    from keras_lr._multi_worker import MultiWorkerMirroredStrategy

__all__ = [
    "DEFAULT_STARTUP_TIMEOUT",
    "MultiWorkerMirroredStrategy",
    "check_batch_split",
    "check_epoch_split",
    "check_first_batch_split",
    "cluster_strategy",
    "is_chief",
    "is_multi_worker",
    "largest_even_batch_size",
    "local_replicas",
    "num_workers",
    "task_id",
    "wait_for_cluster",
]

DEFAULT_STARTUP_TIMEOUT = 120.0
"""Seconds `MultiWorkerMirroredStrategy` waits for every worker to start."""

# The `MultiWorkerMirroredStrategy` of this process (Keras 3's `fit` runs
# under several workers only with ours, see below), weakly held.
_cluster_strategy = None


def _tasks(tf_config: dict) -> list[tuple[str, int, str]]:
    """(type, index, address) of every chief and worker of a `TF_CONFIG`."""
    cluster = tf_config.get("cluster", {})
    return [
        (job, index, address)
        for job in ("chief", "worker")
        for index, address in enumerate(cluster.get(job, []))
    ]


def _reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


class _Listener:
    """Answers TCP connections on this task's address until closed, so that
    peers waiting for the cluster see this task before its gRPC server
    starts. The client closes first, so the port is free for the server."""

    def __init__(self, address: str):
        port = int(address.rpartition(":")[2])
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            # Every interface, as TensorFlow's server binds.
            self._socket.bind(("", port))
        except OSError:
            self._socket.close()
            self._socket = None
            return
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(1.0)
                try:
                    connection.recv(1)
                except OSError:
                    pass

    def close(self) -> None:
        if self._socket is None:
            return
        self._stop.set()
        self._thread.join()
        self._socket.close()


def wait_for_cluster(
    timeout: float = DEFAULT_STARTUP_TIMEOUT, tf_config: dict | None = None
) -> None:
    """Waits until every task of `TF_CONFIG` answers on its address.

    `tf.distribute.MultiWorkerMirroredStrategy()` waits for its peers with
    no deadline: a worker that never starts hangs every other one. This
    waits at most `timeout` seconds and then names the tasks that did not
    answer. Meanwhile this task answers on its own address, so that the
    peers calling this too see it before its TensorFlow server starts.

    Args:
        timeout: A Python float > 0. Seconds to wait.
        tf_config: A dict, or `None` to read the `TF_CONFIG` environment
            variable.

    Raises:
        TimeoutError: when a task does not answer within `timeout`.
        ValueError: for a `timeout` <= 0 or a `TF_CONFIG` without this
            task.
    """
    if not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(
            f"Argument `timeout` must be a number > 0 (seconds). Received: "
            f"timeout={timeout!r}"
        )
    if tf_config is None:
        tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    tasks = _tasks(tf_config)
    me = tf_config.get("task", {})
    mine = [
        address
        for job, index, address in tasks
        if job == me.get("type") and index == int(me.get("index", -1))
    ]
    if len(tasks) > 1 and not mine:
        raise ValueError(
            "`TF_CONFIG` must name this task (`task.type` and `task.index`) "
            f"among its cluster's chief and workers. Received: "
            f"task={me!r}, cluster={tf_config.get('cluster')!r}"
        )
    if len(tasks) <= 1:
        return
    listener = _Listener(mine[0])
    deadline = time.monotonic() + timeout
    try:
        waiting = [t for t in tasks if t[2] != mine[0]]
        while waiting:
            waiting = [t for t in waiting if not _reachable(t[2])]
            if waiting and time.monotonic() > deadline:
                names = ", ".join(
                    f"{job} {index} at {address}"
                    for job, index, address in waiting
                )
                raise TimeoutError(
                    f"The cluster of `TF_CONFIG` did not start within "
                    f"{timeout:g} s: no answer from {names}. Start every "
                    "task of the cluster (the same script on each machine, "
                    "each with its own `task.index`), or fix the addresses."
                )
            if waiting:
                time.sleep(0.2)
    finally:
        listener.close()


def __getattr__(name):
    # The strategy subclasses TensorFlow's: defined on first use, so that
    # this module imports without TensorFlow.
    if name == "MultiWorkerMirroredStrategy":
        _backend.require_tensorflow(
            "`keras_lr.distribute.MultiWorkerMirroredStrategy`",
            "it is a `tf.distribute` strategy (multi-worker training on "
            "the other backends goes through `keras.distribution`)",
        )
        from keras_lr._multi_worker import MultiWorkerMirroredStrategy

        return MultiWorkerMirroredStrategy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def set_cluster_strategy(strategy) -> None:
    """Remembers `strategy` (weakly) as this process's cluster strategy."""
    global _cluster_strategy
    _cluster_strategy = weakref.ref(strategy)


def cluster_strategy():
    """The `keras_lr.distribute.MultiWorkerMirroredStrategy` this process
    made last (the one every worker trains under), or `None`."""
    return None if _cluster_strategy is None else _cluster_strategy()


def _strategy(strategy):
    return _backend.current_strategy() if strategy is None else strategy


def is_multi_worker(strategy=None) -> bool:
    """Whether `strategy` (default: the current one) spans several
    workers."""
    return num_workers(strategy) > 1


def num_workers(strategy=None) -> int:
    """The number of workers (chief included) `strategy` spans; 1 for a
    strategy of one process."""
    strategy = _strategy(strategy)
    tf = _backend.tensorflow_if_loaded()
    if tf is None or not isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ):
        return 1
    spec = strategy.cluster_resolver.cluster_spec().as_dict()
    return max(len(spec.get("chief", [])) + len(spec.get("worker", [])), 1)


def is_chief(strategy=None) -> bool:
    """Whether this process writes the files of a run: the chief, or
    worker 0 of a cluster without one (Keras' and TensorFlow's rule);
    always true in one process."""
    strategy = _strategy(strategy)
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    spec = resolver.cluster_spec().as_dict()
    return (
        "chief" not in spec
        and resolver.task_type == "worker"
        and int(resolver.task_id) == 0
    )


def task_id(strategy=None) -> int:
    """This worker's index (0 in one process)."""
    strategy = _strategy(strategy)
    if not is_multi_worker(strategy):
        return 0
    return int(strategy.cluster_resolver.task_id)


def local_replicas(strategy=None) -> int:
    """Replicas of `strategy` on this worker."""
    strategy = _strategy(strategy)
    return max(strategy.num_replicas_in_sync // num_workers(strategy), 1)


def check_batch_split(batch_size: int, strategy=None) -> None:
    """Raises unless a global batch of `batch_size` splits evenly over the
    replicas of every worker.

    Under `MultiWorkerMirroredStrategy` each replica trains on its share
    of every global batch; uneven shares would weigh samples unequally
    (each replica's loss is its own mean) and an empty share has no loss.
    """
    strategy = _strategy(strategy)
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"Argument `batch_size` must be a multiple of the {replicas} "
            f"replicas of the {num_workers(strategy)} workers, so that "
            f"every replica gets an equal share. Received: "
            f"batch_size={batch_size}"
        )


def check_epoch_split(batch_size: int, num_samples: int, strategy=None) -> None:
    """Raises unless every batch of an epoch of `num_samples` in batches
    of `batch_size`, the last one too, splits evenly over the replicas of
    every worker (see `check_batch_split`)."""
    strategy = _strategy(strategy)
    check_batch_split(batch_size, strategy)
    last = num_samples % batch_size
    replicas = strategy.num_replicas_in_sync
    if last % replicas:
        raise ValueError(
            "Argument `batch_size` must leave a last batch per epoch "
            f"that is a multiple of the {replicas} replicas too (every "
            "replica gets an equal share of every batch): "
            f"{num_samples} samples in batches of {batch_size} "
            f"leave {last}. Received: batch_size={batch_size}"
        )


def largest_even_batch_size(
    limit: int, num_samples: int, strategy=None
) -> int | None:
    """The largest batch size <= `limit` whose epochs of `num_samples`
    split evenly (`check_epoch_split`); `None` when none does."""
    for size in range(int(limit), 0, -1):
        try:
            check_epoch_split(size, num_samples, strategy)
        except ValueError:
            continue
        return size
    return None


def check_first_batch_split(first: int, batch_size: int, strategy) -> None:
    """Under `MirroredStrategy`, Keras builds the model from the replicas'
    mean of the first batch `fit` reads, which needs equal parts."""
    replicas = strategy.num_replicas_in_sync
    if first % replicas:
        raise ValueError(
            "Under `MirroredStrategy`, the first batch `fit` reads must "
            f"be a multiple of the {replicas} replicas: Keras builds the "
            "model from the replicas' mean of that batch, which needs "
            "equal parts (later batches may split unevenly). Received: "
            f"a first batch of {first} (batch_size={batch_size})"
        )
