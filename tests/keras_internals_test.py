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
        "SGD": _built(keras.optimizers.SGD(momentum=0.9), model),
        "RMSprop": _built(keras.optimizers.RMSprop(momentum=0.9), model),
        "Ftrl": _built(keras.optimizers.Ftrl(), model),
    }


def _distributed_dataset():
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    return strategy.distribute_datasets_from_function(
        lambda _: tf.data.Dataset.range(4).batch(2)
    )


def _built(optimizer, model):
    optimizer.build(model.trainable_variables)
    return optimizer


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
        r"|\.compute_loss\s*=(?!=)|\bdel\s+[\w.]+\.compute_loss\b"
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


def test_rate_slot_readers():
    instances = _instances()
    assert len(internals.sgd_velocities(instances["SGD"])) == 2
    assert internals.sgd_velocities(instances["Optimizer"]) == []
    assert len(internals.rmsprop_momentums(instances["RMSprop"])) == 2
    accumulators, linears = internals.ftrl_slots(instances["Ftrl"])
    assert [v.path.rsplit("_", 1)[-1] for v in accumulators + linears] == (
        ["accumulator"] * 2 + ["linear"] * 2
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


def test_fit_computes_the_loss_with_the_instance_compute_loss():
    # The range test records each step's loss by putting its own
    # `compute_loss` on the model: `fit`'s train step must look it up on
    # the instance and pass `training=True` (`evaluate`'s, False) by name.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    own = model.compute_loss
    calls = []

    def recording(*args, **kwargs):
        calls.append(kwargs.get("training"))
        return own(*args, **kwargs)

    patch = internals.set_compute_loss(model, recording)
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    model.fit(x, y, batch_size=4, verbose=0)
    assert calls and set(calls) == {True}
    traced = len(calls)
    model.evaluate(x, y, verbose=0)
    assert len(calls) > traced and set(calls[traced:]) == {False}
    internals.restore_compute_loss(model, patch)
    assert "compute_loss" not in vars(model)
    assert model.compute_loss.__func__ is type(model).compute_loss
    # A model with a `compute_loss` of its own gets it back.
    model.compute_loss = recording
    patch = internals.set_compute_loss(model, own)
    assert model.compute_loss is own
    internals.restore_compute_loss(model, patch)
    assert vars(model)["compute_loss"] is recording


def _only_on(backend):
    if keras.backend.backend() != backend:
        pytest.skip(f"a {backend} behaviour")


def _one_weight_model(optimizer):
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(optimizer, "mse")
    return model


@pytest.mark.portable
def test_each_backend_internal_still_exists():
    backend = keras.backend.backend()
    names = internals.BACKEND_INTERNALS.get(backend, ())
    if not names:
        pytest.skip(f"keras_lr relies on no private name of {backend}")
    model = _one_weight_model(keras.optimizers.SGD(0.1))
    owners = {"Optimizer": model.optimizer, "Model": model}
    for owner, attribute in names:
        assert hasattr(owners[owner], attribute), (
            f"Keras {keras.__version__} on {backend} no longer has "
            f"{owner}.{attribute}, which keras_lr/_keras_internals.py "
            "relies on."
        )


@pytest.mark.portable
def test_behaviour_jax_train_step_carries_optimizer_variables(tmp_path):
    _only_on("jax")
    model = _one_weight_model(keras.optimizers.SGD(1.0))
    optimizer = model.optimizer
    scale = keras.Variable(0.0, trainable=False, name="scale")
    reads = keras.Variable(0.0, trainable=False, name="reads")
    internals.carry_in_train_state(optimizer, [scale, reads])

    def rate():
        reads.assign_add(1.0)
        return scale.value

    internals.set_rate_slot(optimizer, rate)

    class RateFromStep2(keras.callbacks.Callback):
        def __init__(self, trained):
            super().__init__()
            self.trained = trained

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                # Not through `self.model`, which would sync by itself.
                internals.sync_train_state(self.trained)
                scale.assign(0.1)

    x, y = np.ones((4, 1), "float32"), np.ones((4, 1), "float32")
    model.fit(
        x,
        y,
        batch_size=1,
        epochs=1,
        verbose=0,
        callbacks=[RateFromStep2(model)],
    )
    # Rate 0 for steps 0 and 1, then 0.1: w = 0.2 after step 2, and
    # 0.2 + 0.1 * 2 * 0.8 after step 3.
    (kernel,) = model.get_weights()
    np.testing.assert_allclose(kernel, [[0.36]], rtol=1e-6)
    assert float(keras.ops.convert_to_numpy(reads)) == 4.0
    # The carried variables stay out of the optimizer's files.
    model.save_weights(tmp_path / "w.weights.h5")
    plain = _one_weight_model(keras.optimizers.SGD(1.0))
    plain.optimizer.build(plain.trainable_variables)
    plain.load_weights(tmp_path / "w.weights.h5")
    assert int(keras.ops.convert_to_numpy(plain.optimizer.iterations)) == 4


@pytest.mark.portable
def test_behaviour_jax_cast_honours_jax_array():
    _only_on("jax")
    import jax

    class Scheduled(float):
        def __jax_array__(self):
            return jax.numpy.asarray(0.5, "float32")

    value = jax.jit(lambda: keras.ops.cast(Scheduled(0.9), "float32"))()
    assert float(value) == 0.5


@pytest.mark.portable
@pytest.mark.parametrize("name", ["momentum", "beta_1"])
def test_behaviour_torch_optimizers_read_momentum_after_the_rate(name):
    _only_on("torch")
    if name == "momentum":
        optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    else:
        optimizer = keras.optimizers.Adam(0.1, beta_1=0.9)
    model = _one_weight_model(optimizer)
    optimizer.build(model.trainable_variables)

    def rate():
        # Set while the rate is read: the update must use it.
        setattr(optimizer, name, 0.0)
        return 0.1

    internals.set_rate_slot(optimizer, rate)
    x, y = np.ones((2, 1), "float32"), np.ones((2, 1), "float32")
    model.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0)
    (kernel,) = model.get_weights()
    if name == "momentum":
        # Plain gradient steps: w = 0.2, then 0.2 + 0.1 * 2 * 0.8.
        expected = 0.36
    else:
        # Keras' Adam with beta_1 = 0 (0.9 would give another value).
        w, m, v = 0.0, 0.0, 0.0
        for t in (1, 2):
            g = 2 * (w - 1)
            m, v = g, v + (g * g - v) * 0.001
            w -= 0.1 * np.sqrt(1 - 0.999**t) * m / (np.sqrt(v) + 1e-7)
        expected = w
    np.testing.assert_allclose(kernel, [[expected]], rtol=1e-4)


