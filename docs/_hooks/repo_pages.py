"""MkDocs hook: the model cards in ``models/zoo/`` become pages of the site, without a copy in ``docs/``.

The cards are rendered from the recorded metrics (``models/cards/detect.py``, ``models/cards/anomaly.py``) and stay the one
place their figures live. Pages in ``docs/`` link to them by their repository path
(``../models/zoo/NAME.card.md``), which works when the Markdown is read on a Git host; this hook rewrites those
links to the card pages of the site. Any other link that leaves ``docs/`` is left alone, so ``mkdocs build
--strict`` reports it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parents[2]
CARDS = REPO / "models" / "zoo"
SITE_DIR = "models"  # card NAME.card.md is the page models/NAME.card.md of the site

_CARD_LINK = re.compile(r"\]\((?P<path>(?:\.\./)+models/zoo/(?P<name>[\w.-]+\.card\.md))(?P<anchor>#[^)]*)?\)")


def card_files() -> list[Path]:
    return sorted(CARDS.glob("*.card.md"))


def on_files(files, config):
    for card in card_files():
        files.append(File.generated(config, f"{SITE_DIR}/{card.name}", abs_src_path=str(card)))
    return files


def on_page_markdown(markdown, page, config, files):
    page_dir = posixpath.dirname(page.file.src_uri)

    def rewrite(match: re.Match) -> str:
        # only a link that really points at the card, seen from this page's place in docs/
        target = posixpath.normpath(posixpath.join("docs", page_dir, match["path"]))
        if target != f"models/zoo/{match['name']}" or not (CARDS / match["name"]).is_file():
            return match[0]
        site_path = posixpath.relpath(f"{SITE_DIR}/{match['name']}", page_dir or ".")
        return f"]({site_path}{match['anchor'] or ''})"

    return _CARD_LINK.sub(rewrite, markdown)
