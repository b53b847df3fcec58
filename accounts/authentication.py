"""``Authorization: Bearer <secret>`` for sign-in tokens and buyers' API keys."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import AccessToken, User
from accounts.tokens import token_hash

# Record last use at most this often: a write per request would serialise a busy buyer's reads.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, AccessToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected 'Bearer <token>'."
            )
        try:
            secret = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Malformed bearer token.") from exc
        return self._authenticate_secret(secret)

    def _authenticate_secret(self, secret: str) -> tuple[User, AccessToken]:
        token = (
            AccessToken.objects.select_related("user").filter(key_hash=token_hash(secret)).first()
        )
        now = timezone.now()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Token revoked.")
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("Token expired: sign in again.")
        user = token.user
        if not user.is_active or user.is_banned:
            raise exceptions.AuthenticationFailed("Account disabled or banned.")
        if token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION:
            AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
