"""Scores rules for reading a rate off a range-test curve, on the bank.

Reads the bank that `range_test_bank.py` wrote (range-test curves and the
held-out loss of short trainings on a fine grid of fixed rates, for several
settings) and, for each rule and setting, prints the suggested rate (the
geometric mean over the repeats), its held-out loss interpolated on the
grid (linear in log-rate) as a ratio to the grid's best loss, and the
factor between the suggestion and the grid's best rate. Interpolation is
a screen, rough next to a cliff in the grid; `range_test_quality.py`
trains at the suggestion itself.

Rules: keras_lr's three methods, fastai's valley rule (written out in
`range_test_quality.py`), and candidates that were tried as a default and
are kept here, not in the package, with what they showed:

- `valley@0.75`: our valley's stretch, read three quarters along it
  instead of half-way (later points suit SGD, earlier ones Adam).
- `lagfree-steepest`: the steepest fall of the raw losses smoothed by a
  centred running median (9 steps) and mean (5 steps), which has no lag;
  the moving average the package smooths with lags the raw losses by tens
  of steps on a 100-step sweep.
- `fall-centre`: the rate at the centre of mass of the fall, from the
  raw losses (a sum of them, so batch noise averages out) between their
  starting level and the lowest point of the lag-free curve.
- `fall-end`: the rate of that lowest point.

    PYTHONPATH=$PWD python benchmarks/range_test_rules.py \
        saved_runs/range_test/bank.json [--plot bank.png]
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from range_test_quality import fastai_valley  # noqa: E402

from keras_lr.range_test import suggestions  # noqa: E402


def _array(values):
    return np.array([np.nan if v is None else v for v in values], float)


def _finite_prefix(lrs, raw):
    finite = np.isfinite(raw)
    stop = raw.size if finite.all() else int(np.argmin(finite))
    return lrs[:stop], raw[:stop]


def _centred(values, half, statistic):
    return np.array(
        [
            statistic(values[max(0, i - half) : i + half + 1])
            for i in range(values.size)
        ]
    )


def lagfree_curve(raw):
    """Centred running median (9 steps), then centred running mean (5)."""
    return _centred(_centred(raw, 4, np.median), 2, np.mean)


def valley_at(fraction):
    def rule(lrs, raw, smoothed):
        lrs, losses = suggestions._finite_curve(lrs, smoothed)
        start, end = suggestions.longest_falling_stretch(losses)
        return float(lrs[start + int(fraction * (end - start))])

    return rule


def lagfree_steepest(lrs, raw, smoothed):
    lrs, raw = _finite_prefix(lrs, raw)
    return suggestions.steepest(lrs, lagfree_curve(raw))


def _fall(lrs, raw):
    """(log-rate of the fall's centre of mass, index of its lowest point)."""
    lrs, raw = _finite_prefix(lrs, raw)
    curve = lagfree_curve(raw)
    lowest = int(np.argmin(curve))
    top = float(np.median(raw[: max(3, raw.size // 10)]))
    bottom = float(curve[lowest])
    x = np.log(lrs)
    height = (raw[:lowest] - bottom) / (top - bottom)
    centre = x[0] + float(np.sum(np.diff(x[: lowest + 1]) * height))
    return float(np.clip(centre, x[0], x[lowest])), float(x[lowest])


def fall_centre(lrs, raw, smoothed):
    return float(np.exp(_fall(lrs, raw)[0]))


def fall_end(lrs, raw, smoothed):
    return float(np.exp(_fall(lrs, raw)[1]))


def _on_smoothed(function):
    return lambda lrs, raw, smoothed: function(lrs, smoothed)


RULES = {
    "valley": _on_smoothed(suggestions.valley),
    "steepest": _on_smoothed(suggestions.steepest),
    "minimum": _on_smoothed(suggestions.minimum),
    "fastai-valley": _on_smoothed(fastai_valley),
    "valley@0.75": valley_at(0.75),
    "lagfree-steepest": lagfree_steepest,
    "fall-centre": fall_centre,
    "fall-end": fall_end,
}


def interpolated_loss(lr, grid_lrs, grid_losses):
    """Held-out loss at `lr`, linear in log-rate between grid points (a
    diverged grid point counts as 10x the worst finite loss)."""
    y = np.asarray(grid_losses, dtype=float)
    y = np.where(np.isfinite(y), y, np.max(y[np.isfinite(y)]) * 10)
    return float(np.interp(np.log(lr), np.log(grid_lrs), y))


def score(bank, rules):
    """{setting: {rule: (lr, loss_ratio, lr_factor)}}."""
    table = {}
    for name, entry in bank.items():
        grid_lrs, grid_losses = entry["grid_lrs"], entry["grid_losses"]
        best = int(np.nanargmin(grid_losses))
        best_lr, best_loss = grid_lrs[best], grid_losses[best]
        row = {}
        for rule, function in rules.items():
            values = [
                function(
                    _array(run["learning_rates"]),
                    _array(run["losses"]),
                    _array(run["smoothed_losses"]),
                )
                for run in entry["range_test"]["runs"]
            ]
            lr = suggestions.geometric_mean(values)
            loss = interpolated_loss(lr, grid_lrs, grid_losses)
            row[rule] = (lr, loss / best_loss, max(lr / best_lr, best_lr / lr))
        table[name] = row
    return table


def plot(bank, table, path):
    from matplotlib.figure import Figure

    columns = 2
    rows = -(-len(bank) // columns)
    figure = Figure(
        figsize=(6.5 * columns, 3.2 * rows), layout="constrained"
    )
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, entry) in zip(axes, bank.items()):
        for k, run in enumerate(entry["range_test"]["runs"]):
            lrs = _array(run["learning_rates"])
            ax.plot(lrs, _array(run["losses"]), ".", ms=2, color=f"C{k}")
            ax.plot(lrs, _array(run["smoothed_losses"]), color=f"C{k}")
        ax.set_xscale("log")
        ax.set_ylim(0, 3)
        ax.set_ylabel("range-test loss")
        grid_ax = ax.twinx()
        grid_ax.plot(entry["grid_lrs"], entry["grid_losses"], "k.-")
        grid_ax.set_ylim(0, 2.5)
        grid_ax.set_ylabel("held-out loss, fixed rate")
        for rule, style in (("valley", "C3--"), ("lagfree-steepest", "C2:")):
            ax.axvline(table[name][rule][0], color=style[:2], ls=style[2:])
        ax.set_title(name, fontsize="medium")
    for ax in axes[len(bank) :]:
        ax.set_visible(False)
    figure.suptitle(
        "Range-test curves (dots: loss per step, lines: smoothed; 3 repeats)"
        "\nand held-out loss after 5 epochs at fixed rates (black). "
        "Red dashed: valley; green dotted: lag-free steepest."
    )
    figure.savefig(path, dpi=80)


def print_markdown(bank, table):
    rules = ("valley", "steepest", "minimum", "fastai-valley")
    print(
        "\n| setting | best fixed rate (loss) | "
        + " | ".join(rules)
        + " | warnings |"
    )
    print("|---" * (len(rules) + 3) + "|")
    for name, entry in bank.items():
        best = int(np.nanargmin(entry["grid_losses"]))
        cells = [
            f"{table[name][rule][0]:.3g} ({table[name][rule][1]:.3f})"
            for rule in rules
        ]
        print(
            f"| {name} | {entry['grid_lrs'][best]:.3g} "
            f"({entry['grid_losses'][best]:.4f}) | "
            + " | ".join(cells)
            + f" | {len(entry['warnings'])} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bank")
    parser.add_argument("--plot", default=None)
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="also print a Markdown table of the package's rules",
    )
    args = parser.parse_args()
    with open(args.bank) as f:
        bank = json.load(f)
    table = score(bank, RULES)
    print(
        "Per setting: best grid rate (its loss); per rule: suggested rate, "
        "interpolated loss / best, factor to the best rate; ok = within "
        "10% loss and 10x."
    )
    for name, entry in bank.items():
        best = int(np.nanargmin(entry["grid_losses"]))
        print(
            f"\n{name}: {entry['grid_lrs'][best]:.3g} "
            f"({entry['grid_losses'][best]:.4f}); warnings: "
            f"{len(entry['warnings'])}"
        )
        for rule, (lr, ratio, factor) in table[name].items():
            mark = "ok" if ratio <= 1.10 and factor <= 10 else "--"
            print(f"  {rule:17s} {lr:9.3g} {ratio:7.3f} {factor:7.2f} {mark}")
    print(
        "\nrule: settings ok; median and worst loss ratio; settings within "
        "10x of the best rate"
    )
    for rule in RULES:
        rows = [table[name][rule] for name in bank]
        ok = sum(r[1] <= 1.10 and r[2] <= 10 for r in rows)
        ratios = [r[1] for r in rows]
        within = sum(r[2] <= 10 for r in rows)
        print(
            f"  {rule:17s} {ok}/{len(rows)}  {np.median(ratios):.3f}  "
            f"{max(ratios):.3f}  {within}/{len(rows)}"
        )
    if args.markdown:
        print_markdown(bank, table)
    if args.plot:
        plot(bank, table, args.plot)


if __name__ == "__main__":
    main()
