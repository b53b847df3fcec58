"""Cursor pagination over an integer key, with cursors checked before they reach the database."""

from __future__ import annotations

from rest_framework.exceptions import NotFound, ValidationError
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
        # DRF reads the last of several cursors: refused like a repeated page_size or filter.
        if len(request.query_params.getlist(self.cursor_query_param)) > 1:
            raise ValidationError({self.cursor_query_param: "give it once"})
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        if parse_id(str(cursor.position)) is None:
            raise NotFound(self.invalid_cursor_message)
        return cursor

    def get_page_size(self, request: Request) -> int:
        """``page_size``, if given, once, as a whole number of at least 1 (above
        ``max_page_size``, that); a 400 otherwise (DRF quietly used the default for ``0``, ``-1``
        or ``abc``, and the last of several)."""
        default = int(self.page_size or 0)
        name = self.page_size_query_param
        values = request.query_params.getlist(name) if name else []
        if not name or not values:
            return default
        limit = int(self.max_page_size or default)
        raw = values[0].strip()
        if len(values) > 1:
            raise ValidationError({name: "give it once"})
        digits = raw.lstrip("0")
        if not (raw.isascii() and raw.isdigit() and digits):
            raise ValidationError({name: f"{values[0][:40]!r} is not a whole number of at least 1"})
        # More than the most a page holds: the most, as DRF does (and no int() of 5,000 digits).
        return limit if len(digits) > 9 else min(int(digits), limit)
