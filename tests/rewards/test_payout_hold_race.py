"""A batch is sent only if, in the statement that claims it for sending, it is not held and, where
approval is required, approved: a moderator's hold that lands while settlement runs is obeyed."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account

from accounts.models import User
from accounts.services import user_get_or_create_for_wallet
from labeling.models import Project
from rewards import services
from rewards.chain import ChainClient
from rewards.models import LedgerEntry, PayoutBatch
from rewards.services import (
    payout_batch_approve,
    payout_batch_hold,
    payout_batch_prepare,
    payout_batch_submit,
    payouts_settle,
)

pytestmark = pytest.mark.django_db


def credited(project: Project, amount: int) -> User:
    user = user_get_or_create_for_wallet(address=Account.create().address)
    LedgerEntry.objects.create(
        user=user,
        amount=amount,
        reason=LedgerEntry.Reason.LABEL,
        source=f"annotation:{LedgerEntry.objects.count() + 1}",
        project=project,
    )
    return user


def hold_right_after_the_check(monkeypatch: pytest.MonkeyPatch, moderator: User) -> None:
    """Settlement checks the batch may be sent; then, before it claims the batch, another
    moderator holds it in admin (it is still prepared)."""
    check = services._may_submit

    def checked_then_held(batch: PayoutBatch) -> bool:
        ok = check(batch)
        fresh = PayoutBatch.objects.get(pk=batch.pk)
        assert payout_batch_hold(batch=fresh, moderator=moderator, reason="suspicious")
        return ok

    monkeypatch.setattr(services, "_may_submit", checked_then_held)


def test_a_hold_that_lands_while_an_approved_batch_is_settled_stops_it(
    chain: ChainClient,
    text_project: Project,
    moderator: User,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.PAYOUT_REQUIRE_APPROVAL = True
    alice = credited(text_project, 1000)
    payouts_settle(client=chain)  # prepared; waits for approval
    batch = PayoutBatch.objects.get()
    assert payout_batch_approve(batch=batch, moderator=moderator, reason="checked")
    hold_right_after_the_check(monkeypatch, moderator)

    report = payouts_settle(client=chain)
    batch.refresh_from_db()
    assert (batch.status, batch.tx_hash) == (PayoutBatch.Status.PREPARED, "")
    assert batch.held_at is not None and report.awaiting_approval == [batch.batch_id]
    assert chain.balance_of(alice.wallet_address) == 0

    monkeypatch.undo()
    assert payout_batch_approve(batch=batch, moderator=moderator, reason="cleared")
    payouts_settle(client=chain)
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.CONFIRMED
    assert chain.balance_of(alice.wallet_address) == 1000  # paid once
    assert PayoutBatch.objects.count() == 1


def test_a_hold_that_lands_before_a_new_batch_is_sent_stops_it(
    chain: ChainClient, text_project: Project, moderator: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = credited(text_project, 1000)  # no approval needed: prepared and sent in one run
    hold_right_after_the_check(monkeypatch, moderator)
    report = payouts_settle(client=chain)
    batch = PayoutBatch.objects.get()
    assert batch.status == PayoutBatch.Status.PREPARED and batch.held_at is not None
    assert report.confirmed == [] and report.awaiting_approval == [batch.batch_id]
    assert chain.balance_of(alice.wallet_address) == 0


def test_submitting_a_batch_that_waits_for_approval_sends_nothing(
    chain: ChainClient, text_project: Project, moderator: User, settings: Any
) -> None:
    settings.PAYOUT_REQUIRE_APPROVAL = True
    alice = credited(text_project, 1000)
    batch = payout_batch_prepare(client=chain)
    assert batch is not None
    assert payout_batch_submit(batch=batch, client=chain).status == PayoutBatch.Status.PREPARED
    assert payout_batch_approve(batch=batch, moderator=moderator, reason="ok")
    assert payout_batch_hold(batch=batch, moderator=moderator, reason="second thoughts")
    assert payout_batch_submit(batch=batch, client=chain).status == PayoutBatch.Status.PREPARED
    assert chain.balance_of(alice.wallet_address) == 0
