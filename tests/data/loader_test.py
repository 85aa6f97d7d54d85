"""GrowingBatchLoader inside `fit`: coverage, steps, warnings, traces.

Every behaviour the loader promises is checked on both ways of feeding
`fit` (`fit(loader)` and `fit(loader.as_dataset(), steps_per_epoch=...)`),
with one and three steps per execution, and under `MirroredStrategy`.
"""

import contextlib
import json
import logging
import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lr
from keras_lr.data import loader as loader_module
from tests.data.recorder import epochs_of
from tests.data.recorder import id_data
from tests.data.recorder import recording_model
from tests.data.recorder import traces_allowed

pytestmark = pytest.mark.portable

N = 50
SIZES = [4, 8, 16, 32]
# 13, 9, 3, 7 and 1 batches: with three steps per execution, some epochs
# end inside an execution and some at its end.
SPE_SIZES = [4, 6, 17, 8, 50]
PATHS = ["loader", "as_dataset"]


class SetSizes(keras.callbacks.Callback):
    """Drives the loader directly, as the batch-size callbacks do."""

    def __init__(self, loader, sizes):
        super().__init__()
        self.loader = loader
        self.sizes = sizes

    def on_epoch_begin(self, epoch, logs=None):
        self.loader.begin_epoch(epoch, batch_size=self.sizes[epoch])


class StepProbe(keras.callbacks.Callback):
    """Per epoch: the step count `fit` announces, and the steps it ran."""

    def on_train_begin(self, logs=None):
        self.announced, self.ran = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.announced.append(int(self.params["steps"]))
        self._start = int(self.model.optimizer.iterations.numpy())

    def on_epoch_end(self, epoch, logs=None):
        done = int(self.model.optimizer.iterations.numpy())
        self.ran.append(done - self._start)


def fit_input(loader, path, steps_per_execution=1):
    """`fit`'s data argument and extra keywords for each input path."""
    if path == "loader":
        return loader, {}
    data = loader.as_dataset(steps_per_execution=steps_per_execution)
    return data, {"steps_per_epoch": loader.steps_per_epoch}


def fit_with_sizes(
    sizes,
    steps_per_execution=1,
    verbose=0,
    path="loader",
    strategy=None,
    **fit_kw,
):
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=sizes[0], seed=3)
    probe = StepProbe()
    scope = strategy.scope() if strategy else contextlib.nullcontext()
    with scope:
        model = recording_model(steps_per_execution=steps_per_execution)
        data, extra = fit_input(loader, path, steps_per_execution)
    history = model.fit(
        data,
        epochs=len(sizes),
        shuffle=False,
        verbose=verbose,
        callbacks=[SetSizes(loader, sizes), probe],
        **extra,
        **fit_kw,
    )
    model.probe = probe
    return model, history, loader


