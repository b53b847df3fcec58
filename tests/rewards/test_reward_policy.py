"""Pay that reflects the work: each label credit weighed by how sure the decision is and how
skilled its labeler is, versioned policies recorded on every entry, gold bonuses, a per-epoch
budget that scales down instead of overspending, and recorded decisions credited once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import AuditEvent, User
from labeling.models import Annotation, Decision, Item, Project, WorkerSkill
from labeling.services import annotation_create, item_create_text, item_decide, item_override
from rewards.chain import ChainClient
from rewards.models import DecisionCredit, EpochClose, LedgerEntry, RewardPolicy
from rewards.policy import above_chance, budget_scale, gold_reward, label_reward
from rewards.services import (
    decision_credit,
    gold_answer_reverse,
    ledger_close_epochs,
    payouts_settle,
    reward_epoch,
    reward_policy_current,
    reward_policy_update,
)
from tests.support.ledger import committed, labeler

pytestmark = pytest.mark.django_db
TOKEN = 10**18


@pytest.fixture
def project(db: None) -> Project:
    """A weighted policy: 1 token per label at full weight, 5 per contribution, 2 per gold."""
    project = Project.objects.create(
        name="Weighted",
        data_kind="text",
        classes=["yes", "no"],
        consensus_method="dawid_skene",
        overlap=3,
        max_labels=3,
        reward_per_label=TOKEN,
        reward_per_item=5 * TOKEN,
    )
    RewardPolicy.objects.create(
        project=project, version=1, per_label=TOKEN, per_item=5 * TOKEN, gold_bonus=2 * TOKEN
    )
    return project


def decided(project: Project, labels: list[tuple[User, str]], *, posterior: float) -> Item:
    """An item the crowd accepted at ``posterior`` (set as the consensus would), credited."""
    item = item_create_text(project=project, contributor=labeler(), text=f"t{Item.objects.count()}")
    for user, value in labels:
        Annotation.objects.create(item=item, annotator=user, label=value)
    Item.objects.filter(pk=item.pk).update(label_count=len(labels))
    project.acceptance_threshold = 0.5
    project.save(update_fields=["acceptance_threshold"])
    committed(lambda: item_decide(item_id=item.pk))
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED, item.confidence
    Item.objects.filter(pk=item.pk).update(confidence=posterior)
    return item


# --- the arithmetic -------------------------------------------------------------------------


@given(
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.integers(2, 9),
)
def test_label_pay_grows_with_certainty_and_skill_and_never_exceeds_the_base(
    p1: float, p2: float, a1: float, a2: float, k: int
) -> None:
    def pay(posterior: float, accuracy: float) -> int:
        return label_reward(
            base=TOKEN,
            posterior=posterior,
            accuracy=accuracy,
            accuracy_source="fit",
            n_classes=k,
            weight_by_posterior=True,
            weight_by_skill=True,
        ).amount

    low_p, high_p = sorted((p1, p2))
    low_a, high_a = sorted((a1, a2))
    assert 0 <= pay(low_p, low_a) <= pay(high_p, low_a) <= pay(high_p, high_a) <= TOKEN
    assert pay(1 / k, high_a) == 0 and pay(high_p, 1 / k) == 0  # chance earns nothing
    assert pay(1.0, 1.0) == TOKEN


def test_a_sure_decision_pays_more_than_a_coin_flip_and_a_guesser_near_nothing() -> None:
    def pay(posterior: float, accuracy: float) -> int:
        return label_reward(
            base=TOKEN,
            posterior=posterior,
            accuracy=accuracy,
            accuracy_source="fit",
            n_classes=2,
            weight_by_posterior=True,
            weight_by_skill=True,
        ).amount

    assert pay(0.99, 0.9) > 9 * pay(0.55, 0.9)
    assert pay(0.99, 0.52) < TOKEN // 20
    assert above_chance(0.75, 4) == pytest.approx(2 / 3)


def test_the_budget_scales_an_epoch_down_to_at_most_its_budget() -> None:
    cuts = budget_scale(positives=[600, 300, 100], net=900, budget=450)  # 100 reversed already
    kept = [a - c for a, c in zip([600, 300, 100], cuts, strict=True)]
    assert sum(kept) - 100 <= 450 and sum(kept) - 100 >= 447
    assert kept[0] / 600 == pytest.approx(kept[1] / 300, rel=0.01)  # proportional
    assert budget_scale(positives=[5, 5], net=10, budget=10) == [0, 0]


def test_a_lucky_guess_at_gold_earns_less_than_a_steady_record() -> None:
    lucky = gold_reward(base=TOKEN, correct=1, answered=1, n_classes=2).amount
    steady = gold_reward(base=TOKEN, correct=20, answered=20, n_classes=2).amount
    guesser = gold_reward(base=TOKEN, correct=10, answered=20, n_classes=2).amount
    assert steady > lucky > guesser and guesser < TOKEN // 10


# --- in the platform ------------------------------------------------------------------------


def test_label_credits_record_the_policy_and_its_inputs(project: Project) -> None:
    expert, novice = labeler(), labeler()
    WorkerSkill.objects.create(
        project=project,
        user=expert,
        accuracy=0.95,
        confusion=[],
        label_count=50,
        updated_at=timezone.now(),
    )
    item = decided(project, [(expert, "yes"), (novice, "yes"), (labeler(), "no")], posterior=0.99)
    decision = Decision.objects.get(item=item)
    assert decision.decided_by == "crowd" and decision.n_classes == 2
    credits = {e.user_id: e for e in LedgerEntry.objects.filter(reason="label")}
    assert set(credits) == {expert.pk, novice.pk}
    assert credits[expert.pk].amount > credits[novice.pk].amount  # 0.95 vs the default 0.8
    inputs = credits[expert.pk].policy_inputs
    assert credits[expert.pk].policy_version == 1
    assert inputs["accuracy"] == 0.95 and inputs["accuracy_source"] == "fit"
    assert credits[novice.pk].policy_inputs["accuracy_source"] == "default"
    contribution = LedgerEntry.objects.get(reason="contribution")
    assert contribution.amount == 5 * TOKEN and contribution.policy_inputs["rule"] == "contribution"


def test_a_decision_is_credited_once_whatever_retries(project: Project) -> None:
    item = decided(project, [(labeler(), "yes") for _ in range(3)], posterior=0.99)
    decision = Decision.objects.get(item=item)
    before = LedgerEntry.objects.count()
    assert decision_credit(decision_id=decision.pk) == 0
    assert LedgerEntry.objects.count() == before and DecisionCredit.objects.count() == 1


def test_a_new_policy_version_applies_to_new_credits_only(
    project: Project, moderator: User
) -> None:
    first = decided(project, [(labeler(), "yes") for _ in range(3)], posterior=0.99)
    policy = reward_policy_update(
        project=project,
        changes={"per_label": 3 * TOKEN, "weight_by_skill": False},
        moderator=moderator,
        note="harder task",
    )
    assert policy.version == 2
    project.refresh_from_db()
    assert project.reward_per_label == 3 * TOKEN  # what contributors are shown follows it
    assert AuditEvent.objects.get(action="reward_policy.update").details["note"] == "harder task"
    second = decided(project, [(labeler(), "yes") for _ in range(3)], posterior=0.99)
    versions = {e.item_id: e.policy_version for e in LedgerEntry.objects.filter(reason="label")}
    assert versions[first.pk] == 1 and versions[second.pk] == 2
    with pytest.raises(ValueError, match="negative"):
        reward_policy_update(
            project=project, changes={"per_item": -1}, moderator=moderator, note="x"
        )


def test_a_moderator_override_pays_as_a_certain_decision(project: Project, moderator: User) -> None:
    item = item_create_text(project=project, contributor=None, text="hard")
    user = labeler()
    Annotation.objects.create(item=item, annotator=user, label="no")
    committed(lambda: item_override(item=item, label="no", moderator=moderator))
    decision = Decision.objects.get(item=item)
    assert (decision.decided_by, decision.moderator, decision.posterior) == (
        "moderator",
        moderator,
        1.0,
    )
    credit = LedgerEntry.objects.get(user=user)
    assert credit.policy_inputs["posterior_weight_ppm"] == 1_000_000


def test_a_right_gold_answer_earns_the_weighted_bonus_once(project: Project) -> None:
    steady = labeler()
    golds = []
    for n in range(6):
        gold = item_create_text(project=project, contributor=None, text=f"gold {n}")
        Item.objects.filter(pk=gold.pk).update(gold_label="yes")
        golds.append(gold)
    for gold in golds[:5]:
        committed(
            lambda g=gold: annotation_create(
                item=g, annotator=steady, label="yes", leased_only=False
            )
        )
    wrong = committed(
        lambda: annotation_create(item=golds[5], annotator=steady, label="no", leased_only=False)
    )
    bonuses = list(LedgerEntry.objects.filter(reason="gold").order_by("id"))
    assert len(bonuses) == 5 and f"gold:{wrong.pk}" not in {b.source for b in bonuses}
    amounts = [int(b.amount) for b in bonuses]
    assert amounts == sorted(amounts) and amounts[-1] < 2 * TOKEN  # grows with the record


def test_a_withdrawn_gold_answer_gives_its_bonus_back(project: Project) -> None:
    """Answer, undo, answer again: one bonus, however many rounds (the reversal task the undo
    enqueued didn't exist, so every round kept its bonus)."""
    from labeling.services import annotation_withdraw

    steady = labeler()
    gold = item_create_text(project=project, contributor=None, text="gold")
    Item.objects.filter(pk=gold.pk).update(gold_label="yes")
    for _ in range(3):
        answer = committed(
            lambda: annotation_create(item=gold, annotator=steady, label="yes", leased_only=False)
        )
        committed(lambda a=answer: annotation_withdraw(annotation_id=a.pk, annotator=steady))
    committed(
        lambda: annotation_create(item=gold, annotator=steady, label="yes", leased_only=False)
    )
    entries = LedgerEntry.objects.filter(user=steady)
    assert entries.filter(reason="gold").count() == 4
    assert entries.filter(reason="reversal").count() == 3
    bonus = int(entries.filter(reason="gold").latest("id").amount)
    assert sum(int(e.amount) for e in entries) == bonus > 0
    # Once: reversing again writes nothing.
    assert not gold_answer_reverse(annotation_id=answer.pk)


def test_reversing_a_gold_bonus_says_it_wrote_one_the_first_time_only(project: Project) -> None:
    steady = labeler()
    gold = item_create_text(project=project, contributor=None, text="gold")
    Item.objects.filter(pk=gold.pk).update(gold_label="yes")
    answer = committed(
        lambda: annotation_create(item=gold, annotator=steady, label="yes", leased_only=False)
    )
    assert LedgerEntry.objects.filter(user=steady, reason="gold").count() == 1
    Annotation.objects.filter(pk=answer.pk).delete()  # withdrawn, its reversal task lost

    assert gold_answer_reverse(annotation_id=answer.pk)
    assert not gold_answer_reverse(annotation_id=answer.pk)
    assert sum(int(e.amount) for e in LedgerEntry.objects.filter(user=steady)) == 0


def test_an_epoch_over_budget_is_scaled_down_before_it_is_paid(
    project: Project, moderator: User, chain: ChainClient, settings: Any
) -> None:
    reward_policy_update(
        project=project,
        changes={"epoch_budget": 6 * TOKEN, "weight_by_posterior": False, "weight_by_skill": False},
        moderator=moderator,
        note="monthly cap",
    )
    for _ in range(2):
        decided(project, [(labeler(), "yes") for _ in range(3)], posterior=0.99)
    spent = sum(int(e.amount) for e in LedgerEntry.objects.all())
    assert spent == 2 * (5 + 3) * TOKEN  # 16 tokens credited, the budget is 6

    report = payouts_settle(client=chain)  # the epoch is still open: nothing is paid yet
    assert report.confirmed == [] and not EpochClose.objects.exists()

    later = timezone.now() + timedelta(hours=settings.REWARD_EPOCH_HOURS)
    [closed] = ledger_close_epochs(now=later)
    assert (int(closed.spent), int(closed.budget)) == (16 * TOKEN, 6 * TOKEN)
    net = sum(int(e.amount) for e in LedgerEntry.objects.all())
    assert 6 * TOKEN - 20 <= net <= 6 * TOKEN and int(closed.scaled_to) == net
    assert ledger_close_epochs(now=later) == []  # closed once
    payouts_settle(client=chain)
    paid = sum(
        chain.balance_of(u.wallet_address)
        for u in User.objects.exclude(wallet_address=None)
        if u.wallet_address
    )
    assert paid == net
    current = reward_epoch(timezone.now())
    assert closed.epoch == current


def test_credits_wait_while_their_item_has_an_uncredited_decision(
    project: Project, chain: ChainClient
) -> None:
    item = item_create_text(project=project, contributor=labeler(), text="pending")
    for user in (labeler(), labeler(), labeler()):
        Annotation.objects.create(item=item, annotator=user, label="yes")
    Item.objects.filter(pk=item.pk).update(label_count=3)
    project.acceptance_threshold = 0.5
    project.save(update_fields=["acceptance_threshold"])
    item_decide(item_id=item.pk)  # decided; its credit task never ran (a lost message)
    decision = Decision.objects.get(item=item)
    LedgerEntry.objects.create(
        user=item.contributor,
        amount=1,
        reason="adjustment",
        source="manual:1",
        item=item,
        project=project,
    )
    assert payouts_settle(client=chain).confirmed == []  # held: the decision isn't credited
    from rewards.tasks import credit_pending_decisions

    assert credit_pending_decisions() == 1
    assert DecisionCredit.objects.filter(decision=decision).exists()
    assert len(payouts_settle(client=chain).confirmed) == 1


def test_moderators_make_a_policy_version_in_admin_in_token_units(
    project: Project, moderator: User
) -> None:
    browser = Client()
    browser.force_login(moderator)
    page = browser.get(f"/admin/rewards/rewardpolicy/add/?project={project.pk}")
    assert page.status_code == 200 and b'value="1"' in page.content  # 1 CMT per label now
    response = browser.post(
        "/admin/rewards/rewardpolicy/add/",
        {
            "project": project.pk,
            "per_label_units": "1.5",
            "per_item_units": "5",
            "gold_bonus_units": "0.25",
            "epoch_budget_units": "",
            "weight_by_posterior": "on",
            "note": "more per label",
        },
    )
    assert response.status_code == 302
    latest = reward_policy_current(project=project)
    assert (latest.version, latest.per_label, latest.gold_bonus) == (2, 15 * 10**17, 25 * 10**16)
    assert latest.weight_by_posterior and not latest.weight_by_skill
    past = browser.get(f"/admin/rewards/rewardpolicy/{latest.pk}/change/")
    assert past.status_code == 200 and b"more per label" in past.content  # read-only


def test_the_new_version_form_reads_the_policy_without_writing_one(moderator: User) -> None:
    """A project never credited has no policy yet: the form starts from its rates, and the GET
    leaves it without one (reward_policy_current made version 1 here)."""
    fresh = Project.objects.create(
        name="Fresh", data_kind="text", classes=["yes", "no"], reward_per_label=3 * TOKEN
    )
    browser = Client()
    browser.force_login(moderator)
    page = browser.get(f"/admin/rewards/rewardpolicy/add/?project={fresh.pk}")
    assert page.status_code == 200
    initial = page.context["adminform"].form.initial
    assert (initial["per_label_units"], initial["weight_by_skill"]) == ("3", True)
    assert not RewardPolicy.objects.filter(project=fresh).exists()


def test_the_sweep_pays_the_gold_bonus_whose_task_was_lost_once(project: Project) -> None:
    """A gold answer's bonus is queued as a task when the answer commits; with the broker down
    then, nothing paid it. The credit-pending-decisions beat job now does, once."""
    from datetime import timedelta

    from django.utils import timezone

    from rewards.tasks import credit_pending_decisions

    steady = labeler()
    now = timezone.now()
    RewardPolicy.objects.update(created_at=now - timedelta(days=4))  # the bonus was set then
    answers = {}
    for name, label, age in [
        ("lost", "yes", timedelta(minutes=5)),
        ("wrong", "no", timedelta(minutes=5)),
        ("undoable", "yes", timedelta(seconds=10)),  # still inside its undo window
        ("old", "yes", timedelta(days=3)),
    ]:
        gold = item_create_text(project=project, contributor=None, text=name)
        Item.objects.filter(pk=gold.pk).update(gold_label="yes")
        answer = Annotation.objects.create(item=gold, annotator=steady, label=label)
        Annotation.objects.filter(pk=answer.pk).update(created_at=now - age)
        answers[name] = answer.pk
    assert credit_pending_decisions() == 1
    bonuses = LedgerEntry.objects.filter(reason="gold")
    assert [b.source for b in bonuses] == [f"gold:{answers['lost']}"]
    assert credit_pending_decisions() == 0  # once
    assert bonuses.count() == 1


def test_the_gold_sweep_leaves_projects_without_a_gold_bonus_alone(project: Project) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from rewards.services import gold_answers_credit_pending

    RewardPolicy.objects.create(
        project=project, version=2, per_label=TOKEN, per_item=5 * TOKEN, gold_bonus=0
    )
    gold = item_create_text(project=project, contributor=None, text="gold")
    Item.objects.filter(pk=gold.pk).update(gold_label="yes")
    answer = Annotation.objects.create(item=gold, annotator=labeler(), label="yes")
    Annotation.objects.filter(pk=answer.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert gold_answers_credit_pending() == 0
    assert not LedgerEntry.objects.filter(reason="gold").exists()


def test_the_gold_sweep_pays_no_answer_given_before_the_policy_had_a_gold_bonus(
    project: Project, moderator: User
) -> None:
    """A bonus set today pays from now on: the answers of yesterday, whose tasks ran and found
    no bonus to pay, are not paid by the sweep that finds lost tasks."""
    from rewards.services import gold_answers_credit_pending

    reward_policy_update(
        project=project, changes={"gold_bonus": 0}, moderator=moderator, note="no bonus"
    )
    RewardPolicy.objects.update(created_at=timezone.now() - timedelta(days=1))
    gold = item_create_text(project=project, contributor=None, text="gold")
    Item.objects.filter(pk=gold.pk).update(gold_label="yes")
    answer = Annotation.objects.create(item=gold, annotator=labeler(), label="yes")
    Annotation.objects.filter(pk=answer.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert gold_answers_credit_pending() == 0  # what its task did: no bonus then
    reward_policy_update(
        project=project, changes={"gold_bonus": 2 * TOKEN}, moderator=moderator, note="a bonus"
    )
    assert gold_answers_credit_pending() == 0
    assert not LedgerEntry.objects.filter(reason="gold").exists()


def test_the_gold_sweep_writes_no_policy_for_a_project_never_credited(db: None) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from rewards.services import gold_answers_credit_pending

    fresh = Project.objects.create(name="Fresh", data_kind="text", classes=["yes", "no"])
    gold = item_create_text(project=fresh, contributor=None, text="gold")
    Item.objects.filter(pk=gold.pk).update(gold_label="yes")
    answer = Annotation.objects.create(item=gold, annotator=labeler(), label="yes")
    Annotation.objects.filter(pk=answer.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert gold_answers_credit_pending() == 0
    assert not RewardPolicy.objects.filter(project=fresh).exists()
