"""The documentation's code examples run, as a reader would paste them.

README.md's and every page's `python` blocks, each page in a fresh
process (its blocks in order, sharing one namespace); every docstring
example after the API reference's visible set-up. All from a temporary
folder, with warnings as errors. See tests/docs/blocks.py.
"""

import pytest

from tests.docs import blocks
from tests.repository import ROOT

PAGES = sorted(
    path.relative_to(ROOT).as_posix()
    for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    if blocks.markdown_blocks(path)
)
# The API reference's set-up block is run before every docstring example.
SETUP_PAGE = ROOT / "docs" / "api" / "index.md"


def _check(done):
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
    _check(blocks.run_blocks(found, tmp_path))


def test_docstring_examples_run(tmp_path):
    examples = blocks.docstring_examples()
    # Every public schedule and callback has one; the parser finding
    # fewer means it broke, not that the docstrings lost them.
    assert len(examples) >= 30
    setup = blocks.markdown_blocks(SETUP_PAGE)[0]
    _check(blocks.run_blocks(examples, tmp_path, setup=setup))


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
