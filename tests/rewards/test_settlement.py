"""Settlement on the real RewardToken in the in-process EVM: money moves exactly once.

Crashes are simulated with a thin wrapper around the real client that fails one call; the chain,
contract and database are real.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from eth_account import Account

from accounts.models import AuditEvent, User
from accounts.services import user_ban, user_get_or_create_for_wallet
from labeling.models import Project
from rewards.chain import ChainClient, ChainUnavailable, embedded_account_keys
from rewards.models import LedgerEntry, PayoutAllocation, PayoutBatch
from rewards.selectors import reward_summary_for_user
from rewards.services import payout_batch_prepare, payout_batch_submit, payouts_settle

pytestmark = pytest.mark.django_db


class Crashing:
    """The real client, except that the named call 'crashes' (after or instead of doing its work)."""

    def __init__(self, client: ChainClient, method: str, *, after: bool) -> None:
        self._client, self._method, self._after = client, method, after

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if name != self._method:
            return real

        def crash(*args: Any, **kwargs: Any) -> Any:
            if self._after:
                real(*args, **kwargs)
            raise ChainUnavailable(f"simulated crash in {name}")

        return crash


@pytest.fixture
def credit(text_project: Project) -> Callable[..., User]:
    def make(amount: int, user: User | None = None, source: str | None = None) -> User:
        user = user or user_get_or_create_for_wallet(address=Account.create().address)
        n = LedgerEntry.objects.count()
        LedgerEntry.objects.create(
            user=user,
            amount=amount,
            reason=LedgerEntry.Reason.LABEL,
            source=source or f"annotation:{n}",
            project=text_project,
        )
        return user

    return make


def onchain_equals_ledger(chain: ChainClient) -> None:
    for user in User.objects.exclude(wallet_address=None):
        summary = reward_summary_for_user(user=user)
        assert chain.balance_of(user.wallet_address) == int(summary.paid), user


def test_settle_pays_each_wallet_its_summed_credits_in_one_batch(
    chain: ChainClient, credit: Callable[..., User]
) -> None:
    alice = credit(10)
    credit(15, user=alice)
    bob = credit(7)
    report = payouts_settle(client=chain)
    assert len(report.confirmed) == 1
    batch = PayoutBatch.objects.get()
    assert batch.status == PayoutBatch.Status.CONFIRMED
    assert batch.recipient_count == 2 and batch.total == 32
    assert batch.tx_hash.startswith("0x") and batch.block_number and batch.gas_used
    assert chain.balance_of(alice.wallet_address) == 25
    assert chain.balance_of(bob.wallet_address) == 7
    assert reward_summary_for_user(user=alice).pending == 0
    assert reward_summary_for_user(user=alice).paid == 25
    assert chain.is_batch_processed(bytes.fromhex(batch.batch_id[2:]))


@pytest.mark.parametrize(
    "command",
    [
        ["settle_rewards"],
        ["reconcile_payouts"],
        ["deploy_token"],
        ["deploy_distributor", "--test-stablecoin"],
    ],
)
def test_a_command_run_beside_the_demo_never_pays_on_a_chain_of_its_own(
    credit: Callable[..., User], command: list[str]
) -> None:
    """The embedded EVM lives in the demo's server: another process (``manage.py
    settle_rewards`` in a second terminal) would get a fresh, empty EVM with the same chain id
    and addresses, pay there, and record in the shared database payouts nobody received."""
    from django.core.management import CommandError

    from rewards.client import chain_client_reset

    credit(10)
    chain_client_reset()  # this process has made no chain: it is not the demo's server
    with pytest.raises(CommandError, match="the embedded EVM lives in the process that made it"):
        call_command(*command)
    assert not PayoutBatch.objects.exists()


def test_a_new_credit_waits_for_the_fraud_scan_and_a_reversal_never_waits(
    chain: ChainClient,
    credit: Callable[..., User],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Production holds a credit ``PAYOUT_HOLD_SECONDS`` (twice the scan period): a ring paid
    before the scan that would flag it kept the money."""
    from datetime import timedelta

    from django.utils import timezone

    settings.PAYOUT_HOLD_SECONDS = 1800
    alice = credit(10)
    assert payouts_settle(client=chain).confirmed == []
    real_now = timezone.now
    later = real_now() + timedelta(hours=1)
    monkeypatch.setattr(timezone, "now", lambda: later)  # an hour on (the ledger is append-only)
    LedgerEntry.objects.create(user=alice, amount=-4, reason="reversal", source="reversal:test")
    payouts_settle(client=chain)
    assert chain.balance_of(alice.wallet_address) == 6  # the new reversal went with its credit


