"""The race, the curve readings and the best fixed rate on the race bank.

Two phases, each writing its JSON after every setting (a rerun resumes):

- `grid`: each setting of `race_bank_settings.SETTINGS` trained with the
  bank's protocol (5 epochs, seed 0, test-split loss) at each rate of its
  one-seed 19-rate grid.
- `race`: `keras_lr.range_test.choose_learning_rate` on the training split
  with race seeds 0, 1, 2 (defaults otherwise; it holds a fifth of the
  training split out itself, the test split is never seen), each pick
  trained with the protocol; and the `valley`, `steepest` and fastai
  `valley` readings of seed 0's range test, trained the same way.

Then `markdown` prints the tables and the bars for the design and the
held-out settings separately: races within 10% of the best grid loss,
races within 3x of a near-best rate (one whose grid loss is within 10% of
the best), and the race's cost (range test + race steps) against the
one-seed 19-rate grid's steps.

    PYTHONPATH=$PWD python benchmarks/race_bank.py grid \
        --out saved_runs/range_test/race_bank_grid.json
    PYTHONPATH=$PWD python benchmarks/race_bank.py race \
        --out saved_runs/range_test/race_bank.json
    PYTHONPATH=$PWD python benchmarks/race_bank.py markdown \
        --grid saved_runs/range_test/race_bank_grid.json \
        --out saved_runs/range_test/race_bank.json \
        --noise saved_runs/range_test/race_bank_noise.json
    PYTHONPATH=$PWD python benchmarks/race_bank.py plot \
        --grid saved_runs/range_test/race_bank_grid.json \
        --out saved_runs/range_test/race_bank.json \
        --png saved_runs/range_test/race_bank.png
"""

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import race_bank_settings as bank  # noqa: E402
import range_test_quality as quality  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_lr.range_test import choose_learning_rate  # noqa: E402

RACE_SEEDS = (0, 1, 2)
# The plot's loss ratios stop here.
CLIP = 100.0
READINGS = ("valley", "steepest", "fastai-valley")
METHODS = ("race",) + READINGS
# The parts of the bank, in the order the tables and the plot show them:
# the newest held-out set first.
PARTS = ("fourth", "third", "fresh", "held_out", "design")


def _load(path) -> dict:
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def _dump(path, out) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(path + ".tmp", path)


def _names(only, part="bank"):
    """The settings to run: `only`, else a part of the bank (`"bank"`:
    the 45 design and held-out settings; `"fresh"`; `"third"`)."""
    split = bank.split()
    if only:
        return only
    if part == "bank":
        return split["design"] + split["held_out"]
    return split[part]


def run_grid(path, only=None, part="bank") -> None:
    out = _load(path)
    for name in _names(only, part):
        if name in out:
            continue
        started = time.perf_counter()
        rates = bank.grid(bank.ALL[name][1])
        losses = [bank.trained_loss(name, lr) for lr in rates]
        best = int(np.argmin(losses))
        out[name] = {
            "grid_lrs": rates,
            "grid_losses": losses,
            "best_lr": rates[best],
            "best_loss": losses[best],
            "steps": bank.steps(name),
            "seconds": round(time.perf_counter() - started, 1),
        }
        _dump(path, out)
        print(
            f"{name}: best {rates[best]:.3g} ({losses[best]:.4f}); "
            f"{out[name]['seconds']} s",
            flush=True,
        )


def _readings(curve) -> dict:
    picks = {}
    for method in ("valley", "steepest"):
        try:
            picks[method] = curve.suggestion(method)
        except ValueError:
            picks[method] = None
    try:
        picks["fastai-valley"] = quality.fastai_valley(
            curve.learning_rates, curve.smoothed_losses
        )
    except ValueError:
        picks["fastai-valley"] = None
    return picks


def run_races(path, only=None, part="bank") -> None:
    out = _load(path)
    for name in _names(only, part):
        if name in out:
            continue
        started = time.perf_counter()
        (x_train, _, y_train, _), build, batch_size, _ = bank.setting(name)
        grid_steps = len(bank.GRID) * bank.steps(name)
        trained = {}

        def loss_at(lr, name=name, trained=trained):
            key = repr(float(lr))
            if key not in trained:
                trained[key] = bank.trained_loss(name, lr)
            return trained[key]

        races = []
        for seed in RACE_SEEDS:
            model = build(1e-3)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                race = choose_learning_rate(
                    model, x_train, y_train, batch_size=batch_size, seed=seed
                )
            spent = race.cost["range_test_steps"] + race.cost["race_steps"]
            races.append(
                {
                    "seed": seed,
                    "lr": race.learning_rate,
                    "loss": loss_at(race.learning_rate),
                    "cost_fraction": spent / grid_steps,
                    "warnings": [str(w.message) for w in caught],
                    "result": race.to_dict(),
                }
            )
            if seed == RACE_SEEDS[0]:
                readings = _readings(race.range_test)
        out[name] = {
            "races": races,
            "readings": {
                method: None if lr is None else {"lr": lr, "loss": loss_at(lr)}
                for method, lr in readings.items()
            },
            "seconds": round(time.perf_counter() - started, 1),
        }
        _dump(path, out)
        text = "  ".join(
            f"seed {r['seed']} {r['lr']:.3g} ({r['loss']:.4f})" for r in races
        )
        print(
            f"{name}: {text}; cost "
            f"{np.median([r['cost_fraction'] for r in races]):.3f}; "
            f"{out[name]['seconds']} s",
            flush=True,
        )


