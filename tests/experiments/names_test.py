"""Every name the command line accepts is one the experiments implement."""

import keras

from keras_lr_experiments import datasets
from keras_lr_experiments import names
from keras_lr_experiments import optimizers
from keras_lr_experiments import plan


def test_every_optimizer_name_builds_its_optimizer():
    assert set(optimizers.CLASSES) == set(names.OPTIMIZERS)
    assert set(plan.LABELS) == set(names.OPTIMIZERS)
    for name in names.OPTIMIZERS:
        optimizer = optimizers.make_optimizer(name, 0.01)
        assert isinstance(optimizer, keras.optimizers.Optimizer)
        assert type(optimizer) is optimizers.CLASSES[name]


def test_every_part_name_plans_runs():
    runs = plan.make_plan("digits", names.PARTS, seeds=[0])
    assert [r.part for r in runs] == ["lr"] * 3 + ["optimizers"] * 5 + [
        "fair"
    ] * 5
    assert set(plan.EXPERIMENT_NAMES) == set(names.PARTS)


def test_every_dataset_name_has_a_loader(monkeypatch):
    loaded = []
    monkeypatch.setattr(
        datasets, "load_digits", lambda: loaded.append("digits")
    )
    monkeypatch.setattr(
        datasets,
        "load_stanford_dogs",
        lambda image_size: loaded.append("stanford_dogs"),
    )
    for name in names.DATASETS:
        datasets.load_dataset(name)
    assert loaded == list(names.DATASETS)
