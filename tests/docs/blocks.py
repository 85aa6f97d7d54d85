"""The code examples of the documentation, found and run as a reader would.

A page's `python` blocks (README.md and docs/**/*.md) run in order in one
fresh Python process, as a reader pastes them one after the other: a guide
opens with a visible set-up block that its later blocks share. Blocks that
are not meant to run are marked with another language (`text` for
pseudo-code, `bash` for commands).

A docstring's example (the `python` blocks of its `Example:` section;
the formula blocks above it are not examples) runs in a fresh namespace
after the set-up block shown at the top of the API reference
(docs/api/index.md), all of them in one process. Since that process
cannot forget a module once imported, an example that reaches a
submodule which `import keras_lr` does not load (`keras_lr.plot`,
`keras_lr.tune`) must import it itself, and the runner checks that.

Examples run with the current folder in a temporary one, warnings as
errors (as pytest runs), and may not name an absolute path.
"""

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from tests.repository import ROOT

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```",
    re.S | re.M,
)
# The pytest configuration's own exception (pyproject.toml).
IGNORED_WARNINGS = [
    ("ignore", "__array__ implementation doesn't accept a copy keyword"),
]
ABSOLUTE_PATH = re.compile(r"""["'](/[A-Za-z][^"']*)["']""")
# A section of a Google-style docstring begins with a line like `Args:`.
SECTION = re.compile(r"^(\w[\w ]*):\s*$")


@dataclass(frozen=True)
class Block:
    """One code example: where it is (file and first line) and its code."""

    where: str
    line: int
    code: str


def markdown_blocks(path: Path, language: str = "python") -> list[Block]:
    """The fenced blocks of one language in a Markdown file, in order."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        if match.group("info").strip() != language:
            continue
        line = text.count("\n", 0, match.start()) + 2
        body = textwrap.dedent(match.group("body"))
        blocks.append(Block(_relative(path), line, body))
    return blocks


def docstring_examples() -> list[Block]:
    """The `python` blocks of every `Example:` section in keras_lr/."""
    examples = []
    for path in sorted((ROOT / "keras_lr").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(
                node, (ast.Module, ast.ClassDef, ast.FunctionDef)
            ):
                continue
            docstring = ast.get_docstring(node, clean=True)
            if not docstring:
                continue
            name = getattr(node, "name", "<module>")
            first = node.body[0].lineno if node.body else 1
            examples.extend(
                Block(f"{_relative(path)} {name}", first + offset, code)
                for offset, code in _example_sections(docstring)
            )
    return examples


def _example_sections(docstring: str) -> list[tuple[int, str]]:
    """(line offset, code) of the python blocks under `Example:`."""
    found, section = [], None
    lines = docstring.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        heading = SECTION.match(line)
        if heading and not line.startswith(" "):
            section = heading.group(1)
        elif line.strip() == "```python" and section in (
            "Example",
            "Examples",
        ):
            end = i + 1
            while lines[end].strip() != "```":
                end += 1
            code = textwrap.dedent("\n".join(lines[i + 1 : end]))
            found.append((i + 1, code))
            i = end
        i += 1
    return found


def absolute_paths(block: Block) -> list[str]:
    """String literals in the block that are absolute paths."""
    return ABSOLUTE_PATH.findall(block.code)


def _relative(path: Path) -> str:
    path = path.resolve()
    if not path.is_relative_to(ROOT):
        return str(path)
    return path.relative_to(ROOT).as_posix()


RUNNER = r"""
import json
import sys
import time
import traceback
import warnings

spec = json.loads(sys.argv[1])
for action, message in spec["ignored"]:
    warnings.filterwarnings(action, message=message)
warnings.simplefilter("error")
for action, message in spec["ignored"]:
    warnings.filterwarnings(action, message=message)


def run(block, namespace):
    code = compile(
        "\n" * (block["line"] - 1) + block["code"], block["where"], "exec"
    )
    exec(code, namespace)


if spec["mode"] == "page":
    namespace = {"__name__": "__main__"}
    for block in spec["blocks"]:
        run(block, namespace)
else:
    import importlib.util
    import pkgutil
    import re

    import keras

    import keras_lr

    loaded = set(sys.modules)
    lazy = sorted(
        name
        for _, name, _ in pkgutil.walk_packages(
            keras_lr.__path__, "keras_lr."
        )
        if name not in loaded and not name.rsplit(".", 1)[-1].startswith("_")
    )
    failures = []
    for block in spec["blocks"]:
        for name in lazy:
            used = re.search(re.escape(name) + r"\b", block["code"])
            imported = re.search(
                r"^\s*(import|from)\s+" + re.escape(name) + r"\b",
                block["code"],
                re.M,
            )
            if used and not imported:
                failures.append(
                    f"{block['where']}: uses {name}, which `import "
                    f"keras_lr` does not load; the example must import it"
                )
        namespace = {"__name__": "__main__"}
        start = time.perf_counter()
        try:
            run(spec["setup"], namespace)
            run(block, namespace)
        except BaseException:
            failures.append(f"{block['where']}:\n{traceback.format_exc()}")
        took = time.perf_counter() - start
        print(f"@@ {took:.1f} s {block['where']}", file=sys.stderr)
        keras.backend.clear_session()
    if failures:
        sys.exit("\n\n".join(failures))
print("ran", len(spec["blocks"]), "examples")
"""


def run_blocks(
    blocks: list[Block],
    cwd: Path,
    setup: Block | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """Runs the blocks in a fresh Python process in `cwd`.

    Without `setup`, in one namespace (a page); with it, each block in its
    own namespace after `setup` (docstring examples).
    """
    spec = {
        "mode": "page" if setup is None else "docstrings",
        "ignored": IGNORED_WARNINGS,
        "blocks": [block.__dict__ for block in blocks],
        "setup": None if setup is None else setup.__dict__,
    }
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["MPLBACKEND"] = "Agg"
    return subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(spec)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
