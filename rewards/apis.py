"""A contributor's money: ``GET /api/v1/me/rewards/`` (pending and paid, payout transactions) and
``GET /api/v1/me/receipts/[{id}]`` (why each entry was paid, verifiable against the chain)."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsContributor, request_account
from config.openapi import errors
from config.pagination import IdCursorPagination
from rewards.asset import payout_asset
from rewards.chain.merkle import receipt_digest
from rewards.models import LedgerEntry, PayoutBatch, PayoutTransfer
from rewards.receipts import Receipt, receipt_for_entry
from rewards.selectors import (
    explorer_tx_url,
    ledger_entries_for_user,
    ledger_entry_get_for_user,
    reward_summary_for_user,
)

ASSET = inline_serializer(
    "PayoutAsset",
    {
        "mode": serializers.ChoiceField(["mint", "erc20"]),
        "symbol": serializers.CharField(),
        "decimals": serializers.IntegerField(),
    },
)


class EntryOutputSerializer(serializers.ModelSerializer[LedgerEntry]):
    amount = serializers.CharField()
    project = serializers.IntegerField(source="project_id")
    paid = serializers.SerializerMethodField()

    class Meta:
        model = LedgerEntry
        fields = ["id", "amount", "reason", "source", "project", "created_at", "paid"]

    def get_paid(self, entry: LedgerEntry) -> bool:
        allocation = getattr(entry, "allocation", None)
        return allocation is not None and allocation.batch.status == PayoutBatch.Status.CONFIRMED


class PayoutOutputSerializer(serializers.ModelSerializer[PayoutTransfer]):
    amount = serializers.CharField()
    batch_id = serializers.CharField(source="batch.batch_id")
    status = serializers.CharField(source="batch.status")
    tx_hash = serializers.CharField(source="batch.tx_hash")
    chain_id = serializers.IntegerField(source="batch.chain_id")
    confirmed_at = serializers.DateTimeField(source="batch.confirmed_at")
    explorer_url = serializers.SerializerMethodField()

    class Meta:
        model = PayoutTransfer
        fields = [
            "batch_id",
            "amount",
            "status",
            "tx_hash",
            "chain_id",
            "confirmed_at",
            "explorer_url",
        ]

    def get_explorer_url(self, transfer: PayoutTransfer) -> str | None:
        return explorer_tx_url(transfer.batch.tx_hash)


class MyRewardsApi(APIView):
    permission_classes = [IsContributor]

    @extend_schema(
        summary="My rewards: pending and paid totals, credits, and payouts with transactions",
        responses={
            200: inline_serializer(
                "MyRewards",
                {
                    "address": serializers.CharField(),
                    "asset": ASSET,
                    "pending": serializers.CharField(help_text="Integer asset base units."),
                    "paid": serializers.CharField(help_text="Integer asset base units."),
                    "pending_display": serializers.CharField(help_text="e.g. 1.5 CMT"),
                    "paid_display": serializers.CharField(),
                    "entries": EntryOutputSerializer(many=True),
                    "payouts": PayoutOutputSerializer(many=True),
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        user = request_account(request)
        summary = reward_summary_for_user(user=user)
        asset = payout_asset()
        return Response(
            {
                "address": user.wallet_address,
                "asset": asset.as_json(),
                "pending": str(summary.pending),
                "paid": str(summary.paid),
                "pending_display": asset.format(summary.pending),
                "paid_display": asset.format(summary.paid),
                "entries": EntryOutputSerializer(summary.entries, many=True).data,
                "payouts": PayoutOutputSerializer(summary.payouts, many=True).data,
            }
        )


class ReceiptOutputSerializer(serializers.Serializer[Receipt]):
    """A ledger entry's receipt, with what anyone needs to check it against the chain."""

    id = serializers.IntegerField(source="entry.pk")
    status = serializers.SerializerMethodField()
    amount = serializers.CharField(source="entry.amount", help_text="Asset base units.")
    amount_display = serializers.SerializerMethodField()
    asset = serializers.SerializerMethodField()
    body = serializers.JSONField(help_text="What the leaf commits to (see the README).")
    digest = serializers.SerializerMethodField(help_text="keccak256 of the canonical body.")
    leaf = serializers.CharField(allow_null=True)
    proof = serializers.ListField(child=serializers.CharField())
    root = serializers.CharField(allow_null=True)  # type: ignore[assignment]  # a field, not Field.root
    batch = serializers.SerializerMethodField()

    def get_status(self, receipt: Receipt) -> str:
        if receipt.batch is None:
            return "pending"
        return "paid" if receipt.paid else f"in batch ({receipt.batch.status})"

    def get_amount_display(self, receipt: Receipt) -> str:
        return payout_asset().format(receipt.entry.amount)

    @extend_schema_field(ASSET)
    def get_asset(self, receipt: Receipt) -> dict[str, object]:
        return payout_asset().as_json()

    def get_digest(self, receipt: Receipt) -> str:
        return "0x" + receipt_digest(receipt.body).hex()

    @extend_schema_field(
        inline_serializer(
            "ReceiptBatch",
            {
                "batch_id": serializers.CharField(),
                "status": serializers.CharField(),
                "chain_id": serializers.IntegerField(),
                "contract": serializers.CharField(help_text="The payout contract."),
                "tx_hash": serializers.CharField(),
                "block_number": serializers.IntegerField(allow_null=True),
                "explorer_url": serializers.URLField(allow_null=True),
            },
            allow_null=True,
        )
    )
    def get_batch(self, receipt: Receipt) -> dict[str, object] | None:
        batch = receipt.batch
        if batch is None:
            return None
        return {
            "batch_id": batch.batch_id,
            "status": batch.status,
            "chain_id": batch.chain_id,
            "contract": batch.token_address,
            "tx_hash": batch.tx_hash,
            "block_number": batch.block_number,
            "explorer_url": explorer_tx_url(batch.tx_hash),
        }


