"""Money moves exactly once, and only for work that deserves it: an answer given before its item
became gold earns no gold bonus and doesn't count as a gold answer; a bonus owed back is taken
back once, even after a crash; an epoch's budget is met to the base unit; a bonus taken back
after it was paid comes off the contributor's next payout, never below zero; a moderator's slip
in a gold answer, put right, costs nobody their bonus; and the bonuses granted before reversals
existed are kept at the upgrade."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import TestCase
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import User
from labeling.models import Annotation, Item, Project, gold_answers
from labeling.services import annotation_create, item_create_text
from labeling.services.items import item_gold_set
from rewards.chain import ChainClient
from rewards.models import LedgerEntry, PayoutAllocation, RewardPolicy
from rewards.policy import budget_scale, gold_reward
from rewards.services import (
    GOLD_SWEEP_DAYS,
    gold_answer_credit,
    gold_answers_credit_pending,
    gold_bonuses_reverse_owed,
    gold_items_settle_changed,
    ledger_close_epochs,
    payouts_settle,
    reward_epoch,
)
from tests.support.ledger import committed, labeler

pytestmark = pytest.mark.django_db
TOKEN = 10**18


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


# --- 6. a moderator's slip costs nobody a bonus for good -------------------------------------


def net_bonus(user: User) -> int:
    """What the user's gold bonuses pay now: the bonuses less their reversals."""
    return sum(int(e.amount) for e in LedgerEntry.objects.filter(user=user))


def test_a_gold_answer_corrected_by_mistake_and_back_pays_its_bonus_once(
    project: Project, moderator: User
) -> None:
    user = labeler()
    gold = gold_item(project, "gold")
    answer(gold, user, "yes")
    [bonus] = bonuses(user)
    committed(lambda: item_gold_set(item=gold, label="no", moderator=moderator, reason="typo"))
    committed(lambda: item_gold_set(item=gold, label="yes", moderator=moderator, reason="fix"))
    assert net_bonus(user) == int(bonus.amount)
    assert len(bonuses(user)) == 2  # the first, reversed, and one for the gold answer restored
    assert gold_bonuses_reverse_owed() == 0
    assert gold_answers_credit_pending(now=timezone.now() + timedelta(hours=1)) == 0
    assert net_bonus(user) == int(bonus.amount)


def test_an_item_ungolded_by_mistake_and_regolded_pays_the_answers_it_had_once(
    project: Project, moderator: User
) -> None:
    user = labeler()
    gold = gold_item(project, "gold")
    answer(gold, user, "yes")
    [bonus] = bonuses(user)
    committed(lambda: item_gold_set(item=gold, label="", moderator=moderator, reason="slip"))
    assert net_bonus(user) == 0
    committed(lambda: item_gold_set(item=gold, label="yes", moderator=moderator, reason="undo"))
    assert net_bonus(user) == int(bonus.amount)


def test_a_regold_after_answers_to_the_ordinary_item_counts_from_the_regold(
    project: Project, moderator: User
) -> None:
    first, meanwhile = labeler(), labeler()
    gold = gold_item(project, "gold")
    answer(gold, first, "yes")
    committed(lambda: item_gold_set(item=gold, label="", moderator=moderator, reason="unsure"))
    answer(gold, meanwhile, "yes")  # an ordinary item, as far as anyone could tell
    committed(lambda: item_gold_set(item=gold, label="yes", moderator=moderator, reason="sure"))
    assert (net_bonus(first), net_bonus(meanwhile)) == (0, 0)
    assert not gold_answers(Annotation.objects.filter(item=gold)).exists()


GOLD_STATES = ["yes", "no", "maybe", ""]

