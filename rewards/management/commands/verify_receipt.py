"""``manage.py verify_receipt ID``: check a receipt against the Merkle root stored on-chain."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rewards.apis import ReceiptOutputSerializer
from rewards.asset import payout_asset
from rewards.chain.merkle import leaf_of_receipt, receipt_digest, verify_proof
from rewards.client import EMBEDDED_ELSEWHERE, chain_client, embedded_chain_elsewhere
from rewards.models import LedgerEntry
from rewards.receipts import receipt_for_entry


class Command(BaseCommand):
    help = (
        "Verify the receipt of ledger entry ID: recompute its digest and leaf from the receipt, "
        "fold its proof, and compare with the root the payout contract stored for its batch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("entry_id", type=int, help="The receipt's id (its ledger entry).")

    def handle(self, *args: Any, **options: Any) -> None:
        entry = (
            LedgerEntry.objects.select_related("user", "project", "item")
            .filter(pk=options["entry_id"])
            .first()
        )
        if entry is None:
            raise CommandError(f"no ledger entry {options['entry_id']}")
        receipt = receipt_for_entry(entry=entry, asset=payout_asset())
        if receipt.batch is None or receipt.leaf is None or receipt.root is None:
            raise CommandError(f"receipt {entry.pk} is not in a payout batch yet: nothing on-chain")
        document = ReceiptOutputSerializer(receipt).data
        if embedded_chain_elsewhere():
            raise CommandError(EMBEDDED_ELSEWHERE)
        client = chain_client()
        batch = document["batch"]
        batch_id = bytes.fromhex(batch["batch_id"][2:])
        leaf = bytes.fromhex(document["leaf"][2:])
        proof = [bytes.fromhex(p[2:]) for p in document["proof"]]
        root = bytes.fromhex(document["root"][2:])
        if client.payout_address != batch["contract"] or client.chain_id != batch["chain_id"]:
            raise CommandError(
                f"the receipt was paid by {batch['contract']} on chain {batch['chain_id']}; "
                f"this deployment's chain client is {client.payout_address} on {client.chain_id}"
            )
        onchain = client.batch_root(batch_id)
        checks = [
            (
                "digest = keccak256(canonical JSON of the body)",
                document["digest"] == "0x" + receipt_digest(document["body"]).hex(),
            ),
            ("leaf recomputed from the receipt", leaf_of_receipt(document) == leaf),
            ("proof folds the leaf to the batch's root", verify_proof(proof, root, leaf)),
            ("the payout contract stores that root", onchain == root),
            ("the contract's verifyReceipt agrees", client.verify_receipt(batch_id, proof, leaf)),
        ]
        for label, ok in checks:
            self.stdout.write(f"{'ok  ' if ok else 'FAIL'} {label}")
        self.stdout.write(
            f"receipt {entry.pk}: {document['amount_display']} to {document['body']['wallet']}, "
            f"batch {batch['batch_id']} ({batch['status']}, tx {batch['tx_hash'] or '-'}, "
            f"block {batch['block_number']}), on-chain root "
            f"{'0x' + onchain.hex() if onchain else 'none (batch not paid)'}"
        )
        if not all(ok for _, ok in checks):
            raise CommandError(f"receipt {entry.pk} does NOT verify")
        self.stdout.write(self.style.SUCCESS(f"receipt {entry.pk} verifies against the chain"))
