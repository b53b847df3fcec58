"""Bearer secrets: how they look and how they are hashed. Shared by sessions and API keys."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "cm_"


def token_generate() -> str:
    """A new secret: ``cm_`` and 43 URL-safe characters (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(secret: str) -> str:
    """SHA-256 hex of a secret. A fast hash is right here: the secret has 256 bits of entropy."""
    return hashlib.sha256(secret.encode()).hexdigest()
