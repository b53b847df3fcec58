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
from accounts.siwe import SiweError, recover_signer
from labeling.models import Project
from market.models import DatasetGrant, DatasetPurchase
from rewards.asset import payout_asset
from rewards.chain import ChainClient, ChainError, ChainUnavailable

TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


class GrantError(Exception):
    """A grant or purchase was refused. ``status`` is the HTTP status the API answers with."""

    def __init__(self, message: str, *, status: int = 400, to_sign: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.to_sign = to_sign  # the purchase text to sign, when that is what is missing


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
    if DatasetPurchase.objects.filter(tx_hash=tx_hash).exists():
        # Which dataset it bought is not said: the hash is public, the purchase is not.
        raise GrantError(
            f"transaction {tx_hash} was already used for a purchase: one grant per transaction",
            status=409,
        )
    if DatasetGrant.objects.filter(project=project, buyer=buyer, revoked_at__isnull=True).exists():
        raise GrantError(
            f"you already hold a grant for dataset {project.pk}; this transaction was not used",
            status=409,
        )
    return treasury


def purchase_message(*, project: Project, buyer: User, tx_hash: str) -> str:
    """What the paying wallet signs (EIP-191 personal_sign) to claim its transfer for ``buyer``:
    the transfer is public on-chain, so without it any buyer could claim anyone's payment."""
    return (
        "Crowdmint dataset purchase\n"
        f"Dataset: {project.pk}\n"
        f"Buyer: {buyer.pk}\n"
        f"Transaction: {tx_hash.lower()}\n"
        f"Treasury: {settings.DATASET_TREASURY_ADDRESS.lower()}"
    )


def _claimant(project: Project, buyer: User, tx_hash: str, signature: str | None) -> str:
    """The wallet whose transfer this purchase claims: the buyer's wallet on record, or the
    one that signed ``purchase_message`` (which must then be the buyer's, if they have one)."""
    if not signature:
        if buyer.wallet_address:
            return str(buyer.wallet_address)
        raise GrantError(
            "signature: sign the text in `message` with the wallet that paid (personal_sign) "
            "and send the signature with the hash, to show the payment is yours",
            to_sign=purchase_message(project=project, buyer=buyer, tx_hash=tx_hash),
        )
    if not isinstance(signature, str):
        raise GrantError("signature: a 0x-prefixed hex signature of 65 bytes")
    try:
        signer = recover_signer(
            purchase_message(project=project, buyer=buyer, tx_hash=tx_hash), signature
        )
    except SiweError as exc:
        raise GrantError(f"signature: {exc}") from None
    if buyer.wallet_address and signer.lower() != buyer.wallet_address.lower():
        raise GrantError(
            f"signature: signed by {signer}, not by your wallet {buyer.wallet_address}"
        )
    return signer


def dataset_purchase(
    *,
    project: Project,
    buyer: User,
    tx_hash: str,
    client: ChainClient,
    signature: str | None = None,
) -> DatasetGrant:
    """Verify an on-chain payment for ``project`` and grant ``buyer`` access.

    The payment is what one wallet, the buyer's, transferred to the treasury in that
    transaction: the buyer's wallet on record, or the one whose ``signature`` of
    ``purchase_message`` proves it is theirs.

    Raises ``GrantError``: 400 for a malformed hash or signature, no wallet to claim the payment
    for, a transaction the chain doesn't have, a reverted one, one in which that wallet paid
    less than the price; 409 for a transaction already used, a buyer who already holds a grant,
    a dataset not for sale, or one not yet ``DATASET_PURCHASE_CONFIRMATIONS`` deep (try again);
    503 when the chain can't be reached.
    """
    if not isinstance(tx_hash, str) or not TX_HASH.fullmatch(tx_hash):
        raise GrantError("tx_hash: a transaction hash is 0x and 64 hex digits")
    tx_hash = tx_hash.lower()
    treasury = _check_purchasable(project, buyer, tx_hash)
    wallet = _claimant(project, buyer, tx_hash, signature)
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
    to_treasury = [t for t in payment.transfers if t.to_address.lower() == treasury.lower()]
    # Only what the claimant sent counts: another sender's share of the same transaction is not
    # the buyer's payment.
    paid = sum(t.value for t in to_treasury if t.from_address.lower() == wallet.lower())
    if not paid and to_treasury:
        payers = sorted({t.from_address for t in to_treasury})
        raise GrantError(
            f"transaction {tx_hash} was paid from {', '.join(payers)}, not from your wallet "
            f"{wallet}"
        )
    if paid < project.price:
        raise GrantError(
            f"transaction {tx_hash} paid {asset.format(paid)} ({payment.asset}) "
            f"from {wallet} to the treasury {treasury}; dataset {project.pk} costs "
            f"{asset.format(project.price)} ({project.price} base units)"
        )
    try:
        with transaction.atomic():
            purchase = DatasetPurchase.objects.create(
                tx_hash=tx_hash,
                project=project,
                buyer=buyer,
                payer=wallet,
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
