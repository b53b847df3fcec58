"""REST endpoints for dataset buyers: the catalogue, purchases, records, streams and exports.

Every read of a dataset's content goes through ``market.selectors.dataset_get_for_buyer`` (a
live grant, or a moderator); export files go through ``export_get_for_buyer``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, QueryDict, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsBuyer, request_account
from config.negotiation import FileContentNegotiation
from config.openapi import ErrorSerializer, errors
from config.pagination import IdCursorPagination
from config.throttling import ApiRateThrottle, DatasetReadThrottle, ExportRequestThrottle
from labeling.apis import ProjectOutputSerializer
from labeling.models import ConsensusFit, Item, Project
from market import ranges, selectors, services, streams
from market import records as rec
from market.models import DatasetExport
from rewards.asset import payout_asset
from rewards.client import chain_client_for_requests

BUYER_THROTTLES = [ApiRateThrottle, DatasetReadThrottle]


def content_url_for(request: Request | HttpRequest) -> rec.ContentUrl:
    """Absolute URLs of items' images: the API endpoint that checks the buyer's key."""
    return rec.content_url_from(request.build_absolute_uri(reverse("item-content", args=[0])))


# --- The catalogue ----------------------------------------------------------------------------


class AgreementOutputSerializer(serializers.ModelSerializer[ConsensusFit]):
    """Inter-annotator agreement at the project's last full fit (null: undefined)."""

    class Meta:
        model = ConsensusFit
        fields = [
            "percent_agreement",
            "fleiss_kappa",
            "krippendorff_alpha",
            "label_count",
            "method",
            "fitted_at",
        ]


class QualityOutputSerializer(serializers.Serializer[Any]):
    agreement = AgreementOutputSerializer(
        source="consensus_fit", allow_null=True, help_text="Null before the first refit."
    )
    mean_posterior = serializers.FloatField(
        allow_null=True, help_text="Mean confidence (posterior) of the accepted records."
    )


class DatasetOutputSerializer(ProjectOutputSerializer):
    task = serializers.ChoiceField(choices=Project.Task.choices)
    is_open = serializers.BooleanField(help_text="Still collecting (closed datasets still sell).")
    granted = serializers.BooleanField(help_text="Whether this key holds an access grant.")
    price = serializers.CharField(
        help_text="Base units of the payout asset a purchase must transfer (see for_sale)."
    )
    price_display = serializers.SerializerMethodField()
    for_sale = serializers.SerializerMethodField(
        help_text="Whether a purchase can be made: a price, and a treasury this deployment sells "
        "to (DATASET_TREASURY_ADDRESS). Otherwise a moderator gives grants."
    )
    treasury = serializers.SerializerMethodField(
        help_text="The address a purchase transfers the price to; null when nothing is sold."
    )
    accepted_count = serializers.IntegerField()
    item_count = serializers.IntegerField()
    agreement = AgreementOutputSerializer(
        source="consensus_fit", allow_null=True, read_only=True, help_text="Same as quality's."
    )
    quality = serializers.SerializerMethodField()

    class Meta(ProjectOutputSerializer.Meta):
        fields = [
            *ProjectOutputSerializer.Meta.fields,
            "task",
            "is_open",
            "granted",
            "price",
            "price_display",
            "for_sale",
            "treasury",
            "accepted_count",
            "item_count",
            "agreement",
            "quality",
        ]

    def get_price_display(self, project: Project) -> str:
        return payout_asset().format(project.price)

    def get_for_sale(self, project: Project) -> bool:
        return bool(int(project.price) and settings.DATASET_TREASURY_ADDRESS)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_treasury(self, project: Project) -> str | None:
        treasury: str = settings.DATASET_TREASURY_ADDRESS
        return treasury if self.get_for_sale(project) else None

    @extend_schema_field(QualityOutputSerializer)
    def get_quality(self, project: Project) -> dict[str, Any]:
        fit = getattr(project, "consensus_fit", None)
        return {
            "agreement": AgreementOutputSerializer(fit).data if fit is not None else None,
            "mean_posterior": getattr(project, "mean_posterior", None),
        }


