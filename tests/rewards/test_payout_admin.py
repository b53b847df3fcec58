"""Payout batches in admin: amounts in the asset's units, approval above a moderator-set total,
hold and approve with a reason (audited), and payout rights as a permission of their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from eth_account import Account

from accounts.models import AuditEvent, User
from accounts.services import user_get_or_create_for_wallet
from labeling.models import Project
from rewards.chain import ChainClient
from rewards.models import LedgerEntry, PayoutBatch, PayoutSettings
from rewards.services import payouts_settle

pytestmark = pytest.mark.django_db
TOKEN = 10**18


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


@pytest.fixture
def browser(moderator: User) -> Client:
    client = Client()
    client.force_login(moderator)
    return client


def act(browser: Client, action: str, batch: PayoutBatch, reason: str) -> Any:
    return browser.post(
        "/admin/rewards/payoutbatch/",
        {"action": action, "_selected_action": [batch.pk], "apply": "1", "reason": reason},
        follow=True,
    )


def test_a_moderator_sets_the_approval_threshold_in_token_units(
    browser: Client, chain: ChainClient, credit: Callable[[int], User], moderator: User
) -> None:
    page = browser.get("/admin/rewards/payoutsettings/1/change/")
    assert page.status_code == 200 and b"Approval threshold (CMT)" in page.content
    response = browser.post(
        "/admin/rewards/payoutsettings/1/change/", {"threshold": "2.5", "reason": "new policy"}
    )
    assert response.status_code == 302
    assert PayoutSettings.objects.get().approval_threshold == 25 * 10**17
    event = AuditEvent.objects.get(action="payout.settings")
    assert event.actor == moderator
    assert event.details["approval_threshold"] == {"from": None, "to": str(25 * 10**17)}
    bad = browser.post(
        "/admin/rewards/payoutsettings/1/change/",
        {"threshold": "0.1234567890123456789", "reason": "x"},
    )
    assert b"at most 18 decimals" in bad.content

    small, big = credit(2 * TOKEN), credit(3 * TOKEN)
    report = payouts_settle(client=chain)
    assert len(report.confirmed) == 0 and len(report.awaiting_approval) == 1  # 5 CMT > 2.5
    listing = browser.get("/admin/rewards/payoutbatch/")
    assert b"5 CMT" in listing.content and b"approval" in listing.content
    batch = PayoutBatch.objects.get()
    act(browser, "approve", batch, "both wallets checked")
    payouts_settle(client=chain)
    assert chain.balance_of(small.wallet_address) == 2 * TOKEN
    assert chain.balance_of(big.wallet_address) == 3 * TOKEN


def test_a_held_batch_is_not_sent_until_approved(
    browser: Client, chain: ChainClient, credit: Callable[[int], User], settings: Any
) -> None:
    settings.PAYOUT_REQUIRE_APPROVAL = True
    alice = credit(TOKEN)
    payouts_settle(client=chain)
    batch = PayoutBatch.objects.get()
    act(browser, "approve", batch, "looks fine")
    act(browser, "hold", batch, "wallet reported as stolen")
    batch.refresh_from_db()
    assert batch.held_at is not None and batch.approved_at is None
    assert batch.hold_reason == "wallet reported as stolen"
    payouts_settle(client=chain)
    batch.refresh_from_db()
    assert (
        batch.status == PayoutBatch.Status.PREPARED and chain.balance_of(alice.wallet_address) == 0
    )
    assert b"held: wallet reported as stolen" in browser.get("/admin/rewards/payoutbatch/").content
    act(browser, "approve", batch, "owner confirmed the wallet")
    payouts_settle(client=chain)
    assert chain.balance_of(alice.wallet_address) == TOKEN
    reasons = list(
        AuditEvent.objects.filter(target_id=str(batch.pk))
        .order_by("id")
        .values_list("action", "details__reason")
    )
    assert reasons == [
        ("payout.approve", "looks fine"),
        ("payout.hold", "wallet reported as stolen"),
        ("payout.approve", "owner confirmed the wallet"),
    ]


def test_a_reason_is_required(
    browser: Client, chain: ChainClient, credit: Callable[[int], User], settings: Any
) -> None:
    settings.PAYOUT_REQUIRE_APPROVAL = True
    credit(TOKEN)
    payouts_settle(client=chain)
    batch = PayoutBatch.objects.get()
    page = act(browser, "approve", batch, "")
    assert b"This field is required" in page.content
    batch.refresh_from_db()
    assert batch.approved_at is None


def test_moderators_without_payout_rights_cannot_approve_settle_or_change_the_threshold(
    chain: ChainClient, credit: Callable[[int], User], settings: Any
) -> None:
    settings.PAYOUT_REQUIRE_APPROVAL = True
    credit(TOKEN)
    payouts_settle(client=chain)
    batch = PayoutBatch.objects.get()
    reviewers = Group.objects.create(name="reviewers")
    reviewers.permissions.set(
        Permission.objects.filter(
            codename__in=["view_payoutbatch", "view_ledgerentry", "view_payoutsettings"]
        )
    )
    reviewer = User.objects.create_user("reviewer", password="x", is_staff=True, role="moderator")
    reviewer.groups.add(reviewers)
    browser = Client()
    browser.force_login(reviewer)
    listing = browser.get("/admin/rewards/payoutbatch/")
    assert listing.status_code == 200
    form = listing.context["action_form"]
    actions = [] if form is None else [v for v, _ in form.fields["action"].choices]
    assert "approve" not in actions and "hold" not in actions
    act(browser, "approve", batch, "sneaky")
    batch.refresh_from_db()
    assert batch.approved_at is None
    assert browser.post("/admin/rewards/payoutbatch/settle/").status_code == 403
    refused = browser.post(
        "/admin/rewards/payoutsettings/1/change/", {"threshold": "0", "reason": "x"}
    )
    assert refused.status_code == 403
    assert not AuditEvent.objects.filter(actor=reviewer).exists()


def test_a_batch_whose_recipient_was_flagged_after_it_was_made_is_not_approved_or_sent(
    browser: Client,
    chain: ChainClient,
    credit: Callable[[int], User],
    moderator: User,
    settings: Any,
) -> None:
    """Only preparing a batch checked bans and flags: approving it later paid a wallet a
    moderator had banned or flagged meanwhile."""
    from moderation.models import Flag

    settings.PAYOUT_REQUIRE_APPROVAL = True
    alice, bob = credit(TOKEN), credit(2 * TOKEN)
    assert len(payouts_settle(client=chain).awaiting_approval) == 1
    first = PayoutBatch.objects.get()
    Flag.objects.create(user=alice, kind=Flag.Kind.SYBIL, evidence={})
    act(browser, "approve", first, "month end")
    first.refresh_from_db()
    assert first.status == PayoutBatch.Status.FAILED and first.approved_at is None
    assert f"user {alice.pk}" in first.error and "after the batch was made" in first.error
    assert not first.allocations.exists()

    assert len(payouts_settle(client=chain).awaiting_approval) == 1  # bob alone, anew
    second = PayoutBatch.objects.get(status=PayoutBatch.Status.PREPARED)
    assert list(second.transfers.values_list("wallet_address", flat=True)) == [bob.wallet_address]
    act(browser, "approve", second, "month end")
    assert len(payouts_settle(client=chain).confirmed) == 1
    assert chain.balance_of(bob.wallet_address) == 2 * TOKEN
    assert chain.balance_of(alice.wallet_address) == 0


def test_an_approved_batch_whose_recipient_was_banned_before_sending_is_not_sent(
    chain: ChainClient, credit: Callable[[int], User], moderator: User, settings: Any
) -> None:
    from accounts.services import user_ban
    from rewards.services import payout_batch_approve

    settings.PAYOUT_REQUIRE_APPROVAL = True
    alice, bob = credit(TOKEN), credit(2 * TOKEN)
    payouts_settle(client=chain)
    batch = PayoutBatch.objects.get()
    assert payout_batch_approve(batch=batch, moderator=moderator, reason="ok")
    user_ban(user=alice, actor=moderator, reason="ring")
    report = payouts_settle(client=chain)
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.FAILED and batch.tx_hash in ("", None)
    assert report.confirmed == [] and len(report.awaiting_approval) == 1
    assert chain.balance_of(alice.wallet_address) == chain.balance_of(bob.wallet_address) == 0
