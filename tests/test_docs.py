"""The manual builds, and links hold: docs/ through MkDocs in strict mode, README.md by a direct check.

mkdocs.yml sets `strict: true` and turns broken links, missing anchors, absolute links and pages left
out of `nav` into warnings, so any of them fails the build. The control copies the manual, adds one
broken link, and expects the build to fail naming it: proof that the check bites.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(config_dir: Path, site_dir: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict`; mkdocs comes with the `test` extra (`make install`), so a missing one fails."""
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
                          cwd=config_dir, capture_output=True, text=True, timeout=120)


def test_manual_builds_strictly(tmp_path):
    result = build(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "design" / "index.html").exists()


def test_a_broken_link_fails_the_build(tmp_path):
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    with open(tmp_path / "docs" / "index.md", "a") as f:
        f.write("\nSee [the missing page](no-such-page.md) and [a missing anchor](design.md#no-such-heading).\n")
    result = build(tmp_path, tmp_path / "site")
    log = result.stdout + result.stderr
    assert result.returncode != 0, log
    assert "no-such-page.md" in log
    assert "#no-such-heading" in log


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors for a Markdown file's headings (lower case, punctuation dropped, spaces to '-')."""
    anchors, fenced = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6} (.+)", line)):
            anchors.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return anchors


def broken_links(markdown_file: Path) -> list[str]:
    """Relative links of a Markdown file whose file, or heading in a Markdown target, does not exist."""
    broken = []
    for link in re.findall(r"\]\(([^)\s]+)\)", markdown_file.read_text()):
        if re.match(r"[a-z]+:", link):                  # http:, https:, mailto: are not checked here
            continue
        path, _, anchor = link.partition("#")
        target = (markdown_file.parent / path) if path else markdown_file
        if not target.is_file():
            broken.append(f"{link} (no file {path})")
        elif anchor and target.suffix == ".md" and anchor not in heading_anchors(target.read_text()):
            broken.append(f"{link} (no heading #{anchor} in {path or markdown_file.name})")
    return broken


def test_readme_links_point_to_existing_files_and_headings():
    assert "](docs/" in (ROOT / "README.md").read_text(), "the README links into docs/"
    assert broken_links(ROOT / "README.md") == []


def test_the_readme_check_finds_a_broken_link(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## The self-test\n")
    readme = tmp_path / "README.md"
    readme.write_text("[ok](docs/page.md#the-self-test) [gone](docs/gone.md) [bad](docs/page.md#nope) "
                      "[web](https://example.org/x)\n")
    assert broken_links(readme) == ["docs/gone.md (no file docs/gone.md)",
                                    "docs/page.md#nope (no heading #nope in docs/page.md)"]
