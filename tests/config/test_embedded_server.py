"""The embedded default as ``make demo`` serves it: Django's threaded server on a SQLite file.

Real concurrent HTTP requests against a server process: a deferred SQLite transaction that reads
and then writes used to fail at once with "database is locked" (a 500) whatever the timeout, and a
deeply nested JSON body used to kill the process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.config.test_health import closed_port
from tests.config.test_settings import ROOT

SEED = """
import json
from accounts.models import User
from accounts.services import access_token_issue
from labeling.models import Project
from labeling.services import item_create_text
project = Project.objects.create(
    name="Race", data_kind="text", classes=["a", "b"], consensus_method="majority_vote",
    overlap=3, max_labels=5, reward_per_label=10,
)
tokens = []
for i in range(20):
    user = User.objects.create(
        username=f"c{i}", wallet_address="0x" + f"{i + 1:040x}", role="contributor"
    )
    tokens.append(access_token_issue(user=user, kind="session")[0])
one = item_create_text(project=project, contributor=None, text="one contributor, twenty tries")
many = item_create_text(project=project, contributor=None, text="twenty contributors at once")
from labeling.services import lease_grant
for user in User.objects.filter(username__startswith="c"):
    lease_grant(item=one, user=user)
    lease_grant(item=many, user=user)
print(json.dumps({"tokens": tokens, "one": one.pk, "many": many.pk}))
"""


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    seed: dict[str, Any]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def embedded_env(tmp: Path) -> dict[str, str]:
    ours = ("DJANGO_", "CHAIN_", "DATABASE_URL", "REDIS_URL", "CROWDMINT_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    return {
        **base,
        "DATABASE_URL": f"sqlite:///{tmp / 'demo.sqlite3'}",
        "MEDIA_ROOT": str(tmp / "media"),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("embedded")
    env = embedded_env(tmp)
    manage = [sys.executable, "manage.py"]
    migrated = subprocess.run(
        [*manage, "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    seeded = subprocess.run(
        [*manage, "shell", "-c", SEED], cwd=ROOT, env=env, capture_output=True, timeout=120
    )
    assert seeded.returncode == 0, seeded.stderr
    seed = json.loads(seeded.stdout.decode().strip().splitlines()[-1])
    port = closed_port()
    log = tmp / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    running = Server(url, process, log, seed)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{url}/api/v1/health", timeout=10)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the server did not start:\n{running.output()}")
                time.sleep(0.2)
        yield running
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def at_once(n: int, action: Callable[[int], int]) -> list[int]:
    barrier = threading.Barrier(n)
    results = [0] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = action(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def label(server: Server, token: str, item: int) -> int:
    response = requests.post(
        f"{server.url}/api/v1/items/{item}/annotations/",
        json={"label": "a"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    return response.status_code


def test_twenty_identical_labels_at_once_make_one_201_and_nineteen_409(server: Server) -> None:
    token = server.seed["tokens"][0]
    codes = at_once(20, lambda i: label(server, token, server.seed["one"]))
    assert Counter(codes) == {201: 1, 409: 19}, server.output()[-3000:]
    assert "database is locked" not in server.output()


def test_twenty_contributors_labeling_one_item_at_once_never_get_a_500(server: Server) -> None:
    tokens = server.seed["tokens"]
    codes = at_once(20, lambda i: label(server, tokens[i], server.seed["many"]))
    # Three labels decide the item (majority vote, overlap 3): every request is either taken or
    # told the item is decided; none fails.
    assert set(codes) <= {201, 409}, server.output()[-3000:]
    assert codes.count(201) >= 3
    assert "database is locked" not in server.output()


def test_a_body_nested_200000_levels_deep_gets_400_and_the_server_lives_on(
    server: Server,
) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    for _ in range(3):
        response = requests.post(
            f"{server.url}/api/v1/auth/siwe",
            data=deep,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        assert response.status_code == 400
        assert "nested" in response.json()["detail"]
    assert server.process.poll() is None
    assert requests.get(f"{server.url}/api/v1/health", timeout=10).status_code == 200
