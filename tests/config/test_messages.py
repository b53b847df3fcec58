"""Django's one-time messages are set up for the pages and the admin, not for ``/api/``."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from config.middleware import PageMessageMiddleware


def _through(path: str) -> HttpRequest:
    request = RequestFactory().get(path)
    request.session = {}  # type: ignore[attr-defined]

    def view(request: HttpRequest) -> HttpResponse:
        if not path.startswith("/api/"):
            messages.info(request, "saved")
        return HttpResponse("ok")

    response = PageMessageMiddleware(view)(request)
    assert response.status_code == 200
    return request


def test_a_page_request_has_its_messages_and_an_api_request_has_none() -> None:
    page = _through("/me/")
    assert [str(m) for m in messages.get_messages(page)] == ["saved"]
    api = _through("/api/v1/me/")
    assert not hasattr(api, "_messages")
    assert list(messages.get_messages(api)) == []
