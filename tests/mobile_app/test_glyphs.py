"""The cmap reader that the UI test uses to find missing glyphs ("tofu"), checked against Kivy's own renderer,
and the app's strings against the fonts that draw them."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mobile_app.i18n import LANGUAGES, TABLE, find_cjk_font
from mobile_app.models.sheds import ShedTile
from mobile_app.ui.theme import SYMBOL_FONT
from tests.mobile_app.glyphs import FontFormatError, codepoints, missing_glyphs

KIVY_FONTS = Path(importlib.util.find_spec("kivy").submodule_search_locations[0]) / "data" / "fonts"
ROBOTO = (KIVY_FONTS / "Roboto-Regular.ttf", KIVY_FONTS / "Roboto-Bold.ttf")  # Kivy's default font
ARROWS = "↑↓→"


def test_roboto_lacks_the_arrows_that_dejavu_has() -> None:
    assert missing_glyphs("51 ↑ ready · no alerts", ROBOTO[0]) == ["↑"]
    assert missing_glyphs(ARROWS + "▲▼", ROBOTO[1]) == list(ARROWS + "▲▼")
    assert missing_glyphs(ARROWS + "▲▼·", KIVY_FONTS / "DejaVuSans.ttf") == []


def test_font_collection_is_read_at_face_0() -> None:
    cjk = find_cjk_font()
    assert cjk, "no CJK font: scripts/test.sh installs fonts-wqy-microhei"
    assert missing_glyphs("大棚 shed ↑", cjk) == []
    assert ord("\ue000") not in codepoints(cjk)  # private use area: no real font maps it


@pytest.mark.parametrize("font", [ROBOTO[0], KIVY_FONTS / "DejaVuSans.ttf"], ids=lambda p: p.name)
def test_bmp_and_full_unicode_subtables_agree(font: Path) -> None:
    """Fonts carry a BMP-only table (format 4: segments, deltas, glyph arrays) next to the full one (format
    12: groups); both readers must list the same BMP characters."""
    full = codepoints(font)
    bmp = codepoints(font, prefer=((3, 1, 4),))
    assert len(bmp) > 800 and bmp == {c for c in full if c < 0x10000}


def test_not_a_font_is_an_error(tmp_path: Path) -> None:
    fake = tmp_path / "fake.ttf"
    fake.write_bytes(b"\x00" * 64)
    with pytest.raises(FontFormatError, match="fake.ttf: not a TrueType/OpenType font"):
        codepoints(fake)


# Kivy's SDL2 text provider draws a character the font lacks as the .notdef glyph: the same pixels as any other
# missing character (U+E000, private use). Runs in a child process so Kivy's start-up stays out of pytest's.
_RENDER = r"""
import json, sys
from kivy.core.text import Label
font, chars = sys.argv[1], sys.argv[2]
def pixels(char):
    label = Label(text=char, font_name=font, font_size=40)
    label.resolve_font_name()
    label._size = label.get_extents(char)
    label._render_begin()
    label._render_text(char, 0, 0)
    return label._size, bytes(label._render_end().data)
notdef = pixels("\ue000")
print(json.dumps({c: pixels(c) == notdef for c in chars}))
"""


@pytest.mark.parametrize("font", [ROBOTO[0], KIVY_FONTS / "DejaVuSans.ttf"], ids=lambda p: p.name)
def test_cmap_agrees_with_what_kivy_draws(tmp_path: Path, font: Path) -> None:
    chars = "A5·é" + ARROWS + "▲▼✓简"
    env = dict(os.environ, KIVY_NO_ARGS="1", KIVY_LOG_MODE="PYTHON", KIVY_HOME=str(tmp_path / "kivy"))
    env.pop("DISPLAY", None)  # text rendering needs no window
    proc = subprocess.run([sys.executable, "-c", _RENDER, str(font), chars], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    drawn_as_tofu = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [c for c in chars if drawn_as_tofu[c]] == missing_glyphs(chars, font)
    assert any(drawn_as_tofu.values()) and not all(drawn_as_tofu.values())  # both kinds were compared


def test_app_strings_have_their_glyphs() -> None:
    """English is drawn with Roboto where no CJK font is installed; Chinese only ever with the CJK font."""
    cjk = find_cjk_font()
    assert cjk, "no CJK font: scripts/test.sh installs fonts-wqy-microhei"
    english = "".join(en for en, _ in TABLE.values())
    chinese = "".join(zh for _, zh in TABLE.values()) + "".join(LANGUAGES.values())
    for face in ROBOTO:
        assert missing_glyphs(english, face) == [], face.name
    assert missing_glyphs(chinese + english, cjk) == []


def test_trend_arrows_are_in_the_symbol_font() -> None:
    arrows = {ShedTile.from_api({"id": "s", "trend": t}).trend_arrow for t in ("up", "down", "flat")}
    assert arrows == set(ARROWS)
    assert missing_glyphs("".join(arrows), KIVY_FONTS / f"{SYMBOL_FONT}.ttf") == []
