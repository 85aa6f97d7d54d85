"""The keras-lr library's optional dependencies, which name the reproduction
app by its folder in this repository.

The app (`keras_lr_experiments/`, with its own pyproject.toml and the
`keras-lr` command line) is not part of the library's wheel: the extras
that need it (`repro`, `dogs`, `test`) depend on it by a PEP 508 direct
reference to its absolute path, which only a build from this checkout
knows. Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup

APP = "keras-lr-experiments @ " + (
    (Path(__file__).resolve().parent / "keras_lr_experiments").as_uri()
)
# The Keras backends. TensorFlow is the reference backend (and the only
# one for `tf.data`, `tf.distribute` and TensorBoard files), so the
# reproduction and the tests install it.
TENSORFLOW = ["tensorflow>=2.16"]
JAX = ["jax>=0.4.30"]
TORCH = ["torch>=2.1"]
PLOT = ["matplotlib>=3.7"]
TUNE = ["ray[tune]>=2.60"]
DOGS = ["tensorflow-datasets>=4.9"]
DOCS = ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings-python>=1.16"]

setup(
    extras_require={
        "tensorflow": TENSORFLOW,
        "jax": JAX,
        "torch": TORCH,
        "plot": PLOT,
        # The app brings matplotlib and scikit-learn.
        "repro": [APP, *TENSORFLOW],
        "dogs": [APP, *DOGS, *TENSORFLOW],
        "tune": TUNE,
        "test": [
            APP,
            "pytest>=8",
            # The test command runs two workers, one per core of the CI
            # machine.
            "pytest-xdist>=3.5",
            *PLOT,
            "scikit-learn>=1.3",
            "ruff>=0.5",
            # For the Stanford Dogs loader's test on tensorflow-datasets'
            # mock data.
            *DOGS,
            # Keras' TensorBoard callback writes scalars through it.
            "tensorboard>=2.16",
            # keras_lr.tune's tests run PBT on a local Ray.
            *TUNE,
            # The portable tests run under each backend. This torch is
            # the CPU wheel CI's machines hold (another spec would fetch
            # a multi-GB CUDA build).
            *TENSORFLOW,
            *JAX,
            "torch==2.13.0",
            # tests/docs/ builds the site in strict mode.
            *DOCS,
        ],
        "docs": DOCS,
    }
)
