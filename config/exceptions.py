"""One error shape for the whole API: ``{"detail": "<message>", ...}`` on every 4xx.

DRF returns field errors as a bare mapping; buyers' and contributors' clients want one message to
show, so validation errors keep their per-field mapping under ``errors`` and gain a ``detail``.
"""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler


def _first_message(data: Any) -> str:
    if isinstance(data, dict):
        for key, value in data.items():
            message = _first_message(value)
            if key == "non_field_errors":
                return message
            return f"{key}: {message}"
        return "invalid request"
    if isinstance(data, list | tuple):
        return _first_message(data[0]) if data else "invalid request"
    return str(data)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data:
        return response
    response.data = {"detail": _first_message(data), "errors": data}
    return response
