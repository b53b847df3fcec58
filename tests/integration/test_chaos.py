"""Exactly once under chaos: the payout process is killed at every named crash point, the node is
cut off mid-batch, and receipts fail after the transaction was mined — on real PostgreSQL and a
real Hardhat node. After each run's recovery, ``payouts_reconcile`` checks every invariant,
balances included.

Each run seeds fresh wallets with credits, runs ``manage.py settle_rewards`` in a separate
process with ``CROWDMINT_FAILPOINTS`` set (``rewards.failpoints``), then recovers with plain
``settle_rewards`` runs, as the next Celery beat tick would.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from eth_account import Account

from accounts.services import user_get_or_create_for_wallet
from labeling.models import Project
from rewards.chain import ChainClient, rpc_client
from rewards.failpoints import POINTS
from rewards.models import LedgerEntry, PayoutBatch
from rewards.reconcile import payouts_reconcile
from tests.integration.conftest import REPO_ROOT
from tests.integration.conftest import test_database_url as subprocess_database_url
from tests.support.hardhat import HARDHAT_KEY_0, HardhatNode
from tests.support.proxy import CuttableProxy

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

KILL_RUNS = 50
OUTAGE_RUNS = 6
RECEIPT_FAILURE_RUNS = 4
BATCH_SIZE = 4  # small batches: most runs settle several, so later batches are hit too


class Chaos:
    def __init__(self, node: HardhatNode, proxy: CuttableProxy, token: str, tmp: Path) -> None:
        self.proxy = proxy
        self.tmp = tmp
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CHAIN_", "REDIS_URL"))},
            "DATABASE_URL": subprocess_database_url(),
            "CHAIN_RPC_URL": proxy.url,
            "CHAIN_PRIVATE_KEY": HARDHAT_KEY_0,
            "CHAIN_TOKEN_ADDRESS": token,
            "PAYOUT_BATCH_MAX_RECIPIENTS": str(BATCH_SIZE),
            "PAYOUT_RECEIPT_TIMEOUT_SECONDS": "5",
            "CROWDMINT_FAILPOINT_DIR": str(tmp),
            # The seeded wallets stand for contributors with a record: probation's payout cap
            # would keep some credits waiting (tests/moderation tests the cap).
            "PROBATION_LABELS": "0",
            "PROBATION_DAYS": "0",
        }
        # The checks read the node directly: what the chain says, not what the proxy lets by.
        self.client = rpc_client(node.url, HARDHAT_KEY_0, token)
        self.project = Project.objects.create(name="Chaos", data_kind="text", classes=["a", "b"])

    def seed(self, rng: random.Random) -> int:
        wallets = [
            user_get_or_create_for_wallet(address=Account.create().address)
            for _ in range(rng.randint(1, 3 * BATCH_SIZE))
        ]
        entries = [
            LedgerEntry(
                user=user,
                amount=rng.randint(1, 10**20),
                reason=LedgerEntry.Reason.LABEL,
                source=f"annotation:chaos-{rng.random()}",
                project=self.project,
            )
            for user in wallets
            for _ in range(rng.randint(1, 3))
        ]
        LedgerEntry.objects.bulk_create(entries)
        return len(wallets)

    def settle(self, failpoints: str = "", *, wait: bool = True) -> subprocess.Popen[str]:
        env = {**self.env, **({"CROWDMINT_FAILPOINTS": failpoints} if failpoints else {})}
        process = subprocess.Popen(
            [sys.executable, "manage.py", "settle_rewards"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if wait:
            process.wait(timeout=180)
        return process

    def recover(self) -> None:
        """Plain settlement runs until nothing is left in flight (as Celery beat would)."""
        for _ in range(4):
            process = self.settle()
            output = process.stdout.read() if process.stdout else ""
            assert process.returncode == 0, output
            if not PayoutBatch.objects.filter(status__in=["prepared", "submitted"]).exists():
                return
        pytest.fail("settlement did not finish the batches in flight")

    def check(self, since: datetime) -> Any:
        """Every invariant over this run's batches (and the global ones), balances included."""
        return payouts_reconcile(client=self.client, check_balances=True, since=since)

    def wait_for(self, marker: Path, process: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"the payout process never reached {marker.name}:\n{output}")
            time.sleep(0.05)


