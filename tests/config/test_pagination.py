"""Cursor-paginated lists refuse a hand-edited cursor with the 404 DRF gives any malformed one,
instead of passing its position to the database (a 500)."""

from __future__ import annotations

import base64

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from labeling.models import Project
from moderation.models import Flag
from tests.conftest import Contributor, give_grant

pytestmark = pytest.mark.django_db


def cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


BAD_CURSORS = [
    cursor("p=abc"),
    cursor("p=2026-13-01"),
    cursor("p=-5"),
    cursor("p=1.5"),
    cursor("p=" + "9" * 30),  # beyond a 64-bit id
    cursor("r=1&p=\u0661\u0662"),  # digits, but not ASCII ones
    cursor("o=x"),  # DRF's own check
    "not base64 at all",
]


@pytest.mark.parametrize("bad", BAD_CURSORS)
def test_a_hand_edited_cursor_is_a_json_404_on_every_paginated_list(
    bad: str,
    buyer_api: APIClient,
    buyer: User,
    text_project: Project,
    contributor: Contributor,
    moderator: User,
) -> None:
    give_grant(text_project, buyer)
    moderator_session = Client()
    moderator_session.force_login(moderator)
    for client, path in [
        (buyer_api, f"/api/v1/datasets/{text_project.pk}/records/"),
        (contributor.api, "/api/v1/me/receipts/"),
        (moderator_session, "/api/v1/moderation/flags/"),
    ]:
        response = client.get(path, {"cursor": bad})
        assert response.status_code == 404, (path, response.content)
        assert response["Content-Type"] == "application/json"
        assert response.json()["detail"] == "Invalid cursor"


def test_the_cursors_the_lists_hand_out_still_page_through_everything(
    contributor: Contributor, second_contributor: Contributor, moderator: User
) -> None:
    flags = [
        Flag.objects.create(user=who.user, kind=Flag.Kind.SPEED, evidence={"seconds": 0.2})
        for who in (contributor, second_contributor, contributor)
    ]
    session = Client()
    session.force_login(moderator)
    seen: list[int] = []
    url: str | None = "/api/v1/moderation/flags/?page_size=2"
    while url:
        page = session.get(url)
        assert page.status_code == 200, page.content
        seen += [row["id"] for row in page.json()["results"]]
        url = page.json()["next"]
    assert seen == sorted((f.pk for f in flags), reverse=True)


def test_a_repeated_cursor_is_a_400_naming_it(
    buyer_api: APIClient, buyer: User, text_project: Project
) -> None:
    # DRF used the last of the two, so a client's stale cursor quietly won or lost.
    give_grant(text_project, buyer)
    path = f"/api/v1/datasets/{text_project.pk}/records/"
    response = buyer_api.get(f"{path}?cursor={cursor('p=1')}&cursor={cursor('p=2')}")
    assert response.status_code == 400, response.content
    assert response.json()["detail"] == "cursor: give it once"
