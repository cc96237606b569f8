"""The README and docs/ hold together: every relative link resolves, nothing points outside
the repository, the docs index lists every page, and the README stays a five-minute read.

Links are read from Markdown inline links and images (``[text](target)``), reference
definitions (``[name]: target``) and HTML ``href``/``src`` attributes, outside fenced code
blocks and code spans. ``http(s):`` and ``mailto:`` targets are not checked. A target with an
anchor must name a heading (GitHub's slug) or an ``id``/``name`` attribute of the page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README_MAX_BYTES = 12 * 1024

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[`~]*[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HTML_ATTR = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
HTML_ANCHOR = re.compile(r"""<[^>]+\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
EXTERNAL = re.compile(r"^(?:https?:|mailto:)", re.I)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def prose(text: str) -> str:
    """The text with fenced code blocks and code spans blanked out."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    body = prose(text)
    found = INLINE_LINK.findall(body) + REFERENCE_DEF.findall(body) + HTML_ATTR.findall(body)
    return [t for t in found if not EXTERNAL.match(t)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in "_- ")
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set(HTML_ANCHOR.findall(text))
    for heading in HEADING.findall(FENCE.sub("", text)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(doc: Path, repo: Path = REPO) -> list[str]:
    """Every link of ``doc`` that does not resolve, each with the reason."""
    text = doc.read_text(encoding="utf-8")
    problems = []
    for target in links(text):
        if SCHEME.match(target):
            problems.append(f"{target}: a scheme other than http(s)/mailto")
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (doc.parent / path_part).resolve() if path_part else doc.resolve()
        if not resolved.is_relative_to(repo.resolve()):
            problems.append(f"{target}: points outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file ({resolved.relative_to(repo.resolve())})")
        elif anchor and resolved.suffix == ".md" and resolved.is_file():
            if anchor not in anchors(resolved.read_text(encoding="utf-8")):
                problems.append(f"{target}: no heading or anchor '#{anchor}' in {resolved.name}")
    return problems


def name(doc: Path) -> str:
    return doc.relative_to(REPO).as_posix()


@pytest.mark.parametrize("doc", doc_files(), ids=name)
def test_every_relative_link_resolves(doc):
    problems = broken_links(doc)
    assert not problems, f"{name(doc)} has broken links:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("doc", doc_files(), ids=name)
def test_no_path_outside_the_repository(doc):
    lines = [
        f"line {i}: {line.strip()}"
        for i, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
        if "../shared" in line
    ]
    assert not lines, f"{name(doc)} names paths outside the repository:\n  " + "\n  ".join(lines)


def test_docs_index_lists_every_page():
    index = DOCS / "README.md"
    linked = {(DOCS / t.partition("#")[0]).resolve() for t in links(index.read_text(encoding="utf-8"))}
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p != index and p.resolve() not in linked]
    assert not missing, f"docs/README.md does not link: {', '.join(missing)}"


def test_readme_stays_short():
    size = (REPO / "README.md").stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes, over {README_MAX_BYTES}: move detail into docs/"


def test_the_checker_catches_broken_links(tmp_path):
    """The check itself: a missing file, a missing anchor, a path out of the repository and a
    link inside code are told apart."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# B page\n\n## Some `code` here (v1)\n", encoding="utf-8")
    doc = tmp_path / "docs" / "a.md"
    doc.write_text(
        "# A\n\n[ok](b.md) [ok anchor](b.md#some-code-here-v1) [self](#a) [web](https://example.org/x)\n"
        "[gone](missing.md) [bad anchor](b.md#nope) [out](../../elsewhere.md)\n"
        "`[in code](nowhere.md)`\n\n```\n[in fence](nowhere.md)\n```\n\n[ref]: gone-too.md\n",
        encoding="utf-8",
    )
    problems = broken_links(doc, repo=tmp_path)
    assert [p.split(":")[0] for p in problems] == ["missing.md", "b.md#nope", "../../elsewhere.md", "gone-too.md"]