def expected_batches(size):
    return [size] * (N // size) + ([N % size] if N % size else [])


def assert_exact_epochs(model, sizes, replicas=1):
    """Each epoch: every id once, the right batches, the right steps."""
    epochs = epochs_of(model.batches, N)
    assert len(epochs) == len(sizes)
    for size, epoch in zip(sizes, epochs):
        assert sorted(i for batch in epoch for i in batch) == list(range(N))
        if replicas == 1:
            assert [len(batch) for batch in epoch] == expected_batches(size)
        else:
            # Each replica gets at most its share of the global batch.
            assert max(len(b) for b in epoch) == math.ceil(size / replicas)
    steps = [math.ceil(N / s) for s in sizes]
    assert model.probe.announced == steps
    assert model.probe.ran == steps
    assert int(model.optimizer.iterations.numpy()) == sum(steps)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_every_epoch_sees_every_sample_once_and_steps_are_right(
    path, steps_per_execution
):
    sizes = SIZES if steps_per_execution == 1 else SPE_SIZES
    model, _, _ = fit_with_sizes(
        sizes, steps_per_execution=steps_per_execution, path=path
    )
    assert_exact_epochs(model, sizes)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_four_batch_sizes_trace_the_train_step_once(path, steps_per_execution):
    # The issue allows two traces; the unknown batch dimension gives one.
    model, _, _ = fit_with_sizes(
        SIZES, steps_per_execution=steps_per_execution, path=path
    )
    assert model.traces == traces_allowed(model, 1)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_no_ran_out_of_data_warning_and_right_progress_totals(
    path, steps_per_execution, capsys, caplog
):
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_with_sizes(
            SIZES,
            steps_per_execution=steps_per_execution,
            verbose=1,
            path=path,
        )
    out = capsys.readouterr().out
    messages = [str(w.message) for w in caught] + [caplog.text, out]
    assert not any("ran out of data" in m for m in messages)
    for size in SIZES:
        steps = math.ceil(N / size)
        assert f"{steps}/{steps}" in out
    # A frozen total would print the first epoch's 13 as the last total.
    last_epoch = out.split(f"Epoch {len(SIZES)}/{len(SIZES)}")[1]
    assert "/13" not in last_epoch


@pytest.mark.parametrize("path", PATHS)
def test_shrinking_batch_also_works(path):
    sizes = [32, 8, 4]
    model, _, _ = fit_with_sizes(sizes, path=path)
    assert_exact_epochs(model, sizes)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_validation_data_is_evaluated_each_epoch(path, steps_per_execution):
    x, y = id_data(20)
    model, history, _ = fit_with_sizes(
        SPE_SIZES,
        steps_per_execution=steps_per_execution,
        validation_data=(x / 50.0, y),
        path=path,
    )
    assert len(history.history["val_loss"]) == len(SPE_SIZES)
    assert all(np.isfinite(history.history["val_loss"]))
    # Validation reads its own data: the training epochs stay exact.
    assert_exact_epochs(model, SPE_SIZES)


@pytest.mark.parametrize("path", PATHS)
def test_mirrored_strategy_splits_the_global_batch(path, two_cpu_strategy):
    model, _, _ = fit_with_sizes(SIZES, path=path, strategy=two_cpu_strategy)
    assert_exact_epochs(model, SIZES, replicas=2)
    # One trace, run once per replica.
    assert model.traces == 2


def test_mirrored_strategy_with_steps_per_execution_through_the_loader(
    two_cpu_strategy,
):
    model, _, _ = fit_with_sizes(
        SPE_SIZES, steps_per_execution=3, strategy=two_cpu_strategy
    )
    assert_exact_epochs(model, SPE_SIZES, replicas=2)


def test_mirrored_with_validation_data(two_cpu_strategy):
    x, y = id_data(20)
    model, history, _ = fit_with_sizes(
        SIZES,
        path="as_dataset",
        strategy=two_cpu_strategy,
        validation_data=(x / 50.0, y),
    )
    assert len(history.history["val_loss"]) == len(SIZES)
    assert_exact_epochs(model, SIZES, replicas=2)


def epoch_orders(model):
    return [[i for b in e for i in b] for e in epochs_of(model.batches, N)]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_both_paths_serve_the_seeded_permutation_of_each_epoch(
    path, steps_per_execution
):
    model, _, _ = fit_with_sizes(
        SIZES, steps_per_execution=steps_per_execution, path=path
    )
    for epoch, order in enumerate(epoch_orders(model)):
        expected = np.random.default_rng([3, epoch]).permutation(N)
        assert order == expected.tolist()


def order_of(loader, epoch):
    loader.begin_epoch(epoch)
    return np.concatenate([loader[i][0][:, 0] for i in range(len(loader))])


def test_shuffling_is_seeded_and_depends_only_on_seed_and_epoch():
    x, y = id_data(N)
    a = keras_lr.data.GrowingBatchLoader(x, y, batch_size=7, seed=11)
    b = keras_lr.data.GrowingBatchLoader(x, y, batch_size=7, seed=11)
    c = keras_lr.data.GrowingBatchLoader(x, y, batch_size=7, seed=12)
    first = order_of(a, 0)
    # b visits epoch 5 first: epoch 0 must not depend on what came before.
    order_of(b, 5)
    np.testing.assert_array_equal(order_of(b, 0), first)
    expected = np.random.default_rng([11, 0]).permutation(N)
    np.testing.assert_array_equal(first, expected)
    assert not np.array_equal(order_of(c, 0), first)
    assert not np.array_equal(order_of(a, 1), first)
    plain = keras_lr.data.GrowingBatchLoader(x, y, batch_size=7, shuffle=False)
    np.testing.assert_array_equal(order_of(plain, 4), np.arange(N))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_without_a_callback_each_epoch_reshuffles(path, steps_per_execution):
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=10, seed=5)
    model = recording_model(steps_per_execution=steps_per_execution)
    data, extra = fit_input(loader, path, steps_per_execution)
    model.fit(data, epochs=3, shuffle=False, verbose=0, **extra)
    orders = epoch_orders(model)
    assert len(orders) == 3
    for epoch, order in enumerate(orders):
        expected = np.random.default_rng([5, epoch]).permutation(N)
        assert order == expected.tolist()