# One step: a moderator sets the gold answer (its settling task run or lost), a sweep runs, or
# an answer's own credit task runs.
steps = st.one_of(
    st.tuples(st.just("gold"), st.sampled_from(GOLD_STATES), st.booleans()),
    st.tuples(st.just("reverse sweep"), st.none(), st.none()),
    st.tuples(st.just("credit sweep"), st.none(), st.none()),
    st.tuples(st.just("credit"), st.integers(0, 2), st.none()),
)


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=st.sampled_from(GOLD_STATES),
    labels=st.lists(st.sampled_from(["yes", "no", "maybe"]), min_size=1, max_size=3),
    credited=st.lists(st.booleans(), min_size=3, max_size=3),
    changes=st.lists(steps, max_size=8),
)
def test_after_any_gold_changes_each_answer_nets_its_bonus_if_right_under_the_final_gold_answer(
    moderator: User,
    first: str,
    labels: list[str],
    credited: list[bool],
    changes: list[tuple[str, Any, Any]],
) -> None:
    """Whatever a moderator does to an item's gold answer (set, correct, clear, in any order),
    with the settling tasks and the answers' own credit tasks run or lost in between, once the
    beat's sweep has run each answer nets exactly its bonus if it was given while the item was
    gold and is right under the final gold answer, else 0; and never less than 0 on the way."""
    project = Project.objects.create(
        name="Any gold", data_kind="text", classes=["yes", "no", "maybe"], overlap=3, max_labels=3
    )
    RewardPolicy.objects.create(project=project, version=1, gold_bonus=2 * TOKEN)
    RewardPolicy.objects.filter(project=project).update(
        created_at=timezone.now() - timedelta(days=1)
    )
    item = item_create_text(project=project, contributor=None, text="gold?")
    Item.objects.filter(pk=item.pk).update(gold_label=first)
    users = [labeler() for _ in labels]
    answers = [
        Annotation.objects.create(item=item, annotator=user, label=label)
        for user, label in zip(users, labels, strict=True)
    ]
    Annotation.objects.filter(item=item).update(created_at=timezone.now() - timedelta(minutes=10))
    for given_, runs in zip(answers, credited, strict=False):
        if runs:
            gold_answer_credit(annotation_id=given_.pk)

    for kind, arg, runs in changes:
        if kind == "gold":
            item.refresh_from_db()
            with TestCase.captureOnCommitCallbacks(execute=runs):
                item_gold_set(item=item, label=arg, moderator=moderator, reason="any")
        elif kind == "reverse sweep":
            gold_bonuses_reverse_owed()
        elif kind == "credit sweep":
            gold_answers_credit_pending()
        elif arg < len(answers):
            gold_answer_credit(annotation_id=answers[arg].pk)
        assert all(net_bonus(user) >= 0 for user in users)

    from rewards.tasks import credit_pending_decisions

    credit_pending_decisions()
    item.refresh_from_db()
    bonus = gold_reward(base=2 * TOKEN, correct=1, answered=1, n_classes=3).amount
    for user, label in zip(users, labels, strict=True):
        deserved = first != "" and label == item.gold_label
        assert net_bonus(user) == (bonus if deserved else 0), (user, label, item.gold_label)
        paid = {e.pk: int(e.amount) for e in bonuses(user)}
        for reversal in LedgerEntry.objects.filter(user=user, reason="reversal"):
            assert int(reversal.amount) == -paid[reversal.policy_inputs["reverses"]]


# --- 7. the bonuses granted before reversals existed are kept at the upgrade ----------------


def grandfather() -> int:
    """The data migration's function, run on the current models."""
    from importlib import import_module

    from django.apps import apps

    migration = import_module("rewards.migrations.0012_gold_bonuses_grandfathered")
    return int(migration.bonuses_owed_keep(apps))


def test_the_upgrade_keeps_the_bonuses_owed_back_under_the_old_rules(
    project: Project, moderator: User
) -> None:
    withdrawn, ungolded, corrected, right = labeler(), labeler(), labeler(), labeler()
    kept_gold, other_gold = gold_item(project, "ungolded"), gold_item(project, "corrected")
    gone = answer(gold_item(project, "withdrawn"), withdrawn, "yes")
    answer(kept_gold, ungolded, "yes")
    answer(other_gold, corrected, "yes")
    answer(other_gold, right, "no")
    # As the release before: the changes and the withdrawal wrote no reversals.
    Annotation.objects.filter(pk=gone.pk).delete()
    Item.objects.filter(pk=kept_gold.pk).update(gold_label="")
    Item.objects.filter(pk=other_gold.pk).update(gold_label="no")
    owed_before = {withdrawn: net_bonus(withdrawn), ungolded: net_bonus(ungolded)}
    owed_before[corrected] = net_bonus(corrected)

    assert grandfather() == 3
    assert grandfather() == 0  # once
    assert gold_bonuses_reverse_owed() == 0
    for user, net in owed_before.items():
        assert net > 0 and net_bonus(user) == net
    assert LedgerEntry.objects.filter(reason="reversal").count() == 0

    # A later change of the item whose answer was withdrawn still takes nothing back.
    withdrawn_gold = Item.objects.get(text="withdrawn")
    committed(
        lambda: item_gold_set(item=withdrawn_gold, label="no", moderator=moderator, reason="x")
    )
    assert net_bonus(withdrawn) == owed_before[withdrawn]


def test_a_kept_bonus_is_reversed_after_a_later_change_of_its_gold_answer(
    project: Project, moderator: User
) -> None:
    user = labeler()
    gold = gold_item(project, "gold")
    answer(gold, user, "yes")
    [bonus] = bonuses(user)
    Item.objects.filter(pk=gold.pk).update(gold_label="no")  # corrected before the upgrade
    assert grandfather() == 1
    assert gold_bonuses_reverse_owed() == 0
    gold.refresh_from_db()
    # Re-golded right: the kept bonus stands, and nothing more is paid.
    committed(lambda: item_gold_set(item=gold, label="yes", moderator=moderator, reason="fix"))
    assert net_bonus(user) == int(bonus.amount)
    assert len(bonuses(user)) == 1
    # Changed again: reversed like any other bonus.
    committed(lambda: item_gold_set(item=gold, label="", moderator=moderator, reason="drop"))
    assert net_bonus(user) == 0


