"""Draws the whole schedule family into one figure (~1.5 min, 2 CPUs).

Run: python examples/plot_schedules.py [output.png]; the default,
runs/schedules.png, is ignored by git. The schedules guide's figure:
python examples/plot_schedules.py docs/schedules.png
"""

import argparse
import os

import keras
import matplotlib.pyplot as plt
import numpy as np

from keras_lr import schedules
from keras_lr.plot import plot_schedule
from keras_lr.schedules.warmup_stable_decay import DECAY_SHAPES
from keras_lr.schedules.warmup_stable_decay import cooldown_factor

STEPS = 1000

PANELS = {
    "Decays (seed articles)": {
        "ExponentialDecay(0.1, 200, 0.5)": schedules.ExponentialDecay(
            0.1, 200, 0.5
        ),
        "ExponentialDecay(staircase) = step decay": schedules.ExponentialDecay(
            0.1, 250, 0.5, staircase=True
        ),
        "InverseTimeDecay = time-based": schedules.InverseTimeDecay(
            0.1, 100, 1.0
        ),
        "PolynomialDecay(power=2)": schedules.PolynomialDecay(
            0.1, STEPS, 0.0, power=2.0
        ),
        "GaussianDecay(0.1, 400)": schedules.GaussianDecay(0.1, 400),
        "PiecewiseConstantDecay (seed 003)": schedules.PiecewiseConstantDecay(
            [400, 700], [0.1, 0.01, 0.001]
        ),
    },
    "Cosine family": {
        "CosineDecay + warmup": schedules.CosineDecay(
            0.0, 900, warmup_target=0.1, warmup_steps=100
        ),
        "CosineDecayRestarts(t_mul=2)": schedules.CosineDecayRestarts(0.1, 150),
    },
    "Cyclical and one-cycle": {
        "CyclicalLearningRate triangular": schedules.CyclicalLearningRate(
            0.01, 0.1, 125
        ),
        "CyclicalLearningRate triangular2": schedules.CyclicalLearningRate(
            0.01, 0.1, 125, mode="triangular2"
        ),
        "OneCycle(0.1, 1000)": schedules.OneCycle(0.1, STEPS),
    },
    "Composition": {
        "LinearWarmup(Keras CosineDecay)": schedules.LinearWarmup(
            keras.optimizers.schedules.CosineDecay(0.1, 900), 100
        ),
        "JoinedSchedule(linear up, cosine, 0.005)": schedules.JoinedSchedule(
            [
                schedules.PolynomialDecay(0.0, 100, 0.1),
                schedules.CosineDecay(0.1, 600, alpha=0.05),
                0.005,
            ],
            [100, 700],
        ),
    },
    "Warmup-stable-decay (100 up, 500 stable, 300 down)": {
        f"WarmupStableDecay({shape!r})": schedules.WarmupStableDecay(
            0.1, 100, 500, 300, end_learning_rate=0.005, decay_shape=shape
        )
        for shape in DECAY_SHAPES
    },
}


def plot_cooldown_shapes(ax):
    """The WSD cooldown factor against the fraction of the cooldown done."""
    t = np.linspace(0.0, 1.0, 201)
    for shape in DECAY_SHAPES:
        ax.plot(t, np.asarray(cooldown_factor(t, shape)), label=repr(shape))
    ax.set_title("WSD cooldown_factor(t, shape)")
    ax.set_xlabel("fraction of the cooldown done")
    ax.set_ylabel("factor")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="runs/schedules.png")
    return parser.parse_args(argv)


if __name__ == "__main__":
    path = parse_args().out
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure, axes = plt.subplots(3, 2, figsize=(12, 10.5))
    for ax, (title, family) in zip(axes.flat, PANELS.items()):
        for label, schedule in family.items():
            plot_schedule(schedule, STEPS, ax=ax, label=label)
        ax.set_title(title)
        ax.set_xlim(0, STEPS)
        ax.legend(fontsize=7)
    plot_cooldown_shapes(axes.flat[len(PANELS)])
    figure.suptitle("keras_lr.schedules over 1000 steps")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")
