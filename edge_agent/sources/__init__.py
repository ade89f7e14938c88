"""Frame sources, chosen by the ``type`` of a camera's ``source`` config."""

from __future__ import annotations

from edge_agent.config import FolderSource, SourceConfig, SyntheticSource, UsbSource, VideoSource
from edge_agent.sources.base import Frame, Source, SourceError


def open_source(config: SourceConfig) -> Source:
    """Open the source described by ``config``; raise :class:`SourceError` naming it on failure."""
    if isinstance(config, SyntheticSource):
        from edge_agent.sources.synthetic import SyntheticCamera

        return SyntheticCamera(config)
    if isinstance(config, VideoSource | UsbSource):
        from edge_agent.sources.video import open_video

        return open_video(config)
    if isinstance(config, FolderSource):
        from edge_agent.sources.folder import ImageFolder

        return ImageFolder(config)
    raise SourceError(f"unknown source type {type(config).__name__}")


__all__ = ["Frame", "Source", "SourceError", "open_source"]
