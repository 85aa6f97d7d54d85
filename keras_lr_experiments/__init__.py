"""The reproduction of the seed's optimizer comparison (`keras-lr reproduce`).

Section 4 of the seed article trains one network on the 120 Stanford Dogs
breeds with Adam at three learning rates, then with five optimizers all at
LR 0.001. This package re-runs both comparisons over several seeds and adds
a fair third one where each optimizer gets the rate our race chooses
(`keras_lr.choose_learning_rate`).

The reproduction lives here, apart from the library: a package of its
own (this folder's pyproject.toml), not in the keras-lr wheel, that uses
only the public API of `keras_lr` and of Keras. Importing this package
(and `cli`, `names`, `settings`, `errors`, `_files`, `progress`, `plan`,
`tune.space`) imports no TensorFlow, so the command line parses and
checks its arguments before TensorFlow loads.

Modules:
    cli: the `keras-lr` command line (`python -m keras_lr_experiments`).
    names: the data set, part and optimizer names the command accepts.
    settings: `Settings`, what a reproduction runs, and the range test's
        defaults.
    datasets: the digits (default), Stanford Dogs and image-folder data.
    models: the network for each dataset.
    optimizers: the article's optimizers, SGD with step annealing.
    plan: which runs each part holds.
    runner: `reproduce`, running every planned run, resumably.
    training: training one run and writing its files.
    range_test: the race of part `fair`, the range test of `keras-lr find`.
    progress: the progress lines, with time left.
    environment: versions and hardware for each run's summary.
    report: tables and plots per experiment.
    tune: PBT and ASHA over the digits model's rate (`keras-lr tune`).
"""
