"""The cast and tools shared by the test-suite.

A readable cast of users: ``contributor``, ``second_contributor``, ``third_contributor``,
``buyer``, ``moderator``, and anonymous strangers. Contributors sign in through the real SIWE API
with real eth-account signatures.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from PIL import Image
from rest_framework.test import APIClient

from accounts import siwe
from accounts.models import User
from accounts.services import api_key_issue
from labeling.models import Project

pytest_plugins = ["tests.support.hardhat"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    """Under CI=true every optional tool is installed, so a skipped test is a failed one."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where nothing may be skipped: {report.longrepr}"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    """On PostgreSQL, let the test database's sessions TRUNCATE the append-only ledger: the
    suite empties every table between transactional tests. UPDATE and DELETE stay refused."""
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                name = connection.settings_dict["NAME"]
                cursor.execute(
                    f"ALTER DATABASE \"{name}\" SET crowdmint.allow_ledger_truncate = 'on'"
                )
            connection.close()  # sessions opened from now on have the setting


@dataclass
class Contributor:
    account: LocalAccount
    user: User
    token: str
    api: APIClient

    @property
    def address(self) -> str:
        return self.account.address


def siwe_text(account: LocalAccount, nonce: dict[str, object], **overrides: object) -> str:
    fields: dict[str, object] = {
        "domain": nonce["domain"],
        "address": account.address,
        "statement": "Sign in to Crowdmint.",
        "uri": f"http://{nonce['domain']}/",
        "version": "1",
        "chain_id": nonce["chain_id"],
        "nonce": nonce["nonce"],
        "issued_at": datetime.now(UTC).replace(microsecond=0),
    }
    fields.update(overrides)
    return siwe.SiweMessage(**fields).to_text()  # type: ignore[arg-type]


def sign(account: LocalAccount, text: str) -> str:
    return account.sign_message(encode_defunct(text=text)).signature.to_0x_hex()


def sign_in(api: APIClient, account: LocalAccount) -> dict[str, object]:
    nonce = api.get("/api/v1/auth/nonce").json()
    text = siwe_text(account, nonce)
    response = api.post(
        "/api/v1/auth/siwe", {"message": text, "signature": sign(account, text)}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def serve(item: object, *contributors: object) -> None:
    """Lease ``item`` to each contributor, as ``next-task`` would have served it to them."""
    from labeling.services import lease_grant

    for who in contributors:
        lease_grant(item=item, user=getattr(who, "user", who))  # type: ignore[arg-type]


_networks = iter(range(1, 1 << 20))


def distinct_network() -> str:
    """A client address on a network of its own: the suite's contributors are strangers, not a
    cluster of accounts from one network (which the Sybil check flags)."""
    n = next(_networks)
    return f"10.{n >> 8 & 255}.{n & 255}.1"


@pytest.fixture
def make_contributor(db: None) -> Callable[[], Contributor]:
    def make() -> Contributor:
        account = Account.create()
        body = sign_in(APIClient(REMOTE_ADDR=distinct_network()), account)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
        return Contributor(
            account, User.objects.get(wallet_address=account.address), str(body["token"]), api
        )

    return make


@pytest.fixture
def contributor(make_contributor: Callable[[], Contributor]) -> Contributor:
    return make_contributor()


@pytest.fixture
def second_contributor(make_contributor: Callable[[], Contributor]) -> Contributor:
    return make_contributor()


@pytest.fixture
def third_contributor(make_contributor: Callable[[], Contributor]) -> Contributor:
    return make_contributor()


@pytest.fixture
def buyer(db: None) -> User:
    return User.objects.create_user("buyer", role=User.Role.BUYER)


@pytest.fixture
def buyer_api(buyer: User) -> APIClient:
    """The buyer's API key: it lists every dataset, and reads those it holds a grant for."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(user=buyer, name='test')}")
    return api


def give_grant(project: Project, buyer: User) -> None:
    """A moderator's access grant for ``buyer`` to ``project``'s dataset (as admin gives it)."""
    from market.models import DatasetGrant

    DatasetGrant.objects.create(project=project, buyer=buyer, source="moderator")


@pytest.fixture
def moderator(db: None) -> User:
    user = User.objects.create_superuser(
        "moderator", "mod@example.org", "correct horse battery staple"
    )
    user.role = User.Role.MODERATOR
    user.save(update_fields=["role"])
    return user


def flat_rates(project: Project) -> Project:
    """Pay the project's rates as they are: a reward policy without posterior or skill weights
    (the tests of weighted pay set up their own)."""
    from rewards.models import RewardPolicy

    RewardPolicy.objects.create(
        project=project,
        version=1,
        per_label=project.reward_per_label,
        per_item=project.reward_per_item,
        weight_by_posterior=False,
        weight_by_skill=False,
    )
    return project


@pytest.fixture
def text_project(db: None) -> Project:
    return flat_rates(
        Project.objects.create(
            name="Sentiment",
            data_kind=Project.DataKind.TEXT,
            classes=["positive", "negative"],
            consensus_method="majority_vote",
            overlap=3,
            max_labels=5,
            reward_per_label=10,
            reward_per_item=25,
        )
    )


@pytest.fixture
def image_project(db: None) -> Project:
    return flat_rates(
        Project.objects.create(
            name="Colours",
            data_kind=Project.DataKind.IMAGE,
            classes=["red", "green", "blue"],
            consensus_method="majority_vote",
            overlap=3,
            reward_per_label=10,
            reward_per_item=25,
        )
    )


def image_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (32, 24), colour: tuple[int, int, int] = (200, 10, 10)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def gradient_bytes(width: int, height: int, fmt: str = "PNG") -> bytes:
    """An image unlike the others (a gradient whose direction depends on the size)."""
    image = Image.new("RGB", (width, height))
    image.putdata(
        [
            ((x * 255) // width, (y * 255) // height, (x * y) % 256)
            for y in range(height)
            for x in range(width)
        ]
        if width > height
        else [
            ((y * 255) // height, 255 - (x * 255) // width, 0)
            for y in range(height)
            for x in range(width)
        ]
    )
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    """Throttle counters live in the cache, the health report and the answer checks' debounce
    in the process: each test starts with none of them."""
    from django.core.cache import cache

    from config.health import health_cache_clear
    from moderation.services import _checks_queued

    cache.clear()
    health_cache_clear()
    _checks_queued.clear()


@pytest.fixture(autouse=True)
def no_probation(request: pytest.FixtureRequest) -> Iterator[None]:
    """New wallets start on probation (less weight, more gold, a payout cap): the suite's
    contributors are all new, so tests of other things turn it off; tests marked ``probation``
    keep the configured rules."""
    if request.node.get_closest_marker("probation"):
        yield
        return
    with override_settings(PROBATION_LABELS=0, PROBATION_DAYS=0):
        yield


@pytest.fixture(autouse=True)
def media_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "media"
    with override_settings(MEDIA_ROOT=str(root)):
        yield root


@pytest.fixture
def chain(settings: object) -> Iterator[object]:
    """A fresh in-process EVM with the reward token deployed, as the platform's chain client."""
    from rewards.client import chain_client, chain_client_reset

    chain_client_reset()
    yield chain_client()
    chain_client_reset()


@pytest.fixture(autouse=True)
def fresh_auth_cache() -> None:
    """Bearer-token lookups are cached per process; each test starts without them."""
    from accounts.authentication import auth_cache_clear

    auth_cache_clear()
