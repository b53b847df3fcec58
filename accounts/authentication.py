"""``Authorization: Bearer <secret>`` for sign-in tokens and buyers' API keys.

The token and its user are looked up once per ``AUTH_CACHE_SECONDS`` per process (a busy
contributor sends a label every second or two; the lookup was one of the submit path's queries).
The cost: a revocation, a ban or a change of role made in another process takes effect there
within that many seconds. In this process it is immediate: the services that revoke, ban or edit
a user clear the cache (``auth_cache_clear``) when their transaction commits. ``0`` turns the
cache off.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db import connection
from django.db.models import Field, Model
from django.db.models.base import ModelState
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import AccessToken, User
from accounts.tokens import token_hash
from config.prepared import Prepared

# Record last use at most this often: a write per request would serialise a busy buyer's reads.
_LAST_USED_RESOLUTION = timedelta(minutes=1)
_CACHE_MAX_ENTRIES = 10_000

_M = TypeVar("_M", bound=Model)

_cache: dict[str, tuple[float, AccessToken]] = {}
_cache_lock = threading.Lock()


def auth_cache_clear() -> None:
    """Forget every cached token of this process (after a revocation, a ban, a user edit)."""
    with _cache_lock:
        _cache.clear()


def _quote(name: str | None) -> str:
    if name is None:
        raise TypeError("a concrete field without a column")
    return connection.ops.quote_name(name)


def _columns(model: type[Model], alias: str) -> str:
    return ", ".join(f"{alias}.{_quote(f.column)}" for f in model._meta.concrete_fields)


# A cache miss: the token and its user in one prepared statement (on PostgreSQL). The ORM's query
# (select_related, compiled per call, then the rows' conversion) cost about as much web CPU as the
# rest of a submit, and under load with a new connection per request about one request in ten
# lands on a process that hasn't seen its token in the last AUTH_CACHE_SECONDS.
_LOOKUP = Prepared(
    "crowdmint_token",
    f"SELECT {_columns(AccessToken, 't')}, {_columns(User, 'u')} "
    f"FROM {_quote(AccessToken._meta.db_table)} t JOIN {_quote(User._meta.db_table)} u "
    f"ON u.{_quote(User._meta.pk.column)} = t.{_quote(AccessToken._meta.get_field('user').column)} "
    "WHERE t.key_hash = %(key_hash)s",
    {"key_hash": "varchar"},
)


def _instance(model: type[_M], values: tuple[object, ...]) -> _M:
    """``model`` from its concrete fields' column values as the driver returned them."""
    fields: list[Field[object, object]] = list(model._meta.concrete_fields)
    converted = []
    for field, value in zip(fields, values, strict=True):
        column = field.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(column) + field.get_db_converters(
            connection
        ):
            value = convert(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def _token_lookup(key_hash: str) -> AccessToken | None:
    # Inside a transaction (a test's, or a caller's) the prepared statement would need a
    # savepoint around it, two more round trips than the ORM's one query.
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return AccessToken.objects.select_related("user").filter(key_hash=key_hash).first()
    row = _LOOKUP.fetchone({"key_hash": key_hash})
    if row is None:
        return None
    split = len(AccessToken._meta.concrete_fields)
    token = _instance(AccessToken, row[:split])
    token.user = _instance(User, row[split:])
    return token


def _token_for(key_hash: str) -> AccessToken | None:
    ttl = settings.AUTH_CACHE_SECONDS
    now = time.monotonic()
    if ttl > 0:
        hit = _cache.get(key_hash)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
    token = _token_lookup(key_hash)
    if token is not None and ttl > 0:
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX_ENTRIES:
                _cache.clear()
            _cache[key_hash] = (now, token)
    return token


def _request_copy(instance: _M) -> _M:
    """A shallow copy of a saved model instance, as ``copy.copy`` makes it but without the
    pickling protocol it goes through (a twentieth of the submit path's CPU, for two copies)."""
    clone = object.__new__(type(instance))
    clone.__dict__.update(instance.__dict__)
    clone._state = ModelState()
    clone._state.db = instance._state.db
    clone._state.adding = False
    return clone


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, AccessToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            request._bearer_error = "invalid_request"  # type: ignore[attr-defined]
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected 'Bearer <token>'."
            )
        try:
            secret = header[1].decode()
        except UnicodeError as exc:
            request._bearer_error = "invalid_request"  # type: ignore[attr-defined]
            raise exceptions.AuthenticationFailed("Malformed bearer token.") from exc
        try:
            return self._authenticate_secret(secret)
        except exceptions.AuthenticationFailed:
            request._bearer_error = "invalid_token"  # type: ignore[attr-defined]
            raise

    def _authenticate_secret(self, secret: str) -> tuple[User, AccessToken]:
        cached = _token_for(token_hash(secret))
        now = timezone.now()
        if cached is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if cached.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Token revoked.")
        if cached.expires_at is not None and cached.expires_at <= now:
            raise exceptions.AuthenticationFailed("Token expired: sign in again.")
        if not cached.user.is_active or cached.user.is_banned:
            raise exceptions.AuthenticationFailed("Account disabled or banned.")
        if cached.last_used_at is None or now - cached.last_used_at > _LAST_USED_RESOLUTION:
            AccessToken.objects.filter(pk=cached.pk).update(last_used_at=now)
            cached.last_used_at = now
        # Each request gets its own instances: a view may change request.user.
        token = _request_copy(cached)
        token.user = _request_copy(cached.user)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        """``WWW-Authenticate`` of a 401 (RFC 6750 section 3): with the error when a token was
        sent and refused, so a client knows to sign in again rather than to send one."""
        error = getattr(request, "_bearer_error", None)
        return f'{self.keyword} error="{error}"' if error else self.keyword
