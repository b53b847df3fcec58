"""REST endpoints of the labeling pipeline, for contributors (projects, items, tasks, labels)
and buyers (datasets and their accepted records)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsContributor, request_account
from config.ids import id_param
from config.metrics import LABELS
from config.negotiation import FileContentNegotiation
from config.openapi import ErrorSerializer, errors
from config.parsers import BoundedFormParser, BoundedJSONParser
from config.throttling import (
    ApiRateThrottle,
    LabelThrottle,
    OneRoundTripThrottles,
    UploadThrottle,
)
from labeling import selectors, services
from labeling.models import Annotation, Item, Project, WorkerSkill
from labeling.validation import ContentError
from moderation.services import answer_check_enqueue
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
            "task",
            "question",
            "guidelines",
            "classes",
            "agreement_threshold",
            "spans_may_overlap",
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


def item_content_url(request: Request | HttpRequest, item: Item, side: str = "a") -> str | None:
    if not (item.image_b if side == "b" else item.image):
        return None
    url = reverse("item-content", args=[item.pk])
    return request.build_absolute_uri(url + ("?side=b" if side == "b" else ""))


class ItemOutputSerializer(serializers.ModelSerializer[Any]):
    """An item as contributors see it: the same fields for every item, gold or not."""

    project = serializers.IntegerField(source="project_id")
    data_kind = serializers.CharField(source="project.data_kind")
    task = serializers.CharField(source="project.task")
    classes = serializers.JSONField(source="project.classes")
    image_url = serializers.SerializerMethodField()
    image_b_url = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = [
            "id",
            "project",
            "data_kind",
            "task",
            "text",
            "text_b",
            "image_url",
            "image_b_url",
            "width",
            "height",
            "width_b",
            "height_b",
            "content_sha256",
            "classes",
            "status",
            "created_at",
        ]

    def get_image_url(self, item: Item) -> str | None:
        return item_content_url(self.context["request"], item)

    def get_image_b_url(self, item: Item) -> str | None:
        return item_content_url(self.context["request"], item, "b")


class TaskOutputSerializer(ItemOutputSerializer):
    """A served item with its lease."""

    lease_expires_at = serializers.DateTimeField(source="lease.expires_at")

    class Meta(ItemOutputSerializer.Meta):
        fields = [*ItemOutputSerializer.Meta.fields, "lease_expires_at"]


class ProjectListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(summary="Open projects", responses={200: ProjectOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        projects = selectors.project_list_open()
        return Response(ProjectOutputSerializer(projects, many=True).data)


def _accepted_licence(data: Any) -> bool:
    value = data.get("licence_accepted") if isinstance(data, Mapping) else None
    return value is True or (isinstance(value, str) and value.lower() in {"true", "1", "on", "yes"})


class ItemCreateApi(OneRoundTripThrottles, APIView):
    permission_classes = [IsContributor]
    throttle_classes = [ApiRateThrottle, UploadThrottle]
    parser_classes = [BoundedJSONParser, MultiPartParser, BoundedFormParser]

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
    # A GET leases an item: a HEAD (a link checker, a prefetcher) must not hold its place.
    http_method_names = ["get", "options"]

    @extend_schema(
        summary="The next item for me to label, leased to me",
        description=(
            "Returns an item leased to the caller for the project's `lease_seconds`: a lease "
            "they already hold, or a new one. While the lease lives, the item's place is "
            "theirs and only they may answer it. `after` (the item on screen) asks for another "
            "one, to preload; a contributor holds at most two leases per project."
        ),
        parameters=[OpenApiParameter("after", int, description="An item id to skip over.")],
        responses={
            200: TaskOutputSerializer,
            204: OpenApiResponse(description="Nothing left to label."),
            **errors(400, 401, 403, 404),
        },
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_open(project_id=project_id)
        after = id_param(request.query_params, "after", "an item id")
        lease = services.task_lease_next(
            project=project, user=request_account(request), after=after
        )
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        item = lease.item
        item.lease = lease  # type: ignore[attr-defined]
        return Response(TaskOutputSerializer(item, context={"request": request}).data)


class ProgressApi(APIView):
    permission_classes = [IsContributor]

    @extend_schema(
        summary="My progress in a project: items left for me, my labels today",
        responses={
            200: inline_serializer(
                "Progress",
                {
                    "left": serializers.IntegerField(help_text="Open items I may still label."),
                    "open": serializers.IntegerField(help_text="Open items in the project."),
                    "labeled_today": serializers.IntegerField(),
                    "labeled": serializers.IntegerField(),
                },
            ),
            **errors(401, 403, 404),
        },
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_open(project_id=project_id)
        return Response(
            selectors.progress_for_contributor(project=project, user=request_account(request))
        )


# A timestamp as the API writes it (ISO 8601 in UTC, ``Z``): DRF's field, built once.
_API_TIME = serializers.DateTimeField()


def annotation_out(annotation: Annotation) -> dict[str, Any]:
    """An answer as the API shows it. A plain function: building a DRF serializer for it cost
    a twentieth of a submit's CPU."""
    return {
        "id": annotation.pk,
        "item": annotation.item_id,
        "label": annotation.label,
        "value": annotation.value,
        "created_at": _API_TIME.to_representation(annotation.created_at),
        "undo_until": _API_TIME.to_representation(
            annotation.created_at + timedelta(seconds=settings.UNDO_SECONDS)
        ),
    }


