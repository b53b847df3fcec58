"""Settlement against what a real deployment's chain reads can look like: a node behind the
receipt's block, a payout contract switched while a batch was in flight, and amounts no contract
can pay."""

from __future__ import annotations

from typing import Any

import pytest
from django import forms
from eth_account import Account

from accounts.models import User
from accounts.services import user_get_or_create_for_wallet
from labeling.models import Project
from rewards.chain import ChainClient
from rewards.fields import MAX_AMOUNT
from rewards.forms import units_to_base
from rewards.models import LedgerEntry, PayoutBatch
from rewards.services import (
    payout_batch_prepare,
    payout_batch_submit,
    payouts_settle,
    reward_policy_update,
)

pytestmark = pytest.mark.django_db


def credited(project: Project, amount: int = 100) -> User:
    user = user_get_or_create_for_wallet(address=Account.create().address)
    LedgerEntry.objects.create(
        user=user,
        amount=amount,
        reason=LedgerEntry.Reason.LABEL,
        source=f"annotation:{LedgerEntry.objects.count()}",
        project=project,
    )
    return user


class LaggingReplica:
    """The real client, whose first ``processedBatches`` read comes from a node one block behind
    (a load-balanced provider's replica): it doesn't see the batch's block yet."""

    def __init__(self, client: ChainClient) -> None:
        self._client, self.lagged = client, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def is_batch_processed(self, batch_id: bytes) -> bool:
        if not self.lagged:
            self.lagged = True
            return False
        return self._client.is_batch_processed(batch_id)


def test_a_successful_receipt_read_before_its_block_leaves_the_batch_submitted(
    chain: ChainClient, text_project: Project
) -> None:
    """It was marked failed ("reverted") and its credit paid again in the same run."""
    alice = credited(text_project)
    batch = payout_batch_prepare(client=chain)
    assert batch is not None
    payout_batch_submit(batch=batch, client=chain)
    receipt = chain.get_receipt(batch.tx_hash)
    assert receipt is not None and receipt.status
    lagging: Any = LaggingReplica(chain)
    report = payouts_settle(client=lagging)
    batch.refresh_from_db()
    assert batch.status in (PayoutBatch.Status.SUBMITTED, PayoutBatch.Status.CONFIRMED)
    assert report.failed == []
    payouts_settle(client=chain)
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.CONFIRMED
    assert chain.balance_of(alice.wallet_address) == 100
    assert PayoutBatch.objects.count() == 1


def test_a_batch_in_flight_on_a_replaced_contract_is_left_alone_not_paid_again(
    chain: ChainClient, text_project: Project
) -> None:
    """Sent on token A, then the deployment points at token B: B never processed the batch, so
    reading it there made it "failed" and its credit was paid again on B."""
    alice = credited(text_project)
    batch = payout_batch_prepare(client=chain)
    assert batch is not None
    payout_batch_submit(batch=batch, client=chain)  # mined on A; the settler dies here
    token_a = chain.token_address
    chain.deploy_token()
    assert chain.token_address != token_a
    report = payouts_settle(client=chain)
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.SUBMITTED
    assert report.other_contract == [batch.batch_id]
    assert "another chain or payout contract" in report.summary
    assert chain.balance_of(alice.wallet_address) == 0  # not paid a second time, on B
    assert PayoutBatch.objects.count() == 1


def test_a_prepared_batch_for_a_replaced_contract_is_dropped_and_paid_through_the_new_one(
    chain: ChainClient, text_project: Project
) -> None:
    """Never sent, so nothing on A can pay it: its credits go into the next batch, on B."""
    alice = credited(text_project)
    stale = payout_batch_prepare(client=chain)
    assert stale is not None
    chain.deploy_token()
    report = payouts_settle(client=chain)
    stale.refresh_from_db()
    assert stale.status == PayoutBatch.Status.FAILED and "never sent" in stale.error
    assert stale.batch_id in report.failed
    assert chain.balance_of(alice.wallet_address) == 100
    assert PayoutBatch.objects.filter(status=PayoutBatch.Status.CONFIRMED).count() == 1


def test_amounts_no_payout_contract_could_pay_are_refused(
    text_project: Project, moderator: User
) -> None:
    """A rate of 10**76 base units was accepted; the first credit then stopped every settlement
    (the receipts and the contract encode 256-bit integers)."""
    with pytest.raises(ValueError, match="at most"):
        reward_policy_update(
            project=text_project,
            changes={"per_label": MAX_AMOUNT + 1},
            moderator=moderator,
            note="",
        )
    reward_policy_update(
        project=text_project, changes={"per_label": MAX_AMOUNT}, moderator=moderator, note=""
    )
    with pytest.raises(forms.ValidationError, match="At most"):
        units_to_base("1e58")
    assert units_to_base("12.5") == 125 * 10**17
