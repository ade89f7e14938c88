"""Every figure in README.md and docs/ comes from a recorded metrics file, and says so.

A figure may only stand in a table column tied by a ``<!-- figures ... -->`` annotation to a path in a
recorded metrics file (``models/zoo/*.metrics.json``, from which the model cards are rendered); each such cell
must equal the recorded value at the precision it is printed with. A figure anywhere else (prose, headings,
unannotated tables) fails. The first tests below feed the checker pages with known faults, so a checker that
stopped finding them would fail too.
"""

from __future__ import annotations

import pytest

from tests.docs.markdown_docs import doc_files, figure_errors, figures_in, rel

GOOD_TABLE = """
<!-- figures
source: models/zoo/{key}.metrics.json
key: model
columns:
  mAP50: models.fp32.map50
  ms: shipped.latency.session_median_ms
  default: default
  measured on: cpu(shipped.latency.cpu)
-->

| model | mAP50 | ms | default | measured on |
|---|---|---|---|---|
| `tomato-ripeness` | 0.954 | — | INT8 | — |
| [`surface-anomaly`](../models/zoo/surface-anomaly.card.md) | — | 161.6 | FP32 | AMD EPYC, no INT8 dot product |
"""


def test_the_checker_accepts_cells_that_equal_their_record() -> None:
    errors, checked = figure_errors(GOOD_TABLE, "good.md")
    assert errors == []
    assert checked == 8


@pytest.mark.parametrize(
    ("page", "fault"),
    [
        # the figures an earlier README carried that no card backs
        ("The anomaly model takes 15 ms INT8 / 34 ms FP32.", "'15 ms'"),
        ("Its INT8 file took 22 vs 51 ms FP32 on a VNNI CPU.", "'51 ms'"),
        ("Counting error falls from 2.4 fruits to 0.94 per frame.", "'2.4'"),
        ("INT8 loses 0.3 mAP50 points", "'0.3'"),
        ("About 5x faster for 12 points less mAP50.", "'5x'"),
        ("## Results: 0.954 mAP50", "'0.954'"),
        ("| model | mAP50 |\n|---|---|\n| tomato-ripeness | 0.954 |", "no figures annotation"),
        (GOOD_TABLE.replace("| 0.954 |", "| 0.945 |"), "records 0.954"),
        (GOOD_TABLE.replace("| 161.6 |", "| 15 |"), "records 161.63"),
        (GOOD_TABLE.replace("| INT8 |", "| FP32 |"), "recorded 'int8'"),
        (GOOD_TABLE.replace("no INT8 dot product", "INT8 dot product: avx512_vnni"), "AMD EPYC"),
        (GOOD_TABLE.replace("| — | 161.6 |", "| 0.823 | 161.6 |"), "records no 'models.fp32.map50'"),
        (GOOD_TABLE.replace("  ms: shipped", "  latency: shipped"), "column 'latency', not in"),
        (GOOD_TABLE.replace("`tomato-ripeness`", "`tomato-ripeness-large`"), "does not exist"),
    ],
)
def test_the_checker_reports_unbacked_and_wrong_figures(page: str, fault: str) -> None:
    errors, _ = figure_errors(page, "bad.md")
    assert any(fault in e for e in errors), errors


def test_versions_addresses_and_code_are_not_figures() -> None:
    text = "Apache-2.0, Python 3.11 or newer, onnxruntime 1.32.0 on 127.0.0.1, `--count 20 --max-drop 0.01`, 24 sheds, 2-core box"
    assert figures_in(text) == []


@pytest.mark.parametrize("path", doc_files(), ids=rel)
def test_every_figure_in_the_docs_equals_its_record(path) -> None:
    errors, _ = figure_errors(path.read_text(encoding="utf-8"), rel(path))
    assert errors == [], "\n".join(errors)


def test_the_headline_model_figures_are_checked_somewhere() -> None:
    """The README and the model toolkit page do show model figures (a test of nothing would pass too)."""
    checked = {rel(p): figure_errors(p.read_text(encoding="utf-8"), rel(p))[1] for p in doc_files()}
    assert checked["README.md"] >= 8
    assert checked["docs/model-toolkit.md"] >= 30
    assert checked["docs/benchmarks.md"] >= 16
