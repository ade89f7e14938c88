"""Where the phone app keeps its login token: never in clear text in the cache database.

* On Android (``ANDROID_ARGUMENT`` set, as ``kivy.utils.platform`` checks, and pyjnius present): ``AndroidKeystoreTokenStore`` encrypts the
  token with an AES-256-GCM key made inside the Android Keystore (the key never leaves it; on devices with
  secure hardware it lives there); only the ciphertext goes into the cache database.
* Elsewhere (desktop, tests, an Android build without pyjnius): ``EncryptedTokenStore`` seals the token with
  a random 256-bit key kept in its own file (mode 0600, in a 0700 folder next to the cache). That protects
  the token wherever the cache database goes without the key file (a backup, a copied or attached cache);
  it cannot protect against someone who can read the app's whole private folder: only a keystore can.

The fallback's sealing uses only the standard library: HMAC-SHA256 as a pseudo-random function in counter
mode for the key stream, and HMAC-SHA256 over nonce and ciphertext as the tag (encrypt-then-MAC, separate
keys derived from the file's key). ``wipe`` deletes the ciphertext and the key (Android: the Keystore entry).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path
from typing import Any, Protocol

from mobile_app.cache import OfflineCache

log = logging.getLogger(__name__)

SEALED_SETTING = "token_sealed"  # cache setting holding the fallback's sealed token (base64)
KEYSTORE_SETTING = "token_keystore"  # cache setting holding the Android Keystore ciphertext (base64 iv + ct)
KEYSTORE_ALIAS = "fieldline-token"
KEY_BYTES, NONCE_BYTES, TAG_BYTES = 32, 16, 32
_CONTEXT = b"fieldline-token-v1"


class TokenStoreError(Exception):
    """The stored token cannot be read back (tampered with, or its key is gone)."""


class TokenStore(Protocol):
    def load(self) -> str | None: ...

    def save(self, token: str) -> None: ...

    def wipe(self) -> None: ...


class SealedBox:
    """Authenticated encryption from HMAC-SHA256 only (PRF counter-mode stream + encrypt-then-MAC tag)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"key must be {KEY_BYTES} bytes")
        self._enc = hmac.new(key, _CONTEXT + b"/enc", hashlib.sha256).digest()
        self._mac = hmac.new(key, _CONTEXT + b"/mac", hashlib.sha256).digest()

    def _stream(self, nonce: bytes, length: int) -> bytes:
        blocks = (hmac.new(self._enc, nonce + i.to_bytes(8, "big"), hashlib.sha256).digest()
                  for i in range((length + 31) // 32))
        return b"".join(blocks)[:length]

    def _tag(self, nonce: bytes, ciphertext: bytes) -> bytes:
        return hmac.new(self._mac, _CONTEXT + nonce + ciphertext, hashlib.sha256).digest()

    def seal(self, plaintext: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = bytes(a ^ b for a, b in zip(plaintext, self._stream(nonce, len(plaintext)), strict=True))
        return nonce + ciphertext + self._tag(nonce, ciphertext)

    def open(self, sealed: bytes) -> bytes:
        if len(sealed) < NONCE_BYTES + TAG_BYTES:
            raise TokenStoreError("sealed token is truncated")
        nonce, ciphertext, tag = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:-TAG_BYTES], sealed[-TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(nonce, ciphertext)):
            raise TokenStoreError("sealed token does not match its key (tampered with, or the key changed)")
        return bytes(a ^ b for a, b in zip(ciphertext, self._stream(nonce, len(ciphertext)), strict=True))


class EncryptedTokenStore:
    """The token sealed in the cache database, its key in ``key_file`` (created on first save)."""

    def __init__(self, cache: OfflineCache, key_file: Path) -> None:
        self.cache, self.key_file = cache, key_file

    def _key(self, create: bool) -> bytes | None:
        if self.key_file.exists():
            key = self.key_file.read_bytes()
            if len(key) != KEY_BYTES:
                raise TokenStoreError(f"{self.key_file} is not a {KEY_BYTES}-byte key")
            return key
        if not create:
            return None
        self.key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.key_file.parent, 0o700)
        key = secrets.token_bytes(KEY_BYTES)
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key)
        return key

    def load(self) -> str | None:
        stored = self.cache.setting(SEALED_SETTING)
        if stored is None:
            return None
        key = self._key(create=False)
        if key is None:
            raise TokenStoreError(f"the token's key file {self.key_file} is missing; sign in again")
        return SealedBox(key).open(base64.b64decode(stored)).decode("utf-8")

    def save(self, token: str) -> None:
        key = self._key(create=True)
        assert key is not None
        self.cache.set_setting(SEALED_SETTING, base64.b64encode(SealedBox(key).seal(token.encode("utf-8"))).decode())

    def wipe(self) -> None:
        self.cache.set_setting(SEALED_SETTING, None)
        self.key_file.unlink(missing_ok=True)  # without its key, any copy of the old ciphertext is useless


