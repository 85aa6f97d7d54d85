"""The PBT population's rates and validation losses over the epochs."""

import math

from keras_lr_experiments import _files


def _paths(trial: dict, by_id: dict) -> dict:
    """A trial's lines over the epochs, broken at each exploit: `rate` and
    `loss` as (x, y) lists, `events` as (epoch, donor's rate, new rate,
    donor's id, validation loss of the first epoch after)."""
    rate = ([0], [trial["history"][0]["start_learning_rate"]])
    loss = ([], [])
    events = []
    for row in trial["history"]:
        donor = row.get("restored_from_trial") or ""
        epoch = row.get("restored_from_epoch")
        if donor and donor != trial["trial_id"] and row["epoch"] == epoch + 1:
            donor_rate = next(
                r["learning_rate"]
                for r in by_id[donor]["history"]
                if r["epoch"] == epoch
            )
            events.append(
                (
                    epoch,
                    donor_rate,
                    row["start_learning_rate"],
                    donor,
                    row["val_loss"],
                )
            )
            for xs, ys in (rate, loss):
                xs.append(math.nan)
                ys.append(math.nan)
            rate[0].append(epoch)
            rate[1].append(row["start_learning_rate"])
        rate[0].append(row["epoch"])
        rate[1].append(row["learning_rate"])
        loss[0].append(row["epoch"])
        loss[1].append(row["val_loss"])
    return {"rate": rate, "loss": loss, "events": events}


def plot_population(search: dict, path) -> None:
    """The population's rates and validation losses over the epochs, with
    each exploit marked (PNG at `path`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = search["trials"]
    by_id = {t["trial_id"]: t for t in trials}
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 7), sharex=True, constrained_layout=True
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    marked = False
    index_of = {t["trial_id"]: f"trial {i}" for i, t in enumerate(trials)}
    for index, trial in enumerate(trials):
        color = colors[index % len(colors)]
        paths = _paths(trial, by_id)
        # A fresh trial's first report holds the rate it started at.
        label = f"trial {index} (starts at {paths['rate'][1][0]:.2g})"
        top.plot(*paths["rate"], "-o", ms=3, color=color, label=label)
        bottom.plot(*paths["loss"], "-o", ms=3, color=color)
        for epoch, donor_rate, new_rate, donor, after in paths["events"]:
            top.annotate(
                "",
                xy=(epoch, new_rate),
                xytext=(epoch, donor_rate),
                arrowprops={"arrowstyle": "->", "color": color, "lw": 1.2},
            )
            top.annotate(
                f"from {index_of[donor]}",
                xy=(epoch, new_rate),
                xytext=(4, -12),
                textcoords="offset points",
                fontsize=7,
                color=color,
            )
            top.plot(
                [epoch], [new_rate], "*", ms=12, color=color,
                markeredgecolor="black",
                label=None if marked else "exploit: copies a better trial's "
                "state, then its rate x perturbation",
            )  # fmt: skip
            bottom.plot(
                [epoch + 1], [after], "*", ms=12, color=color,
                markeredgecolor="black",
            )  # fmt: skip
            marked = True
    top.set_yscale("log")
    top.set_ylabel("learning rate (Adam)")
    top.set_title(
        f"PBT, population {len(trials)}, seed {search['seed']}: "
        f"{search['exploits']} exploits"
    )
    top.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bottom.set_yscale("log")
    bottom.set_ylabel("validation loss")
    bottom.set_xlabel("epoch")
    top.grid(True, which="both", alpha=0.3)
    bottom.grid(True, which="both", alpha=0.3)
    _files.save_figure(figure, path)
    plt.close(figure)
