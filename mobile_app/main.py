"""Entry point: ``run_app(api_url, token, lang)``; the ``fieldline app --api URL`` command calls it.

Also runnable as ``python -m mobile_app.main --api http://host:8000 [--token T] [--lang zh]`` and as the
Android entry point (buildozer runs ``main.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_WINDOW = (360, 780)  # dp; a typical phone in portrait


def _ensure_package() -> None:
    """Run as a script (``python mobile_app/main.py``, or on Android where buildozer packages this folder
    as the app root), make this folder importable as the ``mobile_app`` package."""
    try:
        import mobile_app  # noqa: F401
        return
    except ImportError:
        pass
    import importlib.util

    here = Path(__file__).resolve().parent
    init = next((p for p in (here / "__init__.py", here / "__init__.pyc") if p.exists()), None)
    if init is None:
        raise ImportError(f"{here} has no __init__.py: cannot load the mobile_app package")
    spec = importlib.util.spec_from_file_location("mobile_app", init, submodule_search_locations=[str(here)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mobile_app"] = module
    spec.loader.exec_module(module)


def default_data_dir() -> Path:
    """Where the offline cache lives: $FIELDLINE_APP_DIR, the Android private dir, or ~/.fieldline/app."""
    override = os.environ.get("FIELDLINE_APP_DIR")
    if override:
        return Path(override)
    android = os.environ.get("ANDROID_PRIVATE")
    if android:
        return Path(android) / "fieldline"
    return Path.home() / ".fieldline" / "app"


def configure_kivy(window: tuple[int, int] | None = DEFAULT_WINDOW) -> None:
    """Settings that must be made before Kivy creates its window."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    from kivy.config import Config

    Config.set("kivy", "exit_on_escape", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    if window is not None and "ANDROID_ARGUMENT" not in os.environ:
        Config.set("graphics", "width", str(window[0]))
        Config.set("graphics", "height", str(window[1]))
        Config.set("graphics", "resizable", "1")


def run_app(api_url: str | None, token: str | None = None, lang: str = "en", *,
            data_dir: Path | None = None, window: tuple[int, int] | None = DEFAULT_WINDOW) -> None:
    """Start the phone app against ``api_url`` (None: use the server saved in settings)."""
    configure_kivy(window)
    from mobile_app.cache import OfflineCache
    from mobile_app.controllers import Session

    folder = data_dir or default_data_dir()
    cache = OfflineCache(folder / "cache.db")
    session = Session(cache, api_url=api_url, token=token, lang=lang)
    from mobile_app.ui.app import FieldLineApp

    try:
        FieldLineApp(session).run()
    finally:
        cache.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fieldline-app", description="FieldLine phone app")
    parser.add_argument("--api", default=os.environ.get("FIELDLINE_API"), help="Server URL, e.g. http://10.0.0.5:8000")
    parser.add_argument("--token", default=os.environ.get("FIELDLINE_TOKEN"), help="Bearer token (or sign in)")
    parser.add_argument("--lang", default="en", choices=["en", "zh"])
    parser.add_argument("--data-dir", type=Path, default=None, help="Offline cache directory")
    args = parser.parse_args(argv)
    run_app(args.api, args.token, args.lang, data_dir=args.data_dir)
    return 0


if __name__ == "__main__":
    _ensure_package()
    sys.exit(main())
