"""The ``Source`` interface: one verb, ``read()``, returning the next frame (or ``None`` when none is ready)."""

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
    """A frame source.

    ``read()`` returns ``None`` when no frame is ready yet (a live stream that is reconnecting) or when a finite
    source is exhausted; ``ended`` tells the two apart. ``corrupt_frames`` counts frames skipped as undecodable.
    """

    corrupt_frames: int = 0
    ended: bool = False

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or ``None`` (see ``ended``)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device or file."""
