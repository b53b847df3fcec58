"""Scaling out: two Celery worker processes on separate queues (decisions on ``celery``, payouts
on ``payouts``), each needing only the database, the broker and the chain node. One is killed
with SIGKILL in the middle of a task; the decision and the payout still happen exactly once.

- The decisions worker's pool process is killed while it decides (held on the item's row lock):
  the worker puts the message back at once (``task_reject_on_worker_lost``) and a new pool
  process decides the item. The request id of the label that completed the item is in the
  worker's JSON log lines.
- The whole payouts worker is killed (main process and pool) after broadcasting a batch, before
  its receipt (the node mines nothing meanwhile): its unacknowledged message returns to the queue
  after the visibility timeout, a new payouts worker finishes the batch from the chain's state,
  and the chain shows one mint per wallet that equals the ledger.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import redis
import requests
from django.conf import settings
from eth_account import Account

from accounts.models import User
from labeling.models import Item, Project
from labeling.services import item_create_text
from rewards.chain import ChainClient
from rewards.models import LedgerEntry, PayoutBatch
from rewards.selectors import reward_summary_for_user
from tests.conftest import flat_rates
from tests.integration import conftest as integration
from tests.integration.test_whole_loop import Session
from tests.support.hardhat import HARDHAT_KEY_0, HardhatNode

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

VISIBILITY_TIMEOUT_S = 4


class WorkerProcess:
    """``celery -A config worker -Q <queue>`` in its own process group, logging JSON lines."""

    def __init__(self, queue: str, env: dict[str, str], log: Path) -> None:
        self.queue, self.log = queue, log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue]
                + ["-n", f"{queue}-{time.monotonic_ns()}@%h", "--concurrency=1"]
                + ["--loglevel=INFO", "--without-heartbeat", "--without-gossip"]
                + ["--without-mingle"],
                cwd=integration.REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def pool_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def kill(self) -> None:
        """SIGKILL the whole worker: main process and pool."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_for(
    predicate: Callable[[], object], what: str, logs: str = "", timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.1)


def rpc(node: HardhatNode, method: str, *params: object) -> Any:
    reply = requests.post(
        node.url,
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
        timeout=10,
    )
    return reply.json()["result"]


@pytest.fixture
def workers(
    hardhat: HardhatNode, token: ChainClient, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": integration.test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CHAIN_RPC_URL": hardhat.url,
        "CHAIN_PRIVATE_KEY": HARDHAT_KEY_0,
        "CHAIN_TOKEN_ADDRESS": token.token_address or "",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LOG_FORMAT": "json",
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S),
    }
    started: list[WorkerProcess] = []

    def start(queue: str) -> WorkerProcess:
        from config.celery import app

        worker = WorkerProcess(queue, env, tmp_path / f"worker-{queue}.log")
        started.append(worker)
        deadline = time.monotonic() + 60
        while not any(
            worker.queue in name for reply in app.control.ping(timeout=1.0) for name in reply
        ):
            if worker.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the {queue} worker did not start:\n{worker.output()}")
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


def locked_item(item_id: int) -> Any:
    """Another session holding the item's row lock (as a slow concurrent transaction would)."""
    connection = psycopg2.connect(integration.test_database_url())
    connection.autocommit = False
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM labeling_item WHERE id = %s FOR UPDATE", [item_id])
    return connection


def waiting_on_a_lock() -> bool:
    connection = psycopg2.connect(integration.test_database_url())
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            return bool(cursor.fetchone()[0])
    finally:
        connection.close()  # psycopg2's `with connection` ends a transaction, not the connection


