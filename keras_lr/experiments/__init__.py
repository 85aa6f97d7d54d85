"""The reproduction of the seed's optimizer comparison (`keras-lr reproduce`).

Section 4 of the seed article trains one network on the 120 Stanford Dogs
breeds with Adam at three learning rates, then with five optimizers all at
LR 0.001. This package re-runs both comparisons over several seeds and adds
a fair third one where each optimizer gets the rate our range test picks.

Modules:
    datasets: the digits (default), Stanford Dogs and image-folder data.
    models: the network for each dataset.
    optimizers: the article's optimizers, SGD with step annealing.
    plan: which runs each part holds.
    runner: training one run, writing its files, resuming.
    report: tables and plots per experiment.
"""
