"""The whole loop over HTTP on real services: contribute, label, decide (a Celery worker process
on PostgreSQL via Redis), pay on a Hardhat node, and sell to a buyer. Then the chain is read and
must equal the ledger."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from django.core.management import call_command
from eth_account import Account
from eth_account.signers.local import LocalAccount
from PIL import Image

from accounts.models import User
from accounts.services import api_key_issue
from labeling.models import Item, Project
from rewards.chain import ChainClient
from rewards.models import PayoutBatch
from rewards.selectors import reward_summary_for_user
from tests.conftest import give_grant, sign, siwe_text
from tests.integration.conftest import Worker
from tests.support.hardhat import HARDHAT_KEY_0

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class Session:
    """A contributor's HTTP client, signed in with a real SIWE signature."""

    def __init__(self, base: str, account: LocalAccount) -> None:
        self.base, self.account, self.http = base, account, requests.Session()
        nonce = self.http.get(f"{base}/api/v1/auth/nonce", timeout=10).json()
        text = siwe_text(account, nonce, issued_at=datetime.now(UTC).replace(microsecond=0))
        reply = self.http.post(
            f"{base}/api/v1/auth/siwe",
            json={"message": text, "signature": sign(account, text)},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        self.http.headers["Authorization"] = f"Bearer {reply.json()['token']}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.base + path, timeout=10, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.http.post(self.base + path, timeout=10, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.http.delete(self.base + path, timeout=10, **kw)


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, format="PNG")
    return out.getvalue()


def wait_for(predicate: Any, what: str, worker: Worker, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; worker log:\n{worker.output()}")
        time.sleep(0.2)


def test_the_whole_loop_pays_on_chain_exactly_what_the_ledger_says(
    live_server: Any, celery_worker: Worker, hardhat: Any, token: ChainClient, settings: Any
) -> None:
    base = live_server.url
    text_project = Project.objects.create(
        name="Sentiment",
        data_kind="text",
        consensus_method="majority_vote",
        classes=["positive", "negative"],
        overlap=3,
        reward_per_label=10**18,
        reward_per_item=3 * 10**18,
    )
    image_project = Project.objects.create(
        name="Colours",
        data_kind="image",
        classes=["red", "green"],
        overlap=3,
        reward_per_label=2 * 10**18,
        reward_per_item=5 * 10**18,
    )
    uploader, *crowd = (Session(base, Account.create()) for _ in range(5))

    # Contribute: a text, an image, and refused uploads.
    text_item = uploader.post(
        f"/api/v1/projects/{text_project.pk}/items/",
        json={"text": "Works perfectly.", "licence_accepted": True},
    )
    assert text_item.status_code == 201, text_item.text
    image_item = uploader.post(
        f"/api/v1/projects/{image_project.pk}/items/",
        files={"file": ("r.png", png((250, 0, 0)))},
        data={"licence_accepted": "true"},
    )
    assert image_item.status_code == 201, image_item.text
    duplicate = crowd[0].post(
        f"/api/v1/projects/{image_project.pk}/items/",
        files={"file": ("again.png", png((250, 0, 0)))},
        data={"licence_accepted": "true"},
    )
    assert (
        duplicate.status_code == 409 and duplicate.json()["existing_id"] == image_item.json()["id"]
    )
    not_image = crowd[0].post(
        f"/api/v1/projects/{image_project.pk}/items/",
        files={"file": ("x.png", b"GIF89a nope")},
        data={"licence_accepted": "true"},
    )
    assert not_image.status_code == 400

    # Label: three contributors take each item; the worker process decides it (one dissent on text).
    votes = {
        text_project.pk: ["positive", "negative", "positive"],
        image_project.pk: ["red", "red", "red"],
    }
    for project_id, labels in votes.items():
        for session, value in zip(crowd, labels, strict=False):
            task = session.get(f"/api/v1/projects/{project_id}/next-task/")
            assert task.status_code == 200, task.text
            reply = session.post(
                f"/api/v1/items/{task.json()['id']}/annotations/", json={"label": value}
            )
            assert reply.status_code == 201, reply.text
            again = session.post(
                f"/api/v1/items/{task.json()['id']}/annotations/", json={"label": value}
            )
            assert again.status_code == 409
    unknown = crowd[3].post(
        f"/api/v1/items/{text_item.json()['id']}/annotations/", json={"label": "meh"}
    )
    assert unknown.status_code == 400 and "unknown class" in unknown.json()["detail"]

    wait_for(
        lambda: Item.objects.filter(status=Item.Status.ACCEPTED).count() == 2,
        "both items accepted",
        celery_worker,
    )
    assert Item.objects.get(pk=text_item.json()["id"]).decided_label == "positive"
    assert Item.objects.get(pk=image_item.json()["id"]).decided_label == "red"
    for project_id in votes:
        assert crowd[3].get(f"/api/v1/projects/{project_id}/next-task/").status_code == 204

    # Pay: the worker runs the settlement task against the Hardhat node.
    from rewards.tasks import settle_rewards

    result = settle_rewards.delay().get(timeout=180)
    assert len(result["confirmed"]) == 1, (result, celery_worker.output())
    batch = PayoutBatch.objects.get()
    assert batch.status == PayoutBatch.Status.CONFIRMED and batch.chain_id == 31337

    def chain_equals_ledger() -> None:
        for user in User.objects.exclude(wallet_address=None):
            summary = reward_summary_for_user(user=user)
            assert summary.pending == 0
            assert token.balance_of(user.wallet_address) == int(summary.paid), user

    chain_equals_ledger()
    assert token.balance_of(uploader.account.address) == 8 * 10**18
    assert token.token_info().total_supply == int(batch.total)

    # Settling again, here and in the worker, pays nothing more.
    settings.CHAIN_RPC_URL, settings.CHAIN_PRIVATE_KEY, settings.CHAIN_TOKEN_ADDRESS = (
        hardhat.url,
        HARDHAT_KEY_0,
        token.token_address,
    )
    from rewards.client import chain_client_reset

    chain_client_reset()
    try:
        # The health probe sees every real backend: PostgreSQL, Redis and the node with the token.
        health = requests.get(f"{base}/api/v1/health", timeout=30)
        assert health.status_code == 200, health.text
        assert health.json()["checks"] == {"database": "ok", "broker": "ok", "chain": "ok"}
        call_command("settle_rewards")
    finally:
        chain_client_reset()
    assert settle_rewards.delay().get(timeout=60) == {
        "confirmed": [],
        "pending": [],
        "failed": [],
        "awaiting_approval": [],
    }
    assert PayoutBatch.objects.count() == 1
    chain_equals_ledger()

    # Contributors see it; buyers buy it.
    mine = uploader.get("/api/v1/me/rewards/").json()
    assert mine["paid"] == str(8 * 10**18) and mine["payouts"][0]["tx_hash"] == batch.tx_hash
    buyer = User.objects.create_user("buyer", role=User.Role.BUYER)
    key = api_key_issue(user=buyer, name="integration")
    no_grant = requests.get(
        f"{base}/api/v1/datasets/{image_project.pk}/records/",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert no_grant.status_code == 403 and no_grant.json()["missing"] == "grant"
    give_grant(image_project, buyer)
    records = requests.get(
        f"{base}/api/v1/datasets/{image_project.pk}/records/",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    ).json()
    [record] = records["results"]
    assert record["label"] == "red" and record["agreement"] == 1.0
    image = requests.get(
        record["image_url"], headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert image.status_code == 200 and image.content == png((250, 0, 0))
