"""Bearer tokens are looked up once per AUTH_CACHE_SECONDS per process: a ban or revocation
through the services takes effect at once, one written by another process within that time."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AccessToken, User
from accounts.services import access_token_revoke, user_ban
from tests.conftest import Contributor

pytestmark = pytest.mark.django_db


def me(contributor: Contributor) -> int:
    return int(contributor.api.get("/api/v1/me/").status_code)


def test_a_cached_token_costs_no_query(contributor: Contributor) -> None:
    assert me(contributor) == 200
    with CaptureQueriesContext(connection) as queries:
        assert me(contributor) == 200
    assert not [q for q in queries.captured_queries if "accounts_accesstoken" in q["sql"]]


def test_a_ban_or_revocation_through_the_services_is_immediate(
    contributor: Contributor, second_contributor: Contributor
) -> None:
    assert me(contributor) == me(second_contributor) == 200
    user_ban(user=contributor.user, reason="spam")
    assert me(contributor) == 401
    access_token_revoke(token=AccessToken.objects.get(user=second_contributor.user))
    assert me(second_contributor) == 401


def test_a_ban_written_elsewhere_takes_effect_within_the_cache_period(
    contributor: Contributor, settings: Any
) -> None:
    settings.AUTH_CACHE_SECONDS = 0.3
    assert me(contributor) == 200
    # As another process would: straight to the database, this process's cache not told.
    User.objects.filter(pk=contributor.user.pk).update(banned_at=timezone.now())
    time.sleep(0.35)
    assert me(contributor) == 401


def test_without_the_cache_every_request_reads_the_token(
    contributor: Contributor, settings: Any
) -> None:
    settings.AUTH_CACHE_SECONDS = 0
    assert me(contributor) == 200
    AccessToken.objects.filter(user=contributor.user).update(revoked_at=timezone.now())
    assert me(contributor) == 401


def test_each_request_gets_its_own_copies_of_the_cached_user_and_token(
    contributor: Contributor,
) -> None:
    from accounts.authentication import BearerTokenAuthentication

    auth = BearerTokenAuthentication()
    first_user, first_token = auth._authenticate_secret(contributor.token)
    first_user.username = "changed by a view"
    first_user.is_staff = True
    user, token = auth._authenticate_secret(contributor.token)
    assert (user.username, user.is_staff) == (contributor.user.username, False)
    assert user is not first_user and token is not first_token and token.user is user
    # Saved instances: saving one updates its row.
    assert (user._state.adding, user._state.db) == (False, "default")
    user.save(update_fields=["username"])
    assert User.objects.filter(pk=contributor.user.pk).count() == 1


@pytest.mark.django_db(transaction=True)  # outside a transaction, as a request's lookup runs
@pytest.mark.parametrize("prepared", [True, False])
def test_the_lookup_reads_the_token_and_its_user_as_the_orm_does(
    contributor: Contributor, settings: Any, prepared: bool
) -> None:
    from accounts.authentication import _token_lookup

    settings.DATABASE_PREPARED_STATEMENTS = prepared
    stored = AccessToken.objects.select_related("user").get(user=contributor.user)
    User.objects.filter(pk=stored.user_id).update(banned_at=timezone.now(), ban_reason="x")
    stored.user.refresh_from_db()
    for _ in range(2):  # prepared on the first call, executed by name on the second
        token = _token_lookup(stored.key_hash)
        assert token is not None
        for field in AccessToken._meta.concrete_fields:
            assert getattr(token, field.attname) == getattr(stored, field.attname), field.name
        for field in User._meta.concrete_fields:
            assert getattr(token.user, field.attname) == getattr(stored.user, field.attname), (
                field.name
            )
        assert token.user.is_banned and not token._state.adding and token.user._state.db
    assert _token_lookup("0" * 64) is None
