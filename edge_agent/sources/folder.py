"""Image files in a folder, read in name order; unreadable files are skipped and counted."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2

from edge_agent.config import FolderSource
from edge_agent.sources.base import Frame, Source, SourceError, now_ms

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


class ImageFolder(Source):
    def __init__(self, config: FolderSource) -> None:
        self.config = config
        if not config.path.is_dir():
            raise SourceError(f"folder source {str(config.path)!r}: not a directory")
        self._files = sorted(p for p in config.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(f"folder source {str(config.path)!r}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self._position = 0
        self._index = 0

    def read(self) -> Frame | None:
        misses = 0
        while misses < len(self._files):  # a whole pass of unreadable files ends the source
            if self._position >= len(self._files):
                if not self.config.loop:
                    return None
                self._position = 0
            path = self._files[self._position]
            self._position += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                misses += 1
                self.corrupt_frames += 1
                log.warning("skipped unreadable image %s (corrupt frames: %d)", path, self.corrupt_frames)
                continue
            frame = Frame(image, now_ms(), self._index)
            self._index += 1
            return frame
        return None
