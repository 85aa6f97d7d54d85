"""What reporting and checkpointing every epoch costs a Ray Tune trial.

One Tune trial (Ray started in this process, the trial in one worker
process) trains the reproduction's digits MLP (batch 32, validation on the
450 held-out digits, as `keras-lr reproduce` trains it) in alternating
rounds: `--epochs-per-round` epochs of plain `fit`, then as many with
`keras_lr.tune.ReportAndCheckpoint` (a `BackupAndRestore` backup handed
to `ray.tune.report` as the checkpoint, which Ray copies to the run's
storage, from a thread while the next epoch trains). Two readings, both
medians over the rounds:

- direct: the time the training thread spends in the callback's
  `on_epoch_end` (backup, links, waiting for the previous epoch's report
  if it is still in flight) and `on_train_end` (waiting for the last
  report), per epoch, over the plain epoch time;
- A/B: the epoch time with the callback over the plain epoch time, round
  by round (noisy on a shared machine); it also sees what the report
  thread takes from training.

Usage: `PYTHONPATH=. python benchmarks/tune_bench.py --rounds 12`
(about a minute on 2 CPU cores); `--checkpoint-frequency 3` checkpoints
every third epoch (metrics still every epoch).
"""

import argparse
import json
import os
import statistics
import tempfile
import time


def _trial(config):
    import keras

    import keras_lr.tune
    from keras_lr_experiments import datasets
    from keras_lr_experiments import models

    data = datasets.load_dataset("digits")
    keras.utils.set_random_seed(0)
    model = models.build_model(data.kind, data.input_shape, data.num_classes)
    models.compile_model(model, keras.optimizers.Adam(1e-3))

    class EpochClock(keras.callbacks.Callback):
        """Wall time of each epoch, from its start to after the last
        callback's `on_epoch_end` (it is put last)."""

        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._start)

    class TimedReport(keras_lr.tune.ReportAndCheckpoint):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.spent = []
            self.saving = []

        def _save(self):
            # The BackupAndRestore backup alone (weights, optimizer,
            # callbacks' state); the rest is the copy and Ray's report.
            start = time.perf_counter()
            super()._save()
            self.saving.append(time.perf_counter() - start)

        def on_epoch_end(self, epoch, logs=None):
            start = time.perf_counter()
            super().on_epoch_end(epoch, logs)
            self.spent.append(time.perf_counter() - start)

        def on_train_end(self, logs=None):
            # Waiting for the last report in flight: part of the cost,
            # spread over the round's epochs below.
            start = time.perf_counter()
            super().on_train_end(logs)
            self.final = time.perf_counter() - start

    def fit(callbacks, clock):
        model.fit(
            data.x_train,
            data.y_train,
            batch_size=32,
            epochs=config["epochs_per_round"],
            validation_data=(data.x_val, data.y_val),
            verbose=0,
            callbacks=[*callbacks, clock],
        )

    # Warm up: trace the train and validation functions.
    fit([], EpochClock())
    rounds = []
    for _ in range(config["rounds"]):
        plain = EpochClock()
        fit([], plain)
        clock = EpochClock()
        report = TimedReport(
            {"learning_rate": 1e-3},
            restore=False,
            checkpoint_frequency=config["checkpoint_frequency"],
        )
        # The clock goes after the reporter here, so it sees its cost.
        fit([report], clock)
        rounds.append(
            {
                "plain_epoch_s": statistics.median(plain.times),
                "with_callback_epoch_s": statistics.median(clock.times),
                # Means over the epochs: with a checkpoint every k
                # epochs, the cost spread over them.
                "callback_s": (sum(report.spent) + report.final)
                / len(report.spent),
                "backup_s": sum(report.saving) / len(report.spent),
            }
        )
    with open(config["output"], "w") as file:
        json.dump(rounds, file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--epochs-per-round", type=int, default=4)
    parser.add_argument("--checkpoint-frequency", type=int, default=1)
    args = parser.parse_args()

    import ray
    from ray import tune

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    storage = tempfile.mkdtemp(prefix="tune_bench-")
    output = os.path.join(storage, "rounds.json")
    start = time.perf_counter()
    try:
        tuner = tune.Tuner(
            tune.with_resources(_trial, {"cpu": 1}),
            param_space={
                "rounds": args.rounds,
                "epochs_per_round": args.epochs_per_round,
                "checkpoint_frequency": args.checkpoint_frequency,
                "output": output,
            },
            run_config=tune.RunConfig(
                name="tune_bench", storage_path=storage, verbose=0
            ),
        )
        results = tuner.fit()
        if results.errors:
            raise results.errors[0]
    finally:
        ray.shutdown()
    with open(output) as file:
        rounds = json.load(file)
    plain = [r["plain_epoch_s"] for r in rounds]
    spent = [r["callback_s"] for r in rounds]
    direct = [r["callback_s"] / r["plain_epoch_s"] for r in rounds]
    ab = [r["with_callback_epoch_s"] / r["plain_epoch_s"] for r in rounds]
    print(
        f"rounds {len(rounds)} x {args.epochs_per_round} epochs per arm, "
        f"wall {time.perf_counter() - start:.0f} s"
    )
    print(
        f"plain epoch: median {statistics.median(plain) * 1e3:.1f} ms "
        f"(rounds {min(plain) * 1e3:.1f}-{max(plain) * 1e3:.1f})"
    )
    print(
        "ReportAndCheckpoint in the training thread (epoch and train "
        f"ends), checkpoint every {args.checkpoint_frequency} epoch(s), "
        "mean per epoch: median "
        f"{statistics.median(spent) * 1e3:.1f} ms "
        f"(rounds {min(spent) * 1e3:.1f}-{max(spent) * 1e3:.1f})"
    )
    backup = [r["backup_s"] for r in rounds]
    print(
        f"  of which the BackupAndRestore backup: median "
        f"{statistics.median(backup) * 1e3:.1f} ms per epoch"
    )
    print(
        f"direct overhead (callback / plain epoch): median "
        f"{statistics.median(direct):.2%} (rounds {min(direct):.2%}-"
        f"{max(direct):.2%})"
    )
    print(
        f"A/B (epoch with callback / plain epoch): median "
        f"{statistics.median(ab):.3f} (rounds {min(ab):.3f}-{max(ab):.3f})"
    )


if __name__ == "__main__":
    main()
