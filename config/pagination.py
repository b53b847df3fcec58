"""Cursor pagination over an integer key, with cursors checked before they reach the database."""

from __future__ import annotations

from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from config.ids import parse_id


class IdCursorPagination(CursorPagination):
    """Pages ordered by the integer primary key (``ordering`` is ``"id"`` or ``"-id"``).

    DRF hands a cursor's position to the query as it is, so a cursor edited by hand (``p=abc``,
    or an id beyond 64 bits) failed in the ORM or the database with a 500. Here it is refused
    like any other malformed cursor: 404 ``Invalid cursor``.
    """

    ordering = "-id"

    def decode_cursor(self, request: Request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        if parse_id(str(cursor.position)) is None:
            raise NotFound(self.invalid_cursor_message)
        return cursor
