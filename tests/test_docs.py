"""The documentation explains the repository from a clone alone (CONTRIBUTING.md, "Tests").

- No file points outside the repository (to a sibling checkout or an outside spec).
- Every relative Markdown link resolves to a file of the repository, and a link with an anchor
  names a heading that exists in the target (GitHub's slugs).
- Every `docs/<path>.md, "<Heading>"` reference in source files names an existing document and,
  when a heading is given, an existing heading.
- The README stays short.

The files checked are git's: tracked ones and new ones not yet added (not the ignored), so a new
document is checked before its first commit.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
VENDORED = ("api_graphql/static/",)  # third-party builds kept byte for byte
README_MAX_LINES = 150

# Built by concatenation, so that this file does not contain what it looks for.
OUTSIDE_REFERENCES = (
    "../" + "shared",
    "DESIGN" + " §",
    "STYLE" + " §",
    "DESIGN" + ".md",
    "STYLE" + ".md",
)

FENCE = re.compile(r"^ {0,3}(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# `docs/architecture.md, "Cache"`: a document, and optionally one of its headings.
DOC_REFERENCE = re.compile(r"\b((?:docs/[\w./-]+|bench/README|docker/README)\.md)(?:,\s*(?:#\s*)?\"([^\"\n]+)\")?")
SOURCE_SUFFIXES = {".py", ".proto", ".toml", ".ini"}
SOURCE_NAMES = {"Makefile", ".importlinter"}


@cache
def repository_files() -> tuple[str, ...]:
    """Paths (relative, POSIX) of tracked and new, not ignored, files that exist on disk."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return tuple(sorted({name for name in listed.split("\0") if name and (ROOT / name).is_file()}))


def text_of(name: str) -> str | None:
    """The file's text, or None for a binary file."""
    data = (ROOT / name).read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def markdown_files() -> list[str]:
    return [name for name in repository_files() if name.endswith(".md") and not name.startswith(VENDORED)]


def source_files() -> list[str]:
    return [
        name
        for name in repository_files()
        if (Path(name).suffix in SOURCE_SUFFIXES or Path(name).name in SOURCE_NAMES) and not name.startswith(VENDORED)
    ]


def prose_lines(markdown: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lowercased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(name: str) -> frozenset[str]:
    """Every anchor of a Markdown file's headings, duplicates numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines((ROOT / name).read_text()):
        if match := HEADING.match(line):
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def links(markdown: str) -> list[str]:
    """The targets of the inline links and images outside code."""
    targets = []
    for line in prose_lines(markdown):
        targets += LINK.findall(INLINE_CODE.sub("", line))
    return targets


def broken_link(source: str, target: str) -> str | None:
    """Why a link of `source` is broken, or None when it resolves (or is not a relative link)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:, …
        return None
    path, _, anchor = target.partition("#")
    resolved = (ROOT / source).parent / path if path else ROOT / source
    try:
        relative = resolved.resolve().relative_to(ROOT.resolve())
    except ValueError:
        return "points outside the repository"
    if not resolved.exists():
        return "no such file"
    if anchor and resolved.is_file() and resolved.suffix == ".md" and anchor not in anchors(relative.as_posix()):
        return f"no heading with the anchor #{anchor}"
    return None


# -- (a) nothing points outside the repository ------------------------------------------------------


def test_no_file_points_outside_the_repository() -> None:
    found = []
    for name in repository_files():
        if name.startswith(VENDORED) or (text := text_of(name)) is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            found += [f"{name}:{number}: {needle!r}" for needle in OUTSIDE_REFERENCES if needle in line]
    assert not found, "references to files outside the repository:\n" + "\n".join(found)


# -- (b) relative Markdown links resolve ------------------------------------------------------------------


def test_every_relative_markdown_link_resolves() -> None:
    assert "README.md" in markdown_files()
    broken = [
        f"{name}: ({target}) {reason}"
        for name in markdown_files()
        for target in links((ROOT / name).read_text())
        if (reason := broken_link(name, target))
    ]
    assert not broken, "broken links:\n" + "\n".join(broken)


# -- (c) references from code to the documents resolve --------------------------------------------------


def test_every_document_reference_in_the_code_resolves() -> None:
    broken, checked = [], 0
    for name in source_files():
        text = text_of(name)
        if text is None:
            continue
        for match in DOC_REFERENCE.finditer(text):
            document, heading = match.groups()
            checked += 1
            line = text.count("\n", 0, match.start()) + 1
            if not (ROOT / document).is_file():
                broken.append(f"{name}:{line}: {document} does not exist")
            elif heading is not None and slug(heading) not in anchors(document):
                broken.append(f'{name}:{line}: {document} has no heading "{heading}"')
    assert checked, "no reference found: the pattern no longer matches the code"
    assert not broken, "references to missing documents or headings:\n" + "\n".join(broken)


# -- (d) the README stays short -----------------------------------------------------------------------------


def test_the_readme_has_at_most_150_lines() -> None:
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


# -- the helpers themselves ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Timeouts and retries", "timeouts-and-retries"),
        ("Why a thread pool, not `grpc.aio`", "why-a-thread-pool-not-grpcaio"),
        ("granian WSGI against gunicorn + uvicorn (ASGI)", "granian-wsgi-against-gunicorn--uvicorn-asgi"),
        ("2026-11-26, 15:15\u201315:58 UTC: the first runs", "2026-11-26-15151558-utc-the-first-runs"),
        ("[REST](docs/api/rest.md) API", "rest-api"),
    ],
)
def test_slugs_are_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_a_broken_link_and_a_missing_anchor_are_found() -> None:
    assert broken_link("README.md", "docs/architecture.md#cache") is None
    assert broken_link("docs/README.md", "../CONTRIBUTING.md#add-a-field-to-task") is None
    missing = "docs/" + "no-such-document.md"  # concatenated: the reference check reads this file too
    assert broken_link("README.md", missing) == "no such file"
    assert broken_link("README.md", "docs/architecture.md#nowhere") == "no heading with the anchor #nowhere"
    assert broken_link("README.md", "../outside.md") == "points outside the repository"
    assert broken_link("README.md", "https://example.com/x.md") is None
    assert links("[a](x.md) `[b](y.md)`\n```\n[c](z.md)\n```\n![d](e.png)") == ["x.md", "e.png"]
