"""Which strategy a `GrowingBatchLoader` serves, and its split checks.

The loader learns the strategy from the `as_dataset()` call made in its
scope, from `configure_for(model)` at the start of `fit`, or, when
`fit(loader)` reads batch 0 under several workers, from
`keras_lr.distribute.cluster_strategy()`. The rules themselves are
`keras_lr.distribute`'s.
"""

from keras_lr import _backend
from keras_lr import distribute


def require_tensorflow() -> None:
    """`as_dataset()` on another backend is an error that says why."""
    _backend.require_tensorflow(
        "`GrowingBatchLoader.as_dataset()`",
        "it builds a `tf.data` pipeline; pass the loader itself to `fit` "
        "(it is a `keras.utils.PyDataset`) on any backend",
    )


def build_pipeline(loader, use, chunk_bytes: int):
    """`keras_lr.data.pipeline.build` (imported here: TensorFlow only)."""
    from keras_lr.data import pipeline

    return pipeline.build(loader, use, chunk_bytes)


class StrategyLink:
    """The strategy side of one loader.

    Args:
        num_samples: A Python int, the loader's number of samples.
    """

    def __init__(self, num_samples: int):
        self.num_samples = num_samples
        # The strategy of the last `as_dataset()` pipeline, if any.
        self.use = None
        # The multi-worker strategy whose replicas share every batch
        # (`as_dataset()` built in its scope, or `fit(loader)` under it).
        self.split_strategy = None
        # "dataset" or "loader": what `fit` read last.
        self.last_input = None

    @property
    def holds_epochs(self) -> bool:
        """Whether `fit` reads a multi-worker `as_dataset()` pipeline,
        which must wait at each epoch's end for the next one."""
        return (
            self.last_input == "dataset"
            and self.use is not None
            and self.use.multi_worker
        )

    def check(self, batch_size: int) -> None:
        if self.split_strategy is not None:
            distribute.check_epoch_split(
                batch_size, self.num_samples, self.split_strategy
            )

    def split_for(self, strategy, *sizes) -> None:
        """Batches split over all the replicas under `strategy` when it
        spans several workers: checks each of `sizes` (`None`s skipped)."""
        multi_worker = distribute.is_multi_worker(strategy)
        self.split_strategy = strategy if multi_worker else None
        for size in sizes:
            if size is not None:
                self.check(size)

    def largest_even_batch_size(self, limit: int) -> int | None:
        if self.split_strategy is None:
            return int(limit) if limit > 0 else None
        return distribute.largest_even_batch_size(
            limit, self.num_samples, self.split_strategy
        )

    def for_dataset(self, steps_per_execution: int, plan, requested):
        """An `as_dataset()` pipeline is built in the current scope: its
        strategy, checked (`pipeline.DatasetUse`)."""
        from keras_lr.data import pipeline

        use = pipeline.strategy_in_scope(steps_per_execution)
        self.split_for(use.strategy, plan.batch_size, requested)
        if use.distributed and not use.multi_worker:
            distribute.check_first_batch_split(
                len(plan.ids(0)), plan.batch_size, use.strategy
            )
        self.use = use
        self.last_input = "dataset"
        return use

    def for_model(self, model, steps_per_execution: int, sizes) -> None:
        """`fit` starts training `model` on what the loader served last."""
        strategy = _backend.strategy_of(model)
        if self.last_input != "dataset":
            self.split_for(strategy, *sizes)
            return
        if strategy is not self.use.strategy:
            raise ValueError(
                "`loader.as_dataset()` was built outside the distribution "
                "strategy of the model: call it inside the same "
                "`strategy.scope()` (Keras' own distribution of a dataset "
                "prefetches across epochs, so a new batch size would take "
                f"effect late). Model strategy: {type(strategy).__name__}; "
                "dataset built under: "
                f"{type(self.use.strategy).__name__}"
            )
        if self.use.distributed and steps_per_execution > 1:
            from keras_lr.data import pipeline

            raise ValueError(
                pipeline.SPE_UNDER_STRATEGY.format(steps_per_execution)
            )
