"""Moderation on the real services: labels over HTTP, the decision and then the ban's recheck run
by a Celery worker process (queues `celery` and `moderation`) on PostgreSQL via Redis."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Sum
from django.test import Client
from eth_account import Account

from accounts.models import User
from labeling.models import Item, Project
from labeling.services import item_create_text
from moderation.models import Flag
from moderation.services import flag_confirm
from rewards.models import LedgerEntry
from tests.conftest import flat_rates
from tests.integration.conftest import Worker
from tests.integration.test_whole_loop import Session, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_ban_confirmed_on_a_flag_re_decides_the_item_in_a_worker_with_reversals(
    live_server: Any, celery_worker: Worker
) -> None:
    project = flat_rates(
        Project.objects.create(
            name="Sentiment",
            data_kind="text",
            consensus_method="majority_vote",
            classes=["positive", "negative"],
            overlap=3,
            reward_per_label=10**18,
        )
    )
    item = item_create_text(project=project, contributor=None, text="Works perfectly.")
    crowd = [Session(live_server.url, Account.create()) for _ in range(3)]
    for session in crowd:
        assert session.get(f"/api/v1/projects/{project.pk}/next-task/").json()["id"] == item.pk
        reply = session.post(f"/api/v1/items/{item.pk}/annotations/", json={"label": "positive"})
        assert reply.status_code == 201, reply.text
    wait_for(
        lambda: Item.objects.get(pk=item.pk).status == Item.Status.ACCEPTED,
        "the crowd's decision",
        celery_worker,
    )
    cheat = User.objects.get(wallet_address=crowd[2].account.address)
    wait_for(
        lambda: LedgerEntry.objects.filter(user=cheat, item=item).exists(),
        "the decision's credits",
        celery_worker,
    )

    moderator = User.objects.create_superuser("moderator", "m@example.org", "pw")
    flag = Flag.objects.create(user=cheat, kind=Flag.Kind.SPAMMER, evidence={"check": "test"})
    flag_confirm(flag=flag, moderator=moderator, reason="sold the account", ban=True)

    wait_for(
        lambda: Item.objects.get(pk=item.pk).status == Item.Status.OPEN,
        "the recheck to reopen the item",
        celery_worker,
    )
    for wallet in (s.account.address for s in crowd):
        entries = LedgerEntry.objects.filter(user__wallet_address=wallet, item=item)
        assert entries.aggregate(net=Sum("amount"))["net"] == 0
        assert entries.filter(reason=LedgerEntry.Reason.REVERSAL).count() == 1
    assert "moderation.tasks.recheck_user" in celery_worker.output()

    # The flags API answers the moderator's session on PostgreSQL.
    browser = Client()
    browser.force_login(moderator)
    page = browser.get("/api/v1/moderation/flags/", {"state": "confirmed"})
    assert [row["wallet_address"] for row in page.json()["results"]] == [cheat.wallet_address]
