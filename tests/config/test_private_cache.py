"""Answers to signed-in requests are never stored by a cache: a contributor's rewards and
labels, a buyer's records, on a shared proxy or a shared computer's disk."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import Contributor

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/me/", "/api/v1/me/rewards/", "/api/v1/me/labels/"])
def test_a_signed_in_api_answer_is_not_stored(contributor: Contributor, path: str) -> None:
    response = contributor.api.get(path)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_a_signed_in_page_is_not_stored(contributor: Contributor) -> None:
    browser = Client()
    browser.force_login(contributor.user)
    response = browser.get("/me/rewards/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_public_answers_keep_their_caching(db: None) -> None:
    assert not Client().get("/api/v1/projects/").has_header("Cache-Control")