def test_running_settle_rewards_twice_pays_once(
    chain: ChainClient, credit: Callable[..., User]
) -> None:
    alice = credit(10)
    call_command("settle_rewards")
    call_command("settle_rewards")
    assert PayoutBatch.objects.count() == 1
    assert chain.balance_of(alice.wallet_address) == 10
    credit(5, user=alice)
    call_command("settle_rewards")
    assert PayoutBatch.objects.count() == 2
    assert chain.balance_of(alice.wallet_address) == 15
    onchain_equals_ledger(chain)


def test_a_crash_after_recording_the_hash_but_before_broadcast_is_finished_by_the_next_run(
    chain: ChainClient, credit: Callable[..., User]
) -> None:
    alice = credit(10)
    batch = payout_batch_prepare(client=chain)
    assert batch is not None
    payout_batch_submit(batch=batch, client=Crashing(chain, "send_raw", after=False))  # type: ignore[arg-type]
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.SUBMITTED and batch.tx_hash and batch.raw_tx
    assert chain.balance_of(alice.wallet_address) == 0
    recorded_hash = batch.tx_hash

    payouts_settle(client=chain)
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.CONFIRMED
    assert batch.tx_hash == recorded_hash  # the same signed bytes were broadcast
    assert chain.balance_of(alice.wallet_address) == 10
    payouts_settle(client=chain)
    assert chain.balance_of(alice.wallet_address) == 10


def test_a_crash_after_the_node_mined_the_batch_pays_once(
    chain: ChainClient, credit: Callable[..., User]
) -> None:
    alice = credit(10)
    with pytest.raises(ChainUnavailable):
        payouts_settle(client=Crashing(chain, "get_receipt", after=True))  # type: ignore[arg-type]
    # The node mined it; our process died before recording the receipt.
    assert chain.balance_of(alice.wallet_address) == 10
    assert PayoutBatch.objects.get().status == PayoutBatch.Status.SUBMITTED
    assert reward_summary_for_user(user=alice).paid == 0

    payouts_settle(client=chain)
    assert PayoutBatch.objects.get().status == PayoutBatch.Status.CONFIRMED
    assert chain.balance_of(alice.wallet_address) == 10
    assert reward_summary_for_user(user=alice).paid == 10


def test_a_broadcast_error_from_a_node_that_still_mined_pays_once(
    chain: ChainClient, credit: Callable[..., User]
) -> None:
    alice = credit(10)
    payouts_settle(client=Crashing(chain, "send_raw", after=True))  # type: ignore[arg-type]
    payouts_settle(client=chain)
    assert PayoutBatch.objects.get().status == PayoutBatch.Status.CONFIRMED
    assert chain.balance_of(alice.wallet_address) == 10


def test_a_batch_whose_nonce_was_used_by_another_transaction_is_signed_again(
    chain: ChainClient, credit: Callable[..., User]
) -> None:
    alice = credit(10)
    batch = payout_batch_prepare(client=chain)
    assert batch is not None
    payout_batch_submit(batch=batch, client=Crashing(chain, "send_raw", after=False))  # type: ignore[arg-type]
    other = chain.with_signer(embedded_account_keys()[0])
    other.deploy_token()  # consumes the signer's nonce that the recorded transaction used
    batch.refresh_from_db()
    first_hash = batch.tx_hash

    payouts_settle(client=chain)
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.CONFIRMED
    assert batch.attempts == [first_hash] and batch.tx_hash != first_hash
    assert chain.balance_of(alice.wallet_address) == 10


