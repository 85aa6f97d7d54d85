"""keras_lr's `MultiWorkerMirroredStrategy` (TensorFlow only; reached as
`keras_lr.distribute.MultiWorkerMirroredStrategy`)."""

import tensorflow as tf

from keras_lr import distribute


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`tf.distribute.MultiWorkerMirroredStrategy`, with a start-up deadline,
    that Keras 3's `fit` can train with.

    The same strategy in every respect but two:

    - It waits for the cluster at most `startup_timeout` seconds
      (`wait_for_cluster`) and then raises a `TimeoutError` naming the
      workers that did not start, where TensorFlow's waits forever.
    - Its `reduce` takes a nested structure of values and a scalar with
      `axis=0`, as Keras 3's `fit` passes them (the first batch, when it
      builds the model; each step's metrics). TensorFlow's multi-worker
      `reduce` accepts neither, so `fit` fails under it with "Attempt to
      convert a value (PerReplica...)".

    Run the same script on every machine, each with its `TF_CONFIG`.

    Args:
        cluster_resolver: As in TensorFlow (`None`: read `TF_CONFIG`).
        communication_options: As in TensorFlow.
        startup_timeout: A Python float > 0. Seconds to wait for every
            worker of the cluster to start.

    Raises:
        TimeoutError: when a worker does not start within
            `startup_timeout` seconds.

    Example:

    ```python
    strategy = keras_lr.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = make_model()
        model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(x, y, epochs=10, callbacks=[
        keras_lr.callbacks.ReduceLROnPlateau(monitor="loss", patience=3),
    ])
    ```
    """

    def __init__(
        self,
        cluster_resolver=None,
        communication_options=None,
        startup_timeout=distribute.DEFAULT_STARTUP_TIMEOUT,
    ):
        if cluster_resolver is None:
            distribute.wait_for_cluster(startup_timeout)
        else:
            distribute.wait_for_cluster(
                startup_timeout,
                {
                    "cluster": cluster_resolver.cluster_spec().as_dict(),
                    "task": {
                        "type": cluster_resolver.task_type,
                        "index": cluster_resolver.task_id,
                    },
                },
            )
        super().__init__(
            cluster_resolver=cluster_resolver,
            communication_options=communication_options,
        )
        self.startup_timeout = startup_timeout
        distribute.set_cluster_strategy(self)

    def reduce(self, reduce_op, value, axis=None):
        base = super()

        def one(leaf):
            local = self.experimental_local_results(leaf)
            shape = getattr(local[0], "shape", None)
            # A scalar has no batch axis: its replicas are reduced as they
            # are (what Keras means by `axis=0` for a step's metrics).
            scalar = shape is not None and shape.rank == 0
            return base.reduce(reduce_op, leaf, None if scalar else axis)

        return tf.nest.map_structure(one, value)