def _over(loss, best) -> float:
    """`loss / best`; a best of exactly 0 (a float32 cross-entropy that
    underflowed) gives 1 for a loss of 0 too, else `inf`."""
    if not math.isfinite(loss):
        return math.inf
    if best <= 0:
        return 1.0 if loss <= best else math.inf
    return loss / best


def _verdict(grid, lr, loss) -> tuple[float, bool, bool]:
    """(loss ratio, within 10%, within 3x of a near-best rate)."""
    best = grid["best_loss"]
    good = [
        rate
        for rate, value in zip(grid["grid_lrs"], grid["grid_losses"])
        if math.isfinite(value) and value <= 1.10 * best
    ]
    ratio = _over(loss, best)
    near = any(max(lr / rate, rate / lr) <= 3.0 for rate in good)
    return ratio, ratio <= 1.10, near


def _ratio(value) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.3g}"


def _noise_lines(grids, out, noise, names) -> list[str]:
    """The bar's noise floor (`race_bank_noise.py`): the best grid rate
    retrained with other seeds against the seed-0 best loss; and the races
    whose pick trained no worse than the best rate did with one of its
    three seeds (inside the protocol's own seed spread)."""
    names = [n for n in names if n in noise]
    if not names:
        return []
    retrained = [
        _over(loss, grids[n]["best_loss"])
        for n in names
        for loss in noise[n]["losses"]
    ]
    spread = total = 0
    for name in names:
        worst = max([grids[name]["best_loss"]] + noise[name]["losses"])
        for race in out[name]["races"]:
            total += 1
            spread += race["loss"] <= worst
    seeds = ", ".join(str(s) for s in noise[names[0]]["seeds"])
    return [
        f"- noise floor: the best fixed rate retrained with seeds {seeds} "
        f"lands within 10% of its seed-0 loss on "
        f"{sum(r <= 1.10 for r in retrained)} of {len(retrained)} trainings",
        f"- race inside the best rate's seed spread (its pick's loss no "
        f"worse than the best rate's with one of seeds 0, {seeds}): "
        f"{spread} of {total} races",
    ]


def markdown(grid_path, path, noise_path=None) -> str:
    grids, out = _load(grid_path), _load(path)
    noise = _load(noise_path) if noise_path else {}
    split = bank.split()
    lines = []
    for part in PARTS:
        names = [n for n in split[part] if n in out and n in grids]
        if not names:
            continue
        lines += [
            f"### {part.replace('_', '-')} settings ({len(names)} of "
            f"{len(split[part])})",
            "",
            "| setting | best fixed rate (loss) | race, seeds 0/1/2: rate "
            "(loss / best) | valley | steepest | fastai valley | "
            "race cost / grid |",
            "|---|---|---|---|---|---|---|",
        ]
        within = dict.fromkeys(METHODS, 0)
        near = dict.fromkeys(METHODS, 0)
        count = dict.fromkeys(METHODS, 0)
        costs = []
        flagged = 0
        kinds = {
            "fell back": 0,
            "no candidate held": 0,
            "degenerate": 0,
            "loss never fell": 0,
        }
        for name in names:
            grid, row = grids[name], out[name]
            cells = []
            for race in row["races"]:
                ratio, ok, close = _verdict(grid, race["lr"], race["loss"])
                within["race"] += ok
                near["race"] += close
                count["race"] += 1
                flagged += bool(race["warnings"])
                result = race["result"]
                kinds["fell back"] += result["fallback_from"] is not None
                kinds["no candidate held"] += not result["held"]
                kinds["degenerate"] += result["degenerate_bracket"]
                kinds["loss never fell"] += any(
                    "never fell" in w for w in race["warnings"]
                )
                cells.append(f"{race['lr']:.3g} ({_ratio(ratio)})")
            row_cells = [" / ".join(cells)]
            for method in READINGS:
                pick = row["readings"][method]
                if pick is None:
                    row_cells.append("none")
                    count[method] += 1
                    continue
                ratio, ok, close = _verdict(grid, pick["lr"], pick["loss"])
                within[method] += ok
                near[method] += close
                count[method] += 1
                row_cells.append(f"{pick['lr']:.3g} ({_ratio(ratio)})")
            cost = float(np.median([r["cost_fraction"] for r in row["races"]]))
            costs.append(cost)
            lines.append(
                f"| {name} | {grid['best_lr']:.3g} ({grid['best_loss']:.4g})"
                f" | " + " | ".join(row_cells) + f" | {cost:.3f} |"
            )
        lines.append("")
        for method in METHODS:
            unit = "races" if method == "race" else "settings"
            lines.append(
                f"- {method}: within 10% of the best fixed rate's loss on "
                f"{within[method]} of {count[method]} {unit}; within 3x of "
                f"a near-best rate on {near[method]} of {count[method]}"
            )
        if costs:
            lines.append(
                f"- race cost against the one-seed 19-rate grid: median "
                f"{np.median(costs):.3f}, max {max(costs):.3f}"
            )
        if noise:
            lines += _noise_lines(grids, out, noise, names)
        refined = sum(
            out[n]["races"][i]["result"].get("refined_from") is not None
            for n in names
            for i in range(len(out[n]["races"]))
        )
        lines.append(
            f"- answers refined between the finalists (the winner held and "
            f"was not at the edge): {refined} of {count['race']} races"
        )
        lines.append(
            f"- races that warned: {flagged} of {count['race']} ("
            + ", ".join(f"{k}: {v}" for k, v in kinds.items())
            + "; one race may give several; the other kind is a winner at "
            "the bracket's edge)"
        )
        lines.append("")
    return "\n".join(lines)


