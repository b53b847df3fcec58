from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rewards.client import EMBEDDED_ELSEWHERE, chain_client, embedded_chain_elsewhere


class Command(BaseCommand):
    help = "Deploy the reward token with the configured key; prints the address for CHAIN_TOKEN_ADDRESS."

    def handle(self, *args: Any, **options: Any) -> None:
        if embedded_chain_elsewhere():
            raise CommandError(EMBEDDED_ELSEWHERE)
        client = chain_client()
        address = client.deploy_token()
        self.stdout.write(f"RewardToken deployed on chain {client.chain_id} at {address}")
        self.stdout.write(f"export CHAIN_TOKEN_ADDRESS={address}")