def test_sample_weight_and_structures():
    x, y = id_data(12)
    weights = np.arange(12, dtype="float32")
    loader = keras_lr.data.GrowingBatchLoader(
        {"a": x}, y, sample_weight=weights, batch_size=5, shuffle=False
    )
    bx, by, bw = loader[2]
    np.testing.assert_array_equal(bx["a"], x[10:12])
    np.testing.assert_array_equal(by, y[10:12])
    np.testing.assert_array_equal(bw, weights[10:12])
    only_x = keras_lr.data.GrowingBatchLoader(x, batch_size=5, shuffle=False)
    assert len(only_x[0]) == 1


def test_as_dataset_carries_sample_weight_and_structures():
    x, y = id_data(12)
    weights = np.arange(12, dtype="float32")
    loader = keras_lr.data.GrowingBatchLoader(
        {"a": x}, y, sample_weight=weights, batch_size=5, shuffle=False
    )
    bx, by, bw = next(iter(loader.as_dataset().skip(2)))
    np.testing.assert_array_equal(bx["a"].numpy(), x[10:12])
    np.testing.assert_array_equal(by.numpy(), y[10:12])
    np.testing.assert_array_equal(bw.numpy(), weights[10:12])


class Samples:
    """An indexable dataset of `(x_i, y_i)` pairs, not arrays."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.array([float(i), 1.0], "float32"), np.zeros(1, "float32")


def test_indexable_dataset_of_samples_trains():
    loader = keras_lr.data.GrowingBatchLoader(Samples(N), batch_size=8, seed=0)
    model = recording_model()
    model.fit(
        loader,
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[SetSizes(loader, [8, 16])],
    )
    epochs = epochs_of(model.batches, N)
    assert [len(e) for e in epochs] == [7, 4]
    for epoch in epochs:
        assert sorted(i for b in epoch for i in b) == list(range(N))


@pytest.mark.tensorflow_only
def test_state_round_trip_serves_the_rest_of_the_epoch():
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=8, seed=2)
    loader.begin_epoch(3, batch_size=8, position=4)
    state = loader.get_state()
    assert state == {
        "batch_size": 8,
        "epoch": 3,
        "position": 4,
        "seed": 2,
        "shuffle": True,
        "num_samples": N,
    }
    restored = keras_lr.data.GrowingBatchLoader(x, y, batch_size=1, seed=9)
    restored.set_state(state)
    order = np.random.default_rng([2, 3]).permutation(N)
    assert len(restored) == 7 - 4
    rest = np.concatenate([restored[i][0][:, 0] for i in range(len(restored))])
    np.testing.assert_array_equal(rest, order[32:])
    # The native pipeline serves the same rest, then the next epoch.
    batches = list(restored.as_dataset().take(3 + 7))
    served = np.concatenate([b[0].numpy()[:, 0] for b in batches])
    np.testing.assert_array_equal(served[: N - 32], order[32:])
    next_order = np.random.default_rng([2, 4]).permutation(N)
    np.testing.assert_array_equal(served[N - 32 :], next_order)


@pytest.mark.parametrize("bad", [0, -3])
def test_batch_size_must_be_positive(bad):
    x, y = id_data(N)
    with pytest.raises(ValueError, match=f"`batch_size` must be > 0.*{bad}"):
        keras_lr.data.GrowingBatchLoader(x, y, batch_size=bad)


def test_batch_size_must_be_an_int():
    x, y = id_data(N)
    with pytest.raises(TypeError, match="`batch_size` must be an integer"):
        keras_lr.data.GrowingBatchLoader(x, y, batch_size=2.5)


def test_x_and_y_lengths_must_match():
    x, y = id_data(N)
    with pytest.raises(ValueError, match=r"`x` and `y`.*len\(x\)=50.*=49"):
        keras_lr.data.GrowingBatchLoader(x, y[:-1])
    with pytest.raises(ValueError, match="`sample_weight`"):
        keras_lr.data.GrowingBatchLoader(x, y, sample_weight=np.ones(3))


def test_batch_size_above_the_dataset_warns_and_is_capped():
    x, y = id_data(N)
    with pytest.warns(UserWarning, match="larger than the dataset"):
        loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=80)
    assert loader.batch_size == N
    assert len(loader) == 1


def test_fit_shuffle_true_still_covers_every_sample_once():
    # Keras then also permutes the batch order; coverage must not change.
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=4, seed=3)
    model = recording_model()
    model.fit(
        loader,
        epochs=len(SIZES),
        verbose=0,
        callbacks=[SetSizes(loader, SIZES)],
    )
    epochs = epochs_of(model.batches, N)
    for size, epoch in zip(SIZES, epochs):
        assert sorted(i for batch in epoch for i in batch) == list(range(N))
        assert sorted(len(b) for b in epoch) == sorted(expected_batches(size))


def test_as_dataset_built_outside_the_strategy_scope_is_refused(
    two_cpu_strategy,
):
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=4, seed=3)
    grow = keras_lr.callbacks.BatchSizeScheduler(loader, lambda e: 4, None)
    with two_cpu_strategy.scope():
        model = recording_model()
    with pytest.raises(ValueError, match="inside the same `strategy.scope"):
        model.fit(
            loader.as_dataset(),
            steps_per_epoch=loader.steps_per_epoch,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[grow],
        )


def test_as_dataset_under_a_strategy_needs_one_step_per_execution(
    two_cpu_strategy,
):
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=4, seed=3)
    grow = keras_lr.callbacks.BatchSizeScheduler(loader, lambda e: 4, None)
    with two_cpu_strategy.scope():
        with pytest.raises(ValueError, match="steps_per_execution=3"):
            loader.as_dataset(steps_per_execution=3)
        model = recording_model(steps_per_execution=3)
        data = loader.as_dataset()
    with pytest.raises(ValueError, match="steps_per_execution=3"):
        model.fit(
            data,
            steps_per_epoch=loader.steps_per_epoch,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[grow],
        )


def test_as_dataset_refuses_other_strategies():
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=4, seed=3)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        with pytest.raises(ValueError, match="OneDeviceStrategy"):
            loader.as_dataset()


def test_passing_the_loader_after_as_dataset_is_not_refused(two_cpu_strategy):
    # The callbacks check the input `fit` reads, not one made earlier.
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=4, seed=3)
    loader.as_dataset()
    grow = keras_lr.callbacks.BatchSizeScheduler(loader, lambda e: 4, None)
    with two_cpu_strategy.scope():
        model = recording_model(steps_per_execution=3)
    history = model.fit(
        loader, epochs=1, shuffle=False, verbose=0, callbacks=[grow]
    )
    assert history.history["updates"] == [13]


def test_as_dataset_needs_arrays():
    loader = keras_lr.data.GrowingBatchLoader(Samples(N), batch_size=8)
    with pytest.raises(TypeError, match="needs array data"):
        loader.as_dataset()


def test_as_dataset_steps_per_execution_must_be_positive():
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=4)
    with pytest.raises(ValueError, match="`steps_per_execution` must be > 0"):
        loader.as_dataset(steps_per_execution=0)


@pytest.mark.parametrize("path", PATHS)
def test_history_params_are_json_with_a_batch_size_callback(path):
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=4, seed=3)
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([1, 2], 2), None
    )
    probe = StepProbe()
    data, extra = fit_input(loader, path)
    history = recording_model().fit(
        data,
        epochs=3,
        shuffle=False,
        verbose=1,
        callbacks=[grow, probe],
        **extra,
    )
    params = json.loads(json.dumps(history.params))
    assert params["steps"] == math.ceil(N / 16)
    assert type(history.params["steps"]) is int
    # Callbacks reading `params` during training see each epoch's count.
    assert probe.announced == [13, 7, 4]
    assert probe.ran == [13, 7, 4]


BIG = 1100
# With chunks of 512 rows: 7 -> 157 batches + 1, over three chunks with a
# tail in the last; 600 -> one full batch and a tail of 500; 1100 -> one.
BIG_SIZES = [7, 16, 600, 1100]


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 512 rows of `id_data` (12 bytes a row), not ~87,000."""
    monkeypatch.setattr(loader_module, "_CHUNK_BYTES", 512 * 12)


