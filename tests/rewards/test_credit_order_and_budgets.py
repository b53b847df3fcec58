"""Only an item's latest decision pays, whatever order its credits run in; and an epoch budget
cuts what can still be cut: never a credit already paid, never an epoch that ended before the
budget, never a reversed credit, and never anyone's balance below zero."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from itertools import permutations
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from labeling.models import Annotation, Decision, Item, Project
from labeling.services import item_create_text, item_decide
from labeling.services.decisions import item_recheck, item_redecide
from rewards.chain import ChainClient
from rewards.models import DecisionCredit, EpochClose, LedgerEntry, RewardPolicy
from rewards.selectors import reward_summary_for_user
from rewards.services import (
    decision_credit,
    decisions_credit,
    decisions_credit_pending,
    ledger_close_epochs,
    payouts_settle,
    reward_epoch,
    reward_policy_update,
)
from tests.support.ledger import committed, labeler

pytestmark = pytest.mark.django_db


def labeled(project: Project, answers: list[tuple[User, str]], uploader: User | None) -> Item:
    """An item with ``answers``, ready to be decided (nothing decided or credited yet)."""
    item = item_create_text(
        project=project, contributor=uploader, text=f"text {Item.objects.count()}"
    )
    for user, label in answers:
        Annotation.objects.create(item=item, annotator=user, label=label, value={"label": label})
    Item.objects.filter(pk=item.pk).update(label_count=len(answers))
    return item


def net_on(item: Item) -> dict[int, int]:
    net: dict[int, int] = defaultdict(int)
    for user_id, amount in LedgerEntry.objects.filter(item=item).values_list("user_id", "amount"):
        net[user_id] += int(amount)
    return net


def pending(user: User) -> int:
    return int(reward_summary_for_user(user=user).pending)


# --- crediting decisions out of order -------------------------------------------------------


def test_a_replaced_decision_credited_late_pays_none_of_its_labelers(
    text_project: Project,
) -> None:
    a, b, c, uploader = labeler(), labeler(), labeler(), labeler()
    item = labeled(text_project, [(a, "positive"), (b, "positive"), (c, "negative")], uploader)
    item_decide(item_id=item.pk)  # v1 "positive": its credit task is lost
    committed(lambda: item_redecide(item_id=item.pk, label="negative", confidence=0.99))

    assert decisions_credit_pending() == 1  # the sweep finds v1, and pays nobody for it
    assert net_on(item) == {c.pk: 10, uploader.pk: 25}
    first = Decision.objects.get(item=item, version=1)
    assert DecisionCredit.objects.get(decision=first).entries == 0  # handled: no longer waits
    assert decisions_credit_pending() == 0 and decision_credit(decision_id=first.pk) == 0


@pytest.mark.parametrize("credit", ["one", "batch"])
def test_every_order_of_three_decisions_credits_only_the_latest(
    text_project: Project, credit: str
) -> None:
    a, b, c, uploader = labeler(), labeler(), labeler(), labeler()
    for order in permutations(range(3)):
        item = labeled(text_project, [(a, "positive"), (b, "positive"), (c, "negative")], uploader)
        item_decide(item_id=item.pk)  # v1 positive; no credit task runs until we say so
        assert item_redecide(item_id=item.pk, label="negative", confidence=0.99)  # v2
        assert item_redecide(item_id=item.pk, label="positive", confidence=0.99)  # v3
        decisions = list(Decision.objects.filter(item=item).order_by("version"))
        for n in order:
            if credit == "one":
                decision_credit(decision_id=decisions[n].pk)
            else:
                decisions_credit(decision_ids=[decisions[n].pk])
        assert decisions_credit_pending() == 0
        net = net_on(item)
        assert (net[a.pk], net[b.pk], net[c.pk], net[uploader.pk]) == (10, 10, 0, 25), order
    assert all(pending(user) >= 0 for user in (a, b, c, uploader))


def test_a_withdrawal_credited_before_the_acceptance_it_cancels_leaves_nothing_to_pay(
    text_project: Project,
) -> None:
    a, b, c, uploader = labeler(), labeler(), labeler(), labeler()
    item = labeled(text_project, [(a, "positive"), (b, "positive"), (c, "negative")], uploader)
    item_decide(item_id=item.pk)  # v1 "positive": its credit task is lost
    User.objects.filter(pk=a.pk).update(banned_at=timezone.now())  # a's answer stops counting
    assert committed(lambda: item_recheck(item_id=item.pk, reason="a banned")) == "reopened"
    withdrawal = Decision.objects.get(item=item, version=2)
    assert withdrawal.label == "" and DecisionCredit.objects.filter(decision=withdrawal).exists()

    decisions_credit_pending()  # the sweep credits the lost acceptance, now taken back
    assert sum(net_on(item).values()) == 0
    assert not LedgerEntry.objects.filter(item=item).exists()


def test_a_lost_middle_decision_still_cancels_the_first_ones_credits(
    text_project: Project,
) -> None:
    a, b, c, uploader = labeler(), labeler(), labeler(), labeler()
    item = labeled(text_project, [(a, "positive"), (b, "positive"), (c, "negative")], uploader)
    committed(lambda: item_decide(item_id=item.pk))  # v1 positive: a, b credited
    item_redecide(item_id=item.pk, label="negative", confidence=0.99)  # v2: its task is lost
    committed(lambda: item_redecide(item_id=item.pk, label="positive", confidence=0.99))  # v3
    decisions_credit_pending()
    net = net_on(item)
    assert (net[a.pk], net[b.pk], net[c.pk], net[uploader.pk]) == (10, 10, 0, 25)


# --- budgets --------------------------------------------------------------------------------


def budgeted_project(budget: int) -> Project:
    """A project paying only what a test credits by hand, under an epoch ``budget``."""
    project = Project.objects.create(name="Budget", data_kind="text", classes=["yes", "no"])
    RewardPolicy.objects.create(
        project=project,
        version=1,
        per_label=0,
        per_item=0,
        weight_by_posterior=False,
        weight_by_skill=False,
        epoch_budget=budget,
    )
    return project


def credit_of(project: Project, amount: int, *, epoch: int, user: User | None = None) -> User:
    user = user or labeler()
    LedgerEntry.objects.create(
        user=user,
        amount=amount,
        reason=LedgerEntry.Reason.LABEL,
        source=f"annotation:{LedgerEntry.objects.count() + 1}",
        project=project,
        epoch=epoch,
    )
    return user


def test_a_budget_added_later_never_claws_back_credits_already_paid(
    text_project: Project, chain: ChainClient, moderator: User
) -> None:
    alice = credit_of(text_project, 1000, epoch=reward_epoch(timezone.now()))
    assert len(payouts_settle(client=chain).confirmed) == 1  # no budget yet: paid at once
    reward_policy_update(
        project=text_project, changes={"epoch_budget": 100}, moderator=moderator, note="cap"
    )
    ledger_close_epochs(now=timezone.now() + timedelta(days=2))
    assert not LedgerEntry.objects.filter(reason=LedgerEntry.Reason.BUDGET).exists()
    assert (pending(alice), chain.balance_of(alice.wallet_address)) == (0, 1000)


def test_paid_credits_count_against_the_budget_and_only_unpaid_ones_are_cut_never_below_zero(
    text_project: Project, chain: ChainClient, moderator: User
) -> None:
    now = timezone.now()
    alice = credit_of(text_project, 1000, epoch=reward_epoch(now))
    payouts_settle(client=chain)  # paid before the budget came
    reward_policy_update(
        project=text_project, changes={"epoch_budget": 1200}, moderator=moderator, note="cap"
    )
    bob = credit_of(text_project, 500, epoch=reward_epoch(now))
    carol = credit_of(text_project, 500, epoch=reward_epoch(now))
    [closed] = ledger_close_epochs(now=now + timedelta(days=2))
    assert (int(closed.spent), int(closed.scaled_to)) == (2000, 1200)
    assert (pending(alice), pending(bob), pending(carol)) == (0, 100, 100)

    reward_policy_update(
        project=text_project, changes={"epoch_budget": 100}, moderator=moderator, note="tighter"
    )
    dave = credit_of(text_project, 500, epoch=reward_epoch(now + timedelta(days=2)))
    ledger_close_epochs(now=now + timedelta(days=4))
    assert pending(dave) == 100
    payouts_settle(client=chain)
    assert chain.balance_of(alice.wallet_address) == 1000  # never touched
    assert all(pending(user) == 0 for user in (alice, bob, carol, dave))


def test_an_epoch_that_ended_before_the_budget_is_paid_uncut(
    text_project: Project, chain: ChainClient, moderator: User
) -> None:
    now = timezone.now()
    alice = credit_of(text_project, 1000, epoch=reward_epoch(now) - 3)  # unpaid, long ago
    reward_policy_update(
        project=text_project, changes={"epoch_budget": 100}, moderator=moderator, note="cap"
    )
    assert ledger_close_epochs(now=now + timedelta(days=2)) == []
    assert not LedgerEntry.objects.filter(reason=LedgerEntry.Reason.BUDGET).exists()
    assert len(payouts_settle(client=chain).confirmed) == 1  # not waiting for a close either
    assert chain.balance_of(alice.wallet_address) == 1000


def test_a_budget_scales_what_credits_still_pay_and_skips_reversed_ones(db: None) -> None:
    project = Project.objects.create(
        name="Budgeted",
        data_kind="text",
        classes=["yes", "no"],
        consensus_method="majority_vote",
        overlap=3,
        max_labels=3,
        reward_per_label=600,
        reward_per_item=0,
    )
    RewardPolicy.objects.create(
        project=project,
        version=1,
        per_label=600,
        per_item=0,
        weight_by_posterior=False,
        weight_by_skill=False,
        epoch_budget=300,
    )
    a, b, c = labeler(), labeler(), labeler()
    item = labeled(project, [(a, "yes"), (b, "yes"), (c, "no")], None)
    committed(lambda: item_decide(item_id=item.pk))  # a, b credited 600 each
    committed(lambda: item_redecide(item_id=item.pk, label="no", confidence=0.99))  # reversed
    [closed] = ledger_close_epochs(now=timezone.now() + timedelta(days=2))
    assert (int(closed.spent), int(closed.scaled_to)) == (600, 300)
    assert (pending(a), pending(b), pending(c)) == (0, 0, 300)
    cut = LedgerEntry.objects.get(reason=LedgerEntry.Reason.BUDGET)
    assert (cut.user_id, int(cut.amount)) == (c.pk, -300)


def test_a_held_contributors_credits_leave_the_honest_ones_the_whole_budget(db: None) -> None:
    """A ring caught before the close (its flags hold its credits) counted as spent, and halved
    what the budget left honest labelers; its credits are left out, and left uncut."""
    from moderation.models import Flag

    project = budgeted_project(1200)
    honest, ring = labeler(), labeler()
    epoch = reward_epoch(timezone.now())
    for n, who in enumerate([honest, ring]):
        LedgerEntry.objects.create(
            user=who, amount=1500, reason="label", source=f"test:{n}", project=project, epoch=epoch
        )
    Flag.objects.create(user=ring, kind=Flag.Kind.COLLUSION, project=project, evidence={})
    [closed] = ledger_close_epochs(now=timezone.now() + timedelta(days=2))
    assert (int(closed.spent), int(closed.scaled_to)) == (1500, 1200)
    assert (pending(honest), pending(ring)) == (1200, 1500)
    assert not LedgerEntry.objects.filter(reason=LedgerEntry.Reason.BUDGET, user=ring).exists()


def test_a_contributor_released_after_the_close_is_paid_at_the_epochs_rate(
    chain: ChainClient, moderator: User
) -> None:
    """Released by a dismissed flag, the credits the close left out were paid uncut: more for
    the same work than everyone the budget had cut. They are cut at the epoch's rate first."""
    from moderation.models import Flag
    from moderation.services import flag_dismiss

    project = budgeted_project(1200)
    epoch = reward_epoch(timezone.now())
    honest = credit_of(project, 1500, epoch=epoch)
    cleared = credit_of(project, 1000, epoch=epoch)
    reversed_ = credit_of(project, 700, epoch=epoch)
    LedgerEntry.objects.create(
        user=reversed_,
        amount=-700,
        reason=LedgerEntry.Reason.REVERSAL,
        source=f"reversal:{LedgerEntry.objects.get(user=reversed_).pk}",
        project=project,
        epoch=epoch,
    )
    flags = [
        Flag.objects.create(user=who, kind=Flag.Kind.COLLUSION, project=project, evidence={})
        for who in (cleared, reversed_)
    ]
    [closed] = ledger_close_epochs(now=timezone.now() + timedelta(days=2))
    assert (int(closed.cut_from), int(closed.cut_to)) == (1500, 1200)
    assert closed.held_users == sorted([cleared.pk, reversed_.pk])
    assert (pending(honest), pending(cleared)) == (1200, 1000)  # still held: nothing cut yet

    for flag in flags:
        flag_dismiss(flag=flag, moderator=moderator, reason="checked: not a ring")
    assert len(payouts_settle(client=chain).confirmed) == 1
    assert payouts_settle(client=chain).confirmed == []  # cut once, not at every settlement
    assert chain.balance_of(honest.wallet_address) == 1200
    assert chain.balance_of(cleared.wallet_address) == 800  # 1000 at 1200 / 1500
    assert chain.balance_of(reversed_.wallet_address) == 0
    cut = LedgerEntry.objects.get(reason=LedgerEntry.Reason.BUDGET, user=cleared)
    assert (int(cut.amount), cut.epoch, cut.policy_inputs["released"]) == (-200, epoch, True)
    assert not LedgerEntry.objects.filter(reason=LedgerEntry.Reason.BUDGET, user=reversed_).exists()


