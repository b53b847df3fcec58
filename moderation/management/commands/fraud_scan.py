"""Run every fraud check now (the beat does it every FRAUD_SCAN_SECONDS; the demo has no beat)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from moderation.services import fraud_scan


class Command(BaseCommand):
    help = "Run every fraud check on every open project, the sign-ups and the chain; print what it flagged."

    def handle(self, *args: Any, **options: Any) -> None:
        report = fraud_scan()
        self.stdout.write(report.summary)
