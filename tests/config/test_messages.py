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


def test_a_new_api_keys_secret_never_travels_in_a_cookie(db: None) -> None:
    """The admin shows a new key's secret once, in a notice: it stays server-side, in the session
    (the messages cookie is signed, not encrypted: anyone holding it read the secret)."""
    from django.test import Client

    from accounts.models import User

    moderator = User.objects.create_superuser("moderator", "mod@example.org", "pw")
    buyer = User.objects.create_user("buyer", role=User.Role.BUYER)
    browser = Client()
    browser.force_login(moderator)
    response = browser.post("/admin/accounts/accesstoken/add/", {"user": buyer.pk, "name": "k"})
    assert response.status_code == 302
    assert "messages" not in response.cookies
    shown = browser.get(response["Location"])
    assert any("cm_" in str(m) and "copy it now" in str(m) for m in shown.context["messages"])
