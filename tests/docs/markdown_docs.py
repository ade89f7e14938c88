"""Reading the project's Markdown the way the docs tests need it: fenced blocks, tables with their
``<!-- figures ... -->`` annotations, prose with code spans and link targets removed, and the figures in it.

Conventions the docs follow (and these tests enforce):

- Shell commands are in fenced blocks tagged ``bash``; each line (with ``\\`` continuations) is one command.
- A ``yaml`` block whose first line is ``# file: NAME`` is a file the page's commands use.
- A figure (a decimal like ``0.954``, or a number with a unit like ``15 ms``, ``4.8 %``, ``3x``) may appear only
  in a table column that a ``<!-- figures ... -->`` comment right above the table ties to a recorded metrics
  file. The comment is YAML::

      <!-- figures
      source: models/zoo/{key}.metrics.json      # {key}: the text of the row's `key` cell
      key: model                                 # the column naming the row
      columns:                                   # header -> JSON path; "a | b": first path present;
        mAP50: models.fp32.map50                 # cpu(PATH): the CPU named from a recorded cpu record
      -->

  or, instead of ``source``, ``rows:`` mapping each key cell to ``FILE [PATH]``, with ``{row}`` in the column
  paths standing for that PATH. A cell whose path is absent from the row's record must read ``—``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def doc_files() -> list[Path]:
    """README.md and every page of the docs site (the hooks folder holds code, not pages)."""
    pages = sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.parts)
    return [REPO / "README.md", *pages]


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# ---------------------------------------------------------------- fenced blocks
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")


@dataclass
class Block:
    lang: str
    line: int  # 1-based line of the opening fence
    lines: list[str]


def fenced_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    open_fence = None
    for number, line in enumerate(text.splitlines(), 1):
        if open_fence is None:
            match = _FENCE.match(line)
            if match:
                open_fence = match["fence"]
                blocks.append(Block(match["lang"].lower(), number, []))
        elif line.strip().startswith(open_fence[0] * len(open_fence)) and not line.strip().strip(open_fence[0]):
            open_fence = None
        else:
            blocks[-1].lines.append(line)
    return blocks


def without_fences(text: str) -> list[str]:
    """The text's lines with every fenced block's lines blanked (line numbers kept)."""
    out, open_fence = [], None
    for line in text.splitlines():
        if open_fence is None:
            match = _FENCE.match(line)
            if match:
                open_fence = match["fence"]
                out.append("")
                continue
            out.append(line)
        else:
            if line.strip().startswith(open_fence[0] * len(open_fence)) and not line.strip().strip(open_fence[0]):
                open_fence = None
            out.append("")
    return out


def commands(block: Block) -> list[str]:
    """One string per command: ``\\`` continuations joined, blank and comment-only lines dropped."""
    result, pending = [], ""
    for line in block.lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full and not full.startswith("#"):
            result.append(full)
    if pending.strip():
        result.append(pending.strip())
    return result


def yaml_files(text: str) -> dict[str, str]:
    """``yaml`` blocks that start with ``# file: NAME``: NAME -> content."""
    files = {}
    for block in fenced_blocks(text):
        if block.lang in ("yaml", "yml") and block.lines:
            match = re.match(r"#\s*file:\s*(\S+)\s*$", block.lines[0].strip())
            if match:
                files[match[1]] = "\n".join(block.lines) + "\n"
    return files


# ---------------------------------------------------------------- prose and figures
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_DOTTED = re.compile(r"\d+(?:\.\d+){2,}")  # versions and addresses: 2.2.2, 127.0.0.1
_ALLOWED = [re.compile(r"Python \d+\.\d+"), re.compile(r"[A-Za-z]+-\d+\.\d+")]  # versions: Python 3.11, Apache-2.0
_DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.]*\d)")
_UNIT = r"(?:ms|s|min|h|%|x|×|KiB|MiB|GiB|kB|KB|MB|GB|fps|k|points?|msg/s|events/s)"
_WITH_UNIT = re.compile(rf"(?<![\w.])\d+(?:[.,]\d+)?\s?{_UNIT}(?![\w])")


