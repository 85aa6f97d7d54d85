"""The `keras-lr` command line: the reproduction and the range test.

```
keras-lr reproduce [--dataset digits|stanford_dogs] [--data-dir PATH]
                   [--epochs N] [--seeds 0 1 2] [--batch-size B]
                   [--out runs] [--parts lr optimizers fair choose]
                   [--optimizers ...] [--quick] [--quiet]
keras-lr find [--dataset ...] [--data-dir PATH] [--optimizer adam]
              [--out range_test] ...
keras-lr tune [--scheduler pbt|asha] [--population 4] [--epochs 12]
              [--perturbation-interval 3] [--mutate learning_rate ...]
              [--address HOST:PORT] [--out tune_runs] [--study --seeds ...]
```

It lives in `keras_lr_experiments`, with the reproduction it runs, in a
package of its own apart from the library.

The command line answers at once: this module imports no TensorFlow (its
imports, `names`, `settings`, `errors` and `_files`, import only the
standard library), so `--help` returns in a fraction of a second and
every check that needs no TensorFlow runs before it is imported: the
names of data sets, parts and optimizers, the numbers, `--data-dir`
(a folder with at least two classes) and `--out` (writable). Bad input
ends with one line on stderr and exit code 2, before anything is written.

Every default `--out` is a folder git ignores (`runs`, `runs/quick`,
`range_test`, `tune_runs`): the committed results in `saved_runs/` are
written only when `--out` names them.
"""

import argparse
import importlib.util
import sys
from pathlib import Path

from keras_lr_experiments import _files
from keras_lr_experiments.errors import UsageError
from keras_lr_experiments.names import DATASETS
from keras_lr_experiments.names import OPTIMIZERS
from keras_lr_experiments.names import PARTS
from keras_lr_experiments.settings import RANGE_TEST

# Standard library only, like the modules above: no TensorFlow, no Ray.
from keras_lr_experiments.tune.space import (
    HYPERPARAMETERS as TUNE_HYPERPARAMETERS,
)
from keras_lr_experiments.tune.space import SCHEDULERS as TUNE_SCHEDULERS
from keras_lr_experiments.tune.space import SCHEDULES as TUNE_SCHEDULES
from keras_lr_experiments.tune.space import STUDY as TUNE_DEFAULTS

DEFAULT_EPOCHS = 20
DEFAULT_SEEDS = [0, 1, 2]
QUICK_EPOCHS = 2
QUICK_SEEDS = [0]
QUICK_RANGE_TEST_STEPS = 20
# Apart from a full run's folder: a check does not mix its 2-epoch runs
# into it.
DEFAULT_OUT = Path("runs")
QUICK_OUT = DEFAULT_OUT / "quick"
DEFAULT_RANGE_TEST_STEPS = RANGE_TEST["num_steps"]
DEFAULT_RANGE_TEST_REPEATS = RANGE_TEST["repeats"]


