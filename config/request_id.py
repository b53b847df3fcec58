"""One id per request, in every log line the request causes, in its Celery tasks' log lines, and
in the response (``X-Request-ID``).

The id comes from the ``X-Request-ID`` header when it is a plausible id (nginx sends one, see
deploy/nginx/), or is made here. It lives in a context variable: a log filter copies it into each
record, and publishing a Celery task copies it into the task's message headers; the worker puts
it back in the context variable while the task runs.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponseBase

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")
HEADER = "X-Request-ID"
# Accepted from clients and proxies: short, and nothing that could forge a log line.
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_from(header: str | None) -> str:
    if header and _VALID.match(header):
        return header
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets the request id for the request's duration and returns it in ``X-Request-ID``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        token = REQUEST_ID.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            REQUEST_ID.reset(token)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id`` attribute ("" outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = REQUEST_ID.get()
        return True


# Attributes every LogRecord has; anything else on a record was passed with ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, and the ``extra``
    fields (task id and name in Celery), plus the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or REQUEST_ID.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# --- Celery -------------------------------------------------------------------------------------

task_logger = logging.getLogger("crowdmint.tasks")


def add_request_id_header(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish``: the publishing request's id travels in the message headers."""
    request_id = REQUEST_ID.get()
    if headers is not None and request_id:
        headers["request_id"] = request_id


def task_started(task: Any = None, task_id: str = "", **_: Any) -> None:
    """``task_prerun``: the task runs under the id of the request that enqueued it: from the
    message's headers in a worker, the current one when it runs eagerly, else a new one."""
    header = getattr(task.request, "request_id", None) if task is not None else None
    request_id = request_id_from(header or REQUEST_ID.get() or None)
    task.request.crowdmint_request_id_token = REQUEST_ID.set(request_id)
    task_logger.info(
        "task started", extra={"task_id": task_id, "task_name": getattr(task, "name", "")}
    )


def task_finished(task: Any = None, task_id: str = "", state: str = "", **_: Any) -> None:
    """``task_postrun``: log the outcome under the request id, then leave its context."""
    task_logger.info(
        "task finished",
        extra={"task_id": task_id, "task_name": getattr(task, "name", ""), "state": state or ""},
    )
    token = getattr(task.request, "crowdmint_request_id_token", None) if task else None
    if token is not None:
        REQUEST_ID.reset(token)