# --- 8. a gold fix whose settling task was lost --------------------------------------------


def test_an_old_answer_is_paid_again_once_by_the_sweep_when_the_settling_of_a_gold_fix_was_lost(
    project: Project, moderator: User
) -> None:
    from rewards.tasks import credit_pending_decisions

    user = labeler()
    gold = gold_item(project, "gold")
    given = answer(gold, user, "yes")
    [bonus] = bonuses(user)
    # Answered well before the answers' sweep looks (its own credit task long done), under the
    # policy of the project then.
    Annotation.objects.filter(pk=given.pk).update(
        created_at=timezone.now() - timedelta(days=GOLD_SWEEP_DAYS + 3)
    )
    RewardPolicy.objects.filter(project=project).update(
        created_at=timezone.now() - timedelta(days=GOLD_SWEEP_DAYS + 4)
    )
    committed(lambda: item_gold_set(item=gold, label="no", moderator=moderator, reason="typo"))
    assert net_bonus(user) == 0
    with TestCase.captureOnCommitCallbacks(execute=False):  # a broker outage: the task is lost
        item_gold_set(item=gold, label="yes", moderator=moderator, reason="fix")
    assert net_bonus(user) == 0
    credit_pending_decisions()
    assert net_bonus(user) == int(bonus.amount)
    credit_pending_decisions()
    assert len(bonuses(user)) == 2  # the first, reversed, and the one the sweep wrote, once


def test_a_gold_fix_pays_no_old_answer_given_while_the_project_paid_no_gold_bonus(
    project: Project, moderator: User
) -> None:
    RewardPolicy.objects.filter(project=project).update(
        gold_bonus=0, created_at=timezone.now() - timedelta(days=10)
    )
    user = labeler()
    gold = gold_item(project, "gold")
    given = answer(gold, user, "no")
    Annotation.objects.filter(pk=given.pk).update(created_at=timezone.now() - timedelta(days=5))
    RewardPolicy.objects.create(project=project, version=2, gold_bonus=2 * TOKEN)
    # The gold answer was wrong: "no" is right. The answer is right now, but its task met a
    # policy with no bonus (as the credit sweep reads it): the fix pays it nothing.
    committed(lambda: item_gold_set(item=gold, label="no", moderator=moderator, reason="fix"))
    assert bonuses(user) == []
    # A right answer given under the bonus is paid.
    later = labeler()
    answer(gold, later, "no")
    assert net_bonus(later) > 0


def test_the_sweep_settles_only_the_items_whose_gold_changed_within_its_window(
    project: Project, moderator: User
) -> None:
    user = labeler()
    gold = gold_item(project, "gold")
    answer(gold, user, "yes")
    committed(lambda: item_gold_set(item=gold, label="no", moderator=moderator, reason="typo"))
    with TestCase.captureOnCommitCallbacks(execute=False):
        item_gold_set(item=gold, label="yes", moderator=moderator, reason="fix")
    later = timezone.now() + timedelta(days=GOLD_SWEEP_DAYS, minutes=1)
    assert gold_items_settle_changed(now=later) == (0, 0)
    assert net_bonus(user) == 0
    assert gold_items_settle_changed() == (0, 1)
    assert gold_items_settle_changed() == (0, 0)


def test_the_upgrade_dates_each_items_last_gold_change_from_the_audit_trail(
    project: Project, moderator: User
) -> None:
    from importlib import import_module

    from django.apps import apps

    from accounts.models import AuditEvent

    changed, unchanged = gold_item(project, "changed"), gold_item(project, "unchanged")
    committed(lambda: item_gold_set(item=changed, label="no", moderator=moderator, reason="a"))
    committed(lambda: item_gold_set(item=changed, label="no", moderator=moderator, reason="same"))
    committed(lambda: item_gold_set(item=unchanged, label="yes", moderator=moderator, reason="b"))
    Item.objects.update(gold_changed_at=None)  # as before the release
    migration = import_module("labeling.migrations.0023_item_gold_changed_at")
    migration.gold_changed_at_from_audit(apps, None)
    change = AuditEvent.objects.filter(target_id=str(changed.pk)).order_by("id").first()
    assert change is not None
    changed.refresh_from_db()
    unchanged.refresh_from_db()
    assert (changed.gold_changed_at, unchanged.gold_changed_at) == (change.created_at, None)
