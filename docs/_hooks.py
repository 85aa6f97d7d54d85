"""MkDocs hooks: the README is the site's front page, and the committed
figures of saved_runs/ are part of the site.

- `index.md` is README.md with its links rewritten for the site: a link
  into `docs/` loses that prefix, and a link to a non-figure file of
  `saved_runs/` (not part of the site) becomes its path in code.
- Every PNG under `saved_runs/` is added at the same path, so the pages
  show each figure from the folder its command wrote it to, with no copy
  under docs/ to keep in step.
"""

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
SAVED_RUNS_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\((saved_runs/[^)]*)\)")


def front_page(readme: str) -> str:
    """README.md's text, with its links made to work from the site."""

    def plain(match):
        path = match.group(2)
        if path.endswith(".png"):
            return match.group(0)
        return f"`{path}`"

    text = SAVED_RUNS_LINK.sub(plain, readme)
    return text.replace("](docs/", "](")


def on_files(files, config):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "index.md", content=front_page(readme)))
    for path in sorted((ROOT / "saved_runs").rglob("*.png")):
        files.append(
            File(
                path.relative_to(ROOT).as_posix(),
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files