@pytest.mark.portable
def test_behaviour_torch_sgd_updates_velocity_only_at_nonzero_momentum():
    _only_on("torch")
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    model = _one_weight_model(optimizer)
    optimizer.build(model.trainable_variables)
    momenta = iter([0.0, 0.9])

    def rate():
        optimizer.momentum = next(momenta)
        return 0.1

    internals.set_rate_slot(optimizer, rate)
    x, y = np.ones((2, 1), "float32"), np.ones((2, 1), "float32")
    model.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0)
    (kernel,) = model.get_weights()
    # Step 1 (momentum 0): w = 0.2, the velocity stays 0 (a velocity set
    # to -lr * g = 0.2 would give 0.54). Step 2: v = 0.9 * 0 + 0.16.
    np.testing.assert_allclose(kernel, [[0.36]], rtol=1e-5)


@pytest.mark.portable
def test_behaviour_torch_unseeded_layers_draw_from_the_global_generator():
    _only_on("torch")
    import torch

    layer = keras.layers.Dropout(0.5)
    ones = np.ones((1, 256), "float32")
    torch.manual_seed(3)
    first = keras.ops.convert_to_numpy(layer(ones, training=True))
    torch.manual_seed(3)
    again = keras.ops.convert_to_numpy(layer(ones, training=True))
    other = keras.ops.convert_to_numpy(layer(ones, training=True))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_every_behaviour_has_its_test():
    tests = {name for name in globals() if name.startswith("test_behaviour_")}
    assert tests == {f"test_behaviour_{b}" for b in internals.BEHAVIOURS}
    for module, _ in internals.BEHAVIOURS.values():
        assert (PACKAGE.parent / module).exists(), module


class _ConvertsCounting(float):
    """A float that counts its conversions to a tensor."""

    conversions = 0

    def __tf_tensor__(self, dtype=None, name=None):
        type(self).conversions += 1
        import tensorflow as tf

        return tf.constant(float(self), dtype=dtype or tf.float32)


@pytest.mark.parametrize(
    "optimizer, name",
    [
        (lambda: keras.optimizers.SGD(0.1, momentum=0.5), "momentum"),
        (lambda: keras.optimizers.Adam(0.1), "beta_1"),
    ],
)
def test_behaviour_optimizer_reads_hyperparameters_in_update(optimizer, name):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer(), "mse")
    model.optimizer.build(model.trainable_variables)
    setattr(
        model.optimizer, name, _ConvertsCounting(getattr(model.optimizer, name))
    )
    _ConvertsCounting.conversions = 0
    x, y = np.ones((8, 2), "float32"), np.zeros((8, 1), "float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    # Read while tracing the update (once per variable at least), and not
    # at every step afterwards.
    traced = _ConvertsCounting.conversions
    assert traced >= 1
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert _ConvertsCounting.conversions == traced


def test_behaviour_learning_rate_property_calls_the_rate_slot():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    calls = []

    def rate():
        calls.append(1)
        return 0.25

    previous = internals.rate_slot(model.optimizer)
    internals.set_rate_slot(model.optimizer, rate)
    assert float(model.optimizer.learning_rate) == 0.25
    assert calls == [1]
    internals.set_rate_slot(model.optimizer, previous)


def test_behaviour_optimizer_saving_walks_its_attributes(tmp_path):
    def build(value):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.1), "mse")
        model.optimizer.build(model.trainable_variables)
        holder = keras.layers.Layer(name="holder")
        holder.value = holder.add_weight(
            shape=(), initializer=keras.initializers.Constant(value)
        )
        model.optimizer.keras_lr_test_holder = holder
        return model, holder

    model, _ = build(3.0)
    model.save_weights(tmp_path / "w.weights.h5")
    other, holder = build(0.0)
    other.load_weights(tmp_path / "w.weights.h5")
    assert float(holder.value.numpy()) == 3.0


def test_behaviour_fit_reduces_nested_values(two_cpu_strategy):
    calls = []
    strategy = two_cpu_strategy
    original = strategy.reduce

    def recording(reduce_op, value, axis=None):
        calls.append((isinstance(value, (dict, list, tuple)), axis))
        return original(reduce_op, value, axis)

    strategy.reduce = recording
    try:
        with strategy.scope():
            model = keras.Sequential(
                [keras.Input((2,)), keras.layers.Dense(1)]
            )
            model.compile(keras.optimizers.SGD(0.1), "mse")
        x, y = np.ones((8, 2), "float32"), np.zeros((8, 1), "float32")
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    finally:
        del strategy.reduce
    # The first batch, as (x, y), when `fit` builds the model.
    assert (True, None) in calls


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
