"""Where the examples write: a folder git ignores unless told otherwise,
and never over what was written by hand."""

import argparse
import importlib.util
from pathlib import Path

import pytest

from tests.repository import ROOT
from tests.repository import git_ignores

WRITERS = [
    "batch_growth",
    "cooldown_branches",
    "plot_schedules",
    "range_test",
    "schedule_comparison",
]


def load(name: str):
    """examples/<name>.py as a module (its `main` does not run)."""
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", ROOT / "examples" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", WRITERS)
def test_default_output_is_git_ignored(name):
    # range_test.py once wrote range_test.png and .json into the
    # repository's root; the others wrote into the committed saved_runs/.
    out = Path(load(name).parse_args([]).out)
    assert not out.is_absolute()
    # A file in it (plot_schedules' --out is the PNG itself).
    assert git_ignores(out / "README.md"), out


def _rows(module, args):
    """A finished run's last epochs, made up: two seeds per schedule."""
    return [
        {
            "schedule": name,
            "seed": seed,
            "epoch": args.epochs,
            "batch_size": 16,
            "updates": 100 if name == "lr_decay" else 50,
            "test_accuracy": 0.95 + 0.01 * seed,
            "test_loss": 0.1,
            "wall_s": 1.0,
        }
        for name in module.SCHEDULES
        for seed in args.seeds
    ]


def test_batch_growth_keeps_the_hand_written_part_of_its_readme(tmp_path):
    # Rerunning into saved_runs/batch_growth once deleted the findings
    # written below the generated table.
    module = load("batch_growth")
    hand = (
        "## What this shows (written by hand from the run above)\n\n"
        "- a finding.\n\n## Limits\n\n- another.\n"
    )
    readme = tmp_path / "README.md"
    readme.write_text("# An older run\n\n| old | table |\n\n" + hand)
    args = argparse.Namespace(epochs=30, seeds=[0, 1], test_size=500)
    summary = module.summarize(_rows(module, args), args)
    for _ in range(2):
        module.write_readme(summary, args, "the command", 12.5, str(tmp_path))
        text = readme.read_text()
        assert text.startswith("# Batch-size growth vs learning-rate decay")
        assert "the command" in text and "old | table" not in text
        assert text.endswith("figures).\n\n" + hand)
    assert text.count("## What this shows") == 1
