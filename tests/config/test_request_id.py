"""A request id per request: in the response, in every log line, and in the Celery tasks the
request enqueued (the real worker's side is checked in tests/integration/test_scale_out.py)."""

from __future__ import annotations

import json
import logging
import re
from types import SimpleNamespace
from typing import Any

import pytest
from rest_framework.test import APIClient

from config.request_id import (
    REQUEST_ID,
    JsonFormatter,
    RequestIdFilter,
    add_request_id_header,
    task_finished,
    task_started,
)

pytestmark = pytest.mark.django_db


def test_each_response_gets_a_new_request_id() -> None:
    first = APIClient().get("/api/v1/health/live")["X-Request-ID"]
    second = APIClient().get("/api/v1/health/live")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


def test_a_plausible_request_id_from_the_proxy_is_kept() -> None:
    reply = APIClient().get("/api/v1/projects/", HTTP_X_REQUEST_ID="nginx-4f2a.1")
    assert reply["X-Request-ID"] == "nginx-4f2a.1"


@pytest.mark.parametrize("forged", ["a\nforged log line", "x" * 129, "", 'quote"s'])
def test_a_forged_or_oversized_request_id_is_replaced(forged: str) -> None:
    reply = APIClient().get("/api/v1/projects/", HTTP_X_REQUEST_ID=forged)
    assert re.fullmatch(r"[0-9a-f]{32}", reply["X-Request-ID"])


def json_line(message: str, **extra: Any) -> dict[str, Any]:
    record = logging.LogRecord("crowdmint.test", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    RequestIdFilter().filter(record)
    parsed: dict[str, Any] = json.loads(JsonFormatter().format(record))
    return parsed


def test_json_log_lines_carry_the_request_id_and_extra_fields() -> None:
    token = REQUEST_ID.set("req-123")
    try:
        line = json_line("label saved", task_id="t-1")
    finally:
        REQUEST_ID.reset(token)
    assert line["message"] == "label saved"
    assert line["request_id"] == "req-123"
    assert line["task_id"] == "t-1"
    assert line["level"] == "INFO" and line["logger"] == "crowdmint.test"
    assert json_line("outside")["request_id"] == ""


def test_the_request_id_goes_into_a_published_task_and_back_out_in_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers: dict[str, Any] = {}
    token = REQUEST_ID.set("req-abc")
    try:
        add_request_id_header(headers=headers)
    finally:
        REQUEST_ID.reset(token)
    assert headers == {"request_id": "req-abc"}

    # The worker: Celery hands custom headers to the task as attributes of task.request.
    task = SimpleNamespace(name="labeling.tasks.decide_item", request=SimpleNamespace(**headers))
    caplog.set_level(logging.INFO, logger="crowdmint.tasks")
    task_started(task=task, task_id="t-9")
    assert REQUEST_ID.get() == "req-abc"
    task_finished(task=task, task_id="t-9", state="SUCCESS")
    assert REQUEST_ID.get() == ""
    assert [r.message for r in caplog.records] == ["task started", "task finished"]


def test_a_task_run_eagerly_keeps_the_request_id_of_the_request_running_it() -> None:
    task = SimpleNamespace(name="labeling.tasks.decide_item", request=SimpleNamespace())
    token = REQUEST_ID.set("req-eager")
    try:
        task_started(task=task, task_id="t-1")
        assert REQUEST_ID.get() == "req-eager"
        task_finished(task=task, task_id="t-1", state="SUCCESS")
        assert REQUEST_ID.get() == "req-eager"
    finally:
        REQUEST_ID.reset(token)
