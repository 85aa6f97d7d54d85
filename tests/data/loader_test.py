"""GrowingBatchLoader inside `fit`: coverage, steps, warnings, traces."""

import logging
import math
import warnings

import keras
import numpy as np
import pytest

import keras_lr
from tests.data.recorder import epochs_of
from tests.data.recorder import id_data
from tests.data.recorder import recording_model
from tests.data.recorder import two_cpu_mirrored_strategy


@pytest.fixture
def mirrored():
    return two_cpu_mirrored_strategy()


N = 50
SIZES = [4, 8, 16, 32]


class SetSizes(keras.callbacks.Callback):
    """Drives the loader directly, as the batch-size callbacks do."""

    def __init__(self, loader, sizes):
        super().__init__()
        self.loader = loader
        self.sizes = sizes

    def on_epoch_begin(self, epoch, logs=None):
        self.loader.begin_epoch(epoch, batch_size=self.sizes[epoch])


PATHS = ["loader", "as_dataset"]


def fit_input(loader, path):
    """`fit`'s data argument and extra keywords for each input path."""
    if path == "loader":
        return loader, {}
    return loader.as_dataset(), {"steps_per_epoch": loader.steps_per_epoch}


def fit_with_sizes(
    sizes, steps_per_execution=1, verbose=0, path="loader", **fit_kw
):
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=sizes[0], seed=3)
    model = recording_model(steps_per_execution=steps_per_execution)
    data, extra = fit_input(loader, path)
    history = model.fit(
        data,
        epochs=len(sizes),
        shuffle=False,
        verbose=verbose,
        callbacks=[SetSizes(loader, sizes)],
        **extra,
        **fit_kw,
    )
    return model, history, loader


def expected_batches(size):
    return [size] * (N // size) + ([N % size] if N % size else [])


@pytest.mark.parametrize("path", PATHS)
def test_every_epoch_sees_every_sample_once_and_steps_are_right(path):
    model, _, _ = fit_with_sizes(SIZES, path=path)
    epochs = epochs_of(model.batches, N)
    assert len(epochs) == len(SIZES)
    for size, epoch in zip(SIZES, epochs):
        assert sorted(i for batch in epoch for i in batch) == list(range(N))
        assert [len(batch) for batch in epoch] == expected_batches(size)
    total = sum(math.ceil(N / s) for s in SIZES)
    assert int(model.optimizer.iterations.numpy()) == total


@pytest.mark.parametrize("path", PATHS)
def test_four_batch_sizes_trace_the_train_step_once(path):
    model, _, _ = fit_with_sizes(SIZES, path=path)
    assert model.traces == 1


@pytest.mark.parametrize("path", PATHS)
def test_no_ran_out_of_data_warning_and_right_progress_totals(
    path, capsys, caplog
):
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_with_sizes(SIZES, verbose=1, path=path)
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
    model, _, _ = fit_with_sizes([32, 8, 4], path=path)
    epochs = epochs_of(model.batches, N)
    assert [len(e) for e in epochs] == [2, 7, 13]


def test_steps_per_execution():
    model, _, _ = fit_with_sizes(SIZES, steps_per_execution=3)
    epochs = epochs_of(model.batches, N)
    for size, epoch in zip(SIZES, epochs):
        assert sorted(i for batch in epoch for i in batch) == list(range(N))
        assert [len(batch) for batch in epoch] == expected_batches(size)


@pytest.mark.parametrize("path", PATHS)
def test_validation_data_is_evaluated_each_epoch(path):
    x, y = id_data(20)
    _, history, _ = fit_with_sizes(
        SIZES, validation_data=(x / 50.0, y), path=path
    )
    assert len(history.history["val_loss"]) == len(SIZES)
    assert all(np.isfinite(history.history["val_loss"]))


def test_mirrored_strategy_splits_the_global_batch(mirrored):
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=4, seed=3)
    with mirrored.scope():
        model = recording_model()
    model.fit(
        loader,
        epochs=len(SIZES),
        shuffle=False,
        verbose=0,
        callbacks=[SetSizes(loader, SIZES)],
    )
    epochs = epochs_of(model.batches, N)
    assert len(epochs) == len(SIZES)
    for size, epoch in zip(SIZES, epochs):
        assert sorted(i for batch in epoch for i in batch) == list(range(N))
        # Each replica gets at most half of the global batch (rounded up).
        assert max(len(batch) for batch in epoch) == math.ceil(size / 2)
    total = sum(math.ceil(N / s) for s in SIZES)
    assert int(model.optimizer.iterations.numpy()) == total


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
def test_without_a_callback_each_epoch_reshuffles(path):
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=10, seed=5)
    model = recording_model()
    data, extra = fit_input(loader, path)
    model.fit(data, epochs=3, shuffle=False, verbose=0, **extra)
    epochs = epochs_of(model.batches, N)
    orders = [[i for b in e for i in b] for e in epochs]
    for order in orders:
        assert sorted(order) == list(range(N))
    assert orders[0] != orders[1] != orders[2]


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


def test_as_dataset_is_refused_under_a_strategy(mirrored):
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=4, seed=3)
    grow = keras_lr.callbacks.BatchSizeScheduler(loader, lambda e: 4, None)
    with mirrored.scope():
        model = recording_model()
    with pytest.raises(ValueError, match="distribution strategy"):
        model.fit(
            loader.as_dataset(),
            steps_per_epoch=loader.steps_per_epoch,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[grow],
        )


def test_as_dataset_needs_arrays():
    loader = keras_lr.data.GrowingBatchLoader(Samples(N), batch_size=8)
    with pytest.raises(TypeError, match="needs array data"):
        loader.as_dataset()


def test_as_dataset_is_refused_with_steps_per_execution():
    x, y = id_data(N)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=4, seed=3)
    grow = keras_lr.callbacks.BatchSizeScheduler(loader, lambda e: 4, None)
    with pytest.raises(ValueError, match="steps_per_execution=3"):
        recording_model(steps_per_execution=3).fit(
            loader.as_dataset(),
            steps_per_epoch=loader.steps_per_epoch,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[grow],
        )
