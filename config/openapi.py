"""Pieces of the OpenAPI description (drf-spectacular) shared by every app's ``apis.py``.

``GET /api/v1/schema`` serves the description; a test regenerates it with ``--validate
--fail-on-warn``, so an endpoint the description can't describe exactly fails the build.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer[Any]):
    """Every 4xx: a message, and for a validation error the messages per field."""

    detail = serializers.CharField()
    errors = serializers.DictField(  # type: ignore[assignment]  # a field, not Serializer.errors
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


def errors(*codes: int) -> dict[int, type[ErrorSerializer]]:
    """``responses=`` entries for error status codes."""
    return {code: ErrorSerializer for code in codes}


class BearerTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A session token from POST /api/v1/auth/siwe, or a buyer's API key.",
        }
