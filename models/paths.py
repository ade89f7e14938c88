"""Where the repository and the shared data beside it are, wherever a module sits in the package.

Data sets and anchor models live in ``../shared`` beside the repository (:data:`SHARED`); recorded metrics
name such files relative to the repository (:func:`repo_relative`), never by the absolute folder of the
machine that measured them.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A file or folder under ``../shared`` beside the repository."""
    return SHARED.joinpath(*parts)


def repo_relative(path: str | Path) -> str:
    """``path`` relative to the repository root when it lies in the repository or beside it (``../shared/...``);
    anything else (``/tmp`` outputs, an installed package without a checkout) stays as given."""
    resolved = Path(path).resolve()
    if not (REPO_ROOT / "pyproject.toml").is_file() or not resolved.is_relative_to(REPO_ROOT.parent):
        return str(path)
    return Path(os.path.relpath(resolved, REPO_ROOT)).as_posix()
