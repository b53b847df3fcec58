"""The moderators' API: flags raised by the fraud checks, with their evidence."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsModerator
from config.ids import parse_id
from config.openapi import ErrorSerializer, errors
from config.pagination import IdCursorPagination
from moderation.models import Flag
from moderation.selectors import flag_list


class FlagPagination(IdCursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class FlagListApi(APIView):
    permission_classes = [IsModerator]

    class FlagSerializer(serializers.ModelSerializer[Flag]):
        wallet_address = serializers.CharField(
            source="user.wallet_address", allow_null=True, default=None
        )
        user = serializers.IntegerField(source="user_id", allow_null=True)
        project = serializers.IntegerField(source="project_id", allow_null=True)
        item = serializers.IntegerField(source="item_id", allow_null=True)
        evidence = serializers.JSONField()
        resolved_by = serializers.CharField(
            source="resolved_by.username", allow_null=True, default=None
        )

        class Meta:
            model = Flag
            fields = ["id", "wallet_address", "user", "kind", "state", "evidence", "created_at"]
            fields += ["project", "item", "resolved_by", "resolved_at", "resolution_note"]

    @extend_schema(
        operation_id="moderation_flags_list",
        summary="Flags raised by the fraud checks, newest first (moderators)",
        parameters=[
            OpenApiParameter("state", str, enum=Flag.State.values),
            OpenApiParameter("kind", str, enum=Flag.Kind.values),
            OpenApiParameter("user", int, description="A contributor's id."),
            OpenApiParameter("wallet", str, description="A contributor's wallet address."),
            OpenApiParameter("project", int),
            OpenApiParameter("cursor", str),
            OpenApiParameter("page_size", int, description="At most 500."),
        ],
        responses={
            200: inline_serializer(
                "FlagPage",
                {
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": FlagSerializer(many=True),
                },
            ),
            400: ErrorSerializer,
            **errors(401, 403, 429),
        },
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        state, kind = params.get("state") or None, params.get("kind") or None
        if state is not None and state not in Flag.State.values:
            return _bad(f"state must be one of {', '.join(Flag.State.values)}")
        if kind is not None and kind not in Flag.Kind.values:
            return _bad(f"kind must be one of {', '.join(Flag.Kind.values)}")
        flags = flag_list(state=state, kind=kind).select_related("resolved_by")
        for name in ("user", "project"):
            value = params.get(name)
            if value:
                row_id = parse_id(value)
                if row_id is None:
                    return _bad(f"{name} must be a positive integer id")
                flags = flags.filter(**{f"{name}_id": row_id})
        wallet = params.get("wallet")
        if wallet:
            flags = flags.filter(user__wallet_address__iexact=wallet.strip()[:42])
        paginator = FlagPagination()
        page: list[Any] = paginator.paginate_queryset(flags, request, view=self) or []
        return paginator.get_paginated_response(self.FlagSerializer(page, many=True).data)


def _bad(message: str) -> Response:
    return Response({"detail": message}, status=status.HTTP_400_BAD_REQUEST)
