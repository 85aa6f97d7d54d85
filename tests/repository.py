"""The repository's root, and what git ignores in it."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def git_ignores(path) -> bool:
    """Whether git ignores `path`, relative to the repository's root
    (tracked or not); skips the test outside a git checkout."""
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        cwd=ROOT,
    )
    if inside.returncode != 0:
        pytest.skip("not a git checkout")
    done = subprocess.run(
        ["git", "check-ignore", "--quiet", "--no-index", str(path)], cwd=ROOT
    )
    return done.returncode == 0
