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
