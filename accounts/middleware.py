"""A browser session signed in with a wallet lives only as long as the bearer token its sign-in
returned: revoked (by a moderator, a sign-in elsewhere in this browser) or expired, the session
ends at its next request. Sessions of a password sign-in (staff in admin) have no such token."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.core.cache import cache
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import timezone

from accounts.models import AccessToken

Handler = Callable[[HttpRequest], HttpResponseBase]
logger = logging.getLogger(__name__)


def _live_key(token_id: int) -> str:
    return f"crowdmint:session-token-live:{token_id}"


def sign_in_token_live(token_id: int) -> bool:
    """Whether the sign-in token ``token_id`` is neither revoked nor expired; read at most once
    per ``AUTH_CACHE_SECONDS`` (as bearer tokens are); every time while the cache (Redis) is
    down, which was a 500 on every page of a wallet sign-in's session."""
    try:
        cached = cache.get(_live_key(token_id))
    except Exception:
        logger.warning("session token cache unreachable: read from the database", exc_info=True)
        cached = None
    if isinstance(cached, bool):
        return cached
    now = timezone.now()
    live = (
        AccessToken.objects.filter(pk=token_id, revoked_at__isnull=True)
        .exclude(expires_at__lte=now)
        .exists()
    )
    if settings.AUTH_CACHE_SECONDS > 0:
        try:
            cache.set(_live_key(token_id), live, settings.AUTH_CACHE_SECONDS)
        except Exception:
            logger.warning("session token cache unreachable: not cached", exc_info=True)
    return live


def sign_in_token_forget(token_id: int) -> None:
    """After a revocation in this process: the next request reads the token again. With the
    cache (Redis) down, what it holds is forgotten when it expires (``AUTH_CACHE_SECONDS``):
    the sign-out that called this on commit had done its work, and must not fail after it."""
    try:
        cache.delete(_live_key(token_id))
    except Exception:
        logger.warning("session token cache unreachable: not forgotten", exc_info=True)


class SignInTokenSessionMiddleware:
    """End a wallet sign-in's session whose token was revoked or has expired."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        from accounts.apis import session_sign_in_token_id

        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            token_id = session_sign_in_token_id(request)
            if token_id is not None and not sign_in_token_live(token_id):
                logout(request)
        return self.get_response(request)
