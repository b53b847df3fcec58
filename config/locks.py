"""Locks that serialise a check and the write that depends on it, across processes."""

from __future__ import annotations

import hashlib

from django.db import connection


def transaction_lock(*key: object, shared: bool = False) -> None:
    """Hold a lock named by ``key`` until the current transaction ends (call it inside
    ``transaction.atomic()``). Two transactions asking for the same key run one after the other
    from this call on, so a count or a lookup made after it sees what the other one wrote.

    PostgreSQL: a transaction-level advisory lock on a 64-bit digest of ``key``. SQLite needs
    none: the project's SQLite transactions are ``IMMEDIATE``, each one already holds the write
    lock from its start. To avoid deadlocks, take several keys in the same order everywhere.

    ``shared``: many transactions may hold the key shared at once; an exclusive holder waits for
    them all, and they for it (PostgreSQL's ``pg_advisory_xact_lock_shared``).
    """
    if connection.vendor != "postgresql":
        return
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        cursor.execute(f"SELECT {function}(%s)", [int.from_bytes(digest, "big", signed=True)])
