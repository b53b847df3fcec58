"""A NUL character in a query string is a 400 everywhere (PostgreSQL text cannot hold one, and a
filter value carrying it was a 500 there: the admin's list filters, the flags' wallet filter)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/admin/labeling/item/?status__exact=%00",
        "/admin/rewards/payoutbatch/?status__exact=a%00b",
        "/admin/labeling/item/?q=%00",
        "/admin/labeling/item/?%00=1",
    ],
)
def test_a_page_with_a_nul_in_its_query_string_is_a_400(moderator: User, url: str) -> None:
    session = Client()
    session.force_login(moderator)
    response = session.get(url)
    assert response.status_code == 400
    assert b"NUL character" in response.content


def test_an_api_filter_with_a_nul_is_a_json_400(moderator: User) -> None:
    session = Client()
    session.force_login(moderator)
    response = session.get("/api/v1/moderation/flags/", {"wallet": "0x\x00"})
    assert response.status_code == 400
    assert response.json() == {"detail": "bad request: a query parameter contains a NUL character"}


def test_a_percent_00_that_is_not_a_nul_passes(moderator: User) -> None:
    session = Client()
    session.force_login(moderator)
    response = session.get("/admin/labeling/item/", {"q": "100%00"})  # sent as q=100%2500
    assert response.status_code == 200
