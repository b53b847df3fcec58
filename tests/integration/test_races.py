"""Races on real PostgreSQL: the database's constraints and row locks decide, not Python checks."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from accounts.models import User
from labeling.models import Annotation, Item, Project
from labeling.services import item_create_text
from rewards.chain import ChainClient, rpc_client
from rewards.models import LedgerEntry, PayoutBatch
from rewards.services import payouts_settle
from tests.integration.test_whole_loop import Session, png
from tests.support.hardhat import HARDHAT_KEY_0

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def at_once(n: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(i)`` in ``n`` threads released together; return results (or exceptions)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = action(i)
        except Exception as exc:  # collected and asserted on by the caller
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_labels_by_one_contributor_make_one_annotation(live_server: Any) -> None:
    from eth_account import Account

    project = Project.objects.create(
        name="P", data_kind="text", classes=["a", "b"], consensus_method="majority_vote", overlap=3
    )
    item = item_create_text(project=project, contributor=None, text="race")
    session = Session(live_server.url, Account.create())
    assert session.get(f"/api/v1/projects/{project.pk}/next-task/").json()["id"] == item.pk
    codes = at_once(
        6,
        lambda i: session.post(
            f"/api/v1/items/{item.pk}/annotations/", json={"label": "a"}
        ).status_code,
    )
    assert Counter(codes) == {201: 1, 409: 5}
    assert Annotation.objects.filter(item=item).count() == 1
    item.refresh_from_db()
    assert item.label_count == 1


def test_concurrent_withdrawals_of_one_answer_take_one_label_off(live_server: Any) -> None:
    """Each withdrawal read the answer before locking the item: eight at once took the count
    to 0 while two answers stood, and the rest hit the count's check constraint (500s)."""
    from eth_account import Account

    project = Project.objects.create(
        name="W", data_kind="text", classes=["a", "b"], consensus_method="majority_vote", overlap=3
    )
    item = item_create_text(project=project, contributor=None, text="withdraw")
    sessions = [Session(live_server.url, Account.create()) for _ in range(3)]
    for session in sessions:
        assert session.get(f"/api/v1/projects/{project.pk}/next-task/").json()["id"] == item.pk
    posted = [
        s.post(f"/api/v1/items/{item.pk}/annotations/", json={"label": "a"}) for s in sessions[:2]
    ]
    mine = posted[0].json()["id"]
    codes = at_once(8, lambda i: sessions[0].delete(f"/api/v1/annotations/{mine}").status_code)
    assert Counter(codes) == {204: 1, 404: 7}
    item.refresh_from_db()
    assert item.label_count == Annotation.objects.filter(item=item).count() == 1


def test_concurrent_identical_uploads_store_one_item(live_server: Any) -> None:
    from eth_account import Account

    project = Project.objects.create(name="I", data_kind="image", classes=["a", "b"])
    sessions = [Session(live_server.url, Account.create()) for _ in range(4)]
    codes = at_once(
        4,
        lambda i: sessions[i]
        .post(
            f"/api/v1/projects/{project.pk}/items/",
            files={"file": ("same.png", png((1, 2, 3)))},
            data={"licence_accepted": "true"},
        )
        .status_code,
    )
    assert Counter(codes) == {201: 1, 409: 3}
    assert Item.objects.filter(project=project).count() == 1


def test_concurrent_uploads_stop_at_the_daily_quota(live_server: Any) -> None:
    from eth_account import Account

    project = Project.objects.create(
        name="Q", data_kind="text", classes=["a", "b"], daily_upload_quota=2
    )
    session = Session(live_server.url, Account.create())
    codes = at_once(
        8,
        lambda i: session.post(
            f"/api/v1/projects/{project.pk}/items/",
            json={"text": f"distinct text number {i}", "licence_accepted": True},
        ).status_code,
    )
    assert Counter(codes) == {201: 2, 429: 6}
    assert Item.objects.filter(project=project).count() == 2


def test_concurrent_near_copies_of_a_text_store_one_item(live_server: Any) -> None:
    from eth_account import Account

    project = Project.objects.create(name="N", data_kind="text", classes=["a", "b"])
    variants = ["Hello World", "hello world", "HELLO WORLD!", "hello, world", "Hello  world."]
    sessions = [Session(live_server.url, Account.create()) for _ in variants]
    codes = at_once(
        len(variants),
        lambda i: sessions[i]
        .post(
            f"/api/v1/projects/{project.pk}/items/",
            json={"text": variants[i], "licence_accepted": True},
        )
        .status_code,
    )
    assert Counter(codes) == {201: 1, 409: 4}
    assert Item.objects.filter(project=project).count() == 1


