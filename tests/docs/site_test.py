"""The documentation site builds in strict mode and documents every
public name.

`mkdocs build --strict` fails on any warning: a broken link or anchor, a
page missing from the navigation, a cross-reference that does not
resolve, a docstring argument the signature does not have. A public
object without a docstring is left out of the reference (mkdocstrings'
`show_if_no_docstring: false`), so the search for every public name
below fails for it too.
"""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repository import ROOT

pytest.importorskip("mkdocs", reason="the docs extra is not installed")


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(config),
            "--site-dir",
            str(site),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    done = build(ROOT / "mkdocs.yml", site)
    assert done.returncode == 0, done.stderr[-6000:]
    return site


def _all(path: Path) -> list[str] | None:
    """The module's `__all__`, read from its source (None if it has none)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            getattr(target, "id", None) == "__all__" for target in node.targets
        ):
            return list(ast.literal_eval(node.value))
    return None


def _public_defs(path: Path) -> list[str]:
    """Public functions and classes defined at a module's top level."""
    return [
        node.name
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
        and not node.name.startswith("_")
    ]


def _source(module: str) -> Path:
    path = ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def public_names() -> list[str]:
    """Every public object: keras_lr's `__all__` and each subpackage's;
    for a public module without `__all__`, its public definitions."""
    names = []
    # Public modules outside keras_lr's __all__ (their extras are
    # optional): keras_lr.plot, keras_lr.tune.
    modules = ["keras_lr.plot"] + [
        f"keras_lr.{path.parent.name}"
        for path in sorted((ROOT / "keras_lr").glob("*/__init__.py"))
        if not path.parent.name.startswith("_")
    ]
    for name in _all(ROOT / "keras_lr" / "__init__.py"):
        qualified = f"keras_lr.{name}"
        names.append(qualified)
        if _source(qualified).exists():
            modules.append(qualified)
    for module in sorted(set(modules)):
        names.append(module)
        exported = _all(_source(module))
        if exported is None:
            exported = _public_defs(_source(module))
        names.extend(f"{module}.{name}" for name in exported)
    return sorted(set(names))


def test_public_names_cover_the_subpackages():
    names = public_names()
    # A few names the README leans on, so that a parser that finds
    # nothing cannot pass.
    for name in [
        "keras_lr.find_learning_rate",
        "keras_lr.schedules.CosineDecay",
        "keras_lr.callbacks.ReduceLROnPlateau",
        "keras_lr.tune.ReportAndCheckpoint",
        "keras_lr.distribute.MultiWorkerMirroredStrategy",
        "keras_lr.plot.plot_schedule",
    ]:
        assert name in names
    assert len(names) > 60


def test_every_public_name_is_in_the_api_reference(site):
    pages = "\n".join(
        path.read_text(encoding="utf-8")
        for path in (site / "api").rglob("index.html")
    )
    missing = [name for name in public_names() if f'id="{name}"' not in pages]
    assert missing == []


def test_a_broken_link_fails_the_strict_build(tmp_path):
    # The same configuration on a copy of the pages with one broken
    # link: strict mode must refuse it.
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", copy / "docs")
    for name in ["keras_lr", "saved_runs", "README.md"]:
        (copy / name).symlink_to(ROOT / name)
    with open(copy / "docs" / "guides" / "index.md", "a") as page:
        page.write("\n[gone](no_such_page.md)\n")
    done = build(copy / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    assert "no_such_page.md" in done.stderr
