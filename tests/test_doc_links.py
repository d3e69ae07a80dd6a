"""Every relative link of the README and docs/*.md leads somewhere: the file exists, and a
`#anchor` names a heading of the page it points to (as GitHub makes anchors from headings).
The reference sections moved from the README to docs/, so a link left pointing at the old
place would otherwise only be found by a reader."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from commands import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCED = re.compile(r"^```.*?^```", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(path: Path) -> str:
    """The page without its code blocks (a `# comment` in a YAML block is not a heading)."""
    return FENCED.sub("", path.read_text(encoding="utf-8"))


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped, spaces
    to hyphens, a repeated heading numbered."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#* *$", prose(path), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(path: Path) -> list[str]:
    return LINK.findall(CODE_SPAN.sub("", prose(path)))


def relative_links() -> list[tuple[str, str]]:
    return [
        (str(page.relative_to(REPO)), target)
        for page in PAGES
        for target in links(page)
        if not re.match(r"[a-z]+:", target)  # http:, https:, mailto:
    ]


def test_the_pages_link_to_each_other() -> None:
    readme = {target.split("#")[0] for page, target in relative_links() if page == "README.md"}
    missing = [page for page in PAGES[1:] if str(page.relative_to(REPO)) not in readme]
    assert not missing, f"docs pages the README does not link: {missing}"


@pytest.mark.parametrize(("page", "target"), relative_links())
def test_a_relative_link_resolves(page: str, target: str) -> None:
    file, _, anchor = target.partition("#")
    source = REPO / page
    destination = (source.parent / unquote(file)).resolve() if file else source
    assert destination.exists(), f"{page}: {target}: no such file"
    if anchor:
        assert destination.suffix == ".md", f"{page}: {target}: an anchor into a non-page"
        assert anchor in anchors(destination), f"{page}: {target}: no such heading"
