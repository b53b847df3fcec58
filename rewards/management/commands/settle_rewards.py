from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rewards.client import EMBEDDED_ELSEWHERE, chain_client_with_token, embedded_chain_elsewhere
from rewards.services import payouts_settle


class Command(BaseCommand):
    help = "Pay every due credit on-chain in batches. Safe to run twice, or after a crash."

    def handle(self, *args: Any, **options: Any) -> None:
        if embedded_chain_elsewhere():
            raise CommandError(EMBEDDED_ELSEWHERE)
        client = chain_client_with_token()
        report = payouts_settle(client=client)
        for batch_id in report.confirmed:
            self.stdout.write(f"confirmed {batch_id}")
        for batch_id in report.pending:
            self.stdout.write(f"pending   {batch_id} (run again to finish it)")
        for batch_id in report.awaiting_approval:
            self.stdout.write(f"waiting   {batch_id} (a moderator must approve it in admin)")
        for batch_id in report.failed:
            self.stderr.write(f"failed    {batch_id}")
        self.stdout.write(self.style.SUCCESS(report.summary))
