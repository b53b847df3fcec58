"""Access grants: given by a moderator (audited), or bought on-chain and verified from the chain.

A purchase is verified from the transaction's receipt: it must be mined (``DATASET_PURCHASE_
CONFIRMATIONS`` deep), have succeeded, and its ``Transfer`` logs of the payout asset must move at
least the dataset's price to ``DATASET_TREASURY_ADDRESS``. The price is the one in force when the
transfer was mined (its block's timestamp less ``DATASET_PRICE_GRACE_SECONDS``: a transfer is
mined a while after it is sent, and block timestamps are not our clock; every change is recorded
in ``market.DatasetPriceChange``), or the current one if lower (the current one for a
transfer mined before the dataset existed). Only the current treasury is
verified: a payment to a former one is refused, naming both, and a moderator grants access by
hand (past treasuries are not recorded). The chain is read before any database
transaction opens (no network I/O inside one); the purchase and its grant are then written in
one transaction, and the unique transaction hash refuses a replay even when two requests race.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from accounts.siwe import SiweError, recover_signer
from labeling.models import Project
from market.models import DatasetGrant, DatasetPurchase
from market.selectors import dataset_price_at
from rewards.asset import payout_asset
from rewards.chain import AssetPayment, ChainClient, ChainError, ChainUnavailable

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


def _price_to_meet(now: int, then: int) -> int:
    """What a payment must meet, given the dataset's price ``now`` and ``then``, when its
    transfer was mined: the lower of the two. A price raised between a buyer's transfer and
    their claim doesn't keep their tokens for nothing; a price lowered since lets the lower one
    count. A dataset not sold then (price 0) is held to its current price."""
    return now if then <= 0 else min(now, then)


def _price_rule(project: Project, then: int, mined_at: datetime, needed: int) -> str:
    """The end of a too-little error: what the dataset cost, and why that much was needed."""
    asset = payout_asset()
    if then <= 0 or then == project.price:
        return f"dataset {project.pk} costs {asset.format(needed)} ({needed} base units)"
    return (
        f"dataset {project.pk} cost {asset.format(then)} when the transfer was mined "
        f"({mined_at.isoformat()}) and costs {asset.format(project.price)} now: a payment must "
        f"meet the lower, {asset.format(needed)} ({needed} base units)"
    )


def _refuse_payment_elsewhere(payment: AssetPayment, wallet: str, treasury: str) -> None:
    """Nothing reached the treasury from ``wallet``: if it paid another address, say where, as
    it may be a treasury this deployment used before (``DATASET_TREASURY_ADDRESS`` changed
    since): only the current treasury is verified here, a moderator can grant access by hand."""
    asset = payout_asset()
    elsewhere: dict[str, int] = {}
    for t in payment.transfers:
        if t.from_address.lower() == wallet.lower():
            elsewhere[t.to_address] = elsewhere.get(t.to_address, 0) + t.value
    if not elsewhere:
        return
    paid = ", ".join(f"{asset.format(v)} to {to}" for to, v in sorted(elsewhere.items()))
    raise GrantError(
        f"transaction {payment.tx_hash} paid {paid} from {wallet}, while the treasury is "
        f"{treasury}: only payments to it are verified. If that was this deployment's treasury "
        "when you paid (it has changed since), a moderator can grant access by hand"
    )


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
    less than the price (the lower of the price when the transfer was mined and now) or paid
    another address than the treasury (a former treasury: a moderator grants by hand); 409 for
    a transaction already used, a buyer who already holds a grant, a dataset not for sale, or
    one not yet ``DATASET_PURCHASE_CONFIRMATIONS`` deep (try again); 503 when the chain can't
    be reached.
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
    depth = settings.DATASET_PURCHASE_CONFIRMATIONS
    if payment.confirmations < depth:
        raise GrantError(
            f"transaction {tx_hash} has {payment.confirmations} of the {depth} confirmations a "
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
    if not paid:
        _refuse_payment_elsewhere(payment, wallet, treasury)
    mined_at = datetime.fromtimestamp(payment.block_timestamp, tz=UTC)
    grace = timedelta(seconds=settings.DATASET_PRICE_GRACE_SECONDS)
    # No price was in force before the dataset existed (its launch price isn't recorded as a
    # change): a transfer mined before then is held to the current price, like one made while it
    # wasn't for sale.
    then = (
        0
        if mined_at < project.created_at
        else dataset_price_at(project=project, at=mined_at - grace)
    )
    needed = _price_to_meet(int(project.price), then)
    if paid < needed:
        raise GrantError(
            f"transaction {tx_hash} paid {asset.format(paid)} ({payment.asset}) "
            f"from {wallet} to the treasury {treasury}; "
            + _price_rule(project, then, mined_at, needed)
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
                price=needed,
                block_number=payment.block_number,
            )
            grant = DatasetGrant.objects.create(
                project=project, buyer=buyer, source=DatasetGrant.Source.PURCHASE, purchase=purchase
            )
            audit_record(
                actor=buyer,
                action="dataset.purchase",
                target=grant,
                details={
                    "project": project.pk,
                    "tx_hash": tx_hash,
                    "amount": str(paid),
                    "price": str(needed),
                },
            )
    except IntegrityError as exc:
        # A racing request used the hash, or granted this buyer, first.
        raise GrantError(
            f"transaction {tx_hash} was already used, or you already hold a grant for dataset "
            f"{project.pk}",
            status=409,
        ) from exc
    return grant
