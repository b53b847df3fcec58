"""Row ids read from text a client sent (query parameters, cursors)."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework.exceptions import ParseError

# The largest value of a 64-bit signed primary key.
MAX_ID = (1 << 63) - 1


def parse_id(raw: str) -> int | None:
    """``raw`` as a row id: ASCII digits only, at most :data:`MAX_ID`; else None.

    ``str.isdigit`` alone accepts "²" and "١٢", which ``int`` then reads or rejects, and a value
    past 64 bits reaches the database as an error, not an empty result.
    """
    if not (raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if value <= MAX_ID else None


def id_param(params: Mapping[str, str], name: str, what: str) -> int | None:
    """The optional id query parameter ``name``: None when it is absent; a 400 (``ParseError``,
    "``name`` must be ``what``") when it is not an id."""
    raw = params.get(name)
    if raw is None:
        return None
    value = parse_id(raw)
    if value is None:
        raise ParseError(f"{name} must be {what}")
    return value
