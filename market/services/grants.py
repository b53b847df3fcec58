"""Access grants: given by a moderator (audited), or bought on-chain and verified from the chain.

A purchase is verified from the transaction's receipt: it must be mined (``DATASET_PURCHASE_
CONFIRMATIONS`` deep), have succeeded, and its ``Transfer`` logs of the payout asset must move at
least the dataset's price to ``DATASET_TREASURY_ADDRESS``. The chain is read before any database
transaction opens (no network I/O inside one); the purchase and its grant are then written in
one transaction, and the unique transaction hash refuses a replay even when two requests race.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from labeling.models import Project
from market.models import DatasetGrant, DatasetPurchase
from rewards.asset import payout_asset
from rewards.chain import ChainClient, ChainError, ChainUnavailable

TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


class GrantError(Exception):
    """A grant or purchase was refused. ``status`` is the HTTP status the API answers with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def grant_give(*, project: Project, buyer: User, moderator: User, note: str = "") -> DatasetGrant:
    """A moderator gives ``buyer`` access to ``project``'s dataset, audited in the same
    transaction. Raises ``GrantError`` (409) if the buyer already holds a live grant."""
    if buyer.role != User.Role.BUYER:
        raise GrantError(f"{buyer} is not a buyer (role {buyer.role}): give them the buyer role")
    try:
        with transaction.atomic():
            grant = DatasetGrant.objects.create(
                project=project,
                buyer=buyer,
                source=DatasetGrant.Source.MODERATOR,
                granted_by=moderator,
                note=note[:300],
            )
            audit_record(
                actor=moderator,
                action="dataset.grant",
                target=grant,
                details={"project": project.pk, "buyer": buyer.pk, "note": note[:300]},
            )
    except IntegrityError as exc:
        raise GrantError(f"{buyer} already holds a grant for {project}", status=409) from exc
    return grant


def grant_revoke(*, grant: DatasetGrant, moderator: User, reason: str = "") -> bool:
    """Revoke a live grant, audited; returns False if it was already revoked."""
    with transaction.atomic():
        revoked = DatasetGrant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=moderator
        )
        if revoked:
            audit_record(
                actor=moderator,
                action="dataset.grant_revoke",
                target=grant,
                details={"project": grant.project_id, "buyer": grant.buyer_id, "reason": reason},
            )
    return bool(revoked)


def _check_purchasable(project: Project, buyer: User, tx_hash: str) -> str:
    treasury = settings.DATASET_TREASURY_ADDRESS
    if not treasury:
        raise GrantError(
            "this deployment sells no dataset on-chain (no treasury is configured): ask a "
            "moderator for a grant",
            status=409,
        )
    if project.price <= 0:
        raise GrantError(
            f"dataset {project.pk} is not sold on-chain (it has no price): ask a moderator for "
            "a grant",
            status=409,
        )
    used = DatasetPurchase.objects.filter(tx_hash=tx_hash).first()
    if used is not None:
        raise GrantError(
            f"transaction {tx_hash} was already used for a purchase (of dataset "
            f"{used.project_id}): one grant per transaction",
            status=409,
        )
    if DatasetGrant.objects.filter(project=project, buyer=buyer, revoked_at__isnull=True).exists():
        raise GrantError(
            f"you already hold a grant for dataset {project.pk}; this transaction was not used",
            status=409,
        )
    return treasury


def dataset_purchase(
    *, project: Project, buyer: User, tx_hash: str, client: ChainClient
) -> DatasetGrant:
    """Verify an on-chain payment for ``project`` and grant ``buyer`` access.

    Raises ``GrantError``: 400 for a malformed hash, a transaction the chain doesn't have, a
    reverted one, one paying less than the price or from another wallet than the buyer's; 409
    for a transaction already used, a buyer who already holds a grant, a dataset not for sale,
    or one not yet ``DATASET_PURCHASE_CONFIRMATIONS`` deep (try again); 503 when the chain
    can't be reached.
    """
    if not isinstance(tx_hash, str) or not TX_HASH.fullmatch(tx_hash):
        raise GrantError("tx_hash: a transaction hash is 0x and 64 hex digits")
    tx_hash = tx_hash.lower()
    treasury = _check_purchasable(project, buyer, tx_hash)
    asset = payout_asset()
    try:
        payment = client.asset_payment(tx_hash)
    except ChainUnavailable as exc:
        raise GrantError("the chain can't be reached now: try again", status=503) from exc
    except ChainError as exc:
        raise GrantError(f"the chain refused to read {tx_hash}: {exc}", status=503) from exc
    if payment is None:
        raise GrantError(
            f"transaction {tx_hash} is not on the chain (not mined yet, or another chain): "
            "send it again once it is mined"
        )
    if not payment.status:
        raise GrantError(f"transaction {tx_hash} reverted: it paid nothing")
    needed = settings.DATASET_PURCHASE_CONFIRMATIONS
    if payment.confirmations < needed:
        raise GrantError(
            f"transaction {tx_hash} has {payment.confirmations} of the {needed} confirmations a "
            "purchase needs: try again in a few blocks",
            status=409,
        )
    paid = payment.paid_to(treasury)
    if paid < project.price:
        raise GrantError(
            f"transaction {tx_hash} paid {asset.format(paid)} ({payment.asset}) "
            f"to the treasury {treasury}; dataset {project.pk} costs "
            f"{asset.format(project.price)} ({project.price} base units)"
        )
    payers = {t.from_address for t in payment.transfers if t.to_address.lower() == treasury.lower()}
    # A buyer with a wallet on record must pay from it: otherwise anyone who saw the transfer
    # on-chain could claim it first.
    if buyer.wallet_address and buyer.wallet_address.lower() not in {p.lower() for p in payers}:
        raise GrantError(
            f"transaction {tx_hash} was paid from {', '.join(sorted(payers))}, not from your "
            f"wallet {buyer.wallet_address}"
        )
    try:
        with transaction.atomic():
            purchase = DatasetPurchase.objects.create(
                tx_hash=tx_hash,
                project=project,
                buyer=buyer,
                payer=sorted(payers)[0],
                treasury=treasury,
                asset=payment.asset,
                amount=paid,
                price=project.price,
                block_number=payment.block_number,
            )
            grant = DatasetGrant.objects.create(
                project=project, buyer=buyer, source=DatasetGrant.Source.PURCHASE, purchase=purchase
            )
            audit_record(
                actor=buyer,
                action="dataset.purchase",
                target=grant,
                details={"project": project.pk, "tx_hash": tx_hash, "amount": str(paid)},
            )
    except IntegrityError as exc:
        # A racing request used the hash, or granted this buyer, first.
        raise GrantError(
            f"transaction {tx_hash} was already used, or you already hold a grant for dataset "
            f"{project.pk}",
            status=409,
        ) from exc
    return grant