def test_as_dataset_batches_equal_the_loaders_own_batches(small_chunks):
    x, y = id_data(BIG)
    weights = np.arange(BIG, dtype="float32") / BIG
    loader = keras_lr.data.GrowingBatchLoader(
        x, y, sample_weight=weights, batch_size=BIG_SIZES[0], seed=8
    )
    iterator = iter(loader.as_dataset())
    for epoch, size in enumerate(BIG_SIZES):
        # As `fit` does: set the epoch, then read exactly its batches.
        loader.begin_epoch(epoch, batch_size=size)
        assert len(loader) == math.ceil(BIG / size)
        for index in range(len(loader)):
            served = next(iterator)
            for got, want in zip(served, loader[index], strict=True):
                np.testing.assert_array_equal(got.numpy(), want)


def test_mirrored_as_dataset_shares_every_batch_over_chunks(
    two_cpu_strategy, small_chunks
):
    # The first batch splits evenly (see the test below); later ones not.
    sizes = [8] + BIG_SIZES
    x, y = id_data(BIG)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=8, seed=8)
    with two_cpu_strategy.scope():
        model = recording_model()
        data = loader.as_dataset()
    model.fit(
        data,
        steps_per_epoch=loader.steps_per_epoch,
        epochs=len(sizes),
        shuffle=False,
        verbose=0,
        callbacks=[SetSizes(loader, sizes)],
    )
    epochs = epochs_of(model.batches, BIG)
    assert len(epochs) == len(sizes)
    empty = 0
    for size, epoch in zip(sizes, epochs):
        assert sorted(i for batch in epoch for i in batch) == list(range(BIG))
        # Replica parts of each global batch: ceil(B / 2) and the rest.
        # An empty part (a last batch of 1) is recorded in whichever epoch
        # its replica's step happens to finish: counted over the run.
        expected = []
        for batch in expected_batches_of(BIG, size):
            first = math.ceil(batch / 2)
            expected += [first, batch - first]
        empty += expected.count(0)
        got = sorted(len(b) for b in epoch if b)
        assert got == sorted(n for n in expected if n)
    assert empty == 1
    assert sum(1 for b in model.batches if not b) == empty


