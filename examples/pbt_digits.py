"""Population-based training of the learning rate over a schedule.

Four digits MLPs with Adam under one epoch of warmup then cosine decay,
each peaking at its own rate. Every 2 epochs Ray's PopulationBasedTraining
moves the worst trial onto the best one's checkpoint and perturbs the
rate; `keras_lr.tune.ReportAndCheckpoint` carries the whole state across
(weights, optimizer step, schedule position, plateau counters) and
applies the new rate through the rate controller, over the schedule.

Needs `pip install -e ".[repro,tune]"`. Ray starts in this process.
47 s on 2 shared CPU cores (`time python examples/pbt_digits.py`).
"""

import tempfile

import ray
from ray import tune
from ray.tune.schedulers import PopulationBasedTraining

EPOCHS = 8


def train(config):
    import keras
    from sklearn.datasets import load_digits

    import keras_lr
    import keras_lr.tune

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x_train, y_train, x_val, y_val = x[:1347], y[:1347], x[1347:], y[1347:]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    steps = 43  # 1347 samples at batch 32
    schedule = keras_lr.schedules.CosineDecay(
        0.0,
        decay_steps=steps * (EPOCHS - 1),
        warmup_target=config["learning_rate"],
        warmup_steps=steps,
    )
    model.compile(
        keras.optimizers.Adam(schedule),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        batch_size=32,
        epochs=EPOCHS,
        validation_data=(x_val, y_val),
        verbose=0,
        callbacks=[
            keras_lr.callbacks.ReduceLROnPlateau(monitor="val_loss"),
            # Last: it reports and checkpoints after the others' updates,
            # and restores the trial (after a failure or an exploit).
            keras_lr.tune.ReportAndCheckpoint(config),
        ],
    )


if __name__ == "__main__":
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    pbt = PopulationBasedTraining(
        time_attr="epoch",
        metric="val_loss",
        mode="min",
        perturbation_interval=2,
        hyperparam_mutations={"learning_rate": tune.loguniform(1e-4, 1e-1)},
        synch=True,
    )
    tuner = tune.Tuner(
        tune.with_resources(train, {"cpu": 1}),
        param_space={
            "learning_rate": tune.grid_search([3e-4, 1e-3, 3e-3, 1e-2])
        },
        tune_config=tune.TuneConfig(scheduler=pbt, reuse_actors=True),
        run_config=tune.RunConfig(
            storage_path=tempfile.mkdtemp(prefix="pbt_digits-"), verbose=0
        ),
    )
    results = tuner.fit()
    best = results.get_best_result(metric="val_loss", mode="min", scope="last")
    print(
        f"best trial: val_loss {best.metrics['val_loss']:.4f}, val_accuracy "
        f"{best.metrics['val_accuracy']:.4f}, rate now "
        f"{best.metrics['learning_rate']:.3g} (peak "
        f"{best.config['learning_rate']:.3g}), "
        f"step {best.metrics['iterations']}"
    )
    ray.shutdown()