def test_a_worker_killed_mid_task_still_decides_and_pays_exactly_once(
    live_server: Any,
    hardhat: HardhatNode,
    token: ChainClient,
    workers: Callable[[str], WorkerProcess],
) -> None:
    payouts = workers("payouts")
    project = flat_rates(
        Project.objects.create(
            name="Sentiment",
            data_kind="text",
            consensus_method="majority_vote",
            classes=["positive", "negative"],
            overlap=3,
            reward_per_label=10**18,
            reward_per_item=3 * 10**18,
        )
    )
    uploader = User.objects.create(username="uploader", wallet_address=Account.create().address)
    item = item_create_text(project=project, contributor=uploader, text="Works perfectly.")
    crowd = [Session(live_server.url, Account.create()) for _ in range(3)]
    for i, session in enumerate(crowd):
        assert session.get(f"/api/v1/projects/{project.pk}/next-task/").json()["id"] == item.pk
        reply = session.post(
            f"/api/v1/items/{item.pk}/annotations/",
            json={"label": "positive"},
            headers={"X-Request-ID": f"scale-out-label-{i}"},
        )
        assert reply.status_code == 201, reply.text
    # The decision waits in the queue; no worker serves it yet.
    assert redis.Redis.from_url(settings.REDIS_URL).llen("decisions") == 1

    # Decisions: the pool process is killed while it decides (held on the item's row lock).
    lock = locked_item(item.pk)
    decisions = workers("decisions")
    wait_for(waiting_on_a_lock, "the decision to start and wait on the lock", decisions.output())
    [pool_process] = decisions.pool_pids()
    os.kill(pool_process, signal.SIGKILL)
    lock.rollback()
    lock.close()
    wait_for(
        lambda: Item.objects.get(pk=item.pk).status == Item.Status.ACCEPTED,
        "the redelivered decision",
        decisions.output(),
    )
    assert pool_process not in decisions.pool_pids()  # a new pool process decided it
    item.refresh_from_db()
    assert item.decision_version == 1 and item.decided_label == "positive"
    credits = LedgerEntry.objects.filter(item=item)
    # The decision's credit is its own task (rewards.tasks.credit_decisions), after the decision.
    wait_for(lambda: credits.count() == 4, "the decision's credits", decisions.output())
    assert sorted(credits.values_list("reason", flat=True)) == ["contribution"] + ["label"] * 3
    log = [
        json.loads(line) for line in decisions.log.read_text().splitlines() if line.startswith("{")
    ]
    decided = [e for e in log if e.get("task_name") == "labeling.tasks.decide_due"]
    assert {e["request_id"] for e in decided} == {"scale-out-label-2"}, decisions.output()
    assert "WorkerLostError" in decisions.log.read_text() or "signal 9" in decisions.log.read_text()

    # Payouts: the whole payouts worker dies after broadcasting, before the batch is mined.
    rpc(hardhat, "evm_setAutomine", False)
    from rewards.tasks import settle_rewards

    settle_rewards.delay()
    wait_for(
        lambda: PayoutBatch.objects.filter(status=PayoutBatch.Status.SUBMITTED).exists(),
        "the payout batch to be broadcast",
        payouts.output(),
    )
    payouts.kill()
    rpc(hardhat, "evm_mine")
    rpc(hardhat, "evm_setAutomine", True)
    time.sleep(VISIBILITY_TIMEOUT_S)
    successor = workers("payouts")
    wait_for(
        lambda: PayoutBatch.objects.filter(status=PayoutBatch.Status.CONFIRMED).exists(),
        "the redelivered settlement to confirm the batch",
        successor.output(),
        timeout=90,
    )
    batch = PayoutBatch.objects.get()
    assert batch.status == PayoutBatch.Status.CONFIRMED
    assert len(token.batch_events()) == 1
    assert token.token_info().total_supply == int(batch.total) == 6 * 10**18
    for user in User.objects.exclude(wallet_address=None):
        summary = reward_summary_for_user(user=user)
        assert summary.pending == 0
        assert token.balance_of(user.wallet_address) == int(summary.paid), user
    # Settling again pays nothing more.
    assert settle_rewards.delay().get(timeout=60)["confirmed"] == []
    assert PayoutBatch.objects.count() == 1