def test_concurrent_settlements_pay_once(hardhat: Any, token: ChainClient) -> None:
    from eth_account import Account

    users = [
        User.objects.create(username=f"u{i}", wallet_address=Account.create().address)
        for i in range(20)
    ]
    for i, user in enumerate(users):
        LedgerEntry.objects.create(
            user=user, amount=10**18 + i, reason="label", source=f"annotation:{i}"
        )

    def settle(_: int) -> object:
        # Each thread its own client (its own HTTP session and nonce reads), as separate workers.
        return payouts_settle(client=rpc_client(hardhat.url, HARDHAT_KEY_0, token.token_address))

    results = at_once(3, settle)
    payouts_settle(client=token)  # and once more, after the race
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(len(r.confirmed) for r in results) == 1  # one thread made and paid the batch
    confirmed = PayoutBatch.objects.filter(status=PayoutBatch.Status.CONFIRMED)
    assert confirmed.count() == 1
    for i, user in enumerate(users):
        assert token.balance_of(user.wallet_address) == 10**18 + i
    assert token.token_info().total_supply == sum(10**18 + i for i in range(20))
    assert connection.vendor == "postgresql"


def test_twenty_concurrent_callers_lease_an_item_needing_three_exactly_three_times(
    live_server: Any,
) -> None:
    from eth_account import Account

    from labeling.models import Assignment

    project = Project.objects.create(
        name="Leases", data_kind="text", classes=["a", "b"], overlap=3, max_labels=3
    )
    item = item_create_text(project=project, contributor=None, text="only three may take it")
    sessions = [Session(live_server.url, Account.create()) for _ in range(20)]
    replies = at_once(20, lambda i: sessions[i].get(f"/api/v1/projects/{project.pk}/next-task/"))
    served = [r.json()["id"] for r in replies if r.status_code == 200]
    assert served == [item.pk] * 3, [r.status_code for r in replies]
    assert sum(r.status_code == 204 for r in replies) == 17
    assert Assignment.objects.filter(item=item).count() == 3
    assert connection.vendor == "postgresql"


def test_one_contributors_concurrent_next_task_calls_all_get_the_last_item(
    live_server: Any,
) -> None:
    """Two tabs (or a page's preload racing its own call) asking at once: none is told nothing is
    left while the contributor holds the last item."""
    from eth_account import Account

    from labeling.models import Assignment

    project = Project.objects.create(
        name="Tabs", data_kind="text", classes=["a", "b"], overlap=3, max_labels=3
    )
    item = item_create_text(project=project, contributor=None, text="the last one")
    session = Session(live_server.url, Account.create())
    for _ in range(3):
        replies = at_once(6, lambda i: session.get(f"/api/v1/projects/{project.pk}/next-task/"))
        assert [r.status_code for r in replies] == [200] * 6
        assert {r.json()["id"] for r in replies} == {item.pk}
    assert Assignment.objects.filter(item=item).count() == 1


