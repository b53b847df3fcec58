"""REST endpoints of the labeling pipeline, for contributors (projects, items, tasks, labels)
and buyers (datasets and their accepted records)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponseBase
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsContributor, request_account
from config.openapi import ErrorSerializer, errors
from config.parsers import BoundedJSONParser
from labeling import selectors, services
from labeling.models import Annotation, Item, Project, WorkerSkill
from labeling.validation import ContentError
from rewards.asset import payout_asset


class ProjectOutputSerializer(serializers.ModelSerializer[Any]):
    reward_per_label = serializers.CharField(
        help_text="Base units of the payout asset for an agreeing label at full weight."
    )
    reward_per_item = serializers.CharField(help_text="Base units per accepted contribution.")
    reward_per_label_display = serializers.SerializerMethodField()
    reward_per_item_display = serializers.SerializerMethodField()

    def get_reward_per_label_display(self, project: Project) -> str:
        return payout_asset().format(project.reward_per_label)

    def get_reward_per_item_display(self, project: Project) -> str:
        return payout_asset().format(project.reward_per_item)

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "data_kind",
            "classes",
            "overlap",
            "max_labels",
            "consensus_method",
            "acceptance_threshold",
            "reward_per_label",
            "reward_per_item",
            "reward_per_label_display",
            "reward_per_item_display",
            "licence",
        ]


def item_content_url(request: Request | HttpRequest, item: Item) -> str | None:
    if not item.image:
        return None
    return request.build_absolute_uri(reverse("item-content", args=[item.pk]))


class ItemOutputSerializer(serializers.ModelSerializer[Any]):
    project = serializers.IntegerField(source="project_id")
    data_kind = serializers.CharField(source="project.data_kind")
    classes = serializers.JSONField(source="project.classes")
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = [
            "id",
            "project",
            "data_kind",
            "text",
            "image_url",
            "width",
            "height",
            "content_sha256",
            "classes",
            "status",
            "created_at",
        ]

    def get_image_url(self, item: Item) -> str | None:
        return item_content_url(self.context["request"], item)


class ProjectListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(summary="Open projects", responses={200: ProjectOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        projects = selectors.project_list_open()
        return Response(ProjectOutputSerializer(projects, many=True).data)


def _accepted_licence(data: Any) -> bool:
    value = data.get("licence_accepted") if isinstance(data, Mapping) else None
    return value is True or (isinstance(value, str) and value.lower() in {"true", "1", "on", "yes"})


class ItemCreateApi(APIView):
    permission_classes = [IsContributor]
    parser_classes = [BoundedJSONParser, MultiPartParser, FormParser]

    @extend_schema(
        summary="Contribute an item: text as JSON, or an image file as multipart",
        description=(
            "`licence_accepted` must be true: the contributor accepts the project's licence "
            "for what they upload. A pairwise project takes two texts (`text`, `text_b`) or "
            "two images (`file`, `file_b`). Exact copies and near copies (a resized or "
            "re-encoded image, a text differing only in case, spacing or punctuation) of an item "
            "of the project get a 409 naming it; each contributor may upload the project's "
            "`daily_upload_quota` items a day (UTC), then 429 with Retry-After."
        ),
        request={
            "application/json": inline_serializer(
                "TextItemInput",
                {
                    "text": serializers.CharField(),
                    "text_b": serializers.CharField(required=False, help_text="Pairwise only."),
                    "licence_accepted": serializers.BooleanField(),
                },
            ),
            "multipart/form-data": inline_serializer(
                "ImageItemInput",
                {
                    "file": serializers.FileField(help_text="JPEG, PNG or WebP"),
                    "file_b": serializers.FileField(required=False, help_text="Pairwise only."),
                    "licence_accepted": serializers.BooleanField(),
                },
            ),
        },
        responses={
            201: ItemOutputSerializer,
            400: ErrorSerializer,
            404: ErrorSerializer,
            409: OpenApiResponse(
                inline_serializer(
                    "DuplicateItemError",
                    {
                        "detail": serializers.CharField(),
                        "existing_id": serializers.IntegerField(),
                    },
                ),
                description="An exact or near duplicate of an item the project already has.",
            ),
            **errors(401, 403, 429),
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_open(project_id=project_id)
        contributor = request_account(request)
        upload = request.FILES.get("file")
        upload_b = request.FILES.get("file_b")
        try:
            if not _accepted_licence(request.data):
                raise ContentError(
                    f"licence_accepted: accept the project's licence ({project.licence}) for "
                    "what you upload: send licence_accepted=true"
                )
            if upload is not None:
                for name, part in (("file", upload), ("file_b", upload_b)):
                    if part is not None and part.size > settings.UPLOAD_MAX_BYTES:
                        raise ContentError(
                            f"{name} is {part.size} bytes; the limit is {settings.UPLOAD_MAX_BYTES}"
                        )
                item = services.item_create_image(
                    project=project,
                    contributor=contributor,
                    data=upload.read(),
                    data_b=upload_b.read() if upload_b is not None else None,
                )
            elif isinstance(request.data, Mapping) and "text" in request.data:
                item = services.item_create_text(
                    project=project,
                    contributor=contributor,
                    text=request.data["text"],
                    text_b=request.data.get("text_b"),
                )
            else:
                raise ContentError("send JSON {\"text\": ...} or a multipart 'file'")
        except ContentError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except services.QuotaExceeded as exc:
            return Response(
                {"detail": str(exc)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(exc.retry_after)},
            )
        except services.DuplicateItemError as exc:
            what = f"a near duplicate ({exc.near}) of" if exc.near else "a duplicate: the same as"
            return Response(
                {
                    "detail": f"{what} item {exc.existing_id}, which this project already has",
                    "existing_id": exc.existing_id,
                },
                status=status.HTTP_409_CONFLICT,
            )
        return Response(
            ItemOutputSerializer(item, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class NextTaskApi(APIView):
    permission_classes = [IsContributor]

    @extend_schema(
        summary="The next item for me to label",
        responses={
            200: ItemOutputSerializer,
            204: OpenApiResponse(description="Nothing left to label."),
            **errors(404),
        },
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_open(project_id=project_id)
        user = request_account(request)
        item = selectors.item_next_for_contributor(project=project, user=user)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        services.assignment_record(item=item, user=user)
        return Response(ItemOutputSerializer(item, context={"request": request}).data)


class AnnotationCreateApi(APIView):
    permission_classes = [IsContributor]

    @extend_schema_serializer(component_name="AnnotationInput")
    class InputSerializer(serializers.Serializer[Any]):
        label = serializers.CharField(max_length=100)  # type: ignore[assignment]  # a field, not Field.label

    @extend_schema_serializer(component_name="Annotation")
    class OutputSerializer(serializers.Serializer[Any]):
        id = serializers.IntegerField()
        item = serializers.IntegerField(source="item_id")
        label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
        created_at = serializers.DateTimeField()

    @extend_schema(
        summary="Label an item",
        request=InputSerializer,
        responses={201: OutputSerializer, **errors(400, 404, 409)},
    )
    def post(self, request: Request, item_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = selectors.item_get_for_contributor(item_id=item_id)
        try:
            annotation = services.annotation_create(
                item=item, annotator=request_account(request), label=data.validated_data["label"]
            )
        except services.AnnotationError as exc:
            code = status.HTTP_409_CONFLICT if exc.conflict else status.HTTP_400_BAD_REQUEST
            return Response({"detail": str(exc)}, status=code)
        return Response(self.OutputSerializer(annotation).data, status=status.HTTP_201_CREATED)


class ItemSkipApi(APIView):
    permission_classes = [IsContributor]

    @extend_schema(
        summary="Pass on an item: it is not served to me again",
        request=None,
        responses={204: None, **errors(404, 409)},
    )
    def post(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get_for_contributor(item_id=item_id)
        try:
            services.item_skip(item=item, user=request_account(request))
        except services.AnnotationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ItemContentApi(APIView):
    """The image bytes of an item: for its uploader, the contributor it is served to, moderators,
    and buyers of its dataset once accepted (``selectors.item_get_content_for_user``)."""

    @extend_schema(
        summary="An image item's bytes",
        parameters=[
            OpenApiParameter(
                "side",
                str,
                enum=["a", "b"],
                default="a",
                description="A pairwise item's second image: b.",
            )
        ],
        responses={
            (200, "image/jpeg"): OpenApiTypes.BINARY,
            (200, "image/png"): OpenApiTypes.BINARY,
            (200, "image/webp"): OpenApiTypes.BINARY,
            **errors(400, 404),
        },
    )
    def get(self, request: Request, item_id: int) -> HttpResponseBase:
        side = request.query_params.get("side", "a")
        if side not in ("a", "b"):
            return Response(
                {"detail": f"side: {side!r}: use a or b"}, status=status.HTTP_400_BAD_REQUEST
            )
        item = selectors.item_get_content_for_user(item_id=item_id, user=request.user, side=side)
        image, fmt = (
            (item.image_b, item.image_b_format) if side == "b" else (item.image, item.image_format)
        )
        content_type = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}[fmt]
        response = FileResponse(image.open("rb"), content_type=content_type)
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        return response


class MyProfileApi(APIView):
    """``GET /api/v1/me/``: who I am, and my estimated accuracy in each project."""

    permission_classes = [IsContributor]

    class SkillOutputSerializer(serializers.ModelSerializer[Any]):
        project = serializers.IntegerField(source="project_id")
        project_name = serializers.CharField(source="project.name")

        class Meta:
            model = WorkerSkill
            fields = [
                "project",
                "project_name",
                "accuracy",
                "label_count",
                "gold_answered",
                "gold_correct",
                "updated_at",
            ]

    @extend_schema(
        summary="Me: my wallet, label count and estimated accuracy per project",
        responses={
            200: inline_serializer(
                "MyProfile",
                {
                    "address": serializers.CharField(),
                    "role": serializers.CharField(),
                    "labels": serializers.IntegerField(),
                    "skills": SkillOutputSerializer(many=True),
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        user = request_account(request)
        skills = selectors.worker_skills_for_user(user=user)
        return Response(
            {
                "address": user.wallet_address,
                "role": user.role,
                "labels": Annotation.objects.filter(annotator=user).count(),
                "skills": self.SkillOutputSerializer(skills, many=True).data,
            }
        )
