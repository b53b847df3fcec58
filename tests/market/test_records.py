"""Buyers' records: filters that work (and a 400 for a malformed one), who decided each record,
and one timestamp format across the JSON API, JSON Lines and CSV."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from labeling.models import Decision, Item, Project
from labeling.services import item_create_text, item_override
from tests.conftest import give_grant

pytestmark = pytest.mark.django_db

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def accepted(
    project: Project,
    text: str,
    *,
    label: str = "positive",
    confidence: float = 0.97,
    labels: int = 3,
    decided_at: datetime | None = None,
) -> Item:
    item = item_create_text(project=project, contributor=None, text=text)
    Item.objects.filter(pk=item.pk).update(
        status=Item.Status.ACCEPTED,
        decided_label=label,
        decided_at=decided_at or datetime(2026, 3, 1, 12, tzinfo=UTC),
        confidence=confidence,
        label_count=labels,
        decision_version=1,
    )
    Decision.objects.create(
        item=item,
        version=1,
        label=label,
        posterior=confidence,
        method="dawid_skene",
        decided_by="crowd",
        n_classes=2,
    )
    return item


@pytest.fixture
def api(buyer_api: APIClient, buyer: User, text_project: Project) -> APIClient:
    give_grant(text_project, buyer)
    return buyer_api


def texts(api: APIClient, project: Project, **params: Any) -> list[str]:
    response = api.get(f"/api/v1/datasets/{project.pk}/records/", params)
    assert response.status_code == 200, response.json()
    return [r["text"] for r in response.json()["results"]]


def test_min_confidence_keeps_records_at_least_that_sure(
    api: APIClient, text_project: Project
) -> None:
    accepted(text_project, "unsure", confidence=0.6)
    accepted(text_project, "sure", confidence=0.999)
    assert texts(api, text_project, min_confidence="0.999") == ["sure"]
    assert texts(api, text_project, min_confidence="0") == ["unsure", "sure"]


def test_label_keeps_records_of_that_class(api: APIClient, text_project: Project) -> None:
    accepted(text_project, "good", label="positive")
    accepted(text_project, "bad", label="negative")
    assert texts(api, text_project, label="negative") == ["bad"]


def test_decided_after_returns_only_later_decisions_for_incremental_syncs(
    api: APIClient, text_project: Project
) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for n in range(3):
        accepted(text_project, f"day {n}", decided_at=start + timedelta(days=n))
    first = api.get(f"/api/v1/datasets/{text_project.pk}/records/").json()["results"]
    last_seen = first[1]["decided_at"]
    assert last_seen == "2026-03-02T00:00:00.000000Z"
    assert texts(api, text_project, decided_after=last_seen) == ["day 2"]
    assert texts(api, text_project, decided_after="2026-03-02") == ["day 2"]  # a date: midnight UTC
    assert texts(api, text_project, decided_after="2026-03-02T01:00:00+02:00") == ["day 1", "day 2"]
    # The same offset sent unencoded (curl '...?decided_after=2026-03-02T01:00:00+02:00'): the "+"
    # arrives as a space.
    raw = api.get(
        f"/api/v1/datasets/{text_project.pk}/records/?decided_after=2026-03-02T01:00:00+02:00"
    )
    assert [r["text"] for r in raw.json()["results"]] == ["day 1", "day 2"]
    assert texts(api, text_project, decided_after="2030-01-01") == []


def test_min_labels_keeps_records_with_enough_labels(api: APIClient, text_project: Project) -> None:
    accepted(text_project, "three", labels=3)
    accepted(text_project, "five", labels=5)
    assert texts(api, text_project, min_labels="4") == ["five"]


def test_the_issues_example_is_no_longer_ignored(api: APIClient, text_project: Project) -> None:
    accepted(text_project, "fine", confidence=0.99)
    assert texts(api, text_project, min_confidence="0.999", decided_after="2030-01-01") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_confidence": "abc"}, "min_confidence"),
        ({"min_confidence": "1.5"}, "min_confidence"),
        ({"min_confidence": "nan"}, "min_confidence"),
        ({"min_confidence": "-inf"}, "min_confidence"),
        ({"label": "neutral"}, "label"),
        ({"decided_after": "yesterday"}, "decided_after"),
        ({"decided_after": "2026-13-45"}, "decided_after"),
        ({"decided_after": "2026-01-01T25:00:00Z"}, "decided_after"),
        ({"decided_after": "0001-01-01T00:00:00+14:00"}, "decided_after"),  # before year 1 in UTC
        ({"decided_after": "9999-12-31T23:00:00-02:00"}, "decided_after"),  # after 9999 in UTC
        ({"min_labels": "two"}, "min_labels"),
        ({"min_labels": "0"}, "min_labels"),
        ({"min_labels": "-3"}, "min_labels"),
        ({"min_labels": "1.5"}, "min_labels"),
        ({"min_labels": "9" * 40}, "min_labels"),
        ({"decided_by": "robot"}, "decided_by"),
        ({"min_confidance": "0.9"}, "min_confidance"),  # a typo is not silently ignored
        ({"min_confidence": ["0.1", "0.2"]}, "min_confidence"),
    ],
)
def test_a_malformed_filter_is_a_400_naming_it(
    api: APIClient, text_project: Project, params: dict[str, Any], field: str
) -> None:
    accepted(text_project, "fine")
    for path in ("records/", "export"):
        response = api.get(f"/api/v1/datasets/{text_project.pk}/{path}", params)
        assert response.status_code == 400, (params, response.content)
        assert field.split("_")[0] in response.json()["detail"]


def test_each_record_says_who_decided_it(
    api: APIClient, text_project: Project, moderator: User
) -> None:
    accepted(text_project, "the crowd's")
    reviewed = item_create_text(project=text_project, contributor=None, text="the moderator's")
    Item.objects.filter(pk=reviewed.pk).update(status=Item.Status.REVIEW)
    item_override(item=reviewed, label="negative", moderator=moderator)
    rows = api.get(f"/api/v1/datasets/{text_project.pk}/records/").json()["results"]
    assert [(r["decided_by"], r["provenance"]["method"]) for r in rows] == [
        ("crowd", "dawid_skene"),
        ("moderator", None),  # it used to say dawid_skene, with confidence 1.0
    ]
    assert texts(api, text_project, decided_by="moderator") == ["the moderator's"]
    lines = b"".join(
        api.get(f"/api/v1/datasets/{text_project.pk}/export").streaming_content  # type: ignore[attr-defined]
    ).splitlines()
    assert [json.loads(line)["decided_by"] for line in lines] == ["crowd", "moderator"]


@pytest.mark.parametrize(
    "microsecond", [123, 838000, 0], ids=["microseconds", "trailing-zeros", "whole-second"]
)
def test_timestamps_are_iso_8601_utc_with_z_in_json_jsonl_and_csv(
    api: APIClient, text_project: Project, microsecond: int
) -> None:
    # Both databases print a whole second without a fraction; PostgreSQL drops trailing zeros.
    decided_at = datetime(2026, 3, 1, 12, 30, 5, microsecond, tzinfo=UTC)
    accepted(text_project, "fine", decided_at=decided_at)
    record = api.get(f"/api/v1/datasets/{text_project.pk}/records/").json()["results"][0]
    jsonl = b"".join(
        api.get(f"/api/v1/datasets/{text_project.pk}/export").streaming_content  # type: ignore[attr-defined]
    )
    line = json.loads(jsonl)
    table = list(
        csv.DictReader(
            io.StringIO(
                b"".join(
                    api.get(
                        f"/api/v1/datasets/{text_project.pk}/export", {"format": "csv"}
                    ).streaming_content  # type: ignore[attr-defined]
                ).decode()
            )
        )
    )
    expected = f"2026-03-01T12:30:05.{microsecond:06d}Z"
    assert record["decided_at"] == line["decided_at"] == table[0]["decided_at"] == expected
    for created in (record["provenance"]["created_at"], line["created_at"], table[0]["created_at"]):
        assert ISO_Z.match(created)


def test_the_schema_documents_every_filter() -> None:
    schema = (
        APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    )
    for path in ("/api/v1/datasets/{dataset_id}/records/", "/api/v1/datasets/{dataset_id}/export"):
        parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        assert {"min_confidence", "label", "decided_after", "min_labels", "decided_by"} <= set(
            parameters
        )
        assert parameters["decided_by"]["schema"]["enum"] == ["crowd", "moderator"]
        assert parameters["decided_after"]["schema"]["format"] == "date-time"
        # The bounds the API enforces, so a generated client checks them too.
        assert parameters["min_confidence"]["schema"] | {"format": "double"} == {
            "type": "number",
            "format": "double",
            "minimum": 0,
            "maximum": 1,
        }
        assert parameters["min_labels"]["schema"] == {
            "type": "integer",
            "minimum": 1,
            "maximum": 999_999,
        }
    body = schema["components"]["schemas"]["ExportInputRequest"]["properties"]
    assert (body["min_confidence"]["minimum"], body["min_confidence"]["maximum"]) == (0, 1)
    assert (body["min_labels"]["minimum"], body["min_labels"]["maximum"]) == (1, 999_999)


def test_a_jsonl_line_is_the_generic_encoders_json() -> None:
    """The hand-written line equals ``json.dumps`` of the record (escapes, nulls, numbers)."""
    from market.records import EXPORT_COLUMNS
    from market.streams import jsonl_line

    row: dict[str, Any] = {name: None for name in EXPORT_COLUMNS}
    row.update(
        id=7,
        text='quote " backslash \\ newline \n tab \t nul-ish \u0001 é 😀 \u2028',
        label="positive",
        agreement=1.0,
        confidence=0.123456789012345,
        labels=3,
        width=640,
        decided_at="2030-01-01T00:00:00.000000Z",
        value={"label": "positive"},
        value_json='{"label":"positive"}',
    )
    expected = {name: row[name] for name in EXPORT_COLUMNS}
    assert json.loads(jsonl_line(row)) == expected
    assert list(json.loads(jsonl_line(row))) == list(EXPORT_COLUMNS)
