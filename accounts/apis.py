"""Sign-In with Ethereum over the API: ``GET auth/nonce``, ``POST auth/siwe``, ``POST auth/logout``.

A sign-in returns a bearer token, and starts a cookie session for a browser that passes Django's
CSRF check (the sign-in page sends its token in ``X-CSRFToken``): without the check, another site
could post its own signed message from a visitor's browser and sign that browser into its
account (login CSRF). The session remembers its token's id: signing out revokes it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from eth_utils.address import is_address, to_checksum_address
from rest_framework import serializers, status
from rest_framework.authentication import CSRFCheck
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import AccessToken
from accounts.services import (
    SignInError,
    SignInResult,
    access_token_revoke,
    session_token_revoke,
    siwe_nonce_issue,
    siwe_sign_in,
)
from config.broker import task_send
from config.openapi import errors
from config.parsers import BoundedJSONParser
from config.throttling import SignInThrottle


def signed_in(request: HttpRequest, result: SignInResult) -> None:
    """After a sign-in: its hashed fingerprint, and on an account's first sign-in, a look for
    a cluster of new accounts from the same network (enqueued on commit)."""
    from moderation.fingerprints import fingerprint_record

    fingerprint_record(request=request, user=result.user, first=result.first_sign_in)
    if result.first_sign_in:
        # With the broker down, the periodic fraud scan runs this check.
        task_send("moderation.tasks.sybil_scan")


# The session's record of the bearer token its sign-in returned.
SIGN_IN_TOKEN_SESSION_KEY = "crowdmint_sign_in_token_id"


def session_sign_in(request: HttpRequest, result: SignInResult) -> None:
    """Start the browser's cookie session for a sign-in, remembering its bearer token so that
    signing out revokes it. A sign-in that replaces this browser's previous one revokes that
    one's token: the browser only ever used its session."""
    previous = session_sign_in_token_id(request)
    login(request, result.user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SIGN_IN_TOKEN_SESSION_KEY] = result.token_id
    if previous is not None and previous != result.token_id:
        session_token_revoke(token_id=previous)


def session_sign_in_token_id(request: HttpRequest) -> int | None:
    """The id of the bearer token the sign-in of this cookie session returned, if any."""
    token_id = request.session.get(SIGN_IN_TOKEN_SESSION_KEY)
    return token_id if isinstance(token_id, int) else None


def session_sign_out(request: HttpRequest) -> None:
    """End the cookie session and revoke the bearer token its sign-in returned: that token
    would otherwise keep the account signed in for ``ACCESS_TOKEN_TTL`` after the sign-out."""
    token_id = session_sign_in_token_id(request)
    if token_id is not None:
        session_token_revoke(token_id=token_id)
    logout(request)


def _csrf_refusal(request: HttpRequest) -> str | None:
    """Why Django's CSRF check refuses ``request`` (as ``SessionAuthentication`` runs it), or
    None when it passes."""

    def no_view(request: HttpRequest) -> HttpResponse:  # pragma: no cover: only checked
        return HttpResponse()

    check = CSRFCheck(no_view)
    check.process_request(request)  # reads the CSRF cookie into request.META
    reason: Any = check.process_view(request, no_view, (), {})  # DRF's CSRFCheck: a reason
    return str(reason) if reason else None


def _from_a_browser(request: HttpRequest) -> bool:
    """A request that carries this site's session or CSRF cookie, or a CSRF token: a browser's
    (a script's client holds neither, nor any cookie from the API)."""
    if settings.CSRF_COOKIE_NAME in request.COOKIES:
        return True
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        return True
    return settings.CSRF_HEADER_NAME in request.META


def siwe_expected_domain(request: Request) -> str:
    """The domain a sign-in message must name: configured, or this request's host."""
    return settings.SIWE_DOMAIN or request.get_host()


class NonceApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [SignInThrottle]

    @extend_schema_serializer(component_name="Nonce")
    class OutputSerializer(serializers.Serializer[Any]):
        nonce = serializers.CharField()
        domain = serializers.CharField()
        chain_id = serializers.IntegerField()
        expires_at = serializers.DateTimeField()
        issued_at = serializers.DateTimeField(
            source="created_at",
            help_text="The server's time now, to the second: put it in the message's `Issued At`. "
            "A message issued more than five minutes ahead of the server's clock is refused, "
            "and a device's own clock may be that far off.",
        )
        address = serializers.CharField(
            required=False, help_text="The EIP-55 form of the `address` asked about, if any."
        )

    @extend_schema(
        summary="A single-use nonce for a Sign-In with Ethereum message",
        parameters=[
            OpenApiParameter(
                "address", str, description="A wallet address to return in its EIP-55 form."
            )
        ],
        responses={200: OutputSerializer, **errors(400, 429)},
    )
    def get(self, request: Request) -> Response:
        address = request.query_params.get("address")
        checksummed = None
        if address is not None:
            # A convenience for browser clients, which get lowercase addresses from their wallet and
            # must put the EIP-55 form in the message.
            if not is_address(address):
                return Response({"detail": "address is not an Ethereum address"}, status=400)
            checksummed = to_checksum_address(address)
        nonce = siwe_nonce_issue(
            domain=siwe_expected_domain(request), chain_id=settings.SIWE_CHAIN_ID
        )
        data = dict(self.OutputSerializer(nonce).data)
        if checksummed:
            data["address"] = checksummed
        return Response(data)


class SiweSignInApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [SignInThrottle]
    # JSON only: a form on another site can post form-encoded, multipart or text/plain bodies
    # without the browser asking first, never application/json.
    parser_classes = [BoundedJSONParser]

    @extend_schema_serializer(component_name="SignInInput")
    class InputSerializer(serializers.Serializer[Any]):
        message = serializers.CharField(max_length=4096, trim_whitespace=False)
        signature = serializers.RegexField(
            r"^0x[0-9a-fA-F]{130}$",
            error_messages={"invalid": "signature must be 0x followed by 65 bytes of hex"},
        )

    @extend_schema_serializer(component_name="SignIn")
    class OutputSerializer(serializers.Serializer[Any]):
        address = serializers.CharField()
        token = serializers.CharField(help_text="Send as `Authorization: Bearer <token>`.")
        expires_at = serializers.DateTimeField(allow_null=True)
        role = serializers.CharField()

    @extend_schema(
        summary="Sign in with a signed EIP-4361 message",
        description="Returns a bearer token. A browser also gets a session cookie: it must send "
        "Django's CSRF token in `X-CSRFToken` (403 otherwise). A client without cookies gets "
        "the token only.",
        request=InputSerializer,
        responses={200: OutputSerializer, **errors(400, 401, 403, 415, 429)},
    )
    def post(self, request: Request) -> Response:
        # Checked before the message is: a refused request doesn't use up its nonce.
        csrf_refusal = _csrf_refusal(request._request)
        if csrf_refusal is not None and _from_a_browser(request._request):
            return Response(
                {"detail": f"CSRF Failed: {csrf_refusal}"}, status=status.HTTP_403_FORBIDDEN
            )
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = siwe_sign_in(
                message=data.validated_data["message"],
                signature=data.validated_data["signature"],
                domain=siwe_expected_domain(request),
                chain_id=settings.SIWE_CHAIN_ID,
            )
        except SignInError as exc:
            return Response({"detail": exc.reason}, status=status.HTTP_401_UNAUTHORIZED)
        if csrf_refusal is None:
            session_sign_in(request._request, result)
        signed_in(request._request, result)
        return Response(
            {
                "address": result.user.wallet_address,
                "token": result.token,
                "expires_at": result.expires_at,
                "role": result.user.role,
            }
        )


class LogoutApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="End this sign-in: revoke its token and end the session",
        description="With the session cookie, the token its sign-in returned is revoked too. "
        "An API key is left working: keys are revoked by a moderator in admin.",
        request=None,
        responses={204: None},
    )
    def post(self, request: Request) -> Response:
        # Only sign-in tokens end here. A buyer's API key is issued by a moderator and shown once;
        # a client library calling logout must not destroy it for good.
        if isinstance(request.auth, AccessToken) and request.auth.kind == AccessToken.Kind.SESSION:
            access_token_revoke(token=request.auth)
        session_sign_out(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