class _Parser(argparse.ArgumentParser):
    """Reports errors in one line (no usage block), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an integer > 0, received {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"must be an integer > 0, received {text!r}"
        )
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"must be an integer >= 0, received {text!r}"
        )
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a finite number > 0, received {text!r}"
        )
    return value


def _add_data_arguments(parser) -> None:
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="digits (default; scikit-learn's, no download) or "
        "stanford_dogs (tensorflow-datasets, downloads ~750 MB once)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="a folder of images with one subfolder per class, "
        "instead of --dataset",
    )
    parser.add_argument(
        "--image-size",
        type=_positive_int,
        default=64,
        help="side in pixels photos are resized to (default 64)",
    )
    parser.add_argument(
        "--batch-size", type=_positive_int, default=32, help="default 32"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="keras-lr",
        description="keras_lr: reproduce the dog-breed optimizer comparison "
        "and run LR range tests.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    reproduce = commands.add_parser(
        "reproduce",
        help="the optimizer comparison of the seed article, then the fair one",
        description="Trains the article's comparisons over several seeds: "
        "(lr) Adam at 0.1, 0.01, 0.001; (optimizers) SGD with step "
        "annealing, RMSprop, Adam, Adagrad, Adadelta all at 0.001; (fair) "
        "each at the rate our race (keras_lr.choose_learning_rate) "
        "chooses; (choose) every way of choosing the rate at equal budget "
        "on five workloads. Resumable: complete runs are skipped.",
    )
    _add_data_arguments(reproduce)
    reproduce.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help=f"default {DEFAULT_EPOCHS} ({QUICK_EPOCHS} with --quick)",
    )
    reproduce.add_argument(
        "--seeds",
        type=_non_negative_int,
        nargs="+",
        default=None,
        help="default 0 1 2 (0 with --quick)",
    )
    reproduce.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"default {DEFAULT_OUT} ({QUICK_OUT} with --quick); the "
        "committed results are in saved_runs",
    )
    reproduce.add_argument(
        "--parts",
        choices=PARTS,
        nargs="+",
        default=list(PARTS),
        help="default: all four",
    )
    reproduce.add_argument(
        "--optimizers",
        choices=OPTIMIZERS,
        nargs="+",
        default=list(OPTIMIZERS),
        help="optimizers of parts optimizers and fair (default: all five)",
    )
    reproduce.add_argument(
        "--range-test-steps",
        type=_positive_int,
        default=None,
        help=f"steps of the range test of each race in part fair "
        f"(default {DEFAULT_RANGE_TEST_STEPS}; {QUICK_RANGE_TEST_STEPS} "
        "with --quick)",
    )
    reproduce.add_argument(
        "--quick",
        action="store_true",
        help="a minimal run for tests: 2 epochs, seed 0, one short race "
        "per optimizer",
    )
    reproduce.add_argument(
        "--quiet", action="store_true", help="no per-epoch Keras output"
    )
    reproduce.set_defaults(handler=_reproduce)

    find = commands.add_parser(
        "find",
        help="LR range test of the reproduction's model with one optimizer",
        description="Runs the LR range test on a fresh model of the "
        "reproduction and writes the curve (PNG) and the numbers (JSON).",
    )
    _add_data_arguments(find)
    find.add_argument(
        "--optimizer", choices=OPTIMIZERS, default="adam", help="default adam"
    )
    find.add_argument("--seed", type=_non_negative_int, default=0)
    find.add_argument(
        "--num-steps",
        type=_positive_int,
        default=DEFAULT_RANGE_TEST_STEPS,
        help=f"default {DEFAULT_RANGE_TEST_STEPS}",
    )
    find.add_argument(
        "--repeats",
        type=_positive_int,
        default=DEFAULT_RANGE_TEST_REPEATS,
        help=f"sweeps with reshuffled data (default "
        f"{DEFAULT_RANGE_TEST_REPEATS}); the pick is their geometric mean",
    )
    find.add_argument(
        "--start-lr",
        type=_positive_float,
        default=RANGE_TEST["start_lr"],
        help="default 1e-7",
    )
    find.add_argument(
        "--end-lr",
        type=_positive_float,
        default=RANGE_TEST["end_lr"],
        help="default 10",
    )
    find.add_argument(
        "--out",
        type=Path,
        default=Path("range_test"),
        help="default range_test",
    )
    find.set_defaults(handler=_find)
    _add_tune_parser(commands)
    return parser


def _add_tune_parser(commands) -> None:
    tune = commands.add_parser(
        "tune",
        help="PBT or ASHA over the learning rate of the digits model, on "
        'Ray Tune (pip install -e ".[tune]")',
        description="Population-based training (Ray's "
        "PopulationBasedTraining) or ASHA (Ray's ASHAScheduler) over the "
        "learning rate of the reproduction's digits MLP, each trial "
        "checkpointed every epoch with keras_lr.tune.ReportAndCheckpoint "
        "(whole keras_lr state). Ray starts in this process unless "
        "--address names a cluster. --study runs PBT, ASHA and a grid of "
        "fixed rates over --seeds and writes results.md, summary.json and "
        "population_lr.png.",
    )
    tune.add_argument(
        "--scheduler",
        choices=TUNE_SCHEDULERS,
        default="pbt",
        help="default pbt",
    )
    tune.add_argument(
        "--population",
        type=_positive_int,
        default=TUNE_DEFAULTS["population"],
        help=f"PBT trials, also the grid's size "
        f"(default {TUNE_DEFAULTS['population']})",
    )
    tune.add_argument(
        "--samples",
        type=_positive_int,
        default=TUNE_DEFAULTS["asha_samples"],
        help=f"ASHA trials (default {TUNE_DEFAULTS['asha_samples']})",
    )
    tune.add_argument(
        "--epochs",
        type=_positive_int,
        default=TUNE_DEFAULTS["epochs"],
        help=f"epochs of a trial (default {TUNE_DEFAULTS['epochs']})",
    )
    tune.add_argument(
        "--perturbation-interval",
        type=_positive_int,
        default=TUNE_DEFAULTS["perturbation_interval"],
        help="epochs between PBT's perturbations "
        f"(default {TUNE_DEFAULTS['perturbation_interval']})",
    )
    tune.add_argument(
        "--mutate",
        choices=TUNE_HYPERPARAMETERS,
        nargs="+",
        default=["learning_rate"],
        help="what PBT explores (default learning_rate; batch_size goes "
        "through the loader)",
    )
    tune.add_argument(
        "--schedule",
        choices=TUNE_SCHEDULES,
        default="constant",
        help="the rate PBT scales: constant (default), or one epoch of "
        "warmup then cosine decay, peaking at the trial's rate",
    )
    tune.add_argument("--seed", type=_non_negative_int, default=0)
    tune.add_argument(
        "--study",
        action="store_true",
        help="PBT, ASHA and the grid of fixed rates over --seeds",
    )
    tune.add_argument(
        "--seeds",
        type=_non_negative_int,
        nargs="+",
        default=[0, 1, 2],
        help="seeds of --study (default 0 1 2)",
    )
    tune.add_argument(
        "--address",
        default=None,
        help="a Ray cluster to run on (ray.init(address=...)), e.g. "
        "auto or ray://head:10001; default: Ray in this process",
    )
    tune.add_argument(
        "--num-cpus",
        type=_positive_int,
        default=None,
        help="CPUs of the in-process Ray (default: all); one per trial",
    )
    tune.add_argument(
        "--out",
        type=Path,
        default=Path("tune_runs"),
        help="default tune_runs (Ray's own files under OUT/ray)",
    )
    tune.add_argument(
        "--storage",
        type=Path,
        default=None,
        help="where Ray keeps its trial folders and checkpoints (default "
        "OUT/ray; with --address, a folder every node can reach)",
    )
    tune.set_defaults(handler=_tune, dataset=None, data_dir=None)


def check_arguments(args: argparse.Namespace) -> None:
    """The checks that need no TensorFlow, run before it is imported.

    Raises:
        UsageError: for `--dataset` with `--data-dir`, a `--data-dir` that
            is not a folder with two classes of images, an `--end-lr` not
            above `--start-lr`, or an `--out` where no file can be created.
    """
    if args.data_dir is not None and args.dataset is not None:
        raise UsageError(
            "Arguments `--dataset` and `--data-dir` are exclusive. Received: "
            f"--dataset={args.dataset!r}, --data-dir={str(args.data_dir)!r}"
        )
    if args.data_dir is not None:
        # NumPy, not TensorFlow.
        from keras_lr_experiments import datasets

        datasets.check_image_folder(args.data_dir)
    if args.command == "tune":
        _check_tune_arguments(args)
    if args.command == "find" and not args.end_lr > args.start_lr:
        raise UsageError(
            "Argument `--end-lr` must be > `--start-lr`. Received: "
            f"--start-lr={args.start_lr!r}, --end-lr={args.end_lr!r}"
        )
    _files.check_writable(args.out)


def _check_tune_arguments(args) -> None:
    uses_pbt = args.study or args.scheduler == "pbt"
    if uses_pbt and args.perturbation_interval >= args.epochs:
        raise UsageError(
            "Argument `--perturbation-interval` must be < `--epochs` (with a "
            "longer interval no trial is ever perturbed). Received: "
            f"--perturbation-interval={args.perturbation_interval}, "
            f"--epochs={args.epochs}"
        )
    if uses_pbt and args.population < 2:
        raise UsageError(
            "Argument `--population` must be >= 2 (PBT copies one trial "
            f"into another). Received: --population={args.population}"
        )
    if args.address is not None and not args.address.strip():
        raise UsageError(
            "Argument `--address` must name a Ray cluster (auto, HOST:PORT "
            f"or ray://HOST:PORT). Received: --address={args.address!r}"
        )
    if importlib.util.find_spec("ray") is None:
        raise UsageError(
            'keras-lr tune needs Ray Tune: pip install -e ".[tune]"'
        )


def _load_data(args):
    from keras_lr_experiments import datasets

    return datasets.load_dataset(
        args.dataset or "digits",
        data_dir=args.data_dir,
        image_size=args.image_size,
    )


def _reproduce(args) -> int:
    from keras_lr_experiments import range_test
    from keras_lr_experiments import runner
    from keras_lr_experiments.settings import Settings

    repeats = DEFAULT_RANGE_TEST_REPEATS
    if args.quick:
        epochs = args.epochs or QUICK_EPOCHS
        seeds = args.seeds or QUICK_SEEDS
        steps = args.range_test_steps or QUICK_RANGE_TEST_STEPS
        repeats = 1
    else:
        epochs = args.epochs or DEFAULT_EPOCHS
        seeds = args.seeds or DEFAULT_SEEDS
        steps = args.range_test_steps or DEFAULT_RANGE_TEST_STEPS
    if "fair" in args.parts:
        range_test.choose_learning_rate_function()
    parts = list(dict.fromkeys(args.parts))
    others = [part for part in parts if part != "choose"]
    if not others:
        return _choose(args)
    data = _load_data(args)
    settings = Settings(
        dataset=data.name,
        epochs=epochs,
        batch_size=args.batch_size,
        seeds=list(dict.fromkeys(seeds)),
        out=args.out,
        parts=others,
        optimizers=list(dict.fromkeys(args.optimizers)),
        range_test_steps=steps,
        range_test_repeats=repeats,
        quiet=args.quiet,
    )
    runner.reproduce(data, settings)
    if "choose" in parts:
        return _choose(args)
    return 0


def _choose(args) -> int:
    """Part `choose` (its own workloads: `--dataset` does not apply)."""
    import dataclasses

    from keras_lr_experiments.choose import budget
    from keras_lr_experiments.choose import runner as choose_runner

    sizes = budget.QUICK if args.quick else budget.FULL
    if args.seeds:
        sizes = dataclasses.replace(
            sizes, seeds=tuple(dict.fromkeys(args.seeds))
        )
    command = "keras-lr " + " ".join(args.argv)
    choose_runner.run_choose(args.out, sizes, command)
    return 0


def _find(args) -> int:
    from keras_lr_experiments import range_test
    from keras_lr_experiments.settings import Settings

    range_test.find_learning_rate_function()
    data = _load_data(args)
    settings = Settings(
        dataset=data.name,
        batch_size=args.batch_size,
        seeds=[args.seed],
        out=args.out,
        range_test_steps=args.num_steps,
        range_test_start_lr=args.start_lr,
        range_test_end_lr=args.end_lr,
        range_test_repeats=args.repeats,
    )
    basename = f"range_test_{data.name}_{args.optimizer}"
    record = range_test.run_range_test(
        args.optimizer,
        data,
        settings,
        args.out,
        basename,
    )
    print(
        f"{args.optimizer}: suggested learning rate "
        f"{record['suggestion']:.4g} ({record['spec']['method']} rule); "
        f"wrote {args.out / (basename + '.png')} and "
        f"{args.out / (basename + '.json')}"
    )
    for message in record["warnings"]:
        print(f"range test warning: {message}")
    return 0


def _tune(args) -> int:
    from keras_lr_experiments.tune import study

    settings = {
        "epochs": args.epochs,
        "population": args.population,
        "perturbation_interval": args.perturbation_interval,
        "asha_samples": args.samples,
        "mutations": tuple(dict.fromkeys(args.mutate)),
        "schedule": args.schedule,
    }
    command = "keras-lr " + " ".join(args.argv)
    if args.study:
        study.study(
            seeds=list(dict.fromkeys(args.seeds)),
            out=args.out,
            address=args.address,
            num_cpus=args.num_cpus,
            command=command,
            storage=args.storage,
            **settings,
        )
        print(f"wrote {args.out / 'results.md'}")
        return 0
    study.run_one(
        args.scheduler,
        seed=args.seed,
        out=args.out,
        address=args.address,
        num_cpus=args.num_cpus,
        storage=args.storage,
        **settings,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit code.

    Args:
        argv: A list of strings, the arguments; `None` reads `sys.argv`.

    Returns:
        An int: 0 on success, 2 for bad input (one line on stderr), 130
        when interrupted.
    """
    args = build_parser().parse_args(argv)
    if args.out is None:
        args.out = QUICK_OUT if args.quick else DEFAULT_OUT
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        check_arguments(args)
        return args.handler(args)
    except UsageError as error:
        print(f"keras-lr {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"keras-lr {args.command}: interrupted; run the same command "
            "again to resume (complete runs are kept)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
