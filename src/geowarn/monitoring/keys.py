"""Device keys (apikey). Only a SHA-256 digest bound to the deviceId is stored.

Keys are issued by geowarn (``new_apikey``: 128 random bits) or by the national platform (32 hex
digits), so a fast hash is safe against guessing and keeps verification cheap at 10,000 messages a
second; binding the digest to the deviceId stops one device's key from working for another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_apikey() -> str:
    return secrets.token_hex(16)


def hash_apikey(device_code: str, apikey: str) -> str:
    return hashlib.sha256(f"{device_code}\x00{apikey}".encode()).hexdigest()


def verify_apikey(device_code: str, apikey: str, digest: str) -> bool:
    return hmac.compare_digest(hash_apikey(device_code, apikey), digest)


class ApikeyCheck:
    """:func:`verify_apikey` that remembers the key last verified for each device and digest.

    A device sends the same key with every message; comparing it with the remembered one (in constant
    time) costs a fraction of a SHA-256. A new digest (the key was rotated) forgets the old key.
    """

    def __init__(self, max_devices: int = 200_000) -> None:
        self._known: dict[str, tuple[str, bytes]] = {}
        self._max = max_devices

    def verify(self, device_code: str, apikey: str, digest: str) -> bool:
        known = self._known.get(device_code)
        key = apikey.encode()
        if known is not None and known[0] == digest and hmac.compare_digest(known[1], key):
            return True
        if not verify_apikey(device_code, apikey, digest):
            return False
        if len(self._known) >= self._max:
            self._known.clear()
        self._known[device_code] = (digest, key)
        return True
