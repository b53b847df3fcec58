"""Every error under ``/api/v1/`` is JSON with a ``detail``, in debug and production alike."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.conftest import Contributor

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def debug(request: pytest.FixtureRequest, settings: Any) -> bool:
    settings.DEBUG = request.param
    return bool(request.param)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/items/-1/annotations/"),
        ("post", "/api/v1/items/null/skip"),
        ("get", "/api/v1/items/1.5/content"),
        ("get", "/api/v1/datasets/abc/records/"),
        ("get", "/api/v1/no-such-endpoint"),
    ],
)
def test_a_path_no_endpoint_matches_gets_a_json_404(
    debug: bool, contributor: Contributor, method: str, path: str
) -> None:
    response = getattr(contributor.api, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == f"not found: no API endpoint at {path} (see /api/v1/docs)"


def test_too_many_query_parameters_get_a_json_400(debug: bool) -> None:
    query = "&".join(["a="] * 1001)
    for path in ("/api/v1/projects/", "/api/v1/health", "/api/v1/datasets/"):
        response = APIClient().get(f"{path}?{query}")
        assert response.status_code == 400, path
        assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["detail"]


def test_a_missing_trailing_slash_still_redirects(debug: bool) -> None:
    response = APIClient().get("/api/v1/projects")
    assert response.status_code == 301
    assert response["Location"] == "/api/v1/projects/"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_write_without_the_trailing_slash_is_a_json_404_naming_the_path(
    debug: bool, contributor: Contributor, method: str
) -> None:
    """A redirect would drop the body (and most clients follow a 301 with a GET); under DEBUG
    Django's APPEND_SLASH raised a RuntimeError, a 500."""
    response = getattr(contributor.api, method)(
        "/api/v1/projects/1/items", {"text": "x"}, format="json"
    )
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == (
        "not found: no API endpoint at /api/v1/projects/1/items; this one is "
        "/api/v1/projects/1/items/ (with the trailing slash)"
    )


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_write_with_a_trailing_slash_its_endpoint_lacks_is_a_json_404_naming_the_path(
    debug: bool, contributor: Contributor, method: str
) -> None:
    response = getattr(contributor.api, method)("/api/v1/items/1/skip/", {}, format="json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == (
        "not found: no API endpoint at /api/v1/items/1/skip/; this one is "
        "/api/v1/items/1/skip (without the trailing slash)"
    )


def test_a_read_with_a_trailing_slash_its_endpoint_lacks_is_redirected_with_its_query(
    contributor: Contributor,
) -> None:
    response = contributor.api.get("/api/v1/projects/1/progress/?a=1&b=%2F")
    assert response.status_code == 301
    assert response["Location"] == "/api/v1/projects/1/progress?a=1&b=%2F"
    assert contributor.api.get("/api/v1/no-such/").status_code == 404


def test_a_write_to_a_path_without_a_slash_form_is_a_plain_404(contributor: Contributor) -> None:
    response = contributor.api.post("/api/v1/no-such-endpoint", {}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"] == (
        "not found: no API endpoint at /api/v1/no-such-endpoint (see /api/v1/docs)"
    )


def test_an_unhandled_error_is_a_json_500_and_is_logged(
    settings: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.DEBUG = False

    def broken() -> Any:
        raise RuntimeError("the database fell over")

    monkeypatch.setattr("labeling.selectors.project_list_open", broken)
    response = APIClient(raise_request_exception=False).get("/api/v1/projects/")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error: the error was logged"}
    assert "the database fell over" in caplog.text


def test_pages_outside_the_api_keep_their_html_errors(settings: Any) -> None:
    settings.DEBUG = False
    response = APIClient().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_pages_outside_the_api_have_the_sites_own_error_pages(settings: Any) -> None:
    """Not Django's bare pages: the site's header, what happened and a way back."""
    from django.test import Client

    settings.DEBUG = False
    missing = Client().get("/no-such-page/")
    assert missing.status_code == 404
    assert b"Nothing here" in missing.content and b'class="brand"' in missing.content
    # A form posted from a page left open across a sign-in (a stale CSRF token).
    stale = Client(enforce_csrf_checks=True).post("/logout/")
    assert stale.status_code == 403
    assert b"This page is out of date" in stale.content and b'class="brand"' in stale.content


def test_a_server_error_page_renders_without_a_request(settings: Any) -> None:
    """Django renders 500.html without a request context (nothing may be left to build one)."""
    from django.template import loader

    html = loader.get_template("500.html").render({})
    assert "Something went wrong on our side" in html and "Sign in" in html
