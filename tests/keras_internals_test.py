"""Every private part of Keras keras_lr relies on still exists, and only
`keras_lr/_keras_internals.py` uses them."""

import pathlib
import re

import keras
import numpy as np
import pytest

from keras_lr import _keras_internals as internals

PACKAGE = pathlib.Path(internals.__file__).parent


def _instances():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.make_train_function()
    return {
        "Optimizer": model.optimizer,
        "Model": model,
        "Metric": keras.metrics.AUC(),
        "ScheduleFreeAdamW": _schedule_free(model),
        "DistributedDatasetsFromFunction": _distributed_dataset(),
    }


def _distributed_dataset():
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    return strategy.distribute_datasets_from_function(
        lambda _: tf.data.Dataset.range(4).batch(2)
    )


def _schedule_free(model):
    optimizer = keras.optimizers.ScheduleFreeAdamW()
    optimizer.build(model.trainable_variables)
    return optimizer


@pytest.mark.parametrize(
    "owner, attribute", internals.INTERNALS, ids=lambda v: str(v)
)
def test_each_internal_still_exists(owner, attribute):
    instance = _instances()[owner]
    assert isinstance(instance, internals.owner_classes()[owner])
    assert hasattr(instance, attribute), (
        f"Keras {keras.__version__} no longer has {owner}.{attribute}, "
        "which keras_lr/_keras_internals.py relies on."
    )


def test_the_functions_reach_them():
    instances = _instances()
    optimizer, model = instances["Optimizer"], instances["Model"]
    assert internals.rate_slot(optimizer) is optimizer.learning_rate
    assert internals.iterations_variable(optimizer) is optimizer.iterations
    before = internals.train_function(model)
    internals.retrace(model)
    assert internals.train_function(model) is not before
    internals.set_initial_epoch(model, 3)
    assert model._initial_epoch == 3
    assert internals.metric_direction(instances["Metric"]) == "up"
    assert internals.metric_direction(keras.metrics.MeanSquaredError()) == (
        "down"
    )


def test_no_other_module_uses_them():
    names = {attribute for _, attribute in internals.INTERNALS}
    private = [n for n in names if n.startswith("_")]
    pattern = re.compile(
        r"\.(" + "|".join(map(re.escape, private)) + r")\b"
        r"|\bmake_train_function\b|\.train_function\s*="
    )
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_keras_internals.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}")
    assert offenders == []
    assert "keras.src" not in "".join(
        p.read_text() for p in PACKAGE.rglob("*.py")
    )


def test_schedule_free_slot_and_layers():
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.Sequential([keras.layers.Dense(3)]),
            keras.layers.Dense(1),
        ]
    )
    optimizer = keras.optimizers.ScheduleFreeAdamW()
    kernel = model.trainable_variables[0]
    assert internals.schedule_free_slot(optimizer, kernel) is None
    optimizer.build(model.trainable_variables)
    slot = internals.schedule_free_slot(optimizer, kernel)
    assert slot.path.endswith("_momentum")
    assert slot.shape == kernel.shape
    other = keras.Variable(1.0)
    assert internals.schedule_free_slot(optimizer, other) is None
    layers = internals.all_layers(model)
    assert model not in layers
    assert sum(isinstance(x, keras.layers.Dense) for x in layers) == 2


# --- Loader (keras_lr/data) -----------------------------------------------


class _Counted(keras.utils.PyDataset):
    """Batches of 4 rows; the number of batches set from outside."""

    def __init__(self, count):
        super().__init__()
        self.count = count

    @property
    def num_batches(self):
        return self.count

    def __getitem__(self, index):
        return np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")


def test_fit_rereads_the_step_count_at_each_epoch():
    """`fit` keeps the count it read once; `step_count` makes each epoch
    run the count in force at its start (no "ran out of data" warning:
    warnings are errors here). Fails if Keras stops re-reading it."""
    counts = {0: 3, 1: 5, 2: 2}
    current = [counts[0]]
    ran = []

    class Set(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            current[0] = counts[epoch]
            ran.append(0)

        def on_train_batch_end(self, batch, logs=None):
            ran[-1] += 1

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    data = _Counted(internals.step_count(lambda: current[0]))
    model.fit(data, epochs=3, verbose=0, callbacks=[Set()])
    assert ran == [3, 5, 2]
    assert int(data.num_batches) == 2 and data.num_batches == 2
    assert 1.0 / data.num_batches == 0.5 and 7 - data.num_batches == 5


def test_each_iterator_is_reported_and_released_before_its_parts():
    """`on_each_iterator`: Keras still takes the dataset as a distributed
    one, each iterator is reported, and its weak references are cleared
    when Python drops it."""
    import gc
    import weakref

    dataset = _distributed_dataset()
    seen = []
    internals.on_each_iterator(dataset, seen.append)
    assert isinstance(dataset, internals.owner_classes()[
        "DistributedDatasetsFromFunction"
    ])
    iterator = iter(dataset)
    assert seen == [iterator]
    released = []
    weakref.finalize(iterator, released.append, True)
    seen.clear()
    del iterator
    gc.collect()
    assert released == [True]
