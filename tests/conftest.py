"""Test set-up, for the Keras backend this process runs (`KERAS_BACKEND`).

On TensorFlow: two logical CPU devices for `tf.distribute` tests (this
must run before TensorFlow initializes its devices, hence at import).

On JAX and PyTorch only the tests marked `portable` run (the others are
deselected); a portable test that needs TensorFlow for one part is marked
`tensorflow_only` as well, and runs on TensorFlow only (so do those that
use the `two_cpu_strategy` fixture or `as_dataset` in their name); one marked
`needs_float64` does not run on JAX without its x64 mode (JAX computes in
float32 there). TensorFlow is not imported here on those backends.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402

BACKEND = keras.backend.backend()

# Folders with no portable test, not even collected on other backends.
collect_ignore = (
    [] if BACKEND == "tensorflow" else ["distribute", "examples", "experiments"]
)

if BACKEND == "tensorflow":
    import tensorflow as tf

    _cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        _cpus[0],
        [tf.config.LogicalDeviceConfiguration()] * 2,
    )


# Portable tests that still fail under PyTorch, each with why: left out
# there until they pass.
TORCH_KNOWN_FAILURES: dict[str, str] = {}


def pytest_collection_modifyitems(config, items):
    if BACKEND == "tensorflow":
        return
    kept, dropped = [], []
    for item in items:
        portable = item.get_closest_marker("portable") is not None
        # `tf.distribute` and `tf.data` (`as_dataset()`) are TensorFlow's.
        tf_only = (
            item.get_closest_marker("tensorflow_only") is not None
            or "two_cpu_strategy" in getattr(item, "fixturenames", ())
            or "as_dataset" in item.name
        )
        if BACKEND == "torch":
            # Keras on PyTorch runs one step per execution, eagerly: no
            # `steps_per_execution` > 1, and nothing is traced.
            params = getattr(getattr(item, "callspec", None), "params", {})
            spe = params.get("steps_per_execution", 1)
            known = item.nodeid.split("[")[0] in TORCH_KNOWN_FAILURES
            tf_only = (
                tf_only
                or spe != 1
                or "steps_per_execution" in item.name
                # `jit_compile` there is `torch.compile`: minutes, warnings.
                or "jit_compile" in item.name
                or "trace" in item.name
                or known
            )
        x64 = item.get_closest_marker("needs_float64") is not None
        if x64 and BACKEND == "jax":
            import jax

            x64 = not jax.config.jax_enable_x64
        else:
            x64 = False
        (kept if portable and not tf_only and not x64 else dropped).append(
            item
        )
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def two_cpu_strategy():
    """A `MirroredStrategy` over two logical CPU devices.

    Gradients are reduced on one device: the default collective all-reduce
    keeps per-process collective instances keyed by order, and a later
    strategy whose gradient shapes differ then fails with "Shape mismatch
    in the collective instance".
    """
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"],
        cross_device_ops=tf.distribute.ReductionToOneDevice(),
    )


@pytest.fixture(autouse=True)
def _clear_keras_session():
    yield
    # Without Python's garbage collection: `clear_session()`'s own
    # `gc.collect()` after every test took a quarter to a third of the
    # suite's time (tests/control and three callback files: 121 s and
    # 119 s against 89 s and 68 s, interleaved); Python still collects.
    keras.backend.clear_session(free_memory=False)
