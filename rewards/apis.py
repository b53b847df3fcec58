"""``GET /api/v1/me/rewards/``: a contributor's pending and paid rewards, with payout transactions."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsContributor, request_account
from rewards.models import LedgerEntry, PayoutBatch, PayoutTransfer
from rewards.selectors import explorer_tx_url, reward_summary_for_user


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
                    "pending": serializers.CharField(help_text="Integer token base units."),
                    "paid": serializers.CharField(help_text="Integer token base units."),
                    "entries": EntryOutputSerializer(many=True),
                    "payouts": PayoutOutputSerializer(many=True),
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        user = request_account(request)
        summary = reward_summary_for_user(user=user)
        return Response(
            {
                "address": user.wallet_address,
                "pending": str(summary.pending),
                "paid": str(summary.paid),
                "entries": EntryOutputSerializer(summary.entries, many=True).data,
                "payouts": PayoutOutputSerializer(summary.payouts, many=True).data,
            }
        )
