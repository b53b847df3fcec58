"""Server-side prepared statements (PostgreSQL) for the hottest SQL.

psycopg2 sends every statement as text, so PostgreSQL parses and plans it each time; for the
submit statement (four CTEs) that was about 0.3 ms of the server's CPU per answer, a third of it.
A ``Prepared`` statement is PREPAREd once per database connection and EXECUTEd by name after
that. ``DATABASE_PREPARED_STATEMENTS=0`` sends the text every time instead (behind a pooler that
moves a session's statements between server connections, PgBouncer in transaction mode).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction

_PARAM = re.compile(r"%\((\w+)\)s")
# SQLSTATEs: no such prepared statement; "cached plan must not change result type".
_NOT_PREPARED = "26000"
_FEATURE_NOT_SUPPORTED = "0A000"


class Prepared:
    """``sql`` with ``%(name)s`` parameters, prepared as ``name`` with the parameters' SQL
    ``types`` (in the order given)."""

    def __init__(self, name: str, sql: str, types: Mapping[str, str]) -> None:
        self.name = name
        self.sql = sql
        self.order = list(types)
        position = {param: i + 1 for i, param in enumerate(self.order)}
        unknown = set(_PARAM.findall(sql)) - set(position)
        if unknown:
            raise ValueError(f"no type for {', '.join(sorted(unknown))}")
        body = _PARAM.sub(lambda match: f"${position[match.group(1)]}", sql)
        self._prepare = f"PREPARE {name} ({', '.join(types.values())}) AS {body}"
        self._execute = f"EXECUTE {name} ({', '.join(['%s'] * len(self.order))})"
        # The connections (psycopg2's, under Django's wrappers) it is prepared on.
        self._ready: weakref.WeakSet[Any] = weakref.WeakSet()

    def fetchone(self, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run it and return its first row. Inside a caller's transaction it runs in a savepoint,
        so that an error (a refused insert) leaves the transaction usable."""
        for retry in (False, True):
            scope = transaction.atomic() if connection.in_atomic_block else nullcontext()
            try:
                with scope, connection.cursor() as cursor:
                    self._run(cursor, params)
                    row: tuple[Any, ...] | None = cursor.fetchone()
                    return row
            except DatabaseError as exc:
                code = getattr(exc.__cause__, "pgcode", None)
                stale = code == _FEATURE_NOT_SUPPORTED and "cached plan" in str(exc)
                if retry or not (stale or code == _NOT_PREPARED):
                    raise
                # A migration changed what it returns, or it was deallocated under us (DISCARD
                # ALL): prepare it again, once.
                self._ready.discard(connection.connection)
                if stale:
                    with connection.cursor() as cursor:
                        cursor.execute(f"DEALLOCATE {self.name}")
        raise AssertionError("unreachable")

    def _run(self, cursor: Any, params: Mapping[str, Any]) -> None:
        if not settings.DATABASE_PREPARED_STATEMENTS:
            cursor.execute(self.sql, params)
            return
        raw = connection.connection
        if raw not in self._ready:
            cursor.execute(self._prepare)
            self._ready.add(raw)
        cursor.execute(self._execute, [params[param] for param in self.order])