def plain(cell: str) -> str:
    """Markdown cell or sentence -> its visible text (links to their text, no code ticks or emphasis)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", cell)
    text = text.replace("`", "").replace("**", "")
    return text.strip()


def figures_in(text: str) -> list[str]:
    """The figures a reader would take for measurements, in prose (code spans and link targets ignored)."""
    text = _CODE_SPAN.sub(" ", text)
    text = _LINK_TARGET.sub("]", text)
    text = _DOTTED.sub(" ", text)
    for allowed in _ALLOWED:
        text = allowed.sub(" ", text)
    found = [m.group(0) for m in _DECIMAL.finditer(text)]
    found += [m.group(0) for m in _WITH_UNIT.finditer(text) if m.group(0) not in found]
    return found


# ---------------------------------------------------------------- tables
@dataclass
class Table:
    line: int  # 1-based line of the header
    header: list[str]
    rows: list[list[str]]
    row_lines: list[int]
    annotation: dict | None = None
    annotation_error: str | None = None


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    return [c.strip() for c in inner.split("|")]


_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def tables(text: str) -> list[Table]:
    """Tables outside fenced blocks, each with the ``figures`` annotation just above it (blank lines allowed)."""
    lines = without_fences(text)
    raw = "\n".join(lines)
    # where each figures comment ends, and its YAML body
    annotations: dict[int, tuple[dict | None, str | None]] = {}
    for match in re.finditer(r"<!--\s*figures\b(.*?)-->", raw, re.S):
        end_line = raw.count("\n", 0, match.end()) + 1
        try:
            body = yaml.safe_load(match.group(1))
            annotations[end_line] = (body, None) if isinstance(body, dict) else (None, "not a YAML mapping")
        except yaml.YAMLError as exc:
            annotations[end_line] = (None, f"invalid YAML: {exc}")
    found: list[Table] = []
    i = 0
    while i < len(lines) - 1:
        if lines[i].lstrip().startswith("|") and _SEPARATOR.match(lines[i + 1]):
            table = Table(line=i + 1, header=[plain(c) for c in _cells(lines[i])], rows=[], row_lines=[])
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                table.rows.append(_cells(lines[j]))
                table.row_lines.append(j + 1)
                j += 1
            above = i  # 1-based number of the line just above the header
            while above >= 1 and not lines[above - 1].strip():
                above -= 1
            if above in annotations:
                table.annotation, table.annotation_error = annotations[above]
            found.append(table)
            i = j
        else:
            i += 1
    return found


# ---------------------------------------------------------------- checking annotated tables against records
@lru_cache(maxsize=None)
def load_record(path: str) -> object:
    return json.loads((REPO / path).read_text(encoding="utf-8"))


def resolve(record: object, path: str) -> object | None:
    node = record
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def cpu_text(cpu: dict) -> str:
    """How the docs name the machine of a recorded cpu block: ``AMD EPYC, INT8 dot product: a + b``."""
    dots = cpu.get("int8_dot") or []
    return f"{cpu['model']}, " + (f"INT8 dot product: {' + '.join(dots)}" if dots else "no INT8 dot product")


_ABSENT = {"—", "-", ""}


@dataclass
class TableCheck:
    errors: list[str] = field(default_factory=list)
    checked: int = 0  # cells compared with a record
    checked_columns: set[str] = field(default_factory=set)


def _expected(record: object, spec: str, row_path: str) -> tuple[bool, object]:
    """(found, value) for a column spec on one row's record."""
    for alternative in (s.strip() for s in spec.split(" | ")):
        cpu = re.fullmatch(r"cpu\((.+)\)", alternative)
        path = cpu[1] if cpu else alternative
        path = path.replace("{row}.", f"{row_path}." if row_path else "").replace("{row}", row_path)
        value = resolve(record, path)
        if value is not None:
            return True, cpu_text(value) if cpu else value
    return False, None


