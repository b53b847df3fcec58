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


#: What every signed-in endpoint can answer whatever its own errors, and why.
_COMMON_ERRORS = {
    "401": "No credentials, or an invalid, expired or revoked token or API key.",
    "403": "Signed in, but this account's role (or a missing grant) doesn't allow it.",
    "404": "No such object, or one this account may not see.",
    "429": "Rate limit reached: retry after the Retry-After header's seconds.",
}


def document_common_errors(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular post-processing hook: every operation lists the errors any endpoint of
    its kind can return, in the one error shape: 401 and 403 where credentials are required,
    404 where the path names an object, 429 everywhere (every endpoint is rate-limited)."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            codes = ["429"]
            if {} not in operation.get("security", [{}]):
                codes += ["401", "403"]
            if "{" in path:
                codes.append("404")
            for code in codes:
                responses.setdefault(code, {"description": _COMMON_ERRORS[code], "content": error})
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault(
        "Error", ErrorSerializerSchema
    )
    return result


ErrorSerializerSchema: dict[str, Any] = {
    "type": "object",
    "description": "Every 4xx: a message, and for a validation error the messages per field.",
    "properties": {
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["detail"],
}
