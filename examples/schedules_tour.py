"""Prints every keras_lr schedule at a few steps. Runs in about 10 s."""

import keras

from keras_lr import schedules

FAMILY = {
    "ExponentialDecay": schedules.ExponentialDecay(0.1, 200, 0.5),
    "InverseTimeDecay": schedules.InverseTimeDecay(0.1, 100, 1.0),
    "PiecewiseConstantDecay": schedules.PiecewiseConstantDecay(
        [400, 700], [0.1, 0.01, 0.001]
    ),
    "PolynomialDecay": schedules.PolynomialDecay(0.1, 1000, 0.0),
    "CosineDecay": schedules.CosineDecay(0.1, 1000),
    "GaussianDecay": schedules.GaussianDecay(0.1, 400),
    "CyclicalLearningRate": schedules.CyclicalLearningRate(0.01, 0.1, 125),
    "OneCycle": schedules.OneCycle(0.1, 1000),
    "LinearWarmup(CosineDecay)": schedules.LinearWarmup(
        keras.optimizers.schedules.CosineDecay(0.1, 900), 100
    ),
}

if __name__ == "__main__":
    steps = [0, 100, 250, 500, 750, 1000]
    print(f"{'schedule':28s}" + "".join(f"{s:>10d}" for s in steps))
    for name, schedule in FAMILY.items():
        values = [float(schedule(s)) for s in steps]
        print(f"{name:28s}" + "".join(f"{v:10.5f}" for v in values))