class AndroidKeystoreTokenStore:  # pragma: no cover - needs an Android device (pyjnius + AndroidKeyStore)
    """AES-256-GCM with a key generated in, and never leaving, the Android Keystore (API level 23+)."""

    def __init__(self, cache: OfflineCache) -> None:
        from jnius import autoclass  # type: ignore[import-not-found]

        self.cache = cache
        self._KeyStore = autoclass("java.security.KeyStore")
        self._KeyGenerator = autoclass("javax.crypto.KeyGenerator")
        self._Builder = autoclass("android.security.keystore.KeyGenParameterSpec$Builder")
        self._KeyProperties = autoclass("android.security.keystore.KeyProperties")
        self._Cipher = autoclass("javax.crypto.Cipher")
        self._GCMParameterSpec = autoclass("javax.crypto.spec.GCMParameterSpec")

    def _keystore(self) -> Any:
        store = self._KeyStore.getInstance("AndroidKeyStore")
        store.load(None)
        return store

    def _key(self) -> Any:
        store = self._keystore()
        if not store.containsAlias(KEYSTORE_ALIAS):
            props = self._KeyProperties
            spec = (self._Builder(KEYSTORE_ALIAS, props.PURPOSE_ENCRYPT | props.PURPOSE_DECRYPT)
                    .setBlockModes([props.BLOCK_MODE_GCM]).setEncryptionPaddings([props.ENCRYPTION_PADDING_NONE])
                    .setKeySize(256).build())
            generator = self._KeyGenerator.getInstance(props.KEY_ALGORITHM_AES, "AndroidKeyStore")
            generator.init(spec)
            generator.generateKey()
        return store.getKey(KEYSTORE_ALIAS, None)

    def load(self) -> str | None:
        stored = self.cache.setting(KEYSTORE_SETTING)
        if stored is None:
            return None
        raw = base64.b64decode(stored)
        cipher = self._Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(self._Cipher.DECRYPT_MODE, self._key(), self._GCMParameterSpec(128, raw[:12]))
        return bytes(cipher.doFinal(raw[12:])).decode("utf-8")

    def save(self, token: str) -> None:
        cipher = self._Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(self._Cipher.ENCRYPT_MODE, self._key())
        iv, ciphertext = bytes(cipher.getIV()), bytes(cipher.doFinal(token.encode("utf-8")))
        self.cache.set_setting(KEYSTORE_SETTING, base64.b64encode(iv + ciphertext).decode())

    def wipe(self) -> None:
        self.cache.set_setting(KEYSTORE_SETTING, None)
        store = self._keystore()
        if store.containsAlias(KEYSTORE_ALIAS):
            store.deleteEntry(KEYSTORE_ALIAS)


def on_android() -> bool:
    """What ``kivy.utils.platform`` checks (python-for-android sets it), without importing Kivy."""
    return "ANDROID_ARGUMENT" in os.environ


def default_token_store(cache: OfflineCache) -> TokenStore:
    """The Android Keystore on Android (pyjnius present), else the sealed store keyed from ``keys/token.key``."""
    if on_android():
        try:
            return AndroidKeystoreTokenStore(cache)
        except ImportError:
            log.warning("pyjnius is missing from this Android build: the token is sealed with a key file instead")
    return EncryptedTokenStore(cache, cache.path.parent / "keys" / "token.key")
