"""The README indexes every doc, and no doc points outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS]
# [text](target): a target without a scheme is a path, which must stay inside the repository.
LINK = re.compile(r"\]\(([^)\s]+)\)")
# A file path written in backticks that climbs out of the page's folder.
CLIMB = re.compile(r"`[^`]*\.\./[^`]*`")


def test_the_readme_lists_every_doc_once() -> None:
    readme = (REPO / "README.md").read_text()
    index = readme.split("## Documentation", 1)[1].split("\n## ", 1)[0]
    for doc in DOCS:
        rel = doc.relative_to(REPO).as_posix()
        assert index.count(f"[{rel}]({rel})") == 1, f"{rel} is not in the README's index"


def test_no_doc_links_outside_the_repository() -> None:
    for page in PAGES:
        text = page.read_text()
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            resolved = (page.parent / target.split("#", 1)[0]).resolve()
            assert resolved.is_relative_to(REPO), f"{page.name} links to {target}"
            assert resolved.exists(), f"{page.name} links to {target}, which does not exist"
        assert not CLIMB.findall(text), f"{page.name} names a path outside its folder: {CLIMB.findall(text)}"
        # The design notes live outside the repository; a page must not send the reader there.
        assert "DESIGN.md" not in text and "PLATFORM-NOTES" not in text, page.name
