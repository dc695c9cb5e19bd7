"""Room passwords: only an argon2id hash is kept (argon2-cffi), checked off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MAX_LENGTH = 128
_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106) defaults


async def hash_password(password: str) -> str:
    # About 50 ms of CPU: a thread, so the other rooms' signaling does not wait.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)