def expected_batches_of(num_samples, size):
    full, rest = divmod(num_samples, size)
    return [size] * full + ([rest] if rest else [])


def test_mirrored_as_dataset_needs_a_first_batch_that_splits_evenly(
    two_cpu_strategy,
):
    # Keras builds the model from the replicas' mean of the first batch,
    # which fails deep in TensorFlow when the parts differ in size.
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=7, seed=3)
    with two_cpu_strategy.scope():
        with pytest.raises(ValueError, match="multiple of the 2 replicas"):
            loader.as_dataset()
    # A first batch of 2 (the last 2 of 50 samples at batch size 4) does.
    loader.begin_epoch(0, batch_size=4, position=12)
    with two_cpu_strategy.scope():
        loader.as_dataset()


@pytest.mark.parametrize("path", PATHS)
def test_mirrored_batches_smaller_than_the_replicas(path, two_cpu_strategy):
    # Batch 1 leaves the second replica an empty part at every step.
    sizes = [4, 1, 3]
    model, _, _ = fit_with_sizes(sizes, path=path, strategy=two_cpu_strategy)
    epochs = epochs_of([b for b in model.batches if b], N)
    assert len(epochs) == len(sizes)
    for size, epoch in zip(sizes, epochs):
        assert sorted(i for batch in epoch for i in batch) == list(range(N))
        assert max(len(b) for b in epoch) == math.ceil(size / 2)
    steps = [math.ceil(N / s) for s in sizes]
    assert model.probe.ran == steps


def test_a_requested_batch_size_waits_for_the_next_epoch():
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=4, seed=1)
    assert loader.request_batch_size(8) == 8
    assert (loader.batch_size, loader.next_batch_size, len(loader)) == (
        4,
        8,
        13,
    )
    # A resumed epoch keeps the size its position is counted in.
    loader.begin_epoch(0, position=2)
    assert (loader.batch_size, len(loader)) == (4, 11)
    loader.begin_epoch(1)
    assert (loader.batch_size, loader.next_batch_size, len(loader)) == (
        8,
        8,
        7,
    )
    with pytest.warns(UserWarning, match="larger than the dataset"):
        assert loader.request_batch_size(80) == N


def test_state_after_trained_batches():
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=8, seed=2)
    loader.begin_epoch(3)
    loader.request_batch_size(16)
    base = {"seed": 2, "shuffle": True, "num_samples": N}
    assert loader.get_state(trained_batches=5) == {
        "batch_size": 8,
        "epoch": 3,
        "position": 5,
        "next_batch_size": 16,
        **base,
    }
    # A complete epoch (7 batches of 8) resumes at the next one, with the
    # requested size.
    state = loader.get_state(trained_batches=7)
    assert state == {"batch_size": 16, "epoch": 4, "position": 0, **base}
    restored = keras_lr.data.GrowingBatchLoader(x, y, batch_size=1, seed=9)
    restored.set_state(loader.get_state(trained_batches=5))
    assert (restored.epoch, restored.position, restored.batch_size) == (
        3,
        5,
        8,
    )
    assert restored.next_batch_size == 16


def test_configure_for_refuses_a_dataset_built_outside_the_strategy(
    two_cpu_strategy,
):
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=4, seed=0)
    loader.as_dataset()
    with two_cpu_strategy.scope():
        model = recording_model()
    with pytest.raises(ValueError, match="built outside the distribution"):
        loader.configure_for(model)
    loader.configure_for(recording_model())
