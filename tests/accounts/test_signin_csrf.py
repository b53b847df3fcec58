"""Sign-in and sign-out of a browser's cookie session: another site can't sign a visitor's browser
into its own account (login CSRF), an API client without cookies still gets its bearer token, and
signing out revokes the token that sign-in returned."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rest_framework.test import APIClient

from accounts.models import AccessToken, SiweNonce, User
from tests.conftest import sign, siwe_text

pytestmark = pytest.mark.django_db

SIWE = "/api/v1/auth/siwe"


def signed_message(account: LocalAccount) -> dict[str, str]:
    """A sign-in message and its signature, as the attacker or the page makes them."""
    nonce = APIClient().get("/api/v1/auth/nonce").json()
    text = siwe_text(account, nonce)
    return {"message": text, "signature": sign(account, text)}


def page_csrf_token(browser: Client) -> str:
    """The CSRF token of the sign-in page's ``<meta name="csrf-token">``, as app.js reads it."""
    html = browser.get("/login/").content.decode()
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found, html
    return found.group(1)


def page_sign_in(browser: Client, account: LocalAccount) -> dict[str, object]:
    """What app.js does: JSON with the page's CSRF token in ``X-CSRFToken``, same origin."""
    response = browser.post(
        SIWE,
        signed_message(account),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=page_csrf_token(browser),
        HTTP_ORIGIN="http://testserver",
    )
    assert response.status_code == 200, response.content
    assert "sessionid" in response.cookies
    body: dict[str, object] = response.json()
    return body


def bearer(token: object) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def test_a_cross_site_form_cannot_sign_a_browser_into_another_account() -> None:
    attacker = Account.create()
    victim = Client(enforce_csrf_checks=True)  # a browser that never opened a Crowdmint page
    response = victim.post(
        SIWE, signed_message(attacker), HTTP_ORIGIN="https://evil.example"
    )  # form-encoded: what a plain <form> on another site sends
    assert response.status_code in (403, 415)
    assert "sessionid" not in response.cookies
    assert victim.get("/api/v1/me/").status_code in (401, 403)
    assert not User.objects.filter(wallet_address=attacker.address).exists()


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_a_browser_that_visited_the_site_is_refused_without_the_csrf_token(
    content_type: str,
) -> None:
    attacker = Account.create()
    victim = Client(enforce_csrf_checks=True)
    page_csrf_token(victim)  # the victim's browser holds Crowdmint's csrftoken cookie
    payload = signed_message(attacker)
    response = victim.post(
        SIWE,
        payload if content_type == "application/json" else str(payload),
        content_type=content_type,
        HTTP_ORIGIN="https://evil.example",
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert "sessionid" not in response.cookies
    assert victim.get("/api/v1/me/").status_code in (401, 403)
    # Refused before the message was looked at: its nonce is still unused.
    assert SiweNonce.objects.filter(used_at__isnull=False).count() == 0


def test_the_sign_in_page_signs_in_with_its_csrf_token() -> None:
    account = Account.create()
    browser = Client(enforce_csrf_checks=True)
    body = page_sign_in(browser, account)
    assert body["address"] == account.address
    me = browser.get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["address"] == account.address


def test_an_api_client_without_cookies_gets_its_token_and_no_session() -> None:
    account = Account.create()
    client = APIClient(enforce_csrf_checks=True)  # a script: no cookies, no CSRF token
    response = client.post(SIWE, signed_message(account), format="json")
    assert response.status_code == 200, response.content
    assert "sessionid" not in response.cookies
    assert client.get("/api/v1/me/").status_code in (401, 403)
    assert bearer(response.json()["token"]).get("/api/v1/me/").status_code == 200


def test_signing_out_of_the_pages_revokes_the_sign_in_token() -> None:
    browser = Client(enforce_csrf_checks=True)
    body = page_sign_in(browser, Account.create())
    api = bearer(body["token"])
    assert api.get("/api/v1/me/").status_code == 200
    html = browser.get("/me/rewards/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert token, html
    assert browser.post("/logout/", {"csrfmiddlewaretoken": token.group(1)}).status_code == 302
    refused = api.get("/api/v1/me/")
    assert refused.status_code == 401 and refused.json()["detail"] == "Token revoked."
    assert browser.get("/api/v1/me/").status_code in (401, 403)


def test_the_api_logout_with_the_session_cookie_revokes_the_sign_in_token() -> None:
    browser = APIClient()
    body = browser.post(SIWE, signed_message(Account.create()), format="json").json()
    assert browser.post("/api/v1/auth/logout").status_code == 204
    assert bearer(body["token"]).get("/api/v1/me/").status_code == 401
    assert browser.get("/api/v1/me/").status_code in (401, 403)


def test_signing_in_again_in_the_same_browser_revokes_the_previous_sign_in_token() -> None:
    account = Account.create()
    browser = APIClient()
    first = browser.post(SIWE, signed_message(account), format="json").json()
    second = browser.post(SIWE, signed_message(account), format="json").json()
    assert bearer(first["token"]).get("/api/v1/me/").status_code == 401
    assert bearer(second["token"]).get("/api/v1/me/").status_code == 200
    assert browser.get("/api/v1/me/").status_code == 200


def test_signing_out_leaves_other_sign_ins_and_api_keys_alone(buyer_api: APIClient) -> None:
    account = Account.create()
    phone = APIClient()
    other = phone.post(SIWE, signed_message(account), format="json").json()
    browser = APIClient()
    browser.post(SIWE, signed_message(account), format="json")
    assert browser.post("/api/v1/auth/logout").status_code == 204
    assert bearer(other["token"]).get("/api/v1/me/").status_code == 200
    assert phone.get("/api/v1/me/").status_code == 200
    assert AccessToken.objects.get(kind=AccessToken.Kind.API_KEY).revoked_at is None


def test_signing_out_of_the_admin_revokes_the_wallet_sign_in_token() -> None:
    account = Account.create()
    User.objects.create_user(
        "staff-wallet", wallet_address=account.address, is_staff=True, role=User.Role.MODERATOR
    )
    browser = APIClient()
    body = browser.post(SIWE, signed_message(account), format="json").json()
    assert browser.get("/admin/").status_code == 200
    assert browser.get("/admin/logout/").status_code == 405  # a GET signs nobody out
    assert bearer(body["token"]).get("/api/v1/moderation/flags/").status_code == 200
    assert browser.post("/admin/logout/").status_code == 200
    assert bearer(body["token"]).get("/api/v1/moderation/flags/").status_code == 401
