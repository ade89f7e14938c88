"""The phone app's token at rest: sealed in the cache with its key kept apart, and wiped (with the cache) on
sign-out, which also revokes it on a real API.

The Android Keystore route (``AndroidKeystoreTokenStore``, pyjnius + ``AndroidKeyStore``) needs an Android
device and is NOT exercised here; what is tested is that without pyjnius an Android build falls back to the
sealed store instead of keeping the token in clear text.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mobile_app.cache import OfflineCache
from mobile_app.controllers import Session, SettingsController
from mobile_app.token_store import (
    SEALED_SETTING,
    EncryptedTokenStore,
    SealedBox,
    TokenStoreError,
    default_token_store,
)
from tests.mobile_app.api_server import RestartableApi
from tests.mobile_app.seed import OPERATORS, PASSWORD, seed_site, settings_for

TOKEN = "tok-3f9a1c77e0b24d5a9e8c6b1f2a7d4e0c"


def _on_disk(folder: Path) -> bytes:
    """Every byte of the cache database (main file, WAL, shared memory)."""
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name.startswith("cache.db"))


def test_sealed_box_round_trip_and_refuses_tampering() -> None:
    box = SealedBox(b"k" * 32)
    sealed = box.seal(TOKEN.encode())
    assert TOKEN.encode() not in sealed and box.open(sealed) == TOKEN.encode()
    assert box.seal(TOKEN.encode()) != sealed  # a fresh nonce each time
    flipped = bytearray(sealed)
    flipped[20] ^= 1
    with pytest.raises(TokenStoreError, match="does not match"):
        box.open(bytes(flipped))
    with pytest.raises(TokenStoreError, match="does not match"):
        SealedBox(b"x" * 32).open(sealed)
    with pytest.raises(TokenStoreError, match="truncated"):
        box.open(sealed[:10])


def test_the_token_is_never_in_the_cache_in_clear_text(tmp_path: Path) -> None:
    cache = OfflineCache(tmp_path / "cache.db")
    session = Session(cache, api_url="http://127.0.0.1:1", token=TOKEN)
    assert session.token == TOKEN
    assert cache.setting("token") is None and cache.setting(SEALED_SETTING)
    cache.scrub()
    assert TOKEN.encode() not in _on_disk(tmp_path)
    key_file = tmp_path / "keys" / "token.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600" and oct(key_file.parent.stat().st_mode & 0o777) == "0o700"
    cache.close()
    # the next start of the app reads it back
    again = OfflineCache(tmp_path / "cache.db")
    assert Session(again).token == TOKEN
    # the database copied without its key file is useless
    key_file.unlink()
    lost = Session(again)
    assert lost.token is None and "key file" in (lost.last_error or "")
    again.close()


def test_a_clear_text_token_of_an_older_app_is_sealed_and_scrubbed(tmp_path: Path) -> None:
    cache = OfflineCache(tmp_path / "cache.db")
    cache.set_setting("token", TOKEN)  # what the app used to store
    cache.scrub()
    assert TOKEN.encode() in _on_disk(tmp_path)
    session = Session(cache)
    assert session.token == TOKEN and cache.setting("token") is None
    assert TOKEN.encode() not in _on_disk(tmp_path)  # secure_delete zeroed the old row, the WAL was truncated
    cache.close()


def test_an_android_build_without_pyjnius_falls_back_to_the_sealed_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ANDROID_ARGUMENT", str(tmp_path))  # what python-for-android sets
    real_import = builtins.__import__

    def no_jnius(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "jnius":
            raise ImportError("No module named 'jnius'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jnius)
    cache = OfflineCache(tmp_path / "cache.db")
    with caplog.at_level(logging.WARNING, logger="mobile_app.token_store"):
        store = default_token_store(cache)
    assert isinstance(store, EncryptedTokenStore) and "pyjnius is missing" in caplog.text
    cache.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableApi]:
    settings = settings_for(tmp_path_factory.mktemp("api"))
    seed_site(settings)
    with RestartableApi(settings) as running:
        yield running


def test_sign_out_revokes_the_token_and_wipes_it_and_the_cache(api: RestartableApi, tmp_path: Path) -> None:
    cache = OfflineCache(tmp_path / "cache.db")
    session = Session(cache, api_url=api.url)
    settings = SettingsController(session)
    assert settings.login(OPERATORS[0], PASSWORD).ok
    token = session.token
    assert token and token.encode() not in _on_disk(tmp_path)
    cache.put("sheds", [{"id": "shed-01"}])
    cache.enqueue("ack", "17")
    (cache.files_dir / "snapshot-x.jpg").write_bytes(b"\xff\xd8 picture")
    settings.logout()
    assert session.token is None and session.username is None
    assert cache.get("sheds") is None and cache.pending() == [] and list(cache.files_dir.iterdir()) == []
    assert not (tmp_path / "keys" / "token.key").exists()
    assert b"shed-01" not in _on_disk(tmp_path)
    me = httpx.get(f"{api.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401  # revoked on the server, not only forgotten here
    cache.close()


def test_sign_out_offline_still_wipes(tmp_path: Path) -> None:
    cache = OfflineCache(tmp_path / "cache.db")
    session = Session(cache, api_url="http://127.0.0.1:9", token=TOKEN)  # nothing listens on port 9
    cache.put("sheds", [{"id": "shed-01"}])
    SettingsController(session).logout()
    assert session.token is None and cache.get("sheds") is None and cache.setting(SEALED_SETTING) is None
    cache.close()