class AnnotationCreateApi(OneRoundTripThrottles, APIView):
    permission_classes = [IsContributor]
    # Answers are JSON (a form's values are lists of strings: "unknown class ['cat']"): 415.
    parser_classes = [BoundedJSONParser]
    throttle_classes = [ApiRateThrottle, LabelThrottle]

    @extend_schema(
        summary="Answer an item leased to me",
        description=(
            'The body depends on the project\'s task: `{"label": "cat"}` (classify), '
            '`{"labels": [...]}` (multilabel), `{"boxes": [{"x", "y", "w", '
            '"h", "label"}]}` (pixels, origin top-left), `{"spans": [{"start", '
            '"end", "label"}]}` (character offsets, end exclusive), `{"choice": '
            '"a"|"b"}` (pairwise). A 400 names the field at fault. A wrong answer to a '
            "gold item comes back with `feedback` (the expected answer and why)."
        ),
        request=inline_serializer(
            "AnswerInput",
            {
                "label": serializers.CharField(required=False),
                "labels": serializers.ListField(child=serializers.CharField(), required=False),
                "boxes": serializers.ListField(child=serializers.DictField(), required=False),
                "spans": serializers.ListField(child=serializers.DictField(), required=False),
                "choice": serializers.ChoiceField(["a", "b"], required=False),
            },
        ),
        responses={
            201: inline_serializer(
                "AnswerCreated",
                {
                    "id": serializers.IntegerField(),
                    "item": serializers.IntegerField(),
                    "label": serializers.CharField(),
                    "value": serializers.JSONField(),
                    "created_at": serializers.DateTimeField(),
                    "undo_until": serializers.DateTimeField(),
                    "feedback": inline_serializer(
                        "GoldFeedback",
                        {
                            "correct": serializers.BooleanField(),
                            "expected": serializers.JSONField(),
                            "explanation": serializers.CharField(),
                        },
                        required=False,
                    ),
                },
            ),
            **errors(400, 401, 403, 404, 409),
        },
    )
    def post(self, request: Request, item_id: int) -> Response:
        body = request.data
        if not isinstance(body, Mapping):
            return Response({"detail": "send a JSON object with your answer"}, status=400)
        try:
            submitted = services.annotation_submit(
                item_id=item_id, annotator=request_account(request), body=dict(body)
            )
        except services.ItemUnavailable as exc:
            raise Http404("No item with this id in an open project.") from exc
        except services.AnnotationError as exc:
            code = status.HTTP_409_CONFLICT if exc.conflict else status.HTTP_400_BAD_REQUEST
            return Response({"detail": str(exc)}, status=code)
        LABELS.inc()
        answer_check_enqueue(user_id=submitted.annotation.annotator_id)
        data = annotation_out(submitted.annotation)
        if submitted.feedback is not None:
            data["feedback"] = {
                "correct": False,
                "expected": submitted.feedback.expected,
                "explanation": submitted.feedback.explanation,
            }
        return Response(data, status=status.HTTP_201_CREATED)


