"""Real services for the integration tests (run by ``make integration``, and by ``make test``
under CI=true): PostgreSQL, Redis, Celery worker processes, a Hardhat JSON-RPC node, Chromium.

A missing service fails the run; nothing here is skipped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

from rewards.chain import ChainClient, rpc_client
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, CSP_LISTENER
from tests.support.hardhat import HARDHAT_KEY_0, HardhatNode

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def real_services_only() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("integration tests need DATABASE_URL=postgres://... (make integration sets it)")
    if not settings.REDIS_URL or settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.fail("integration tests need REDIS_URL=redis://... and real Celery workers")
    try:
        redis.Redis.from_url(settings.REDIS_URL).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis at {settings.REDIS_URL} is not reachable: {exc}")


@pytest.fixture
def token(hardhat: HardhatNode) -> ChainClient:
    client = rpc_client(hardhat.url, HARDHAT_KEY_0, None)
    client.deploy_token()
    return client


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def test_database_url() -> str:
    """The URL of the test database pytest-django created, for processes started by a test."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def celery_worker(hardhat: HardhatNode, token: ChainClient, tmp_path: Path) -> Iterator[Worker]:
    """A real ``celery -A config worker`` process (prefork, two children) on the test database,
    serving the default queue and the payouts queue."""
    from config.celery import app

    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # no stale tasks from an earlier run
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CHAIN_RPC_URL": hardhat.url,
        "CHAIN_PRIVATE_KEY": HARDHAT_KEY_0,
        "CHAIN_TOKEN_ADDRESS": token.token_address or "",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel=INFO",
                "--concurrency=2",
                "--queues=celery,decisions,payouts,moderation",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(process, log)
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=1.0):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not start:\n{worker.output()}")
        yield worker
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def page() -> Iterator[Any]:
    """A fresh headless Chromium page, its CSP violations and console messages recorded."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test itself
    # are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context()
        context.add_init_script(CSP_LISTENER)
        new_page = context.new_page()
        console: list[str] = []
        new_page.on("console", lambda message: console.append(message.text))
        new_page.console_messages = console  # type: ignore[attr-defined]
        yield new_page
        context.close()
        browser.close()
