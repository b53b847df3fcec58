"""Ids in query parameters: ASCII digits within 64 bits, or a JSON 400 (never a 500)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from config.ids import MAX_ID, parse_id
from labeling.models import Project
from tests.conftest import Contributor

NOT_IDS = ["", "abc", "-1", "+1", "1.0", " 1", "\u00b2", "\u0661\u0662", str(MAX_ID + 1), "9" * 40]


def test_parse_id_reads_ascii_digits_within_64_bits() -> None:
    assert [parse_id(raw) for raw in ("0", "7", "007", str(MAX_ID))] == [0, 7, 7, MAX_ID]
    assert [parse_id(raw) for raw in NOT_IDS] == [None] * len(NOT_IDS)


@pytest.mark.django_db
@pytest.mark.parametrize("raw", NOT_IDS[1:])  # an empty filter means no filter on some lists
def test_an_id_parameter_that_is_not_an_id_is_a_json_400(
    raw: str, contributor: Contributor, moderator: User, text_project: Project
) -> None:
    session = Client()
    session.force_login(moderator)
    for client, path, name in [
        (contributor.api, "/api/v1/me/labels/", "project"),
        (contributor.api, "/api/v1/me/uploads/", "project"),
        (contributor.api, f"/api/v1/projects/{text_project.pk}/next-task/", "after"),
        (session, "/api/v1/moderation/flags/", "project"),
        (session, "/api/v1/moderation/flags/", "user"),
    ]:
        response = client.get(path, {name: raw})
        assert response.status_code == 400, (path, name, raw, response.content)
        assert response["Content-Type"] == "application/json"
        assert name in response.json()["detail"]


@pytest.mark.django_db
def test_the_largest_id_is_a_filter_that_matches_nothing(contributor: Contributor) -> None:
    for path in ("/api/v1/me/labels/", "/api/v1/me/uploads/"):
        response = contributor.api.get(path, {"project": str(MAX_ID)})
        assert response.status_code == 200 and response.json() == [], response.content
