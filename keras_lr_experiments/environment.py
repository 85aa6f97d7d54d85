"""What a run ran on: package versions and hardware, for its summary."""

import importlib.metadata
import os
import platform

import keras
import numpy as np
import tensorflow as tf

import keras_lr


def versions() -> dict:
    """The versions of Python and of every package the results depend on."""
    found = {
        "python": platform.python_version(),
        "keras_lr": keras_lr.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    for package in ("scikit-learn", "matplotlib", "tensorflow-datasets"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def hardware() -> dict:
    """The machine: platform, CPU count, GPUs and the current load."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        # The machine may be shared: the load average puts the wall
        # times in context.
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