class AnnotationWithdrawApi(APIView):
    permission_classes = [IsContributor]

    @extend_schema(
        summary="Undo: withdraw my answer (within UNDO_SECONDS, while the item is undecided)",
        description="The item's lease comes back to me: I can answer it again.",
        request=None,
        responses={204: None, **errors(401, 403, 404, 409)},
    )
    def delete(self, request: Request, annotation_id: int) -> Response:
        try:
            services.annotation_withdraw(
                annotation_id=annotation_id, annotator=request_account(request)
            )
        except services.ItemUnavailable as exc:
            raise Http404("No answer of yours with this id.") from exc
        except services.AnnotationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyLabelsApi(APIView):
    permission_classes = [IsContributor]

    @extend_schema(
        summary="My recent answers, newest first (the labeling page's history)",
        parameters=[OpenApiParameter("project", int, description="Only this project.")],
        responses={
            200: inline_serializer(
                "MyLabel",
                {
                    "id": serializers.IntegerField(),
                    "item": serializers.IntegerField(),
                    "project": serializers.IntegerField(),
                    "label": serializers.CharField(),
                    "value": serializers.JSONField(),
                    "created_at": serializers.DateTimeField(),
                    "undo_until": serializers.DateTimeField(),
                    "item_status": serializers.CharField(),
                },
                many=True,
            ),
            **errors(400, 401, 403),
        },
    )
    def get(self, request: Request) -> Response:
        project_id = id_param(request.query_params, "project", "a project id")
        rows = selectors.labels_recent_for_user(
            user=request_account(request), project_id=project_id
        )
        return Response(
            [
                {
                    **annotation_out(a),
                    "project": a.item.project_id,
                    "item_status": a.item.status,
                }
                for a in rows
            ]
        )


class MyUploadOutputSerializer(serializers.ModelSerializer[Any]):
    """One of my uploads: where it stands and enough to recognise it (a text's start, or the
    image, which its uploader may always read)."""

    project = serializers.IntegerField(source="project_id")
    project_name = serializers.CharField(source="project.name")
    state = serializers.SerializerMethodField(
        help_text="waiting (no label yet), labeling, accepted or rejected."
    )
    preview_text = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = [
            "id",
            "project",
            "project_name",
            "state",
            "status",
            "label_count",
            "required_labels",
            "preview_text",
            "image_url",
            "licence",
            "created_at",
        ]

    def get_state(self, item: Item) -> str:
        return selectors.upload_state(item)

    def get_preview_text(self, item: Item) -> str:
        text = item.text if not item.text_b else f"{item.text} / {item.text_b}"
        return text if len(text) <= 140 else text[:139] + "…"

    def get_image_url(self, item: Item) -> str | None:
        return item_content_url(self.context["request"], item)


class MyUploadsApi(APIView):
    permission_classes = [IsContributor]

    @extend_schema(
        summary="My uploads, newest first, with where each stands (the upload page's list)",
        parameters=[OpenApiParameter("project", int, description="Only this project.")],
        responses={200: MyUploadOutputSerializer(many=True), **errors(400, 401, 403)},
    )
    def get(self, request: Request) -> Response:
        project_id = id_param(request.query_params, "project", "a project id")
        rows = selectors.items_uploaded_by_user(
            user=request_account(request), project_id=project_id
        )
        return Response(
            MyUploadOutputSerializer(rows, many=True, context={"request": request}).data
        )


class ItemShownApi(APIView):
    permission_classes = [IsContributor]

    @extend_schema(
        summary="The labeling page reports when it showed a leased item",
        description=(
            "Records when the item was shown and, the first time, gives its lease the "
            "project's full `lease_seconds` from now (a preloaded item's lease ran while it "
            "waited). 409 when I hold no live lease on it: ask `next-task` for a fresh one."
        ),
        request=None,
        responses={204: None, **errors(401, 403, 404, 409)},
    )
    def post(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get_for_contributor(item_id=item_id)
        if not services.lease_shown(item=item, user=request_account(request)):
            return Response({"detail": services.NOT_ASSIGNED}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ItemSkipApi(APIView):
    permission_classes = [IsContributor]

    @extend_schema(
        summary="Pass on an item: it is not served to me again",
        request=None,
        responses={204: None, **errors(401, 403, 404, 409)},
    )
    def post(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get_for_contributor(item_id=item_id)
        try:
            services.item_skip(item=item, user=request_account(request))
        except services.AnnotationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Take my skip back (within the undo window): the item is leased to me again",
        request=None,
        responses={200: TaskOutputSerializer, **errors(401, 403, 404, 409)},
    )
    def delete(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get_for_contributor(item_id=item_id)
        try:
            lease = services.item_skip_undo(item=item, user=request_account(request))
        except services.AnnotationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        item = lease.item
        item.lease = lease  # type: ignore[attr-defined]
        return Response(TaskOutputSerializer(item, context={"request": request}).data)


class ItemContentApi(APIView):
    """The image bytes of an item: for its uploader, the contributor it is served to, moderators,
    and buyers of its dataset once accepted (``selectors.item_get_content_for_user``)."""

    content_negotiation_class = FileContentNegotiation

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
        # Not kept after the page is gone: on a shared computer, the next user of the browser
        # would find the images of a signed-out account in its cache.
        response["Cache-Control"] = "private, no-store"
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
