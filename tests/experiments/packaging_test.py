"""The app apart from the library: the keras-lr wheel holds `keras_lr`
only, the app is a package of its own that the `repro`, `dogs` and `test`
extras install, and neither the library nor its tests import the app."""

import re
import runpy
import urllib.parse
import urllib.request

import pytest
import setuptools

from tests.repository import ROOT

tomllib = pytest.importorskip("tomllib")
APP = ROOT / "keras_lr_experiments"


def _toml(path):
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def test_library_wheel_holds_no_app_module():
    project = _toml(ROOT / "pyproject.toml")
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    found = setuptools.find_packages(ROOT, include=include)
    assert "keras_lr" in found and "keras_lr.tune" in found
    assert [p for p in found if not p.startswith("keras_lr")] == []
    assert [p for p in found if p.startswith("keras_lr_experiments")] == []
    assert "scripts" not in project["project"]


def test_app_project_lists_every_package_of_the_app():
    app = _toml(APP / "pyproject.toml")
    assert app["project"]["name"] == "keras-lr-experiments"
    assert app["project"]["scripts"] == {
        "keras-lr": "keras_lr_experiments.cli:main"
    }
    inner = setuptools.find_packages(APP, exclude=["build*"])
    expected = ["keras_lr_experiments"]
    expected += [f"keras_lr_experiments.{name}" for name in inner]
    assert sorted(app["tool"]["setuptools"]["packages"]) == sorted(expected)


def test_repro_dogs_and_test_extras_install_the_app(monkeypatch):
    seen = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: seen.update(kw))
    runpy.run_path(str(ROOT / "setup.py"))
    extras = seen["extras_require"]
    for extra in ("repro", "dogs", "test"):
        (app,) = [r for r in extras[extra] if r.startswith("keras-lr-exp")]
        name, url = (part.strip() for part in app.split("@", 1))
        assert name == "keras-lr-experiments"
        parsed = urllib.parse.urlparse(url)
        assert parsed.scheme == "file"
        assert urllib.request.url2pathname(parsed.path) == str(APP)
    for extra in ("plot", "tune"):
        assert not [r for r in extras[extra] if "keras-lr-exp" in r]


def test_library_and_its_tests_import_no_app():
    importing = re.compile(
        r"^\s*(from|import)\s+keras_lr_experiments\b", re.MULTILINE
    )
    sources = list((ROOT / "keras_lr").rglob("*.py"))
    sources += [
        path
        for path in (ROOT / "tests").rglob("*.py")
        if "experiments" not in path.relative_to(ROOT / "tests").parts
    ]
    assert len(sources) > 50
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if importing.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
