"""Sign-In with Ethereum over the HTTP API, bearer tokens, API keys and role gates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import TestCase
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from eth_account import Account
from rest_framework.test import APIClient

from accounts.models import SiweNonce, User
from tests.conftest import Contributor, sign, siwe_text

pytestmark = pytest.mark.django_db


def test_the_nonce_names_the_domain_and_chain_the_message_must_use() -> None:
    body = APIClient().get("/api/v1/auth/nonce").json()
    assert body["domain"] == "testserver"
    assert body["chain_id"] == 1
    assert len(body["nonce"]) >= 8 and body["nonce"].isalnum()
    assert SiweNonce.objects.get(nonce=body["nonce"]).used_at is None


def test_the_nonce_gives_the_servers_time_for_issued_at_and_a_message_using_it_signs_in() -> None:
    # The page put the device's clock in Issued At: five minutes fast, and no sign-in worked.
    before = timezone.now().replace(microsecond=0)
    api = APIClient()
    nonce = api.get("/api/v1/auth/nonce").json()
    issued_at = parse_datetime(nonce["issued_at"])
    assert issued_at is not None and before <= issued_at <= timezone.now()
    assert issued_at.microsecond == 0
    account = Account.create()
    text = siwe_text(account, nonce, issued_at=issued_at)
    assert f"Issued At: {nonce['issued_at']}" in text
    response = api.post(
        "/api/v1/auth/siwe", {"message": text, "signature": sign(account, text)}, format="json"
    )
    assert response.status_code == 200


def test_the_nonce_endpoint_checksums_a_lowercase_wallet_address() -> None:
    account = Account.create()
    body = APIClient().get("/api/v1/auth/nonce", {"address": account.address.lower()}).json()
    assert body["address"] == account.address
    bad = APIClient().get("/api/v1/auth/nonce", {"address": "0x123"})
    assert bad.status_code == 400 and "address" in bad.json()["detail"]


def test_a_signed_message_signs_the_wallet_in_with_a_token_and_a_session_cookie() -> None:
    account = Account.create()
    api = APIClient()
    nonce = api.get("/api/v1/auth/nonce").json()
    text = siwe_text(account, nonce)
    response = api.post(
        "/api/v1/auth/siwe", {"message": text, "signature": sign(account, text)}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["address"] == account.address
    assert body["token"].startswith("cm_")
    assert "sessionid" in response.cookies
    user = User.objects.get(wallet_address=account.address)
    assert user.role == User.Role.CONTRIBUTOR

    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert bearer.get("/api/v1/me/rewards/").json()["address"] == account.address
    assert api.get("/api/v1/me/rewards/").status_code == 200  # the session cookie works too


def signed_in_browser() -> tuple[APIClient, User]:
    account = Account.create()
    browser = APIClient()
    text = siwe_text(account, browser.get("/api/v1/auth/nonce").json())
    response = browser.post(
        "/api/v1/auth/siwe", {"message": text, "signature": sign(account, text)}, format="json"
    )
    assert response.status_code == 200
    return browser, User.objects.get(wallet_address=account.address)


def test_a_revoked_sign_in_token_ends_its_browser_session(moderator: User) -> None:
    """The bearer token stopped working; the browser's session cookie, going with it, didn't."""
    from accounts.models import AccessToken
    from accounts.services import access_token_revoke

    browser, user = signed_in_browser()
    other, _ = signed_in_browser()
    assert browser.get("/api/v1/me/").status_code == 200
    token = AccessToken.objects.get(user=user)
    with TestCase.captureOnCommitCallbacks(execute=True):
        access_token_revoke(token=token, actor=moderator, reason="phished wallet")
    assert browser.get("/api/v1/me/").status_code in (401, 403)
    assert browser.get("/me/rewards/").status_code == 302  # back to the sign-in page
    assert other.get("/api/v1/me/").status_code == 200


def test_an_expired_sign_in_token_ends_its_browser_session(settings: Any) -> None:
    from accounts.models import AccessToken

    settings.AUTH_CACHE_SECONDS = 0
    browser, user = signed_in_browser()
    AccessToken.objects.filter(user=user).update(expires_at=timezone.now())
    assert browser.get("/api/v1/me/").status_code in (401, 403)
    assert settings.ACCESS_TOKEN_TTL.total_seconds() >= settings.SESSION_COOKIE_AGE


def test_it_rejects_a_replayed_nonce() -> None:
    account = Account.create()
    api = APIClient()
    nonce = api.get("/api/v1/auth/nonce").json()
    text = siwe_text(account, nonce)
    payload = {"message": text, "signature": sign(account, text)}
    assert api.post("/api/v1/auth/siwe", payload, format="json").status_code == 200
    replay = APIClient().post("/api/v1/auth/siwe", payload, format="json")
    assert replay.status_code == 401
    assert "already used" in replay.json()["detail"]


def test_it_rejects_an_expired_nonce() -> None:
    account = Account.create()
    nonce = APIClient().get("/api/v1/auth/nonce").json()
    SiweNonce.objects.filter(nonce=nonce["nonce"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    text = siwe_text(account, nonce)
    response = APIClient().post(
        "/api/v1/auth/siwe", {"message": text, "signature": sign(account, text)}, format="json"
    )
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_it_rejects_an_expired_message() -> None:
    account = Account.create()
    nonce = APIClient().get("/api/v1/auth/nonce").json()
    now = timezone.now().replace(microsecond=0)
    text = siwe_text(
        account, nonce, issued_at=now - timedelta(hours=2), expiration_time=now - timedelta(hours=1)
    )
    response = APIClient().post(
        "/api/v1/auth/siwe", {"message": text, "signature": sign(account, text)}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "message expired"


def test_it_rejects_a_message_for_a_foreign_domain() -> None:
    account = Account.create()
    nonce = APIClient().get("/api/v1/auth/nonce").json()
    text = siwe_text(account, nonce, domain="evil.example", uri="https://evil.example/")
    response = APIClient().post(
        "/api/v1/auth/siwe", {"message": text, "signature": sign(account, text)}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "domain mismatch"


def test_it_rejects_a_wrong_chain_and_a_signature_by_another_wallet() -> None:
    account, other = Account.create(), Account.create()
    nonce = APIClient().get("/api/v1/auth/nonce").json()
    text = siwe_text(account, nonce, chain_id=5)
    response = APIClient().post(
        "/api/v1/auth/siwe", {"message": text, "signature": sign(account, text)}, format="json"
    )
    assert response.json()["detail"] == "chain id mismatch"
    nonce = APIClient().get("/api/v1/auth/nonce").json()
    text = siwe_text(account, nonce)
    response = APIClient().post(
        "/api/v1/auth/siwe", {"message": text, "signature": sign(other, text)}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "signature does not match address"
    assert not User.objects.filter(wallet_address=account.address).exists()


def test_a_malformed_request_gets_400_with_a_message() -> None:
    response = APIClient().post(
        "/api/v1/auth/siwe", {"message": "hello", "signature": "0x12"}, format="json"
    )
    assert response.status_code == 400
    assert "signature" in response.json()["detail"]


@pytest.mark.parametrize("body", [["hello", "0x12"], "hello", 7, None], ids=repr)
def test_a_body_that_is_not_an_object_gets_400(body: object) -> None:
    response = APIClient().post("/api/v1/auth/siwe", body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"]


def test_a_wallet_has_one_account_across_sign_ins(contributor: Contributor) -> None:
    from tests.conftest import sign_in

    sign_in(APIClient(), contributor.account)
    assert User.objects.filter(wallet_address=contributor.address).count() == 1


def test_a_banned_contributor_cannot_sign_in_and_their_tokens_stop_working(
    contributor: Contributor,
) -> None:
    from accounts.services import user_ban

    user_ban(user=contributor.user, reason="spam")
    assert contributor.api.get("/api/v1/me/rewards/").status_code == 401
    api = APIClient()
    nonce = api.get("/api/v1/auth/nonce").json()
    text = siwe_text(contributor.account, nonce)
    response = api.post(
        "/api/v1/auth/siwe",
        {"message": text, "signature": sign(contributor.account, text)},
        format="json",
    )
    assert response.status_code == 401
    assert "banned" in response.json()["detail"]


def test_roles_are_checked_on_each_endpoint(
    contributor: Contributor, buyer_api: APIClient, text_project: object
) -> None:
    assert contributor.api.get("/api/v1/datasets/").status_code == 403
    assert buyer_api.get("/api/v1/datasets/").status_code == 200
    assert buyer_api.get(f"/api/v1/projects/{text_project.pk}/next-task/").status_code == 403  # type: ignore[attr-defined]
    assert APIClient().get("/api/v1/datasets/").status_code == 401
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Bearer cm_not-a-real-token")
    assert stranger.get("/api/v1/me/rewards/").status_code == 401


def test_a_moderator_issues_a_buyer_an_api_key_in_admin_shown_once_and_stored_hashed(
    moderator: User,
) -> None:
    from django.test import Client

    from accounts.models import AccessToken

    buyer = User.objects.create_user("acme", role=User.Role.BUYER)
    browser = Client()
    browser.force_login(moderator)
    response = browser.post(
        "/admin/accounts/accesstoken/add/", {"user": buyer.pk, "name": "acme prod"}, follow=True
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    key = next(word for m in shown for word in m.split() if word.startswith("cm_"))
    token = AccessToken.objects.get(user=buyer)
    assert token.key_hash != key and key not in token.key_hash
    from accounts.models import AuditEvent

    event = AuditEvent.objects.get(action="api_key.issue")
    assert (event.actor, event.target_id) == (moderator, str(token.pk))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/datasets/").status_code == 200


def test_admin_refuses_an_api_key_for_a_contributor(
    moderator: User, contributor: Contributor
) -> None:
    from django.test import Client

    browser = Client()
    browser.force_login(moderator)
    response = browser.post(
        "/admin/accounts/accesstoken/add/", {"user": contributor.user.pk, "name": "x"}
    )
    assert response.status_code == 200
    assert b"API keys are for buyers" in response.content


def test_sign_in_endpoints_are_rate_limited_per_client(monkeypatch: pytest.MonkeyPatch) -> None:
    from rest_framework.settings import api_settings

    from accounts.apis import SignInThrottle

    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "sign_in": "3/minute"}
    monkeypatch.setattr(SignInThrottle, "THROTTLE_RATES", rates)
    codes = [APIClient().get("/api/v1/auth/nonce").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert SiweNonce.objects.count() == 3


def test_expired_nonces_are_swept() -> None:
    APIClient().get("/api/v1/auth/nonce")
    SiweNonce.objects.update(expires_at=timezone.now() - timedelta(hours=1))
    APIClient().get("/api/v1/auth/nonce")
    assert SiweNonce.objects.count() == 1


def test_logout_revokes_the_sign_in_token(contributor: Contributor) -> None:
    assert contributor.api.post("/api/v1/auth/logout").status_code == 204
    refused = contributor.api.get("/api/v1/me/")
    assert refused.status_code == 401 and refused.json()["detail"] == "Token revoked."
    # RFC 6750: a refused token says so; no token at all, a malformed header, each its own.
    assert refused["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert APIClient().get("/api/v1/me/")["WWW-Authenticate"] == "Bearer"
    malformed = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer a b")
    assert malformed["WWW-Authenticate"] == 'Bearer error="invalid_request"'


def test_logout_with_an_api_key_leaves_the_key_working(buyer_api: APIClient) -> None:
    from accounts.models import AccessToken

    assert buyer_api.post("/api/v1/auth/logout").status_code == 204
    assert buyer_api.get("/api/v1/datasets/").status_code == 200
    assert AccessToken.objects.get(kind=AccessToken.Kind.API_KEY).revoked_at is None
