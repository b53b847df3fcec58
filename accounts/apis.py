"""Sign-In with Ethereum over the API: ``GET auth/nonce``, ``POST auth/siwe``, ``POST auth/logout``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import login, logout
from django.http import HttpRequest
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from eth_utils.address import is_address, to_checksum_address
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import AccessToken
from accounts.services import (
    SignInError,
    SignInResult,
    access_token_revoke,
    siwe_nonce_issue,
    siwe_sign_in,
)
from config.openapi import errors
from config.throttling import SignInThrottle


def signed_in(request: HttpRequest, result: SignInResult) -> None:
    """After a sign-in: its hashed fingerprint, and on an account's first sign-in, a look for
    a cluster of new accounts from the same network (enqueued on commit)."""
    from moderation.fingerprints import fingerprint_record
    from moderation.tasks import sybil_scan

    fingerprint_record(request=request, user=result.user, first=result.first_sign_in)
    if result.first_sign_in:
        sybil_scan.delay()


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
        request=InputSerializer,
        responses={200: OutputSerializer, **errors(400, 401, 429)},
    )
    def post(self, request: Request) -> Response:
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
        login(request._request, result.user, backend="django.contrib.auth.backends.ModelBackend")
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
        description="An API key is left working: keys are revoked by a moderator in admin.",
        request=None,
        responses={204: None},
    )
    def post(self, request: Request) -> Response:
        # Only sign-in tokens end here. A buyer's API key is issued by a moderator and shown once;
        # a client library calling logout must not destroy it for good.
        if isinstance(request.auth, AccessToken) and request.auth.kind == AccessToken.Kind.SESSION:
            access_token_revoke(token=request.auth)
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
