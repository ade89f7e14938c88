"""The ``Source`` interface: one verb, ``read()``, returning the next frame or ``None`` at the end."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


class SourceError(RuntimeError):
    """A source that cannot be opened at all (missing file, unreadable stream); names the source."""


@dataclass
class Frame:
    image: np.ndarray  # BGR uint8, HxWx3
    ts_ms: int  # capture time, UTC epoch ms
    index: int  # frame number from this source
    truth: dict[str, int] | None = field(default=None)  # ground-truth counts, synthetic sources only


def now_ms() -> int:
    return int(time.time() * 1000)


class Source(ABC):
    """A frame source. ``corrupt_frames`` counts frames that were skipped because they could not be decoded."""

    corrupt_frames: int = 0

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or ``None`` when a finite source is exhausted."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device or file."""
