"""PBT and ASHA over the learning rate of the reproduction's digits model.

`keras-lr tune` runs one search, or with `--study` PBT, ASHA and a grid
of fixed rates over several seeds, on Ray Tune. Each trial trains the
reproduction's digits MLP and reports every epoch through
`keras_lr.tune.ReportAndCheckpoint`, which carries the whole keras_lr
state through PBT's exploits and Ray's restarts after a failure.

Importing this package (and `space`) imports neither TensorFlow nor Ray:
the command line takes its choices and defaults from `space`.

Modules:
    space: what the searches explore, their metric and the study's
        defaults.
    trial: `train_digits`, the Ray Tune function of one trial.
    search: starting Ray and running one PBT, ASHA or grid search.
    results: reading a search's trials back: histories, exploits,
        budget, the best final trial, and their mean over seeds.
    figure: the PBT population's rates and losses over the epochs.
    study: `keras-lr tune` itself: one search, or the study and its
        `results.md`.
"""
