"""Image files in a folder, read in name order; unreadable files are skipped and counted.

With ``watch`` the folder is polled for new files (a line-scan camera or a PLC dropping one image per part),
each file is read once, and the source never ends.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2

from edge_agent.config import FolderSource
from edge_agent.sources.base import Frame, Source, SourceError, now_ms

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
WATCH_WAIT_S = 1.0


class ImageFolder(Source):
    def __init__(self, config: FolderSource) -> None:
        self.config = config
        if not config.path.is_dir():
            raise SourceError(f"folder source {str(config.path)!r}: not a directory")
        self._files = self._list()
        if not self._files and not config.watch:
            raise SourceError(f"folder source {str(config.path)!r}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self._seen: set[Path] = set()
        self.backlog = not config.watch  # watch mode waits for the next file: read it only when due
        self._position = 0
        self._index = 0

    def _list(self) -> list[Path]:
        return sorted(p for p in self.config.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    def _next_path(self) -> Path | None:
        if self.config.watch:
            deadline = time.monotonic() + WATCH_WAIT_S
            while True:
                fresh = [p for p in self._list() if p not in self._seen]
                if fresh:
                    self._seen.add(fresh[0])
                    return fresh[0]
                if time.monotonic() >= deadline:
                    return None
                time.sleep(min(self.config.poll_s, WATCH_WAIT_S))
        if self._position >= len(self._files):
            if not self.config.loop:
                self.ended = True
                return None
            self._position = 0
        path = self._files[self._position]
        self._position += 1
        return path

    def read(self) -> Frame | None:
        attempts = 1 if self.config.watch else max(len(self._files), 1)
        for _ in range(attempts):
            path = self._next_path()
            if path is None:
                return None
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                self.corrupt_frames += 1
                log.warning("skipped unreadable image %s (corrupt frames: %d)", path, self.corrupt_frames)
                continue
            frame = Frame(image, now_ms(), self._index)
            self._index += 1
            return frame
        if not self.config.watch:
            self.ended = True  # a whole pass of unreadable files: stop rather than spin
        return None