def test_a_reverted_batch_fails_and_its_credits_wait_for_the_next_batch(
    chain: ChainClient, credit: Callable[..., User]
) -> None:
    alice = credit(10)
    not_a_minter = chain.with_signer(embedded_account_keys()[1])
    report = payouts_settle(client=not_a_minter)
    assert len(report.failed) == 1
    failed = PayoutBatch.objects.get()
    assert failed.status == PayoutBatch.Status.FAILED and "reverted" in failed.error
    assert not PayoutAllocation.objects.exists()
    assert reward_summary_for_user(user=alice).pending == 10

    payouts_settle(client=chain)
    assert chain.balance_of(alice.wallet_address) == 10
    assert PayoutBatch.objects.filter(status=PayoutBatch.Status.CONFIRMED).count() == 1


def test_a_banned_contributors_credits_are_held(
    chain: ChainClient, credit: Callable[..., User]
) -> None:
    spammer = credit(10)
    honest = credit(5)
    user_ban(user=spammer, reason="spam")
    payouts_settle(client=chain)
    assert chain.balance_of(spammer.wallet_address) == 0
    assert chain.balance_of(honest.wallet_address) == 5
    assert reward_summary_for_user(user=spammer).pending == 10


def test_batches_hold_at_most_the_configured_recipients(
    chain: ChainClient, credit: Callable[..., User], settings: Any
) -> None:
    settings.PAYOUT_BATCH_MAX_RECIPIENTS = 2
    users = [credit(n + 1) for n in range(5)]
    payouts_settle(client=chain)
    assert sorted(b.recipient_count for b in PayoutBatch.objects.all()) == [1, 2, 2]
    assert [chain.balance_of(u.wallet_address) for u in users] == [1, 2, 3, 4, 5]
    onchain_equals_ledger(chain)


def test_a_credit_is_allocated_to_one_batch_only(
    chain: ChainClient, credit: Callable[..., User]
) -> None:
    credit(10)
    assert payout_batch_prepare(client=chain) is not None
    assert payout_batch_prepare(client=chain) is None


def test_the_ledger_refuses_a_second_credit_for_the_same_source(
    credit: Callable[..., User],
) -> None:
    from django.db import IntegrityError, transaction

    alice = credit(10, source="item:1")
    with pytest.raises(IntegrityError), transaction.atomic():
        credit(10, user=alice, source="item:1")
    assert LedgerEntry.objects.get().amount == Decimal(10)


def test_my_rewards_api_shows_pending_paid_and_the_payout_transaction(
    chain: ChainClient, contributor: Any, credit: Callable[..., User]
) -> None:
    credit(10, user=contributor.user)
    payouts_settle(client=chain)
    credit(4, user=contributor.user)
    body = contributor.api.get("/api/v1/me/rewards/").json()
    assert body["paid"] == "10" and body["pending"] == "4"
    [payout] = body["payouts"]
    assert payout["status"] == "confirmed" and payout["amount"] == "10"
    assert payout["tx_hash"] == PayoutBatch.objects.get().tx_hash
    assert [e["paid"] for e in body["entries"]] == [False, True]


