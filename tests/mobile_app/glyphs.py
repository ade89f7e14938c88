"""Which characters a TrueType/OpenType font can draw, read from its ``cmap`` table (no font library needed).

A character the font's cmap does not map to a glyph is drawn as the font's ``.notdef`` glyph: an empty box
("tofu"). Kivy's SDL2 text provider has no font fallback, so a label shows tofu for every character its one
font lacks. Collections (``.ttc``) are read at face 0, the face SDL_ttf opens.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path

# (platform, encoding, format) in order of preference: full Unicode first, then the BMP tables
_PREFERRED = ((3, 10, 12), (0, 4, 12), (0, 6, 12), (0, 3, 4), (3, 1, 4), (0, 4, 4), (0, 3, 12))


class FontFormatError(ValueError):
    """The file is not a TrueType/OpenType font (or collection) with a Unicode cmap."""


def _u16(data: bytes, at: int) -> int:
    return struct.unpack_from(">H", data, at)[0]


def _u32(data: bytes, at: int) -> int:
    return struct.unpack_from(">I", data, at)[0]


def _table(data: bytes, face: int, tag: bytes, path: Path) -> int:
    """Offset of table ``tag`` of face ``face``."""
    if data[:4] == b"ttcf":
        count = _u32(data, 8)
        if face >= count:
            raise FontFormatError(f"{path}: collection has {count} faces, no face {face}")
        base = _u32(data, 12 + 4 * face)
    else:
        base = 0
    if data[base : base + 4] not in (b"\x00\x01\x00\x00", b"OTTO", b"true"):
        raise FontFormatError(f"{path}: not a TrueType/OpenType font")
    for i in range(_u16(data, base + 4)):
        record = base + 12 + 16 * i
        if data[record : record + 4] == tag:
            return _u32(data, record + 8)
    raise FontFormatError(f"{path}: no {tag.decode()} table")


def _format4(data: bytes, at: int) -> set[int]:
    segments = _u16(data, at + 6) // 2
    ends, starts = at + 14, at + 16 + 2 * segments
    deltas, range_offsets = starts + 2 * segments, starts + 4 * segments
    found: set[int] = set()
    for i in range(segments):
        start, end = _u16(data, starts + 2 * i), _u16(data, ends + 2 * i)
        delta = _u16(data, deltas + 2 * i)
        range_at = range_offsets + 2 * i
        range_offset = _u16(data, range_at)
        for code in range(start, end + 1):
            if code == 0xFFFF:
                continue
            if range_offset == 0:
                glyph = (code + delta) & 0xFFFF
            else:
                glyph = _u16(data, range_at + range_offset + 2 * (code - start))
                glyph = (glyph + delta) & 0xFFFF if glyph else 0
            if glyph:
                found.add(code)
    return found


def _format12(data: bytes, at: int) -> set[int]:
    found: set[int] = set()
    for i in range(_u32(data, at + 12)):
        group = at + 16 + 12 * i
        start, end, first_glyph = struct.unpack_from(">III", data, group)
        found.update(range(start + (first_glyph == 0), end + 1))
    return found


@lru_cache(maxsize=16)
def codepoints(path: str | Path, face: int = 0,
               prefer: tuple[tuple[int, int, int], ...] = _PREFERRED) -> frozenset[int]:
    """Every code point the font maps to a real glyph (not ``.notdef``), from the first subtable in ``prefer``
    (platform, encoding, format) the font has."""
    path = Path(path)
    data = path.read_bytes()
    cmap = _table(data, face, b"cmap", path)
    subtables = {}
    for i in range(_u16(data, cmap + 2)):
        platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
        subtables[(platform, encoding, _u16(data, cmap + offset))] = cmap + offset
    for key in prefer:
        if key in subtables:
            reader = _format12 if key[2] == 12 else _format4
            return frozenset(reader(data, subtables[key]))
    raise FontFormatError(f"{path}: no Unicode cmap subtable (found {sorted(subtables)})")


def missing_glyphs(text: str, path: str | Path) -> list[str]:
    """Characters of ``text`` the font draws as tofu, in order of appearance (white space and controls skipped)."""
    have = codepoints(str(path))
    missing: list[str] = []
    for char in text:
        if char.isspace() or ord(char) < 0x20 or char in missing:
            continue
        if ord(char) not in have:
            missing.append(char)
    return missing
