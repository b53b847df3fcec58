"""``manage.py demo``: a fresh database and chain, demo data, then the server, in one process.

The embedded EVM lives inside this process, so the seeding, the web server and (eager) Celery
must all run here to share it. Run through ``make demo``.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from frontend.seed import seed_demo
from rewards.client import chain_client, chain_is_embedded
from rewards.services import payouts_settle


class Command(BaseCommand):
    help = "Migrate, deploy the token, seed demo data, settle the first rewards and serve the platform."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-serve", action="store_true", help="Seed, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_MODE:
            raise CommandError("Run the demo with CROWDMINT_DEMO=1 (make demo does).")
        call_command("migrate", interactive=False, verbosity=0)
        client = chain_client()
        password = secrets.token_urlsafe(9)
        cast = seed_demo(moderator_password=password)
        report = payouts_settle(client=client)
        port = options["port"]
        where = (
            "in-process EVM (fresh at each start)"
            if chain_is_embedded()
            else settings.CHAIN_RPC_URL
        )
        self.stdout.write(
            "\n".join(
                [
                    "",
                    self.style.SUCCESS(f"Crowdmint demo: http://127.0.0.1:{port}/"),
                    f"  Database and chain are fresh at each start. Chain: {where}, chain id {client.chain_id}",
                    f"  Reward token: {client.token_address}; first settlement: {report.summary}",
                    f"  Moderator (admin at /admin/): moderator / {password}",
                    f"  Buyer API key (grants on every dataset): {cast.buyer_key}",
                    f"  Buyer API key (a grant on dataset 1, 'Product review sentiment', only): {cast.text_buyer_key}",
                    f"    curl -H 'Authorization: Bearer {cast.buyer_key}' http://127.0.0.1:{port}/api/v1/datasets/",
                    f"    buyers' page: http://127.0.0.1:{port}/buyers/ (paste a key once)",
                    f"  API docs: http://127.0.0.1:{port}/api/v1/docs (OpenAPI at /api/v1/schema)",
                    "  Contributors: sign in at /login/ with a browser wallet, or as a seeded demo contributor:",
                    *[f"    {c.wallet_address}" for c in cast.contributors],
                    "",
                ]
            )
        )
        if options["no_serve"]:
            return
        call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
