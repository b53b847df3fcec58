"""JSON request bodies with a size and a nesting bound, checked before Python's parser runs.

Python's ``json`` module parses nested arrays and objects by recursion in C. eth-account imports
py_ecc, which raises the interpreter's recursion limit to 100,000, so a body of 100,000 ``[``
overflowed the C stack and killed the process (SIGSEGV) instead of raising ``RecursionError``.
Here the nesting depth is measured without recursion first, and a body deeper than
``API_JSON_MAX_DEPTH`` is refused with a 400; ``config.recursion`` also restores a sane recursion
limit at start-up, as a second line of defence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import IO, Any
from urllib.parse import parse_qsl

import numpy as np
from django.conf import settings
from django.http import QueryDict
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser

# A JSON string literal (escapes included), unrolled so the regex engine never backtracks.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


class RequestTooLarge(ParseError):
    status_code = 413
    default_detail = "Request body too large."
    default_code = "request_too_large"


def json_nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text``, brackets inside strings ignored.

    Linear time and no recursion, whatever the input; for malformed input it is an upper bound.
    """
    brackets = _NOT_A_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int64)
    return int(np.cumsum(steps).max())


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Python keeps the last of a repeated key, other parsers the first (RFC 8259 section 4:
    # unpredictable): a proxy or a client library could read another request than ours.
    document = dict(pairs)
    if len(document) == len(pairs):
        return document
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"the key {key[:80]!r} is repeated in an object: give it once")
        seen.add(key)
    raise AssertionError("unreachable: a shorter dict has a repeated key")


def json_loads_bounded(text: str, *, max_depth: int) -> Any:
    """``json.loads`` for untrusted text: ``ValueError`` if nested deeper than ``max_depth``, if
    it holds ``NaN`` or ``Infinity`` (not JSON, though Python's parser accepts them) or if an
    object repeats a key."""
    depth = json_nesting_depth(text)
    if depth > max_depth:
        raise ValueError(f"JSON nested {depth} levels deep; the limit is {max_depth}")
    return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)


def _bounded_text(
    stream: IO[Any], parser_context: Mapping[str, Any] | None, kind: str
) -> tuple[bytes, str, str]:
    """A request body of at most ``API_JSON_MAX_BYTES`` (413 above it) and its text in the
    request's encoding (400 if it isn't valid there): ``(bytes, text, encoding)``."""
    encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
    limit = settings.API_JSON_MAX_BYTES
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise RequestTooLarge(f"the {kind} body is over {limit} bytes")
    try:
        # bytes.decode, not codecs.decode: only text encodings (a "charset=rot13" or "=base64"
        # names a codec, not a charset; codecs.decode ran it, and it raised).
        return raw, raw.decode(encoding), encoding
    except (UnicodeError, LookupError) as exc:
        raise ParseError(f"{kind} parse error - the body is not valid {encoding}") from exc


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with ``API_JSON_MAX_BYTES`` (413 above it) and ``API_JSON_MAX_DEPTH``."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        _, text, _ = _bounded_text(stream, parser_context, "JSON")
        # RFC 8259 section 8.1: a parser may ignore a byte order mark (Windows tools write one).
        text = text.removeprefix("\ufeff")
        try:
            return json_loads_bounded(text, max_depth=settings.API_JSON_MAX_DEPTH)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


class BoundedFormParser(FormParser):
    """DRF's form parser (``application/x-www-form-urlencoded``) with the JSON body's size
    bound, ``API_JSON_MAX_BYTES`` (413 above it): DRF's reads the whole body, whatever its
    size, and Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` applies only to its own parsing."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        raw, text, encoding = _bounded_text(stream, parser_context, "form")
        try:
            # Percent-escapes too: Django's QueryDict would turn invalid ones into U+FFFD.
            parse_qsl(text, keep_blank_values=True, encoding=encoding, errors="strict")
        except UnicodeError as exc:
            raise ParseError(f"form parse error - the body is not valid {encoding}") from exc
        return QueryDict(raw, encoding=encoding)