def check_table(table: Table, where: str) -> TableCheck:
    """Compare every annotated cell with the recorded value it claims to show."""
    result = TableCheck()
    spec = table.annotation or {}
    columns: dict[str, str] = spec.get("columns") or {}
    key = spec.get("key")
    if key not in table.header:
        result.errors.append(f"{where}: figures annotation names key column {key!r}, not in {table.header}")
        return result
    for column in columns:
        if column not in table.header:
            result.errors.append(f"{where}: figures annotation names column {column!r}, not in {table.header}")
    key_index = table.header.index(key)
    for cells, line in zip(table.rows, table.row_lines):
        row_key = plain(cells[key_index])
        if "rows" in spec:
            target = (spec["rows"] or {}).get(row_key)
            if target is None:
                result.errors.append(f"{where}:{line}: row {row_key!r} has no entry under `rows`")
                continue
            source, _, row_path = str(target).partition(" ")
        else:
            source, row_path = str(spec.get("source", "")).format(key=row_key), ""
        if not (REPO / source).is_file():
            result.errors.append(f"{where}:{line}: row {row_key!r}: record {source!r} does not exist")
            continue
        record = load_record(source)
        for column, column_spec in columns.items():
            if column not in table.header:
                continue
            cell = plain(cells[table.header.index(column)])
            found, value = _expected(record, str(column_spec), row_path.strip())
            what = f"{where}:{line}: {row_key} / {column}"
            result.checked += 1
            result.checked_columns.add(column)
            if not found:
                if cell not in _ABSENT:
                    result.errors.append(f"{what}: {cell!r}, but {source} records no {column_spec!r}")
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                if cell.lower() != str(value).lower():
                    result.errors.append(f"{what}: {cell!r}, recorded {value!r} in {source}")
            else:
                number = cell.replace(",", "")
                if not re.fullmatch(r"-?\d+(\.\d+)?", number):
                    result.errors.append(f"{what}: {cell!r} is not a number (recorded {value} in {source})")
                    continue
                decimals = len(number.partition(".")[2])
                if f"{value:.{decimals}f}" != f"{float(number):.{decimals}f}":
                    result.errors.append(f"{what}: {cell}, but {source} records {value}")
    return result


def figure_errors(text: str, where: str) -> tuple[list[str], int]:
    """Figures outside checked table cells, bad annotations and cells that differ from their record.

    Returns (errors, number of checked cells)."""
    errors: list[str] = []
    checked = 0
    table_lines: dict[int, Table] = {}
    for table in tables(text):
        table_lines[table.line] = table
        for line in table.row_lines:
            table_lines[line] = table
    # prose: every line outside fences, tables and HTML comments
    prose_lines = _HTML_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), "\n".join(without_fences(text)))
    for number, line in enumerate(prose_lines.splitlines(), 1):
        if number in table_lines:
            continue
        for figure in figures_in(line):
            errors.append(f"{where}:{number}: figure {figure!r} in prose; put it in a table checked against its "
                          f"record (see tests/docs/markdown_docs.py)")
    for table in tables(text):
        checked_columns: set[str] = set()
        if table.annotation_error:
            errors.append(f"{where}:{table.line}: figures annotation: {table.annotation_error}")
        elif table.annotation is not None:
            result = check_table(table, where)
            errors += result.errors
            checked += result.checked
            checked_columns = result.checked_columns
        for column_index, column in enumerate(table.header):
            if column in checked_columns:
                continue
            for cells, line in zip(table.rows, table.row_lines):
                if column_index < len(cells):
                    for figure in figures_in(cells[column_index]):
                        errors.append(f"{where}:{line}: figure {figure!r} in column {column!r}, which no figures "
                                      f"annotation ties to a record")
        for figure in figures_in(" ".join(table.header)):
            errors.append(f"{where}:{table.line}: figure {figure!r} in a table header")
    return errors, checked
