"""Money moves exactly once, and only for work that deserves it: an answer given before its item
became gold earns no gold bonus and doesn't count as a gold answer; a bonus owed back is taken
back once, even after a crash; an epoch's budget is met to the base unit; and a bonus taken back
after it was paid comes off the contributor's next payout, never below zero."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import TestCase
from django.utils import timezone
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import User
from accounts.services import user_get_or_create_for_wallet
from labeling.models import Annotation, Item, Project, gold_answers
from labeling.services import annotation_create, item_create_text
from labeling.services.items import item_gold_set
from rewards.chain import ChainClient
from rewards.models import LedgerEntry, PayoutAllocation, RewardPolicy
from rewards.policy import budget_scale
from rewards.services import (
    gold_answers_credit_pending,
    gold_bonuses_reverse_owed,
    ledger_close_epochs,
    payouts_settle,
    reward_epoch,
)

pytestmark = pytest.mark.django_db
TOKEN = 10**18


def labeler() -> User:
    return user_get_or_create_for_wallet(address=Account.create().address)


def committed(action: Callable[[], Any]) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return action()


@pytest.fixture
def project(db: None) -> Project:
    """Two classes, a 2-token gold bonus and nothing else paid."""
    project = Project.objects.create(
        name="Gold", data_kind="text", classes=["yes", "no"], overlap=3, max_labels=3
    )
    RewardPolicy.objects.create(project=project, version=1, gold_bonus=2 * TOKEN)
    return project


def answer(item: Item, user: User, label: str) -> Annotation:
    return committed(
        lambda: annotation_create(item=item, annotator=user, label=label, leased_only=False)
    )


def gold_item(project: Project, text: str) -> Item:
    item = item_create_text(project=project, contributor=None, text=text)
    Item.objects.filter(pk=item.pk).update(gold_label="yes")
    item.refresh_from_db()
    return item


def bonuses(user: User) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(user=user, reason="gold").order_by("id"))


# --- 1. an item that becomes gold after it was answered -------------------------------------


def test_an_answer_given_before_its_item_became_gold_earns_no_bonus(
    project: Project, moderator: User
) -> None:
    early, late = labeler(), labeler()
    item = item_create_text(project=project, contributor=None, text="later gold")
    answer(item, early, "yes")  # an ordinary item, as far as anyone could tell
    committed(lambda: item_gold_set(item=item, label="yes", moderator=moderator, reason="check"))
    answer(item, late, "yes")
    assert bonuses(early) == []
    assert len(bonuses(late)) == 1


def test_the_gold_sweep_pays_no_answer_given_before_its_item_became_gold(
    project: Project, moderator: User
) -> None:
    early = labeler()
    RewardPolicy.objects.update(created_at=timezone.now() - timedelta(days=1))
    item = item_create_text(project=project, contributor=None, text="later gold")
    before = Annotation.objects.create(item=item, annotator=early, label="yes")
    Annotation.objects.filter(pk=before.pk).update(
        created_at=timezone.now() - timedelta(minutes=10)
    )
    item_gold_set(item=item, label="yes", moderator=moderator, reason="check")
    assert gold_answers_credit_pending() == 0
    assert bonuses(early) == []


def test_answers_before_an_item_became_gold_count_neither_for_nor_against_gold_accuracy(
    project: Project, moderator: User
) -> None:
    user = labeler()
    item = item_create_text(project=project, contributor=None, text="later gold")
    answer(item, user, "no")  # would be a miss, had it been gold then
    committed(lambda: item_gold_set(item=item, label="yes", moderator=moderator, reason="check"))
    assert not gold_answers(Annotation.objects.filter(annotator=user)).exists()
    always = gold_item(project, "gold from the start")
    answer(always, user, "yes")
    assert list(gold_answers(Annotation.objects.filter(annotator=user))) == [
        Annotation.objects.get(item=always)
    ]
    [bonus] = bonuses(user)
    assert (bonus.policy_inputs["gold_answered"], bonus.policy_inputs["gold_correct"]) == (1, 1)


def test_answers_to_a_gold_item_earn_the_bonus_and_never_a_label_credit(
    project: Project,
) -> None:
    RewardPolicy.objects.update(per_label=TOKEN, per_item=TOKEN)
    item = gold_item(project, "gold, fully answered")
    users = [labeler() for _ in range(3)]
    for user in users:
        answer(item, user, "yes")
    entries = LedgerEntry.objects.filter(item=item)
    assert set(entries.values_list("reason", flat=True)) == {"gold"}
    assert sorted(entries.values_list("user_id", flat=True)) == sorted(u.pk for u in users)


# --- 2. a bonus owed back, found by the sweep ----------------------------------------------


def test_a_bonus_reversal_lost_in_a_crash_is_written_once_by_the_sweep(project: Project) -> None:
    user = labeler()
    gold = gold_item(project, "gold")
    given = answer(gold, user, "yes")
    [bonus] = bonuses(user)
    # The withdrawal committed, then the process died before its reversal task ran.
    Annotation.objects.filter(pk=given.pk).delete()
    assert gold_bonuses_reverse_owed() == 1
    assert gold_bonuses_reverse_owed() == 0
    [reversal] = LedgerEntry.objects.filter(reason="reversal")
    assert (reversal.source, int(reversal.amount)) == (f"reversal:{bonus.pk}", -int(bonus.amount))


def test_a_bonus_is_taken_back_once_when_its_item_stops_being_gold(
    project: Project, moderator: User
) -> None:
    user = labeler()
    gold = gold_item(project, "gold")
    answer(gold, user, "yes")
    committed(lambda: item_gold_set(item=gold, label="", moderator=moderator, reason="mistake"))
    assert sum(int(e.amount) for e in LedgerEntry.objects.filter(user=user)) == 0
    assert gold_bonuses_reverse_owed() == 0  # written at once; the sweep finds nothing owed


def test_a_bonus_is_taken_back_when_the_gold_answer_is_corrected_and_the_answer_was_wrong(
    project: Project, moderator: User
) -> None:
    user, other = labeler(), labeler()
    gold = gold_item(project, "gold")
    answer(gold, user, "yes")
    answer(gold, other, "no")
    committed(lambda: item_gold_set(item=gold, label="no", moderator=moderator, reason="typo"))
    assert sum(int(e.amount) for e in LedgerEntry.objects.filter(user=user)) == 0
    assert LedgerEntry.objects.filter(reason="reversal").count() == 1


def test_the_beat_sweep_writes_the_reversals_owed(project: Project) -> None:
    from rewards.tasks import credit_pending_decisions

    user = labeler()
    given = answer(gold_item(project, "gold"), user, "yes")
    Annotation.objects.filter(pk=given.pk).delete()
    credit_pending_decisions()
    assert sum(int(e.amount) for e in LedgerEntry.objects.filter(user=user)) == 0


# --- 3. budget scaling lands on the budget -------------------------------------------------


def test_the_budget_scale_leaves_no_dust() -> None:
    cuts = budget_scale(positives=[1, 1, 1], net=3, budget=2)
    assert sum(1 - c for c in cuts) == 2
    assert cuts == [0, 0, 1]  # the remainders tie: the earliest credits keep the unit


@given(
    st.lists(st.integers(1, 10**24), min_size=1, max_size=30),
    st.integers(0, 10**24),
    st.integers(0, 10**24),
)
def test_a_scaled_epoch_spends_exactly_its_budget_and_no_credit_loses_more_than_it_pays(
    positives: list[int], uncut: int, budget: int
) -> None:
    net = sum(positives) + uncut
    cuts = budget_scale(positives=positives, net=net, budget=budget)
    assert cuts == budget_scale(positives=positives, net=net, budget=budget)  # deterministic
    assert all(0 <= c <= a for a, c in zip(positives, cuts, strict=True))
    if net <= budget:
        assert not any(cuts)
    else:
        assert net - sum(cuts) == max(budget, uncut)


def test_a_closed_epoch_spends_its_budget_to_the_base_unit(db: None, settings: Any) -> None:
    project = Project.objects.create(name="B", data_kind="text", classes=["a", "b"])
    RewardPolicy.objects.create(project=project, version=1, epoch_budget=2)
    epoch = reward_epoch(timezone.now())
    for n in range(3):
        LedgerEntry.objects.create(
            user=labeler(),
            amount=1,
            reason="adjustment",
            source=f"manual:{n}",
            project=project,
            epoch=epoch,
        )
    [closed] = ledger_close_epochs(
        now=timezone.now() + timedelta(hours=settings.REWARD_EPOCH_HOURS)
    )
    assert int(closed.scaled_to) == 2
    assert sum(int(e.amount) for e in LedgerEntry.objects.filter(project=project)) == 2


# --- 5. a paid bonus taken back -------------------------------------------------------------


def test_a_paid_bonus_taken_back_comes_off_the_next_payout_never_below_zero(
    project: Project, moderator: User, chain: ChainClient
) -> None:
    user = labeler()
    gold = gold_item(project, "gold")
    answer(gold, user, "yes")
    [bonus] = bonuses(user)
    assert len(payouts_settle(client=chain).confirmed) == 1
    assert chain.balance_of(user.wallet_address) == int(bonus.amount)
    committed(lambda: item_gold_set(item=gold, label="", moderator=moderator, reason="mistake"))
    reversal = LedgerEntry.objects.get(reason="reversal", user=user)

    # A smaller credit since: the wallet's net is below zero, so nothing is paid, nothing lost.
    LedgerEntry.objects.create(user=user, amount=1, reason="adjustment", source="manual:1")
    assert payouts_settle(client=chain).confirmed == []
    assert not PayoutAllocation.objects.filter(entry=reversal).exists()
    assert chain.balance_of(user.wallet_address) == int(bonus.amount)

    # Enough to cover it: the next payout is what's earned less what's owed.
    LedgerEntry.objects.create(user=user, amount=3 * TOKEN, reason="adjustment", source="manual:2")
    assert len(payouts_settle(client=chain).confirmed) == 1
    assert PayoutAllocation.objects.filter(entry=reversal).exists()
    assert chain.balance_of(user.wallet_address) == 1 + 3 * TOKEN