def _cleared_after_a_close(moderator: User) -> tuple[Project, User, User, Any]:
    """An epoch of a 1200 budget closed with 1500 of honest credits (paid at 1200 / 1500) and a
    held contributor's 1000 left out; the flag still open."""
    from moderation.models import Flag

    project = budgeted_project(1200)
    epoch = reward_epoch(timezone.now())
    honest = credit_of(project, 1500, epoch=epoch)
    cleared = credit_of(project, 1000, epoch=epoch)
    flag = Flag.objects.create(user=cleared, kind=Flag.Kind.COLLUSION, project=project, evidence={})
    [closed] = ledger_close_epochs(now=timezone.now() + timedelta(days=2))
    assert (int(closed.cut_from), int(closed.cut_to)) == (1500, 1200)
    return project, honest, cleared, flag


def test_a_budget_removed_after_the_close_still_cuts_whom_it_left_out(
    chain: ChainClient, moderator: User
) -> None:
    """Whether to cut was read from the project's budget now: turned off since, the cleared
    contributor was paid in full while the epoch's others had been cut."""
    from moderation.services import flag_dismiss

    project, honest, cleared, flag = _cleared_after_a_close(moderator)
    reward_policy_update(
        project=project, changes={"epoch_budget": None}, moderator=moderator, note="off"
    )
    flag_dismiss(flag=flag, moderator=moderator, reason="checked")
    payouts_settle(client=chain)
    assert chain.balance_of(honest.wallet_address) == 1200
    assert chain.balance_of(cleared.wallet_address) == 800