@pytest.fixture
def chaos(hardhat: HardhatNode, token: ChainClient, tmp_path: Path) -> Any:
    proxy = CuttableProxy(int(hardhat.url.rsplit(":", 1)[1]))
    proxy.start()
    try:
        yield Chaos(hardhat, proxy, token.token_address or "", tmp_path)
    finally:
        proxy.cut()


def test_money_moves_exactly_once_whatever_fails(chaos: Chaos, capsys: Any) -> None:
    runs: list[tuple[str, Any]] = []
    outcomes: Counter[str] = Counter()

    for run in range(KILL_RUNS):
        rng = random.Random(run)
        started = timezone.now()
        chaos.seed(rng)
        point = POINTS[run % len(POINTS)]
        process = chaos.settle(f"{point}=kill@{rng.randint(1, 2)}")
        outcomes["killed" if process.returncode == -9 else "finished before the point"] += 1
        chaos.recover()
        runs.append((f"kill at {point}", chaos.check(started)))

    for run in range(OUTAGE_RUNS):
        rng = random.Random(1000 + run)
        started = timezone.now()
        chaos.seed(rng)
        # Before the broadcast (the node never got it) or after (mined, receipt unreadable).
        point = ("after_persist", "after_broadcast")[run % 2]
        process = chaos.settle(f"{point}=wait", wait=False)
        marker = chaos.tmp / f"{point}.reached"
        chaos.wait_for(marker, process)
        chaos.proxy.cut()
        (chaos.tmp / f"{point}.continue").touch()
        process.wait(timeout=180)
        outcomes["node cut off mid-batch"] += 1
        marker.unlink()
        (chaos.tmp / f"{point}.continue").unlink()
        chaos.proxy.start()
        chaos.recover()
        runs.append((f"node outage {point}", chaos.check(started)))

    for run in range(RECEIPT_FAILURE_RUNS):
        started = timezone.now()
        chaos.seed(random.Random(2000 + run))
        process = chaos.settle("before_receipt=raise")
        assert process.returncode != 0  # the receipt call failed after the tx was mined
        outcomes["receipt failed after mining"] += 1
        chaos.recover()
        runs.append(("receipt failure", chaos.check(started)))

    # And once over everything: every batch, every wallet, the whole supply.
    runs.append(
        ("everything, at the end", payouts_reconcile(client=chaos.client, check_balances=True))
    )

    passed: Counter[str] = Counter()
    for _, report in runs:
        for invariant in report.invariants:
            passed[invariant.name] += invariant.ok
    batches = PayoutBatch.objects.count()
    confirmed = PayoutBatch.objects.filter(status="confirmed").count()
    summary = [
        f"chaos: {len(runs)} runs ({KILL_RUNS} SIGKILLs over {len(POINTS)} crash points, "
        f"{OUTAGE_RUNS} node outages, {RECEIPT_FAILURE_RUNS} receipt failures): "
        + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())),
        f"chaos: {batches} batches ({confirmed} confirmed, {batches - confirmed} failed and "
        f"re-batched), {LedgerEntry.objects.count()} credits",
        *(f"chaos: invariant {name}: held in {passed[name]}/{len(runs)} runs" for name in passed),
    ]
    with capsys.disabled():
        sys.stdout.write("\n" + "\n".join(summary) + "\n")
    for label, report in runs:
        assert report.ok, (label, report.lines())
    assert outcomes["killed"] >= KILL_RUNS * 3 // 4  # most runs really died mid-settlement
    assert not LedgerEntry.objects.filter(allocation__isnull=True).exists()  # everything paid
