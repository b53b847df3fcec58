"""The decisions' queue: an answer that completes an item's labels queues its decision in the same
statement (``DecisionDue``); one task drains the queue in batches, each claimed and decided in one
transaction and credited by one rewards task; a batch costs the same statements whatever its
size, and one that fails leaves its items queued."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from itertools import count
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from eth_account import Account

from accounts.models import User
from accounts.services import user_get_or_create_for_wallet
from labeling.models import Decision, DecisionDue, Item, Project
from labeling.services import (
    annotation_create,
    item_create_text,
    items_decide,
    items_decide_due,
)
from labeling.services import decisions as decisions_module
from labeling.services.decisions import item_redecide
from labeling.services.items import DUE_WAKE_KEY, decisions_due_wake
from rewards.models import DecisionCredit, LedgerEntry
from rewards.services import decision_credit, decisions_credit

pytestmark = pytest.mark.django_db


def labeler() -> User:
    return user_get_or_create_for_wallet(address=Account.create().address)


_texts = count()


def labeled_items(project: Project, votes: list[list[str]]) -> list[Item]:
    """One item per entry of ``votes``, uploaded by a contributor and labeled by fresh labelers
    with those labels; their decisions are left in the queue (nothing here commits)."""
    uploader = labeler()
    crowd = [labeler() for _ in range(max(len(v) for v in votes))]
    items = []
    for labels in votes:
        item = item_create_text(project=project, contributor=uploader, text=f"text {next(_texts)}")
        for who, label in zip(crowd, labels, strict=False):
            annotation_create(item=item, annotator=who, label=label, leased_only=False)
        items.append(item)
    return items


def statements(run: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as queries:
        run()
    return len(queries.captured_queries)


def test_an_item_joins_the_queue_with_its_last_wanted_label_and_gold_never_does(
    text_project: Project,
) -> None:
    complete, short = labeled_items(text_project, [["positive"] * 3, ["positive"] * 2])
    gold = item_create_text(project=text_project, contributor=None, text="gold")
    Item.objects.filter(pk=gold.pk).update(gold_label="positive")
    gold.refresh_from_db()
    for _ in range(3):
        annotation_create(item=gold, annotator=labeler(), label="positive", leased_only=False)
    assert list(DecisionDue.objects.values_list("item_id", flat=True)) == [complete.pk]
    assert short.pk not in DecisionDue.objects.values_list("item_id", flat=True)


def test_one_batch_decides_the_queue_in_the_same_statements_whatever_its_size(
    text_project: Project, django_capture_on_commit_callbacks: Callable
) -> None:
    votes = [["positive", "positive", "negative"], ["negative"] * 3, ["positive"] * 3]
    small = labeled_items(text_project, votes)
    with django_capture_on_commit_callbacks(execute=True):
        small_cost = statements(items_decide_due)
    large = labeled_items(text_project, votes * 10)
    with django_capture_on_commit_callbacks(execute=True):
        large_cost = statements(items_decide_due)
    assert large_cost == small_cost, (small_cost, large_cost)
    assert not DecisionDue.objects.exists()
    for item in [*small, *large]:
        item.refresh_from_db()
        assert item.status == Item.Status.ACCEPTED and item.decision_version == 1
    assert [i.decided_label for i in small] == ["positive", "negative", "positive"]
    assert Decision.objects.count() == 33 and DecisionCredit.objects.count() == 33
    # The credits, as one decision at a time writes them: the uploader once per item, each
    # agreeing label once (flat rates: 25 and 10).
    earned: dict[str, int] = defaultdict(int)
    for reason, amount in LedgerEntry.objects.values_list("reason", "amount"):
        earned[reason] += int(amount)
    assert earned == {"contribution": 33 * 25, "label": (2 + 3 + 3) * 11 * 10}


def test_a_batch_that_fails_leaves_its_items_queued_and_undecided(
    text_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = labeled_items(text_project, [["positive"] * 3] * 4)
    real = decisions_module._decide

    def fails_on_the_third(item: Item, *args: Any) -> Any:
        if item.pk == items[2].pk:
            raise RuntimeError("the third item's decision breaks")
        return real(item, *args)

    monkeypatch.setattr(decisions_module, "_decide", fails_on_the_third)
    with pytest.raises(RuntimeError):
        items_decide_due()
    assert DecisionDue.objects.count() == 4
    assert not Decision.objects.exists()
    assert set(Item.objects.values_list("status", flat=True)) == {Item.Status.OPEN}
    monkeypatch.setattr(decisions_module, "_decide", real)
    assert items_decide_due() == (4, False)
    assert set(Item.objects.values_list("status", flat=True)) == {Item.Status.ACCEPTED}


def test_the_queue_is_drained_in_batches_and_hands_over_when_its_time_is_spent(
    text_project: Project,
) -> None:
    labeled_items(text_project, [["positive"] * 3] * 5)
    assert items_decide_due(batch=2, budget_seconds=0) == (0, True)
    assert items_decide_due(batch=2) == (5, False)
    assert items_decide_due(batch=2) == (0, False)


def test_a_batch_credits_like_one_decision_at_a_time_a_redecision_included(
    text_project: Project,
) -> None:
    first, second = labeled_items(
        text_project, [["positive", "positive", "negative"], ["negative"] * 3]
    )
    items_decide(item_ids=[first.pk, second.pk])
    # The first item is re-decided before anything is credited: both of its decisions go in
    # one batch; the second is credited after the first, reversing its label credits.
    assert item_redecide(item_id=first.pk, label="negative", confidence=0.99)
    ids = list(Decision.objects.order_by("id").values_list("pk", flat=True))
    assert len(ids) == 3
    decisions_credit(decision_ids=ids)
    assert decisions_credit(decision_ids=ids) == 0  # credited once
    assert all(decision_credit(decision_id=pk) == 0 for pk in ids)
    net: dict[tuple[int, int], int] = defaultdict(int)
    for user_id, item_id, amount in LedgerEntry.objects.values_list("user_id", "item_id", "amount"):
        net[user_id, item_id] += int(amount)
    labels = dict(
        (a.annotator_id, a.label) for a in Item.objects.get(pk=first.pk).annotations.all()
    )
    for user_id, label in labels.items():
        assert net[user_id, first.pk] == (10 if label == "negative" else 0)
    assert net[first.contributor_id, first.pk] == 25
    assert sum(v for (_, item), v in net.items() if item == second.pk) == 25 + 3 * 10


def test_a_wake_up_queues_one_task_until_the_task_starts(
    settings: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable
) -> None:
    from labeling import tasks

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.DECISIONS_GATHER_MS = 250
    queued: list[float] = []
    monkeypatch.setattr(
        tasks.decide_due,
        "apply_async",
        lambda args, kwargs, countdown, **options: queued.append(countdown or 0.0),
    )
    decisions_due_wake()
    decisions_due_wake()
    # One task, started after the gathering window so that the items queued meanwhile join it.
    assert queued == [0.25] and cache.get(DUE_WAKE_KEY)
    # The task clears the key before it looks at the queue: the next wake-up queues another.
    monkeypatch.setattr(tasks.services, "items_decide_due", lambda: (0, False))
    tasks.decide_due.run()
    assert cache.get(DUE_WAKE_KEY) is None
    settings.DECISIONS_GATHER_MS = 0
    decisions_due_wake()
    assert queued == [0.25, 0.0]
