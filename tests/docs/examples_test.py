"""The pages' code examples run, as a reader would paste them.

README.md's and every page's `python` blocks, each page in a fresh
process (its blocks in order, sharing one namespace), from a temporary
folder, with warnings as errors. See tests/docs/blocks.py; the
docstrings' examples are in docstrings_test.py.
"""

import pytest

from tests.docs import blocks
from tests.repository import ROOT

PAGES = sorted(
    path.relative_to(ROOT).as_posix()
    for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    if blocks.markdown_blocks(path)
)


def check(done):
    assert done.returncode == 0, (
        f"stdout (tail):\n{done.stdout[-3000:]}\n"
        f"stderr (tail):\n{done.stderr[-12000:]}"
    )


def test_pages_found():
    # The guides and the README each open with code; a change to the
    # fence parser that finds none would pass every test below.
    for page in ["README.md", "docs/guides/schedules.md"]:
        assert page in PAGES


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page, tmp_path):
    found = blocks.markdown_blocks(ROOT / page)
    check(blocks.run_blocks(found, tmp_path))


@pytest.mark.parametrize(
    "block",
    [
        *blocks.docstring_examples(),
        *(
            block
            for page in PAGES
            for block in blocks.markdown_blocks(ROOT / page)
        ),
    ],
    ids=lambda block: f"{block.where}:{block.line}",
)
def test_examples_name_no_absolute_path(block):
    # An example writes under the folder it runs in: the multi-worker
    # block once made /shared/run1 at the root of a one-machine run.
    assert blocks.absolute_paths(block) == []