class DatasetListApi(APIView):
    permission_classes = [IsBuyer]
    throttle_classes = BUYER_THROTTLES

    @extend_schema(
        summary="Every dataset: granted or not, counts, classes, task, licence, price, quality",
        responses={200: DatasetOutputSerializer(many=True), **errors(401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        projects = selectors.dataset_list_for_buyer(user=request_account(request))
        return Response(DatasetOutputSerializer(projects, many=True).data)


class DatasetPurchaseApi(APIView):
    permission_classes = [IsBuyer]

    @extend_schema_serializer(component_name="PurchaseInput")
    class InputSerializer(serializers.Serializer[Any]):
        tx_hash = serializers.RegexField(
            r"^0x[0-9a-fA-F]{64}$",
            help_text="The transaction that transferred at least the price to the treasury.",
        )
        signature = serializers.RegexField(
            r"^0x[0-9a-fA-F]{130}$",
            required=False,
            help_text="For a buyer without a wallet on record: the paying wallet's "
            "personal_sign of the purchase text (a 400 without it gives the text to sign).",
        )

    @extend_schema_serializer(component_name="Grant")
    class OutputSerializer(serializers.Serializer[Any]):
        id = serializers.IntegerField()
        dataset = serializers.IntegerField(source="project_id")
        source = serializers.ChoiceField(choices=["moderator", "purchase"])  # type: ignore[assignment]  # a field, not Field.source
        tx_hash = serializers.CharField(source="purchase.tx_hash")
        amount = serializers.CharField(source="purchase.amount")
        price = serializers.CharField(
            source="purchase.price",
            help_text="The price the payment was held to (base units): the dataset's price when "
            "the transfer was mined, or its price at the claim if lower.",
        )
        block_number = serializers.IntegerField(source="purchase.block_number")
        created_at = serializers.DateTimeField()

    @extend_schema(
        summary="Buy access to a dataset with an on-chain payment",
        description=(
            "Transfer at least the dataset's `price` (base units of the payout asset) to the "
            "treasury, then send the transaction's hash. It is verified from its receipt and "
            "`Transfer` logs; a transaction buys one grant, once. Only the buyer's own wallet's "
            "transfers count: the wallet on record, or the one whose `signature` of the "
            "purchase text (given in the 400 without it) proves it pays for this buyer. The price "
            "to meet is the one in force when the transfer was mined (its block's timestamp), or "
            "the current one if lower; the treasury is the current `DATASET_TREASURY_ADDRESS` "
            "(a payment to a former one is refused, naming both: a moderator grants by hand)."
        ),
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Malformed hash or signature; no wallet to claim the payment for "
                "(then `message` holds the exact text to sign); the chain has no such "
                "transaction; it reverted, your wallet paid less than the price in it, or paid "
                "another address than the treasury.",
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description="Transaction already used; you already hold a grant; not for sale; "
                "not enough confirmations yet (try again).",
            ),
            503: OpenApiResponse(ErrorSerializer, description="The chain can't be reached."),
            **errors(401, 403, 404, 429),
        },
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = selectors.dataset_get(dataset_id=dataset_id)
        try:
            grant = services.dataset_purchase(
                project=project,
                buyer=request_account(request),
                tx_hash=data.validated_data["tx_hash"],
                client=chain_client_for_requests(),
                signature=data.validated_data.get("signature"),
            )
        except services.GrantError as exc:
            body = {"detail": exc.message}
            if exc.to_sign is not None:
                body["message"] = exc.to_sign  # exactly the text to sign, newlines and all
            return Response(body, status=exc.status)
        return Response(self.OutputSerializer(grant).data, status=status.HTTP_201_CREATED)


# --- Records ----------------------------------------------------------------------------------


FILTER_PARAMETERS = [
    OpenApiParameter(
        "min_confidence",
        {"type": "number", "format": "double", "minimum": 0, "maximum": 1},
        description="Records whose decision's posterior is at least this (0 to 1).",
    ),
    OpenApiParameter(
        "label",
        str,
        description="Records decided as this class (one of the dataset's `classes`; for "
        "multi-label, boxes and spans: records with it among their classes).",
    ),
    OpenApiParameter(
        "decided_after",
        OpenApiTypes.DATETIME,
        description="Records decided strictly after this ISO 8601 date or date-time (no "
        "offset: UTC), for incremental syncs: pass the last `decided_at` you saw.",
    ),
    OpenApiParameter(
        "min_labels",
        {"type": "integer", "minimum": 1, "maximum": rec.MIN_LABELS_MAX},
        description="Records with at least this many labels (1 or more).",
    ),
    OpenApiParameter(
        "decided_by",
        str,
        enum=list(rec.DECIDED_BY),
        description="Records decided by the crowd's consensus, or by a moderator.",
    ),
    OpenApiParameter(
        rec.INCLUDE_WITHDRAWN,
        bool,
        default=False,
        description="With `decided_after` only (a 400 without it): besides the records "
        "decided after the cursor, tombstones of the records withdrawn after it (reopened "
        "when a labeler's answers stopped counting or started counting again: a ban, a fraud "
        "flag, an unban, a dismissed flag), to delete by `id`. The other filters select "
        "records only: every withdrawal after the cursor has a tombstone. Records: a "
        "`withdrawn` list in each page; the stream: JSON Lines only (a 400 for CSV), "
        '`{"id", "withdrawn": true, "withdrawn_at", "reason"}` lines among the records.',
    ),
]


class RecordPagination(IdCursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class ProvenanceOutputSerializer(serializers.Serializer[Any]):
    sha256 = serializers.CharField(help_text="SHA-256 of the item's content.")
    contributor = serializers.CharField(allow_null=True, help_text="Wallet.")
    labels = serializers.IntegerField(help_text="Labels the item had when decided.")
    method = serializers.CharField(
        allow_null=True, help_text="The consensus method; null when a moderator decided."
    )
    created_at = serializers.CharField(help_text="ISO 8601, UTC, with Z.")


class RecordOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    task = serializers.ChoiceField(choices=Project.Task.values, help_text="The project's task.")
    text = serializers.CharField(allow_null=True)
    text_b = serializers.CharField(allow_null=True, help_text="Pairwise: the second text.")
    image_url = serializers.URLField(
        allow_null=True, help_text="The image, fetchable with your API key only."
    )
    image_b_url = serializers.URLField(allow_null=True, help_text="Pairwise: the second image.")
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    label = serializers.CharField(  # type: ignore[assignment]  # a field, not Field.label
        help_text='The class; "a"/"b" (pairwise); a summary for multi-label, boxes, spans.'
    )
    value = serializers.JSONField(help_text="The decision in the task's shape.")
    agreement = serializers.FloatField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    decided_at = serializers.CharField(help_text="ISO 8601, UTC, with Z.")
    decided_by = serializers.ChoiceField(choices=list(rec.DECIDED_BY))
    provenance = ProvenanceOutputSerializer(source="*")


class TombstoneOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(help_text="The record to delete.")
    withdrawn_at = serializers.CharField(help_text="ISO 8601, UTC, with Z.")
    reason = serializers.ChoiceField(
        choices=Item.WithdrawnReason.choices,
        help_text="reopened: its counted answers no longer decide it; banned_labeler: a "
        "labeler of it was banned; fraud_flag: a labeler of it is held by a fraud flag.",
    )


class DatasetRecordsApi(APIView):
    permission_classes = [IsBuyer]
    throttle_classes = BUYER_THROTTLES

    @extend_schema(
        summary="A dataset's accepted records, filtered, cursor-paginated",
        description=(
            "Incremental syncs: `decided_after` the last `decided_at` kept (less a minute: "
            "see the README), with `include_withdrawn=true` for the records withdrawn since, "
            "in `withdrawn`. A page holds at most `page_size` records and tombstones together, "
            "in id order; follow `next` to the end."
        ),
        parameters=[
            OpenApiParameter("cursor", str, description="From `next` or `previous`."),
            OpenApiParameter("page_size", int, description="Records per page, at most 1000."),
            *FILTER_PARAMETERS,
        ],
        responses={
            200: inline_serializer(
                "RecordPage",
                {
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": RecordOutputSerializer(many=True),
                    "withdrawn": TombstoneOutputSerializer(
                        many=True,
                        required=False,
                        help_text="With include_withdrawn=true only: this page's tombstones.",
                    ),
                },
            ),
            400: OpenApiResponse(
                ErrorSerializer,
                description="A malformed, repeated or unknown filter; include_withdrawn "
                "without decided_after.",
            ),
            403: OpenApiResponse(
                ErrorSerializer, description="Not a buyer, or no access grant for the dataset."
            ),
            **errors(401, 404, 429),
        },
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        project = selectors.dataset_get_for_buyer(
            dataset_id=dataset_id, user=request_account(request)
        )
        try:
            filters = rec.parse_filters(
                request.query_params, project, allowed=("cursor", "page_size"), tombstones=True
            )
        except rec.FilterError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        paginator = RecordPagination()
        columns = (*rec.COLUMNS, *rec.TOMBSTONE_COLUMNS)
        queryset = rec.sync_queryset(project, filters).values(*columns)
        page: list[dict[str, Any]] = paginator.paginate_queryset(queryset, request, view=self) or []
        rows = list(
            rec.sync_rows(
                (tuple(row[c] for c in columns) for row in page),
                project,
                content_url_for(request),
            )
        )
        records = [row for row in rows if "withdrawn" not in row]
        response = paginator.get_paginated_response(RecordOutputSerializer(records, many=True).data)
        if filters.include_withdrawn:
            tombstones = [row for row in rows if "withdrawn" in row]
            response.data["withdrawn"] = TombstoneOutputSerializer(tombstones, many=True).data
        return response


class DatasetExportStreamApi(APIView):
    """``GET /api/v1/datasets/{id}/export?format=jsonl|csv``: every record, streamed now (for
    small sets; ``POST .../exports/`` builds any size in the background)."""

    content_negotiation_class = FileContentNegotiation
    permission_classes = [IsBuyer]
    throttle_classes = BUYER_THROTTLES

    @extend_schema(
        summary="Every accepted record of a dataset, streamed as JSON Lines or CSV",
        description=(
            "With `decided_after` and `include_withdrawn=true` (JSON Lines): the records decided "
            'after the cursor and, among them in id order, `{"id", "withdrawn": true, '
            '"withdrawn_at", "reason"}` lines for the records withdrawn after it, to delete.'
        ),
        parameters=[
            OpenApiParameter("format", str, enum=list(streams.STREAM_FORMATS), default="jsonl"),
            *FILTER_PARAMETERS,
        ],
        responses={
            (200, streams.STREAM_FORMATS["jsonl"]): OpenApiTypes.BINARY,
            (200, streams.STREAM_FORMATS["csv"]): OpenApiTypes.BINARY,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Unknown or repeated format, or a bad filter; include_withdrawn "
                "without decided_after, or with CSV.",
            ),
            403: OpenApiResponse(
                ErrorSerializer, description="Not a buyer, or no access grant for the dataset."
            ),
            **errors(401, 404, 429),
        },
    )
    def get(self, request: Request, dataset_id: int) -> HttpResponseBase:
        asked = request.query_params.getlist("format")
        if len(asked) > 1:  # refused like a repeated filter (records.parse_filters)
            return Response({"detail": "format: give it once"}, status=status.HTTP_400_BAD_REQUEST)
        fmt = asked[0] if asked else "jsonl"
        if fmt not in streams.STREAM_FORMATS:
            return Response(
                {"detail": f"unknown format {fmt!r}: use {' or '.join(streams.STREAM_FORMATS)}"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        project = selectors.dataset_get_for_buyer(
            dataset_id=dataset_id, user=request_account(request)
        )
        try:
            filters = rec.parse_filters(
                request.query_params, project, allowed=("format",), tombstones=True
            )
        except rec.FilterError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        rows: Iterator[dict[str, Any]]
        if filters.include_withdrawn:
            if fmt != "jsonl":
                return Response(
                    {
                        "detail": f"{rec.INCLUDE_WITHDRAWN}: tombstones are JSON Lines objects; "
                        "CSV has no row for them: use format=jsonl or records/"
                    },
                    status=status.HTTP_400_BAD_REQUEST,
                )
            tuples = rec.record_tuples(rec.sync_queryset(project, filters), tombstones=True)
            rows = rec.sync_rows(tuples, project, content_url_for(request))
        else:
            tuples = rec.record_tuples(rec.records_queryset(project, filters))
            rows = rec.record_rows(tuples, project, content_url_for(request))
        response = StreamingHttpResponse(
            streams.stream_chunks(fmt, rows), content_type=streams.CONTENT_TYPES[fmt]
        )
        response["Content-Disposition"] = ranges.attachment(streams.export_filename(project, fmt))
        return response


# --- Background exports -----------------------------------------------------------------------


class ExportOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    dataset = serializers.IntegerField(source="project_id")
    format = serializers.ChoiceField(choices=DatasetExport.Format.choices)
    filters = serializers.DictField(help_text="The record filters it was asked with.")
    status = serializers.ChoiceField(choices=DatasetExport.Status.choices)
    progress = serializers.IntegerField(help_text="0 to 100.")
    records = serializers.IntegerField()
    size_bytes = serializers.IntegerField()
    sha256 = serializers.CharField(help_text="Of the file; empty until done.")
    error = serializers.CharField(help_text="Why it failed; empty otherwise.")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    download_url = serializers.SerializerMethodField()
    croissant_url = serializers.SerializerMethodField()
    card_url = serializers.SerializerMethodField()

    def _url(self, export: DatasetExport, name: str) -> str | None:
        request: Request = self.context["request"]
        return request.build_absolute_uri(reverse(name, args=[export.pk]))

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, export: DatasetExport) -> str | None:
        return self._url(export, "export-download") if export.file else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_croissant_url(self, export: DatasetExport) -> str | None:
        return self._url(export, "export-croissant") if export.croissant else None

    @extend_schema_field(
        serializers.URLField(
            allow_null=True,
            help_text="Parquet: the dataset card (README.md); Label Studio: label_config.xml.",
        )
    )
    def get_card_url(self, export: DatasetExport) -> str | None:
        return self._url(export, "export-card") if export.card else None


class DatasetExportsApi(APIView):
    """``POST /api/v1/datasets/{id}/exports/``: build an export in the background (202)."""

    permission_classes = [IsBuyer]

    def get_throttles(self) -> list[Any]:
        if self.request.method == "POST":
            # EXPORT_RATE is counted in post(), once the request is valid: a refused one (an
            # unknown format, one the dataset doesn't offer, a bad filter) cost the buyer one
            # of their few exports an hour for nothing.
            return [ApiRateThrottle()]
        return [ApiRateThrottle(), DatasetReadThrottle()]

    def _count_export_request(self, request: Request) -> None:
        """Count a valid export request against ``EXPORT_RATE``; 429 past it."""
        throttle = ExportRequestThrottle()
        if not throttle.allow_request(request, self):
            raise Throttled(throttle.wait())  # what APIView.throttled raises, with Retry-After

    @extend_schema_serializer(component_name="ExportInput")
    class InputSerializer(serializers.Serializer[Any]):
        format = serializers.ChoiceField(choices=DatasetExport.Format.choices)
        min_confidence = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
        label = serializers.CharField(required=False)  # type: ignore[assignment]  # a field, not Field.label
        decided_after = serializers.DateTimeField(required=False)
        min_labels = serializers.IntegerField(
            required=False, min_value=1, max_value=rec.MIN_LABELS_MAX
        )
        decided_by = serializers.ChoiceField(choices=list(rec.DECIDED_BY), required=False)

    @extend_schema(
        summary="Request an export of a dataset, built in the background",
        description=(
            "Formats: `jsonl`, `csv`, `parquet` (with a Hugging Face dataset card), "
            "`label_studio` (JSON tasks with annotations, with its `label_config.xml`), and for "
            "boxes projects `coco` and `yolo` (zips with the images). The record filters are "
            "those of `records/`, but not `include_withdrawn` (a 400: an export is a snapshot of "
            "the records accepted now, without tombstones). Poll `GET /api/v1/exports/{id}/` until `status` is `done`."
        ),
        request=InputSerializer,
        responses={
            202: ExportOutputSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Unknown format, one that doesn't fit, bad filter, include_withdrawn.",
            ),
            403: OpenApiResponse(
                ErrorSerializer, description="Not a buyer, or no access grant for the dataset."
            ),
            503: OpenApiResponse(
                ExportOutputSerializer,
                description="The task queue could not be reached: the export failed at once "
                "(its fields, with `detail`); retry after Retry-After.",
            ),
            **errors(401, 404, 429),
        },
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        buyer = request_account(request)
        project = selectors.dataset_get_for_buyer(dataset_id=dataset_id, user=buyer)
        body = request.data if isinstance(request.data, dict) else {}
        if not isinstance(request.data, dict):
            return Response(
                {"detail": 'send a JSON object: {"format": "jsonl", ...filters}'},
                status=status.HTTP_400_BAD_REQUEST,
            )
        # A form body's QueryDict answers the last of a field given twice: refused by name, as
        # a repeated query parameter is (a JSON body can't repeat a key: config.parsers).
        if isinstance(body, QueryDict):
            for name, values in body.lists():
                if len(values) > 1:
                    return Response(
                        {"detail": f"{name[:80]}: give it once"},
                        status=status.HTTP_400_BAD_REQUEST,
                    )
        fmt = body.get("format")
        if not isinstance(fmt, str) or fmt not in DatasetExport.Format.values:
            return Response(
                {
                    "detail": f"format: {fmt!r} is not one of "
                    f"{', '.join(DatasetExport.Format.values)}"
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        params = {k: v for k, v in body.items() if k != "format"}
        if any(isinstance(v, dict | list) for v in params.values()):
            return Response(
                {"detail": "filters are single values (numbers, strings)"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            filters = rec.parse_filters(
                {k: "" if v is None else str(v) for k, v in params.items()}, project
            )
            services.export_check(project=project, fmt=fmt)
        except (rec.FilterError, services.ExportError) as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        self._count_export_request(request)
        try:
            export = services.export_request(
                project=project,
                buyer=buyer,
                fmt=fmt,
                filters=filters,
                base_url=request.build_absolute_uri("/"),
            )
        except services.ExportError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        export.refresh_from_db()  # an eager build has already run
        data = ExportOutputSerializer(export, context={"request": request}).data
        headers = {
            "Location": request.build_absolute_uri(reverse("export-detail", args=[export.pk]))
        }
        if export.error == services.QUEUE_DOWN:
            # Not the request's fault: 503, the failed export as the body, and when to retry.
            return Response(
                {"detail": f"Export not queued: {services.QUEUE_DOWN}.", **data},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={**headers, "Retry-After": "60"},
            )
        return Response(data, status=status.HTTP_202_ACCEPTED, headers=headers)

    @extend_schema(
        summary="My exports of a dataset, newest first",
        responses={200: ExportOutputSerializer(many=True), **errors(401, 403, 404, 429)},
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        buyer = request_account(request)
        project = selectors.dataset_get_for_buyer(dataset_id=dataset_id, user=buyer)
        exports = selectors.exports_for_buyer(user=buyer, project=project)
        return Response(
            ExportOutputSerializer(exports, many=True, context={"request": request}).data
        )


class ExportDetailApi(APIView):
    permission_classes = [IsBuyer]
    throttle_classes = BUYER_THROTTLES

    @extend_schema(
        summary="An export's status and progress; its download URL once done",
        responses={200: ExportOutputSerializer, **errors(401, 403, 404, 429)},
    )
    def get(self, request: Request, export_id: int) -> Response:
        export = selectors.export_get_for_buyer(export_id=export_id, user=request_account(request))
        return Response(ExportOutputSerializer(export, context={"request": request}).data)


def _export_file(export: DatasetExport, field: str) -> Any:
    stored = getattr(export, field)
    if export.status == DatasetExport.Status.EXPIRED:
        raise Gone(
            f"export {export.pk} expired at {export.expires_at:%Y-%m-%d %H:%M} UTC: request a new one"
        )
    if not stored:
        raise NotReady(f"export {export.pk} is {export.status}: no file yet")
    return stored


# The formats whose exports have a companion file (``DatasetExport.card``).
COMPANIONS = {DatasetExport.Format.PARQUET, DatasetExport.Format.LABEL_STUDIO}


class Gone(APIException):
    status_code = status.HTTP_410_GONE
    default_code = "gone"


class NotReady(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "not_ready"


DOWNLOAD_RESPONSES: dict[Any, Any] = {
    (200, "application/octet-stream"): OpenApiTypes.BINARY,
    (206, "application/octet-stream"): OpenApiResponse(
        OpenApiTypes.BINARY, description="The byte range asked for with `Range: bytes=a-b`."
    ),
    409: OpenApiResponse(ErrorSerializer, description="Not built yet (or failed)."),
    410: OpenApiResponse(ErrorSerializer, description="Expired: its files are deleted."),
    416: OpenApiResponse(ErrorSerializer, description="A range outside the file."),
    **errors(401, 403, 404, 429),
}


class ExportDownloadApi(APIView):
    """The export's file, with HTTP ``Range`` (resume a download, read a Parquet footer)."""

    content_negotiation_class = FileContentNegotiation
    permission_classes = [IsBuyer]
    throttle_classes = BUYER_THROTTLES

    @extend_schema(
        summary="Download an export (supports Range)",
        parameters=[
            OpenApiParameter(
                "Range",
                str,
                OpenApiParameter.HEADER,
                description="One byte range: `bytes=0-1023`, `bytes=1024-`, `bytes=-512`.",
            )
        ],
        responses=DOWNLOAD_RESPONSES,
    )
    def get(self, request: Request, export_id: int) -> HttpResponseBase:
        export = selectors.export_get_for_buyer(export_id=export_id, user=request_account(request))
        stored = _export_file(export, "file")
        content_type = _CONTENT_TYPES.get(export.format, "application/octet-stream")
        name = stored.name.rsplit("/", 1)[-1]
        return ranges.ranged_response(
            request, stored, content_type=content_type, filename=name, etag=export.sha256
        )


_CONTENT_TYPES = {
    **streams.CONTENT_TYPES,
    "coco": "application/zip",
    "yolo": "application/zip",
    "label_studio": "application/json",
    "parquet": "application/vnd.apache.parquet",
}


class ExportCroissantApi(APIView):
    content_negotiation_class = FileContentNegotiation
    permission_classes = [IsBuyer]
    throttle_classes = BUYER_THROTTLES

    @extend_schema(
        summary="The export's Croissant JSON-LD description (licence, provenance, fields)",
        responses={
            (200, "application/ld+json"): OpenApiTypes.OBJECT,
            409: OpenApiResponse(ErrorSerializer, description="Not built yet."),
            410: OpenApiResponse(ErrorSerializer, description="Expired."),
            **errors(401, 403, 404, 429),
        },
    )
    def get(self, request: Request, export_id: int) -> HttpResponseBase:
        export = selectors.export_get_for_buyer(export_id=export_id, user=request_account(request))
        stored = _export_file(export, "croissant")
        return ranges.ranged_response(
            request,
            stored,
            content_type="application/ld+json",
            filename=stored.name.rsplit("/", 1)[-1],
            etag="",
        )


class ExportCardApi(APIView):
    content_negotiation_class = FileContentNegotiation
    permission_classes = [IsBuyer]
    throttle_classes = BUYER_THROTTLES

    @extend_schema(
        summary="The export's companion file: a Parquet export's dataset card (README.md), a "
        "Label Studio export's label_config.xml",
        responses={
            (200, "text/markdown"): OpenApiTypes.STR,
            (200, "application/xml"): OpenApiTypes.STR,
            409: OpenApiResponse(ErrorSerializer, description="None for this export, or not yet."),
            410: OpenApiResponse(ErrorSerializer, description="Expired."),
            **errors(401, 403, 404, 429),
        },
    )
    def get(self, request: Request, export_id: int) -> HttpResponseBase:
        export = selectors.export_get_for_buyer(export_id=export_id, user=request_account(request))
        if export.format not in COMPANIONS:
            raise NotReady(
                f"a {export.format} export has no companion file; Parquet exports have a dataset "
                "card, Label Studio exports a label_config.xml"
            )
        stored = _export_file(export, "card")
        name = stored.name.rsplit("/", 1)[-1]
        kind = "text/markdown; charset=utf-8" if name.endswith(".md") else "application/xml"
        return ranges.ranged_response(request, stored, content_type=kind, filename=name, etag="")


class MyExportsApi(APIView):
    permission_classes = [IsBuyer]
    throttle_classes = BUYER_THROTTLES

    @extend_schema(
        summary="My exports, newest first (the last 50)",
        responses={200: ExportOutputSerializer(many=True), **errors(401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        exports = selectors.exports_for_buyer(user=request_account(request))
        return Response(
            ExportOutputSerializer(exports, many=True, context={"request": request}).data
        )
