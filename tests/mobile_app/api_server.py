"""The real cloud API for the app tests: ``LiveApi`` restarts on the same port (outage tests)."""

from tests.support.live_api import LiveApi as RestartableApi

__all__ = ["RestartableApi"]
