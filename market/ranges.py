"""File responses with HTTP ``Range`` (RFC 9110 section 14): one byte range, resumable
downloads and partial reads (a Parquet reader fetches the footer first)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import quote

from django.http import (
    FileResponse,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from rest_framework.request import Request

_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
CHUNK = 1 << 16


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte of a single ``bytes=`` range, inclusive, clamped to the file.

    Returns None for a header to ignore (another unit, several ranges, malformed: RFC 9110 lets
    a server answer those with the whole file); raises ``ValueError`` for an unsatisfiable one.
    """
    match = _RANGE.match(header.strip())
    if match is None or size == 0:  # an empty file has no byte to give: the whole (empty) file
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            raise ValueError("empty suffix range")
        return max(0, size - length), size - 1
    start = int(first)
    if start >= size:
        raise ValueError("range starts after the end of the file")
    end = int(last) if last else size - 1
    if end < start:
        return None
    return start, min(end, size - 1)


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` header for downloading ``filename`` (RFC 6266), in ASCII.

    ``filename=`` is an ASCII rendering every client reads (accents dropped, other characters
    made ``-``); the name itself follows as ``filename*=UTF-8''...`` (RFC 8187) when it differs,
    which browsers and HTTP libraries prefer. A header outside Latin-1 would otherwise be
    MIME-encoded whole by Django (``=?utf-8?b?...?=``: no attachment, no name), and one inside
    it sent as raw Latin-1 bytes.
    """
    fallback = _ascii_filename(filename)
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _ascii_filename(filename: str) -> str:
    """``filename`` in printable ASCII without quotes or backslashes, for a quoted
    ``filename=``: accents dropped (é: e), any other run of characters one ``-``."""
    decomposed = unicodedata.normalize("NFKD", filename)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    if plain.isascii() and plain.isprintable() and '"' not in plain and "\\" not in plain:
        return plain
    name = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9._-]", "-", plain))
    name = re.sub(r"-+(?=\.)|(?<=\.)-+", "", name).strip("-")  # "name-.csv", "-name"
    return name if name and not name.startswith(".") else f"download{name}"


def _tag_matches(header: str, tag: str, *, weak: bool) -> bool:
    """Whether an ``If-Match`` (strong comparison) or ``If-None-Match`` (``weak``) list names
    ``tag``, or is ``*``."""
    if header.strip() == "*":
        return True
    for candidate in header.split(","):
        candidate = candidate.strip()
        if weak and candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == tag:
            return True
    return False


def _slice(stream: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    try:
        stream.seek(start)
        left = length
        while left > 0:
            block = stream.read(min(CHUNK, left))
            if not block:
                break
            left -= len(block)
            yield block
    finally:
        stream.close()


def ranged_response(
    request: Request, stored: Any, *, content_type: str, filename: str, etag: str
) -> HttpResponseBase:
    """The stored file, whole (200) or the asked range (206); 416 for a range past its end."""
    size = stored.size
    header = request.headers.get("Range", "")
    if_range = request.headers.get("If-Range", "")
    tag = f'"{etag}"' if etag else ""
    if tag:
        # Conditional requests (RFC 9110 section 13): a cached copy still good is a 304, an
        # update of a copy that changed meanwhile a 412.
        if_match = request.headers.get("If-Match")
        if if_match is not None and not _tag_matches(if_match, tag, weak=False):
            failed = JsonResponse(
                {"detail": f"precondition failed: the file's ETag is {tag}"}, status=412
            )
            failed["ETag"] = tag
            return failed
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None and _tag_matches(if_none_match, tag, weak=True):
            unchanged = HttpResponse(status=304)
            unchanged["ETag"] = tag
            unchanged["Cache-Control"] = "private, no-store"
            return unchanged
    wanted: tuple[int, int] | None = None
    if header and (not if_range or (tag and if_range == tag)):
        try:
            wanted = parse_range(header, size)
        except ValueError:
            refused = HttpResponse(
                b'{"detail": "range not satisfiable: the file has %d bytes"}' % size,
                status=416,
                content_type="application/json",
            )
            refused["Content-Range"] = f"bytes */{size}"
            return refused
    response: HttpResponseBase
    if wanted is None:
        response = FileResponse(stored.open("rb"), content_type=content_type)
        response["Content-Length"] = str(size)
    else:
        start, end = wanted
        length = end - start + 1
        response = StreamingHttpResponse(
            _slice(stored.open("rb"), start, length), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = attachment(filename)
    response["Cache-Control"] = "private, no-store"
    if tag:
        response["ETag"] = tag
    return response
