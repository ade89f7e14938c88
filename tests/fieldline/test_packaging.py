"""Every file a package serves or loads at run time is in the wheel (``pip install .``, the Docker image)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNTIME_FOLDERS = {"cloud_api": ["web"], "mobile_app": ["views", "fonts"], "models": ["zoo"]}


def test_package_data_covers_every_runtime_file():
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    missing = []
    for package, folders in RUNTIME_FOLDERS.items():
        patterns = package_data.get(package, [])
        for folder in folders:
            for path in (REPO / package / folder).rglob("*"):
                if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                    continue
                relative = path.relative_to(REPO / package).as_posix()
                # setuptools globs: '*' stays within one folder level
                if not any(fnmatch.fnmatch(relative, p) and relative.count("/") == p.count("/") for p in patterns):
                    missing.append(f"{package}/{relative}")
    assert not missing, f"not in [tool.setuptools.package-data], so not installed: {missing[:10]}"
