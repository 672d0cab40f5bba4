"""Where things are in the repository, for the tests: its root and the book's table of contents."""
from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def toc_pages() -> list[str]:
    """Every document listed in ``_toc.yml`` (root first), as paths without extension."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries: list[dict] | None) -> None:
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return pages
