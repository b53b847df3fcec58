"""Reconciliation: after settlement every payout invariant holds against the chain, and each kind
of divergence between the database and the chain is caught, named and shown to moderators."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from eth_account import Account

from accounts.models import User
from accounts.services import user_get_or_create_for_wallet
from labeling.models import Project
from rewards.chain import ChainClient
from rewards.models import LedgerEntry, PayoutBatch, PayoutTransfer, ReconciliationRun
from rewards.reconcile import payouts_reconcile
from rewards.services import payout_batch_prepare, payout_batch_submit, payouts_settle
from rewards.tasks import reconcile_payouts

pytestmark = pytest.mark.django_db


@pytest.fixture
def credit(text_project: Project) -> Callable[[int], User]:
    def make(amount: int) -> User:
        user = user_get_or_create_for_wallet(address=Account.create().address)
        LedgerEntry.objects.create(
            user=user,
            amount=amount,
            reason=LedgerEntry.Reason.LABEL,
            source=f"annotation:{LedgerEntry.objects.count()}",
            project=text_project,
        )
        return user

    return make


def failing(report: Any) -> set[str]:
    return {i.name for i in report.invariants if not i.ok}


def test_after_settlement_every_invariant_holds(
    chain: ChainClient, credit: Callable[[int], User], settings: Any
) -> None:
    settings.PAYOUT_BATCH_MAX_RECIPIENTS = 3
    for amount in range(1, 8):
        credit(amount * 10**15)
    payouts_settle(client=chain)
    assert PayoutBatch.objects.filter(status="confirmed").count() == 3
    report = payouts_reconcile(client=chain, check_balances=True)
    assert report.ok, report.lines()
    assert [i.name for i in report.invariants] == [
        "credits",
        "batch_ids",
        "transfers",
        "balances",
        "no_unknown_state",
    ]
    assert {i.name: i.checked for i in report.invariants}["balances"] == 7


def test_a_batch_the_database_calls_confirmed_but_the_chain_never_paid_is_caught(
    chain: ChainClient, credit: Callable[[int], User]
) -> None:
    credit(10)
    batch = payout_batch_prepare(client=chain)
    assert batch is not None
    PayoutBatch.objects.filter(pk=batch.pk).update(status="confirmed", tx_hash="0x" + "ab" * 32)
    report = payouts_reconcile(client=chain)
    assert failing(report) == {"batch_ids", "transfers"}
    [invariant] = [i for i in report.invariants if i.name == "batch_ids"]
    assert f"batch {batch.batch_id} is confirmed but not processed on-chain" in invariant.violations


def test_a_batch_paid_on_chain_but_marked_failed_is_caught(
    chain: ChainClient, credit: Callable[[int], User]
) -> None:
    credit(10)
    payouts_settle(client=chain)
    PayoutBatch.objects.update(status="failed")
    report = payouts_reconcile(client=chain)
    assert "batch_ids" in failing(report)
    assert any("but was paid on-chain" in v for i in report.invariants for v in i.violations)


def test_a_transfer_that_differs_from_its_credits_is_caught(
    chain: ChainClient, credit: Callable[[int], User]
) -> None:
    credit(10)
    payouts_settle(client=chain)
    PayoutTransfer.objects.update(amount=11)
    assert {"credits", "transfers"} <= failing(payouts_reconcile(client=chain))


def test_a_batch_left_in_flight_is_an_unknown_state(
    chain: ChainClient, credit: Callable[[int], User]
) -> None:
    credit(10)
    batch = payout_batch_prepare(client=chain)
    assert batch is not None
    payout_batch_submit(batch=batch, client=chain)  # sent, never reconciled
    PayoutBatch.objects.filter(pk=batch.pk).update(submitted_at=timezone.now() - timedelta(hours=2))
    report = payouts_reconcile(client=chain)
    assert "no_unknown_state" in failing(report)
    payouts_settle(client=chain)  # recovery reconciles it
    assert payouts_reconcile(client=chain, check_balances=True).ok


def test_the_periodic_job_records_runs_and_admin_shows_a_failing_one(
    chain: ChainClient, credit: Callable[[int], User], moderator: User
) -> None:
    credit(10)
    payouts_settle(client=chain)
    assert reconcile_payouts() is True
    PayoutBatch.objects.update(status="failed")
    assert reconcile_payouts() is False
    run = ReconciliationRun.objects.first()
    assert run is not None and not run.ok
    browser = Client()
    browser.force_login(moderator)
    listing = browser.get("/admin/rewards/payoutbatch/")
    assert b"The last reconciliation with the chain FAILED" in listing.content
    detail = browser.get(f"/admin/rewards/reconciliationrun/{run.pk}/change/")
    assert b"FAILED: batch_ids" in detail.content


def test_the_command_prints_each_invariant_and_fails_loudly(
    chain: ChainClient, credit: Callable[[int], User]
) -> None:
    credit(10)
    payouts_settle(client=chain)
    out = io.StringIO()
    call_command("reconcile_payouts", "--balances", stdout=out)
    assert out.getvalue().count("ok   ") == 5 and "every invariant holds" in out.getvalue()
    PayoutTransfer.objects.update(amount=11)
    with pytest.raises(CommandError, match="violated"):
        call_command("reconcile_payouts", stdout=io.StringIO())
