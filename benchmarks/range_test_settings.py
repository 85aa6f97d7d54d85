"""How the range test's suggestions move with its own settings.

On the quality check's data and model (`range_test_quality.py`), runs the
range test (defaults otherwise, `repeats=3, seed=0`) with 100, 200 and 400
steps and batch 32 and 64, and prints each suggestion's geometric mean and
spread and how many runs the noise warning flagged. No training at the
suggested rates: see `range_test_quality.py` for that.

    PYTHONPATH=$PWD python benchmarks/range_test_settings.py
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from range_test_quality import OPTIMIZERS  # noqa: E402
from range_test_quality import builder  # noqa: E402
from range_test_quality import data  # noqa: E402
from range_test_quality import range_test  # noqa: E402


def main():
    x_train, _, y_train, _ = data()
    print("optimizer num_steps batch  valley [min, max]  steepest  noisy runs")
    for name in OPTIMIZERS:
        for num_steps in (100, 200, 400):
            for batch_size in (32, 64):
                result, messages = range_test(
                    builder(name),
                    x_train,
                    y_train,
                    batch_size=batch_size,
                    num_steps=num_steps,
                )
                valley = result.suggestion_spread("valley")
                noisy = sum("too noisy" in m for m in messages)
                print(
                    f"{name:9s} {num_steps:9d} {batch_size:5d}  "
                    f"{valley['geometric_mean']:.3g} [{valley['min']:.3g}, "
                    f"{valley['max']:.3g}]  "
                    f"{result.suggestion('steepest'):.3g}  {noisy}"
                )


if __name__ == "__main__":
    main()
