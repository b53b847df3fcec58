"""``manage.py deploy_distributor``: deploy the RewardDistributor for PAYOUT_ASSET=erc20."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rewards.client import EMBEDDED_ELSEWHERE, chain_client, embedded_chain_elsewhere


class Command(BaseCommand):
    help = (
        "Deploy a RewardDistributor that pays ASSET (an ERC-20) from TREASURY, signed by the "
        "configured key (it gets DISTRIBUTOR_ROLE). The treasury must then approve the "
        "distributor for the allowance it may spend. With --test-stablecoin (local nodes only) "
        "it also deploys a 6-decimal test dollar, funds the signer as treasury and approves."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--asset", help="The ERC-20 to pay in (e.g. a stablecoin's address).")
        parser.add_argument("--treasury", help="The address payouts are pulled from.")
        parser.add_argument(
            "--test-stablecoin",
            action="store_true",
            help="Deploy a mock 6-decimal stablecoin, with the signer as its funded treasury.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if embedded_chain_elsewhere():
            raise CommandError(EMBEDDED_ELSEWHERE)
        client = chain_client()
        asset, treasury = options["asset"], options["treasury"]
        if options["test_stablecoin"]:
            if asset or treasury:
                raise CommandError("--test-stablecoin deploys its own asset and treasury")
            asset = client.deploy_mock_stablecoin()
            treasury = client.address
            client.mint_mock_stablecoin(asset, treasury, 10**15)
        elif not (asset and treasury):
            raise CommandError("give --asset and --treasury (or --test-stablecoin)")
        address = client.deploy_distributor(asset, treasury)
        if options["test_stablecoin"]:
            client.approve(asset, address, 10**15)
        info = client.token_info()
        self.stdout.write(
            f"RewardDistributor deployed on chain {client.chain_id} at {address}, paying "
            f"{info.symbol} ({info.decimals} decimals, {asset}) from {treasury}"
        )
        self.stdout.write("export PAYOUT_ASSET=erc20")
        self.stdout.write(f"export CHAIN_DISTRIBUTOR_ADDRESS={address}")
        self.stdout.write(f"export PAYOUT_ASSET_SYMBOL={info.symbol}")
        self.stdout.write(f"export PAYOUT_ASSET_DECIMALS={info.decimals}")
        if not options["test_stablecoin"]:
            self.stdout.write(
                f"The treasury must now approve {address} on {asset} for what it may pay out."
            )
