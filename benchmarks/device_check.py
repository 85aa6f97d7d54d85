"""Device check: keras_lr's JAX-backend tests and the callbacks' cost on
whatever accelerator JAX finds (a GPU when there is one; CI runs it on
CPU).

Runs, each in its own process under KERAS_BACKEND=jax:

1. the portable tests of the schedules, the rate controller and the
   callbacks (`pytest -m portable`), and the backend internals;
2. `benchmarks/callbacks_bench.py` on the cyclic, one-cycle and plateau
   callbacks against a constant-rate `fit` (fewer rounds than its
   default).

and prints (and with --out, writes) the device JAX used, the pytest
summary and the benchmark table. A few minutes on a 2-core CPU box.

Usage:

    PYTHONPATH=$PWD python benchmarks/device_check.py --out DIR
"""

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = [
    "tests/schedules/values_test.py",
    "tests/control",
    "tests/callbacks/cyclic_test.py",
    "tests/callbacks/plateau_test.py",
    "tests/callbacks/lr_logger_test.py",
    "tests/callbacks/batch_logs_test.py",
    "tests/keras_internals_test.py",
]
BENCH = [
    "benchmarks/callbacks_bench.py",
    "--only",
    "CyclicLR,OneCycleLR,ReduceLROnPlateau (control)",
]


def _run(command, env, timeout) -> tuple[int, str, float]:
    start = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr, (
        time.perf_counter() - start
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for the report")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument(
        "--pairs",
        type=int,
        default=10,
        help="pairs of models the benchmark's blocks are spread over",
    )
    parser.add_argument(
        "--tests",
        type=lambda text: [n.strip() for n in text.split(",") if n.strip()],
        default=TESTS,
        help="comma-separated test files or folders (default: the "
        "schedules', controller's and callbacks')",
    )
    parser.add_argument("--timeout", type=int, default=900)
    args = parser.parse_args(argv)
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=ROOT)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    report = []

    code, out, _ = _run(
        [
            sys.executable,
            "-c",
            "import jax, keras; print('jax', jax.__version__, 'keras', "
            "keras.__version__, 'devices', jax.devices())",
        ],
        env,
        args.timeout,
    )
    report.append("$ device\n" + out.strip())

    tests = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "portable",
        *args.tests,
    ]
    code_tests, out, seconds = _run(tests, env, args.timeout)
    summary = [line for line in out.splitlines() if line.strip()][-15:]
    report.append(
        f"$ KERAS_BACKEND=jax python {' '.join(tests[1:])}  ({seconds:.0f} s)\n"
        + "\n".join(summary)
    )

    bench = [
        sys.executable,
        *BENCH,
        "--rounds",
        str(args.rounds),
        "--steps",
        str(args.steps),
        "--blocks",
        str(args.blocks),
        "--block",
        str(args.block),
        "--pairs",
        str(args.pairs),
    ]
    code_bench, out, seconds = _run(bench, env, args.timeout)
    report.append(
        f"$ KERAS_BACKEND=jax python {' '.join(repr(a) for a in bench[1:])}"
        f"  ({seconds:.0f} s)\n" + out.strip()
    )
    text = "\n\n".join(report) + "\n"
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "device_check.txt"), "w") as file:
            file.write(text)
    return code_tests or code_bench


if __name__ == "__main__":
    sys.exit(main())
