"""The documentation stays whole: links and anchors resolve, the settings table is current.

- Every relative link in README.md, CHANGELOG.md and docs/*.md points at a file or
  folder of the repository, and every anchor (`#...`, in the same page or another
  Markdown page) at a heading there, named the way GitHub names heading anchors.
  Links inside code (fenced blocks, `code spans`) are text, not links.
- The README's settings table is what scripts/settings_table.py generates from
  tap_hotjar/settings.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
import urllib.parse
from pathlib import Path

import pytest

from tests.plugin_definitions import tap_settings_schema

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
# [text](target "title"), ![alt](target); [label]: target (reference definitions).
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
_HTML_ANCHOR = re.compile(r"<a\s+[^>]*(?:name|id)\s*=\s*\"([^\"]+)\"", re.IGNORECASE)


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with code spans blanked."""
    out = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * len(match.group(1))
            continue
        if fence is not None:
            if match and match.group(1).startswith(fence) and not line.strip()[len(match.group(1)) :].strip():
                fence = None
            continue
        out.append((number, _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)))
    return out


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading's text (before numbering duplicates).

    The rendered text: links by their text, code spans by their content, emphasis
    markers gone; then lower-cased, every character that is not a letter, digit,
    mark, `_`, `-` or space removed, each space turned into `-`.
    """
    parts = []
    # Code spans as they are; elsewhere links and images by their text, no inline HTML,
    # no emphasis markers (an underscore inside a word is not one).
    for number, part in enumerate(re.split(r"(`+[^`]*`+)", heading)):
        if number % 2:
            parts.append(part.strip("`"))
            continue
        text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", part)
        text = re.sub(r"<[^>]+>", "", text)
        parts.append(re.sub(r"\*+|(?<!\w)_+|_+(?!\w)", "", text))
    text = "".join(parts).strip().lower()
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in "-_ " or category[0] in "LNM":
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page has: its headings' (duplicates numbered -1, -2, ...) and HTML ids."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    text = page.read_text()
    for _, line in _prose_lines(text):
        match = _HEADING.match(line)
        if match:
            slug = github_slug(match.group(2))
            if slug in seen:
                seen[slug] += 1
                found.add(f"{slug}-{seen[slug]}")
            else:
                seen[slug] = 0
                found.add(slug)
        found.update(_HTML_ANCHOR.findall(line))
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link in the page's prose."""
    found = []
    for number, line in _prose_lines(page.read_text()):
        found.extend((number, target) for target in _INLINE_LINK.findall(line))
        match = _REFERENCE_DEFINITION.match(line)
        if match:
            found.append((number, match.group(1)))
    return found


def broken_links(page: Path) -> list[str]:
    problems = []
    for number, target in links(page):
        where = f"{page.relative_to(ROOT)}:{number}: {target}"
        parsed = urllib.parse.urlsplit(target)
        if parsed.scheme or target.startswith("//"):
            continue  # another site: not checked offline
        path, fragment = urllib.parse.unquote(parsed.path), urllib.parse.unquote(parsed.fragment)
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            problems.append(f"{where}: no such file")
            continue
        if ROOT not in destination.parents and destination != ROOT:
            problems.append(f"{where}: outside the repository")
            continue
        if fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            problems.append(f"{where}: no heading #{fragment} in {destination.relative_to(ROOT)}")
    return problems


# ------------------------------------------------------------------ the rules themselves


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Use with Meltano", "use-with-meltano"),
        ("The fastest load: BATCH messages and COPY", "the-fastest-load-batch-messages-and-copy"),
        ("Data-subject requests: `hotjar-user-lookup`", "data-subject-requests-hotjar-user-lookup"),
        (
            "Identified users: Amplitude (or any Identify call) to survey answers",
            "identified-users-amplitude-or-any-identify-call-to-survey-answers",
        ),
        ("`hotjar__nps` and *CSAT*", "hotjar__nps-and-csat"),
        ("[0.1.0] - 2026-12-01", "010---2026-12-01"),
        ("Known limitations of the loaders", "known-limitations-of-the-loaders"),
        ("Café — 50 % off?", "café--50--off"),
    ],
)
def test_github_heading_anchor_rules(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_duplicate_headings_get_numbered_anchors_and_code_is_not_a_heading_or_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Setup\n\ntext [a](#setup-1) `[b](missing.md)`\n\n"
        "```bash\n# not a heading\n[c](missing.md)\n```\n\n## Setup\n\n### Setup\n"
    )
    assert anchors(page) == {"title", "setup", "setup-1", "setup-2"}
    assert links(page) == [(5, "#setup-1")]


# ------------------------------------------------------------------ the documentation


def test_pages_exist() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "CHANGELOG.md", "docs/analytics.md", "docs/pipelines.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_points_at_something_that_exists(page: Path) -> None:
    assert broken_links(page) == []


def test_readme_settings_table_is_what_the_script_generates_from_the_settings_schema() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_table.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    generated = proc.stdout.rstrip("\n").split("\n")
    readme = (ROOT / "README.md").read_text().split("\n")
    start = next(i for i, line in enumerate(readme) if line.startswith("<!-- settings-table:"))
    end = readme.index("<!-- end of settings-table -->")
    assert readme[start + 1 : end] == generated
    # Every setting of the schema has its row (the script reads the real schema).
    assert [line.split("|")[1].strip() for line in generated[2:]] == list(tap_settings_schema()["properties"])
