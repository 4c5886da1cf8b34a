"""Password hashing with Argon2id (RFC 9106) through argon2-cffi.

Only the encoded hash (``$argon2id$v=19$m=…``) is stored. ``needs_rehash`` tells the login path
when the stored hash was made with weaker parameters than today's, so it is renewed on the next
successful login.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from geowarn.config import get_settings

# A valid hash of a random password: verified against when the user does not exist, so a
# failed login takes about as long whether or not the username is known.
_DUMMY_PASSWORD = "geowarn-dummy-password-for-timing"


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    """The process's hasher: argon2-cffi's RFC 9106 low-memory profile (64 MiB, 3 passes).

    In test mode only (``GEOWARN_MODE=test``), ``GEOWARN_PASSWORD_PROFILE=fast`` picks a cheap
    Argon2id profile so fixtures that create dozens of users do not spend minutes hashing; the
    settings refuse it in any other mode.
    """
    if get_settings().password_profile == "fast":
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher()


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; never raises on a wrong password or a malformed hash."""
    try:
        return hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return hasher().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(_DUMMY_PASSWORD)


def burn_verification_time(password: str) -> None:
    """Spend the time of one verification, for a login whose user does not exist."""
    verify_password(_dummy_hash(), password)
