"""Content negotiation for the endpoints that answer a file, not JSON.

DRF picks a renderer from the ``Accept`` header before the view runs; the file endpoints (export
streams and downloads, Croissant, dataset cards, item images) have only the JSON renderer, for
their errors, so a client asking for the file's own type (``Accept: text/csv``,
``application/octet-stream``, ``image/*``: what Java's and Go's download code sends) got a 406.
Their body's type is the file's, whatever the client accepts (RFC 9110 lets a server ignore
``Accept``); errors stay JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class FileContentNegotiation(DefaultContentNegotiation):
    """Parsers as usual; the first renderer, whatever ``Accept`` says."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        first = next(iter(renderers))
        return first, str(first.media_type)