def test_a_cut_a_concurrent_settlement_wrote_is_read_before_paying(
    chain: ChainClient, moderator: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another settlement wrote the cut after this one's first read and left the credit (its
    wallet's net, 800, under PAYOUT_MINIMUM): finding nothing left to write, this one paid its
    first read, the credit without its cut, and past the minimum."""
    from moderation.services import flag_dismiss
    from rewards import services

    settings.PAYOUT_MINIMUM = 900
    _, _, cleared, flag = _cleared_after_a_close(moderator)
    flag_dismiss(flag=flag, moderator=moderator, reason="checked")
    cut = services._released_credits_cut

    def written_first_by_another_run(rows: list[tuple[int, int, int, int]]) -> bool:
        cut(rows)  # the other settlement's write, committed meanwhile
        return cut(rows)  # this one's: nothing left to write

    monkeypatch.setattr(services, "_released_credits_cut", written_first_by_another_run)
    payouts_settle(client=chain)
    assert chain.balance_of(cleared.wallet_address) == 0


def test_a_contributor_released_from_an_epoch_under_its_budget_is_paid_in_full(
    chain: ChainClient, moderator: User
) -> None:
    from moderation.models import Flag
    from moderation.services import flag_dismiss

    project = budgeted_project(5000)
    epoch = reward_epoch(timezone.now())
    credit_of(project, 1500, epoch=epoch)
    cleared = credit_of(project, 1000, epoch=epoch)
    flag = Flag.objects.create(user=cleared, kind=Flag.Kind.COLLUSION, project=project, evidence={})
    [closed] = ledger_close_epochs(now=timezone.now() + timedelta(days=2))
    assert (int(closed.cut_from), int(closed.cut_to), closed.held_users) == (0, 0, [cleared.pk])
    flag_dismiss(flag=flag, moderator=moderator, reason="checked")
    payouts_settle(client=chain)
    assert chain.balance_of(cleared.wallet_address) == 1000
    assert not LedgerEntry.objects.filter(reason=LedgerEntry.Reason.BUDGET).exists()


def test_a_reversal_counts_against_the_credit_it_cancels_not_the_epoch_it_is_written_in(
    text_project: Project, moderator: User
) -> None:
    now = timezone.now()
    reward_policy_update(
        project=text_project, changes={"epoch_budget": 1000}, moderator=moderator, note="cap"
    )
    first, second = reward_epoch(now), reward_epoch(now) + 1
    alice = credit_of(text_project, 600, epoch=first)
    credit = LedgerEntry.objects.get(user=alice)
    LedgerEntry.objects.create(
        user=alice,
        amount=-600,
        reason=LedgerEntry.Reason.REVERSAL,
        source=f"reversal:{credit.pk}",
        project=text_project,
        epoch=second,  # reversed in the next epoch
    )
    bob = credit_of(text_project, 1200, epoch=second)
    closes = {c.epoch: c for c in ledger_close_epochs(now=now + timedelta(days=3))}
    assert (int(closes[first].spent), int(closes[second].spent)) == (0, 1200)
    assert (pending(alice), pending(bob)) == (0, 1000)
    assert EpochClose.objects.count() == 2


def test_a_reversal_written_in_a_later_epoch_is_paid_with_its_credit(
    text_project: Project, chain: ChainClient, moderator: User, settings: Any
) -> None:
    now = timezone.now()
    reward_policy_update(
        project=text_project, changes={"epoch_budget": 10**6}, moderator=moderator, note="cap"
    )
    alice = credit_of(text_project, 600, epoch=reward_epoch(now))
    credit = LedgerEntry.objects.get(user=alice)
    LedgerEntry.objects.create(
        user=alice,
        amount=-600,
        reason=LedgerEntry.Reason.REVERSAL,
        source=f"reversal:{credit.pk}",
        project=text_project,
        epoch=reward_epoch(now) + 1,  # re-decided after the epoch ended, before it closed
    )
    bob = credit_of(text_project, 100, epoch=reward_epoch(now))
    ledger_close_epochs(now=now + timedelta(hours=settings.REWARD_EPOCH_HOURS))
    payouts_settle(client=chain)  # the reversal's epoch is still open
    assert chain.balance_of(bob.wallet_address) == 100
    assert chain.balance_of(alice.wallet_address) == 0 and pending(alice) == 0
    assert chain.balance_of(alice.wallet_address) == 0 and pending(alice) == 0


def test_a_banned_contributors_credits_leave_the_honest_ones_the_whole_budget(
    chain: ChainClient, moderator: User
) -> None:
    """A contributor banned before the close (a moderator banned them from Users, no flag) isn't
    paid, yet counted as spent and cut what the budget left honest labelers; left out like a
    held one, and cut at the epoch's rate if unbanned."""
    from accounts.services import user_ban, user_unban

    project = budgeted_project(1200)
    epoch = reward_epoch(timezone.now())
    honest = credit_of(project, 1500, epoch=epoch)
    banned = credit_of(project, 1000, epoch=epoch)
    user_ban(user=banned, reason="sold their account", actor=moderator)
    [closed] = ledger_close_epochs(now=timezone.now() + timedelta(days=2))
    assert (int(closed.spent), int(closed.scaled_to)) == (1500, 1200)
    assert closed.held_users == [banned.pk]
    payouts_settle(client=chain)
    assert chain.balance_of(honest.wallet_address) == 1200
    assert chain.balance_of(banned.wallet_address) == 0

    user_unban(user=banned, actor=moderator)
    payouts_settle(client=chain)
    assert chain.balance_of(banned.wallet_address) == 800  # 1000 at 1200 / 1500
