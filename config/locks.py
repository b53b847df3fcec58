"""Locks that serialise a check and the write that depends on it, across processes."""

from __future__ import annotations

import hashlib

from django.db import connection


def transaction_lock(*key: object) -> None:
    """Hold a lock named by ``key`` until the current transaction ends (call it inside
    ``transaction.atomic()``). Two transactions asking for the same key run one after the other
    from this call on, so a count or a lookup made after it sees what the other one wrote.

    PostgreSQL: a transaction-level advisory lock on a 64-bit digest of ``key``. SQLite needs
    none: the project's SQLite transactions are ``IMMEDIATE``, each one already holds the write
    lock from its start. To avoid deadlocks, take several keys in the same order everywhere.
    """
    if connection.vendor != "postgresql":
        return
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)]
        )
