"""models.paths: ../shared found from the repository root, and recorded paths relative to the repository."""

from __future__ import annotations

from pathlib import Path

from models.data.sources import DataSource
from models.paths import REPO_ROOT, SHARED, repo_relative, shared_path
from tests.support.dataset_builders import build_yolo

TESTS = Path(__file__).resolve().parents[1]


def test_repo_root_is_the_checkout_and_shared_sits_beside_it() -> None:
    assert REPO_ROOT == TESTS.parent and (REPO_ROOT / "pyproject.toml").is_file()
    assert shared_path("datasets", "neu-det") == REPO_ROOT.parent / "shared" / "datasets" / "neu-det" == \
        SHARED / "datasets" / "neu-det"


def test_paths_in_or_beside_the_repository_are_recorded_relative_to_it(tmp_path: Path) -> None:
    assert repo_relative(REPO_ROOT / "models" / "zoo" / "steel-defect.onnx") == "models/zoo/steel-defect.onnx"
    assert repo_relative(shared_path("anchors", "yolo26n-320.onnx")) == "../shared/anchors/yolo26n-320.onnx"
    outside = Path("/") / "nowhere-near" / "data"
    assert repo_relative(outside) == str(outside)  # not beside the checkout: stays as given


def test_a_dataset_source_describes_itself_relative_to_the_repository(tmp_path: Path, monkeypatch) -> None:
    """A checkout at tmp/repo with its data in tmp/shared, as on the machine the metrics were recorded on."""
    import models.paths

    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "pyproject.toml").write_text("")
    monkeypatch.setattr(models.paths, "REPO_ROOT", (tmp_path / "repo").resolve())
    build_yolo(tmp_path / "shared" / "datasets" / "fruit")
    src = DataSource.parse(str(tmp_path / "shared" / "datasets" / "fruit"), fmt="yolo", split_seed=3)
    assert src.spec == str((tmp_path / "shared" / "datasets" / "fruit").resolve())  # absolute while it runs
    assert src.describe() == "../shared/datasets/fruit (yolo, split seed 3)"  # relative where it is recorded
