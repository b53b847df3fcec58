"""Buyers on the real services: a purchase verified on a Hardhat node from a real ERC-20
Transfer; an export built by a Celery worker process on PostgreSQL via Redis and downloaded over
HTTP with Range; an import inserted with COPY on PostgreSQL by the worker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.utils import timezone
from eth_account import Account
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import api_key_issue
from labeling.models import Item, Project
from labeling.services import item_create_text
from market.models import DatasetExport, DatasetGrant, DatasetPurchase, ItemImport
from market.services import import_request
from market.services.prices import dataset_price_set
from rewards.chain import ChainClient, rpc_client
from tests.conftest import give_grant
from tests.integration.conftest import Worker
from tests.market.test_grants import signature_of
from tests.support.hardhat import HARDHAT_KEY_0, HardhatNode

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stablecoin_node(hardhat: HardhatNode, settings: Any) -> Iterator[ChainClient]:
    """The platform's chain client on a Hardhat node, paying in a 6-decimal test ERC-20."""
    from rewards.client import chain_client, chain_client_reset

    deployer = rpc_client(hardhat.url, HARDHAT_KEY_0, None)
    asset = deployer.deploy_mock_stablecoin()
    deployer.mint_mock_stablecoin(asset, deployer.address, 10**12)
    distributor = deployer.deploy_distributor(asset, deployer.address)
    settings.PAYOUT_ASSET = "erc20"
    settings.PAYOUT_ASSET_SYMBOL = "tUSD"
    settings.PAYOUT_ASSET_DECIMALS = 6
    settings.CHAIN_RPC_URL = hardhat.url
    settings.CHAIN_PRIVATE_KEY = HARDHAT_KEY_0
    settings.CHAIN_DISTRIBUTOR_ADDRESS = distributor
    settings.DATASET_TREASURY_ADDRESS = Account.create().address
    chain_client_reset()
    yield chain_client()
    chain_client_reset()


def test_a_purchase_is_verified_on_a_json_rpc_node(
    stablecoin_node: ChainClient, settings: Any
) -> None:
    project = Project.objects.create(
        name="Sentiment", data_kind="text", classes=["positive", "negative"], price=7_000_000
    )
    buyer = User.objects.create_user("buyer", role=User.Role.BUYER)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(user=buyer, name='k')}")
    assert api.get(f"/api/v1/datasets/{project.pk}/records/").status_code == 403

    short = stablecoin_node.transfer_asset(settings.DATASET_TREASURY_ADDRESS, 6_999_999).tx_hash
    refused = api.post(
        f"/api/v1/datasets/{project.pk}/purchase",
        {"tx_hash": short, "signature": signature_of(project, buyer, short, key=HARDHAT_KEY_0)},
        format="json",
    )
    assert refused.status_code == 400 and "costs 7 tUSD" in refused.json()["detail"]

    paid = stablecoin_node.transfer_asset(settings.DATASET_TREASURY_ADDRESS, 7_000_000).tx_hash
    # Raised after the transfer (the node's block timestamp is read): the price paid still buys.
    dataset_price_set(project=project, price=9_000_000, by=None)
    unsigned = api.post(f"/api/v1/datasets/{project.pk}/purchase", {"tx_hash": paid}, format="json")
    assert unsigned.status_code == 400 and "Transaction: " in unsigned.json()["message"]
    # The buyer has no wallet on record: the wallet that paid signs the claim for them.
    signature = signature_of(project, buyer, paid, key=HARDHAT_KEY_0)
    bought = api.post(
        f"/api/v1/datasets/{project.pk}/purchase",
        {"tx_hash": paid, "signature": signature},
        format="json",
    )
    assert bought.status_code == 201, bought.json()
    assert stablecoin_node.balance_of(settings.DATASET_TREASURY_ADDRESS) == 13_999_999
    assert api.get(f"/api/v1/datasets/{project.pk}/records/").status_code == 200
    replay = api.post(f"/api/v1/datasets/{project.pk}/purchase", {"tx_hash": paid}, format="json")
    assert replay.status_code == 409
    purchase = DatasetPurchase.objects.get()
    assert purchase.payer == stablecoin_node.address and purchase.amount == 7_000_000
    assert purchase.price == 7_000_000
    assert DatasetGrant.objects.get().purchase == purchase


def wait_for(predicate: Any, what: str, worker: Worker, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; worker log:\n{worker.output()}")
        time.sleep(0.2)


def test_a_worker_builds_exports_and_runs_imports_on_postgresql(
    live_server: Any, celery_worker: Worker
) -> None:
    project = Project.objects.create(
        name="Sentiment", data_kind="text", classes=["positive", "negative"]
    )
    for n in range(30):
        item = item_create_text(project=project, contributor=None, text=f"review {n}")
        Item.objects.filter(pk=item.pk).update(
            status="accepted", decided_label="positive", decided_at=timezone.now(), confidence=0.99
        )
    buyer = User.objects.create_user("buyer", role=User.Role.BUYER)
    give_grant(project, buyer)
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {api_key_issue(user=buyer, name='k')}"
    base = live_server.url

    for fmt in ("parquet", "jsonl"):
        queued = http.post(
            f"{base}/api/v1/datasets/{project.pk}/exports/", json={"format": fmt}, timeout=10
        )
        assert queued.status_code == 202, queued.text
        export_id = queued.json()["id"]
        wait_for(
            lambda export_id=export_id: DatasetExport.objects.get(pk=export_id).status
            in ("done", "failed"),
            f"the {fmt} export",
            celery_worker,
        )
        done = http.get(f"{base}/api/v1/exports/{export_id}/", timeout=10).json()
        assert done["status"] == "done" and done["records"] == 30, done
        whole = http.get(done["download_url"], timeout=10)
        assert len(whole.content) == done["size_bytes"]
        part = http.get(done["download_url"], headers={"Range": "bytes=-8"}, timeout=10)
        assert part.status_code == 206 and part.content == whole.content[-8:]
        if fmt == "parquet":
            assert whole.content[-4:] == b"PAR1"  # the footer a reader fetches first
        else:
            assert json.loads(whole.content.splitlines()[0])["text"] == "review 0"

    moderator = User.objects.create_user("mod", role=User.Role.MODERATOR, is_staff=True)
    lines = b"".join(b'{"text": "imported %d"}\n' % n for n in range(12000)) + b'{"text": ""}\n'
    job = import_request(
        project=project,
        moderator=moderator,
        name="items.jsonl",
        data=lines,
        fmt="jsonl",
        answers="ignore",
    )
    wait_for(
        lambda: ItemImport.objects.get(pk=job.pk).status in ("done", "failed"),
        "the import",
        celery_worker,
    )
    job.refresh_from_db()
    assert (job.status, job.created, job.rejected, job.rows) == ("done", 12000, 1, 12001), job.error
    assert Item.objects.filter(project=project, text__startswith="imported").count() == 12000
    # The same file again: every row a duplicate, found through the hash indexes.
    again = import_request(
        project=project,
        moderator=moderator,
        name="items.jsonl",
        data=lines,
        fmt="jsonl",
        answers="ignore",
    )
    wait_for(
        lambda: ItemImport.objects.get(pk=again.pk).status in ("done", "failed"),
        "the second import",
        celery_worker,
    )
    again.refresh_from_db()
    assert (again.created, again.duplicates) == (0, 12000)