def test_with_approval_required_batches_wait_for_a_moderator(
    chain: ChainClient, credit: Callable[..., User], settings: Any, moderator: User
) -> None:
    from django.test import Client

    from accounts.models import AuditEvent

    settings.PAYOUT_REQUIRE_APPROVAL = True
    alice = credit(10)
    report = payouts_settle(client=chain)
    assert len(report.awaiting_approval) == 1 and "awaiting" in report.summary
    batch = PayoutBatch.objects.get()
    assert batch.status == PayoutBatch.Status.PREPARED and not batch.tx_hash
    payouts_settle(client=chain)
    assert PayoutBatch.objects.count() == 1  # waiting credits are not batched again
    assert chain.balance_of(alice.wallet_address) == 0

    browser = Client()
    browser.force_login(moderator)
    selected = {"action": "approve", "_selected_action": [batch.pk]}
    confirm = browser.post("/admin/rewards/payoutbatch/", selected)
    assert confirm.status_code == 200  # a confirmation page naming what it will do
    assert b"You are about to <strong>approve</strong> 1 batch(es)" in confirm.content
    batch.refresh_from_db()
    assert batch.approved_at is None
    response = browser.post(
        "/admin/rewards/payoutbatch/",
        {**selected, "apply": "1", "reason": "checked the wallets"},
        follow=True,
    )
    assert response.status_code == 200
    batch.refresh_from_db()
    assert batch.approved_by == moderator and batch.approved_at is not None
    event = AuditEvent.objects.get(action="payout.approve", target_id=str(batch.pk))
    assert event.actor == moderator and event.details["reason"] == "checked the wallets"

    payouts_settle(client=chain)
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.CONFIRMED
    assert chain.balance_of(alice.wallet_address) == 10


def test_moderators_settle_from_admin(
    chain: ChainClient, credit: Callable[..., User], moderator: User
) -> None:
    from django.test import Client

    alice = credit(10)
    browser = Client()
    browser.force_login(moderator)
    assert browser.get("/admin/rewards/payoutbatch/").status_code == 200
    # The button asks first, for a reason; nothing is paid until it is given.
    page = browser.post("/admin/rewards/payoutbatch/settle/")
    assert page.status_code == 200 and "Settle due rewards" in page.content.decode()
    unexplained = browser.post("/admin/rewards/payoutbatch/settle/", {"apply": "1", "reason": ""})
    assert unexplained.status_code == 200 and chain.balance_of(alice.wallet_address) == 0
    response = browser.post(
        "/admin/rewards/payoutbatch/settle/",
        {"apply": "1", "reason": "the weekly payout"},
        follow=True,
    )
    assert b"1 batch(es) confirmed" in response.content
    assert chain.balance_of(alice.wallet_address) == 10
    run = AuditEvent.objects.get(action="payout.settle", target_type="rewards.payoutsettings")
    assert run.actor == moderator
    assert run.details == {
        "reason": "the weekly payout",
        "confirmed": 1,
        "pending": 0,
        "failed": 0,
        "awaiting_approval": 0,
        "other_contract": 0,
    }
    event = AuditEvent.objects.get(action="payout.settle", target_type="rewards.payoutbatch")
    assert event.actor == moderator
    assert event.details == {
        "reason": "the weekly payout",
        "status": "confirmed",
        "awaiting_approval": False,
    }


def test_a_settle_now_that_prepares_batches_for_approval_is_audited(
    chain: ChainClient, credit: Callable[..., User], moderator: User, settings: Any
) -> None:
    """With approval required the run sends nothing: it still leaves its entry, and one for the
    batch it prepared; a run with nothing to do leaves its entry too."""
    from django.test import Client

    settings.PAYOUT_REQUIRE_APPROVAL = True
    browser = Client()
    browser.force_login(moderator)
    entries = AuditEvent.objects.filter(action="payout.settle")
    browser.post("/admin/rewards/payoutbatch/settle/", {"apply": "1", "reason": "nothing due"})
    (idle,) = entries.filter(target_type="rewards.payoutsettings")
    assert idle.details["reason"] == "nothing due" and idle.details["awaiting_approval"] == 0
    assert not entries.filter(target_type="rewards.payoutbatch").exists()

    credit(10)
    browser.post("/admin/rewards/payoutbatch/settle/", {"apply": "1", "reason": "month end"})
    batch = PayoutBatch.objects.get()
    assert batch.status == PayoutBatch.Status.PREPARED
    run = entries.filter(target_type="rewards.payoutsettings").latest("id")
    assert run.details["awaiting_approval"] == 1 and run.details["reason"] == "month end"
    (prepared,) = entries.filter(target_type="rewards.payoutbatch")
    assert prepared.target_id == str(batch.pk) and prepared.details["awaiting_approval"] is True
