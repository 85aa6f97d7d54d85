"""Draws the whole schedule family into docs/schedules.png (about 15 s).

Run: python examples/plot_schedules.py [output.png]
"""

import sys

import keras
import matplotlib.pyplot as plt

from keras_lr import schedules
from keras_lr.plot import plot_schedule

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
}

if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "docs/schedules.png"
    figure, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
    for ax, (title, family) in zip(axes.flat, PANELS.items()):
        for label, schedule in family.items():
            plot_schedule(schedule, STEPS, ax=ax, label=label)
        ax.set_title(title)
        ax.legend(fontsize=7)
    figure.suptitle("keras_lr.schedules over 1000 steps")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")
