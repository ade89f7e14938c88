"""The documentation site builds with ``mkdocs build --strict``, has every page and card, and works offline."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.docs.markdown_docs import DOCS, REPO

pytest.importorskip("mkdocs", reason="the docs site needs mkdocs (dev extra)")


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        capture_output=True, text=True, timeout=120, cwd=config.parent,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = build(REPO / "mkdocs.yml", out)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    return out


def nav_pages() -> list[str]:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    pages: list[str] = []

    def walk(items) -> None:
        for item in items:
            for value in item.values():
                walk(value) if isinstance(value, list) else pages.append(value)

    walk(config["nav"])
    return pages


def test_every_docs_page_and_model_card_is_in_the_navigation() -> None:
    pages = set(nav_pages())
    on_disk = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "_hooks" not in p.parts}
    cards = {f"models/{p.name}" for p in (REPO / "models" / "zoo").glob("*.card.md")}
    assert on_disk <= pages
    assert cards <= pages
    assert len(cards) >= 4


def test_the_site_has_a_page_for_every_part_and_renders_the_cards(site: Path) -> None:
    for page in nav_pages():
        html = site / (page.removesuffix(".md") + "/index.html" if page != "index.md" else "index.html")
        assert html.is_file(), page
    card = (site / "models" / "surface-anomaly.card" / "index.html").read_text(encoding="utf-8")
    assert "Model card: surface-anomaly" in card
    assert "161.6" in card  # the card's own latency table, rendered from its metrics


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []  # <a href>
        self.resources: list[str] = []  # anything the browser loads by itself
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        for name in ("src", "href") if tag != "a" else ():
            if attrs.get(name):
                self.resources.append(attrs[name])


def parse(path: Path) -> _Refs:
    refs = _Refs()
    refs.feed(path.read_text(encoding="utf-8"))
    return refs


def test_the_site_loads_nothing_from_the_network(site: Path) -> None:
    """Factories are often offline: no script, style sheet, font or image from another host."""
    remote = []
    for page in site.rglob("*.html"):
        remote += [f"{page.relative_to(site)}: {r}" for r in parse(page).resources if urlsplit(r).scheme or r.startswith("//")]
    for sheet in site.rglob("*.css"):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        remote += [f"{sheet.relative_to(site)}: {m}" for m in re.findall(r"(?:@import|url\()\s*['\"]?(?:https?:)?//[^)'\"]+", text)]
    assert remote == []


def test_every_internal_link_of_the_site_resolves(site: Path) -> None:
    broken = []
    for page in site.rglob("*.html"):
        if page.name == "404.html":  # served for any missing path, so its links are absolute by design
            continue
        for href in parse(page).links:
            parts = urlsplit(href)
            if parts.scheme or href.startswith(("//", "mailto:")):
                continue
            target = (page.parent / parts.path).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(site)} -> {href}")
            elif parts.fragment and parts.fragment not in parse(target).ids:
                broken.append(f"{page.relative_to(site)} -> {href} (no such anchor)")
    assert broken == []


def test_a_broken_link_fails_the_strict_build(tmp_path) -> None:
    """The build above would also fail on a dead link or a link out of docs/ that is not a model card."""
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "docs" / "_hooks" / "repo_pages.py").write_text(
        (DOCS / "_hooks" / "repo_pages.py").read_text(encoding="utf-8").replace(
            "REPO = Path(__file__).resolve().parents[2]", f"REPO = Path({str(REPO)!r})"), encoding="utf-8")
    assert build(tmp_path / "mkdocs.yml", tmp_path / "ok").returncode == 0
    page = tmp_path / "docs" / "benchmarks.md"
    original = page.read_text(encoding="utf-8")
    for bad in ("[gone](no-such-page.md)", "[anchor](model-toolkit.md#no-such-section)",
                "[outside](../models/recipes/neu-det.sh)"):
        page.write_text(original + f"\n{bad}\n", encoding="utf-8")
        proc = build(tmp_path / "mkdocs.yml", tmp_path / "bad")
        assert proc.returncode != 0, bad