def test_a_credit_and_a_redecision_of_one_item_at_once_both_finish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A decision's credit holds the item's credits while a refit re-decides the item again:
    the re-decision waits for the credit (no deadlock: both lock the item first). Before, the
    re-decision locked the item and waited for the credits, and the credit's new entries waited
    for the item (their foreign key), and PostgreSQL killed one of them."""
    from eth_account import Account

    from accounts.services import user_get_or_create_for_wallet
    from labeling.models import Decision
    from labeling.services import item_decide
    from labeling.services.decisions import item_redecide
    from rewards import services as reward_services

    # Credits run only when this test says so.
    monkeypatch.setattr("labeling.services.decisions.decisions_credit_enqueue", lambda ids: None)
    from tests.conftest import flat_rates

    project = flat_rates(
        Project.objects.create(
            name="Refit",
            data_kind="text",
            classes=["a", "b"],
            consensus_method="majority_vote",
            reward_per_label=10,
        )
    )
    item = item_create_text(project=project, contributor=None, text="contested")
    users = [user_get_or_create_for_wallet(address=Account.create().address) for _ in range(3)]
    for user, label in zip(users, ["a", "a", "b"], strict=True):
        Annotation.objects.create(item=item, annotator=user, label=label, value={"label": label})
    Item.objects.filter(pk=item.pk).update(label_count=3)
    item_decide(item_id=item.pk)  # v1 "a", credited: the item has credits to lock
    reward_services.decision_credit(decision_id=Decision.objects.get(item=item, version=1).pk)
    assert LedgerEntry.objects.filter(item=item).count() == 2
    assert item_redecide(item_id=item.pk, label="b", confidence=0.99)  # v2, not credited yet
    decision = Decision.objects.get(item=item, version=2)

    locked, go = threading.Event(), threading.Event()
    current = reward_services.reward_policy_current

    def paused_policy(**kwargs: Any) -> Any:
        locked.set()  # the credit holds its locks here
        go.wait(timeout=30)
        return current(**kwargs)

    monkeypatch.setattr(reward_services, "reward_policy_current", paused_policy)
    results: dict[str, Any] = {}

    def run(name: str, action: Callable[[], Any]) -> None:
        try:
            results[name] = action()
        except Exception as exc:  # asserted on below
            results[name] = exc
        finally:
            connection.close()

    credit = threading.Thread(
        target=run,
        args=("credit", lambda: reward_services.decision_credit(decision_id=decision.pk)),
    )
    credit.start()
    assert locked.wait(timeout=30)
    redecide = threading.Thread(
        target=run,
        args=("redecide", lambda: item_redecide(item_id=item.pk, label="a", confidence=0.99)),
    )
    redecide.start()
    with connection.cursor() as cursor:  # until the re-decision waits for a lock
        for _ in range(300):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                break
            threading.Event().wait(0.05)
        else:
            pytest.fail("the re-decision never waited for the credit's locks")
    go.set()
    credit.join(timeout=60)
    redecide.join(timeout=60)
    assert not isinstance(results["credit"], Exception), results
    assert results == {"credit": results["credit"], "redecide": True}
    from rewards.models import DecisionCredit

    assert DecisionCredit.objects.filter(decision=decision).exists()
    item.refresh_from_db()
    assert (item.decided_label, item.decision_version) == ("a", 3)


def test_a_credit_written_while_its_epoch_closes_is_counted_by_the_close_or_lands_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A gold bonus being written (its transaction open, its epoch already picked) while the
    epoch closes: the close waits for it and counts it, or it lands in the next epoch. Before,
    the close read the epoch's credits without it, and it committed into the closed epoch,
    uncut and uncounted: the epoch paid over its budget."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone
    from eth_account import Account

    from accounts.services import user_get_or_create_for_wallet
    from rewards import services as reward_services
    from rewards.models import EpochClose, RewardPolicy

    project = Project.objects.create(
        name="Budget", data_kind="text", classes=["a", "b"], consensus_method="majority_vote"
    )
    RewardPolicy.objects.create(project=project, version=1, gold_bonus=10**18, epoch_budget=10**18)
    epoch = reward_services.reward_epoch(timezone.now())
    user = user_get_or_create_for_wallet(address=Account.create().address)
    # The epoch already has a credit (so it has something to close).
    LedgerEntry.objects.create(
        user=user,
        amount=10**18,
        reason="adjustment",
        source="manual:1",
        project=project,
        epoch=epoch,
    )
    gold = item_create_text(project=project, contributor=None, text="gold")
    Item.objects.filter(pk=gold.pk).update(gold_label="a")
    answer = Annotation.objects.create(item=gold, annotator=user, label="a", value={"label": "a"})

    paused, go = threading.Event(), threading.Event()
    current = reward_services.reward_policy_current

    def paused_policy(**kwargs: Any) -> Any:
        paused.set()  # the credit's transaction is open here, its locks taken
        go.wait(timeout=30)
        return current(**kwargs)

    monkeypatch.setattr(reward_services, "reward_policy_current", paused_policy)
    results: dict[str, Any] = {}

    def run(name: str, action: Callable[[], Any]) -> None:
        try:
            results[name] = action()
        except Exception as exc:  # asserted on below
            results[name] = exc
        finally:
            connection.close()

    later = timezone.now() + timedelta(hours=settings.REWARD_EPOCH_HOURS)
    credit = threading.Thread(
        target=run,
        args=("credit", lambda: reward_services.gold_answer_credit(annotation_id=answer.pk)),
    )
    credit.start()
    assert paused.wait(timeout=30)
    close = threading.Thread(
        target=run, args=("close", lambda: reward_services.ledger_close_epochs(now=later))
    )
    close.start()
    close.join(timeout=2)
    assert close.is_alive(), "the close ran while a credit of its epoch was being written"
    go.set()
    credit.join(timeout=60)
    close.join(timeout=60)
    assert results["credit"] is True, results
    assert not isinstance(results["close"], Exception), results
    [closed] = EpochClose.objects.filter(project=project)
    bonus = LedgerEntry.objects.get(reason="gold")
    in_epoch = LedgerEntry.objects.filter(project=project, epoch=closed.epoch).exclude(
        reason__in=["budget", "reversal"]
    )
    # Every credit of the closed epoch was counted, and the epoch spends its budget, no more.
    assert int(closed.spent) == sum(int(e.amount) for e in in_epoch)
    assert bonus.epoch == closed.epoch or bonus.epoch > closed.epoch
    assert sum(int(e.amount) for e in LedgerEntry.objects.filter(epoch=closed.epoch)) <= 10**18


def test_a_gold_change_while_an_answers_bonus_is_written_leaves_no_bonus_under_the_old_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A moderator corrects a gold answer while a right answer's bonus is being written: the
    change waits for the credit (which read the gold answer under the item's lock) and then
    its settling reverses the bonus; or the credit waits and sees the new gold answer. Before,
    the change committed and was settled while the credit was under way, and the credit then
    wrote a bonus under the old gold answer, which stood until the next sweep."""
    from eth_account import Account

    from accounts.services import user_get_or_create_for_wallet
    from labeling.services.items import item_gold_set
    from rewards import services as reward_services
    from rewards.models import RewardPolicy

    project = Project.objects.create(
        name="Gold race", data_kind="text", classes=["a", "b"], consensus_method="majority_vote"
    )
    RewardPolicy.objects.create(project=project, version=1, gold_bonus=10**18)
    gold = item_create_text(project=project, contributor=None, text="gold")
    Item.objects.filter(pk=gold.pk).update(gold_label="a")
    user, moderator = (
        user_get_or_create_for_wallet(address=Account.create().address) for _ in range(2)
    )
    answer = Annotation.objects.create(item=gold, annotator=user, label="a", value={"label": "a"})
    # The change's settling task runs in its thread right after its commit.
    monkeypatch.setattr(
        "labeling.services.items._gold_item_reversals_enqueue",
        lambda item_id: reward_services.gold_item_bonuses_settle(item_id=item_id),
    )
    paused, go = threading.Event(), threading.Event()
    epoch_open = reward_services._epoch_open

    def paused_epoch(*args: Any) -> int:
        if not go.is_set():
            paused.set()  # the credit has weighed its bonus, about to write it
            go.wait(timeout=30)
        return epoch_open(*args)

    monkeypatch.setattr(reward_services, "_epoch_open", paused_epoch)
    results: dict[str, Any] = {}

    def run(name: str, action: Callable[[], Any]) -> None:
        try:
            results[name] = action()
        except Exception as exc:  # asserted on below
            results[name] = exc
        finally:
            connection.close()

    credit = threading.Thread(
        target=run,
        args=("credit", lambda: reward_services.gold_answer_credit(annotation_id=answer.pk)),
    )
    credit.start()
    assert paused.wait(timeout=30)
    change = threading.Thread(
        target=run,
        args=(
            "change",
            lambda: item_gold_set(item=gold, label="b", moderator=moderator, reason="typo"),
        ),
    )
    change.start()
    with connection.cursor() as cursor:  # until the change is done, or waits for a lock
        for _ in range(100):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] or not change.is_alive():
                break
            threading.Event().wait(0.05)
    go.set()
    credit.join(timeout=60)
    change.join(timeout=60)
    assert not any(isinstance(result, Exception) for result in results.values()), results
    gold.refresh_from_db()
    assert gold.gold_label == "b"
    assert sum(int(e.amount) for e in LedgerEntry.objects.filter(user=user)) == 0