class ReceiptPagination(IdCursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class MyReceiptListApi(APIView):
    permission_classes = [IsContributor]

    class OutputSerializer(serializers.ModelSerializer[LedgerEntry]):
        amount = serializers.CharField()
        project = serializers.IntegerField(source="project_id", allow_null=True)
        item = serializers.IntegerField(source="item_id", allow_null=True)
        status = serializers.SerializerMethodField()
        tx_hash = serializers.SerializerMethodField()

        class Meta:
            model = LedgerEntry
            fields = ["id", "amount", "reason", "source", "project", "item", "created_at"]
            fields += ["status", "tx_hash"]

        def get_status(self, entry: LedgerEntry) -> str:
            allocation = getattr(entry, "allocation", None)
            if allocation is None:
                return "pending"
            return "paid" if allocation.batch.status == PayoutBatch.Status.CONFIRMED else "in batch"

        def get_tx_hash(self, entry: LedgerEntry) -> str | None:
            allocation = getattr(entry, "allocation", None)
            return allocation.batch.tx_hash or None if allocation is not None else None

    @extend_schema(
        operation_id="me_receipts_list",
        summary="My receipts: every ledger entry of mine, newest first",
        parameters=[OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
        responses={
            200: inline_serializer(
                "ReceiptPage",
                {
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": OutputSerializer(many=True),
                },
            ),
            **errors(401, 403),
        },
    )
    def get(self, request: Request) -> Response:
        entries = ledger_entries_for_user(user=request_account(request))
        paginator = ReceiptPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class MyReceiptApi(APIView):
    permission_classes = [IsContributor]

    @extend_schema(
        summary="One of my receipts, with its Merkle leaf, proof and the batch's root",
        responses={200: ReceiptOutputSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, entry_id: int) -> Response:
        entry = ledger_entry_get_for_user(entry_id=entry_id, user=request_account(request))
        receipt = receipt_for_entry(entry=entry, asset=payout_asset())
        return Response(ReceiptOutputSerializer(receipt).data)