def plot(grid_path, path, png) -> None:
    """Each setting's loss ratio (pick / best fixed rate) for the race's
    three seeds and the three readings, in the order of `PARTS`: the
    held-out sets, newest first, then the design settings."""
    from matplotlib.figure import Figure

    grids, out = _load(grid_path), _load(path)
    split = bank.split()
    parts = PARTS
    names = [
        n for part in parts for n in split[part] if n in out and n in grids
    ]
    figure = Figure(figsize=(9, 0.24 * len(names) + 1.5))
    ax = figure.subplots()
    marks = {
        "valley": ("s", "C1"),
        "steepest": ("^", "C2"),
        "fastai-valley": ("v", "C3"),
    }
    for row, name in enumerate(names):
        best = grids[name]["best_loss"]
        ratios = [min(_over(r["loss"], best), CLIP) for r in out[name]["races"]]
        ax.plot(
            ratios,
            [row] * len(ratios),
            "o",
            color="C0",
            label="race (3 seeds)" if row == 0 else None,
        )
        for method, (marker, color) in marks.items():
            pick = out[name]["readings"][method]
            if pick is not None:
                ax.plot(
                    min(_over(pick["loss"], best), CLIP),
                    row,
                    marker,
                    color=color,
                    alpha=0.6,
                    label=method if row == 0 else None,
                )
    edge = 0
    for part in parts[:-1]:
        edge += sum(n in split[part] for n in names)
        ax.axhline(edge - 0.5, color="0.3", linewidth=0.8)
    ax.axvline(1.10, color="k", linestyle="--", linewidth=0.8, label="1.1")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel(
        "test loss / best fixed rate's (log scale, clipped at 100; a best "
        "loss of 0 gives inf)"
    )
    ax.set_title(
        "race bank: held-out sets, newest on top (fourth, third, fresh, "
        "first); design below"
    )
    ticks = [0.5, 1, 2, 5, 10, 100]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks[:-1]] + ["100 or more"])
    ax.set_xlim(0.4, 1.5 * CLIP)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    figure.savefig(png, dpi=110, bbox_inches="tight")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=("grid", "race", "markdown", "plot"))
    parser.add_argument("--png", default=None)
    parser.add_argument("--grid", default=None)
    parser.add_argument(
        "--noise", default=None, help="race_bank_noise.py's JSON (markdown)"
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", nargs="*")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="grid or race the fresh held-out settings (FRESH): the same "
        "as --part fresh",
    )
    parser.add_argument(
        "--part",
        choices=("bank", "fresh", "third", "fourth"),
        default="bank",
        help="which settings to grid or race: the 45 design and held-out "
        "ones (bank), FRESH, THIRD or FOURTH",
    )
    args = parser.parse_args()
    if args.phase == "markdown":
        print(markdown(args.grid, args.out, args.noise))
        return
    if args.phase == "plot":
        plot(args.grid, args.out, args.png)
        return
    # One thread each: the grid and the races run side by side on a
    # shared two-core machine.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    print(
        f"keras {keras.__version__}, tensorflow {tf.__version__}, "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cpus",
        flush=True,
    )
    part = "fresh" if args.fresh else args.part
    if args.phase == "grid":
        run_grid(args.out, args.only, part)
    else:
        run_races(args.out, args.only, part)


if __name__ == "__main__":
    main()
