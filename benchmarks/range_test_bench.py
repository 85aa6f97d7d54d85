"""Cost of a range test against a plain `fit` of the same number of steps.

Both run side by side in one process, interleaved, on the same small MLP
over scikit-learn's digits, at steps_per_execution 1 and 8. Two settings:

- cold: a freshly compiled model for every call (each call traces its
  train function once), the way `find_learning_rate` is used before
  training;
- warm: the same model called again and again (plain `fit` reuses its
  traced function; the range test reuses the one it traced on the first
  call, which stays with the model);
- per step: warm, the extra time of 3N steps over N steps, which leaves
  out every fixed cost (tracing included) and compares the steps alone.

The range test never diverges here (tiny `end_lr`), so both run all steps.
On a shared machine single timings jump around; the ratio reported is that
of the fastest trial of each (as `timeit` does), medians are printed too.

    PYTHONPATH=$PWD python benchmarks/range_test_bench.py [--steps 300]
"""

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import keras_lr  # noqa: E402


def make_model(spe):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=spe,
    )
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    n = 3 * args.steps * args.batch_size
    rng = np.random.default_rng(0)
    idx = np.concatenate(
        [rng.permutation(len(x)) for _ in range(n // len(x) + 1)]
    )[:n]

    def plain(model, steps=args.steps):
        model.fit(
            x[idx[: steps * args.batch_size]],
            y[idx[: steps * args.batch_size]],
            batch_size=args.batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
        )

    def range_test(model, steps=args.steps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            keras_lr.find_learning_rate(
                model,
                x,
                y,
                batch_size=args.batch_size,
                start_lr=1e-7,
                end_lr=1e-4,
                num_steps=steps,
                seed=0,
            )

    print(
        f"{args.steps} steps, batch {args.batch_size}, "
        f"{args.trials} interleaved trials, ratio range/plain"
    )
    for spe in (1, 8):
        for setting in ("cold", "warm"):
            times = {"plain": [], "range": []}
            steps_times = {"plain": [], "range": []}
            models = {"plain": make_model(spe), "range": make_model(spe)}
            if setting == "warm":
                plain(models["plain"])
                range_test(models["range"])
            for trial in range(args.trials):
                order = (
                    ["plain", "range"]
                    if trial % 2 == 0
                    else [
                        "range",
                        "plain",
                    ]
                )
                for name in order:
                    model = (
                        models[name] if setting == "warm" else (make_model(spe))
                    )
                    fn = plain if name == "plain" else range_test
                    start = time.perf_counter()
                    fn(model)
                    times[name].append(time.perf_counter() - start)
                if setting == "warm":
                    for name in order:
                        fn = plain if name == "plain" else range_test
                        start = time.perf_counter()
                        fn(models[name], 3 * args.steps)
                        steps_times[name].append(time.perf_counter() - start)
            best = {k: min(v) for k, v in times.items()}
            median = {k: statistics.median(v) for k, v in times.items()}
            print(
                f"steps_per_execution={spe} {setting}: "
                f"fastest plain {best['plain']:.3f}s, "
                f"range test {best['range']:.3f}s, "
                f"ratio {best['range'] / best['plain']:.3f} "
                f"(medians {median['plain']:.3f}s, {median['range']:.3f}s, "
                f"ratio {median['range'] / median['plain']:.3f})"
            )
            if setting == "warm":
                per_step = {
                    k: 1e3
                    * (min(steps_times[k]) - min(times[k]))
                    / (2 * args.steps)
                    for k in times
                }
                ratio = per_step["range"] / per_step["plain"]
                print(
                    f"steps_per_execution={spe} per step: "
                    f"plain {per_step['plain']:.3f}ms, "
                    f"range test {per_step['range']:.3f}ms, "
                    f"ratio {ratio:.3f} (fastest trials)"
                )


if __name__ == "__main__":
    main()
