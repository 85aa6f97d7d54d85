"""`pip install keras-lr` needs no backend; the extras install each, and
the repository's two commands (`.[repro]`, `.[test]`) still install
TensorFlow."""

import pathlib
import runpy

import pytest
import setuptools

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def extras():
    seen = {}
    patch = pytest.MonkeyPatch()
    patch.setattr(setuptools, "setup", lambda **kw: seen.update(kw))
    try:
        runpy.run_path(str(ROOT / "setup.py"))
    finally:
        patch.undo()
    return seen["extras_require"]


def _names(requirements):
    return {
        r.split("@")[0].split(">")[0].split("=")[0].strip()
        for r in requirements
    }


def test_core_dependencies_hold_no_backend():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = _names(project["dependencies"])
    assert names == {"keras", "numpy"}


def test_each_backend_has_its_extra(extras):
    assert _names(extras["tensorflow"]) == {"tensorflow"}
    assert _names(extras["jax"]) == {"jax"}
    assert _names(extras["torch"]) == {"torch"}


@pytest.mark.parametrize("extra", ["repro", "dogs", "test"])
def test_the_repository_commands_still_install_tensorflow(extras, extra):
    assert "tensorflow" in _names(extras[extra])


def test_the_test_extra_installs_every_backend_and_the_cpu_torch(extras):
    assert {"tensorflow", "jax", "torch"} <= _names(extras["test"])
    assert "torch==2.13.0" in extras["test"]
