"""``manage.py reconcile_payouts``: check the payout invariants against the chain, now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rewards.client import EMBEDDED_ELSEWHERE, chain_client_with_token, embedded_chain_elsewhere
from rewards.models import ReconciliationRun
from rewards.reconcile import payouts_reconcile


class Command(BaseCommand):
    help = "Check every payout invariant against the chain; exit 1 if one fails."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--balances",
            action="store_true",
            help="Also compare wallets' balances with the ledger (only where nobody else "
            "moves the asset, e.g. a test chain).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if embedded_chain_elsewhere():
            raise CommandError(EMBEDDED_ELSEWHERE)
        report = payouts_reconcile(
            client=chain_client_with_token(), check_balances=options["balances"]
        )
        ReconciliationRun.objects.create(
            ok=report.ok,
            checked_batches=report.batches,
            results=[i.as_json() for i in report.invariants],
        )
        for line in report.lines():
            self.stdout.write(line)
        if not report.ok:
            raise CommandError("payout invariants violated")
        self.stdout.write(self.style.SUCCESS(f"{report.batches} batch(es): every invariant holds"))
