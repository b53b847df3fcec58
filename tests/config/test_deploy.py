"""The production recipe of the README, run for real: ``collectstatic``, then Gunicorn with
``deploy/gunicorn.conf.py`` and ``CROWDMINT_ENV=production`` serving pages, static files and the
API from one process (no proxy, no separate static server)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.config.test_health import closed_port
from tests.config.test_settings import ROOT, manage, production_env

BIN = Path(sys.executable).parent
METRICS_TOKEN = "metrics-token-for-this-test-only"
LOGS: dict[str, Path] = {}  # the gunicorn log of each running server, by URL


@pytest.fixture(scope="module")
def production_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("deploy")
    port = closed_port()
    env = production_env(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0",
        CHAIN_RPC_URL=f"http://127.0.0.1:{closed_port()}",
        STATIC_ROOT=str(tmp / "static"),
        MEDIA_ROOT=str(tmp / "media"),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
        METRICS_TOKEN=METRICS_TOKEN,
        LOG_FORMAT="json",
    )
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
        done = manage(*command, env=env)
        assert done.returncode == 0, done.stderr
    log = tmp / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "config.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    LOGS[url] = log
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                # The first request loads Django; plain HTTP is answered with a redirect to HTTPS.
                requests.get(url, timeout=10, allow_redirects=False)
                break
            except requests.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start:\n{log.read_text()}")
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


HTTPS = {"X-Forwarded-Proto": "https"}  # what the TLS-terminating proxy in front sends


def test_plain_http_is_redirected_to_https(production_server: str) -> None:
    response = requests.get(f"{production_server}/", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"].startswith("https://")


def test_pages_link_hashed_static_files_that_the_app_server_serves(production_server: str) -> None:
    page = requests.get(f"{production_server}/login/", headers=HTTPS, timeout=10)
    assert page.status_code == 200
    assert "Strict-Transport-Security" in page.headers
    [script] = re.findall(r'src="(/static/crowdmint/app\.[0-9a-f]{12}\.js)"', page.text)
    served = requests.get(f"{production_server}{script}", headers=HTTPS, timeout=10)
    assert served.status_code == 200
    assert "signInWithWallet" in served.text
    assert "immutable" in served.headers["Cache-Control"]
    admin_css = requests.get(
        f"{production_server}/static/admin/css/base.css", headers=HTTPS, timeout=10
    )
    assert admin_css.status_code == 200


def test_the_api_answers_and_health_names_the_missing_backends(production_server: str) -> None:
    projects = requests.get(f"{production_server}/api/v1/projects/", headers=HTTPS, timeout=10)
    assert projects.status_code == 200 and projects.json() == []
    health = requests.get(f"{production_server}/api/v1/health", headers=HTTPS, timeout=30)
    assert health.status_code == 503
    assert health.json()["checks"] == {
        "database": "ok",
        "broker": "failing",
        "chain": "failing",
    }


def test_a_deeply_nested_body_gets_400_and_the_worker_lives_on(production_server: str) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    headers = {**HTTPS, "Content-Type": "application/json"}
    for _ in range(3):
        response = requests.post(
            f"{production_server}/api/v1/auth/siwe", data=deep, headers=headers, timeout=60
        )
        assert response.status_code == 400
    assert requests.get(f"{production_server}/api/v1/projects/", headers=HTTPS, timeout=10).ok
    log = LOGS[production_server].read_text()
    assert log.count("Booting worker") == 1, log  # the one worker never died and was replaced
    assert "SIGSEGV" not in log


def test_production_errors_under_the_api_are_json(production_server: str) -> None:
    response = requests.get(
        f"{production_server}/api/v1/items/-1/content", headers=HTTPS, timeout=10
    )
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert "Content-Security-Policy" in response.headers


def test_probes_answer_plain_http_and_liveness_ignores_failing_backends(
    production_server: str,
) -> None:
    # No X-Forwarded-Proto: a probe on the host talks to gunicorn directly.
    live = requests.get(f"{production_server}/api/v1/health/live", timeout=10)
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = requests.get(f"{production_server}/api/v1/health/ready", timeout=30)
    assert ready.status_code == 503
    assert ready.json()["checks"]["broker"] == "failing"


def test_metrics_add_up_the_workers_files_and_need_the_token(production_server: str) -> None:
    requests.get(f"{production_server}/api/v1/projects/", headers=HTTPS, timeout=10)
    assert requests.get(f"{production_server}/metrics", timeout=10).status_code == 403
    scrape = requests.get(
        f"{production_server}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=10,
    )
    assert scrape.status_code == 200
    assert "django_http_requests_total_by_method_total" in scrape.text
    assert 'crowdmint_payout_batches{state="confirmed"} 0.0' in scrape.text


def test_logs_are_json_lines_with_the_request_id_of_the_response(production_server: str) -> None:
    reply = requests.get(
        f"{production_server}/api/v1/projects/",
        headers={**HTTPS, "X-Request-ID": "deploy-test-42"},
        timeout=10,
    )
    assert reply.headers["X-Request-ID"] == "deploy-test-42"
    time.sleep(0.5)  # the access log line is written after the response
    lines = [
        line
        for line in LOGS[production_server].read_text().splitlines()
        if "deploy-test-42" in line
    ]
    assert lines, LOGS[production_server].read_text()[-2000:]
    entry = json.loads(lines[-1])
    assert entry["request_id"] == "deploy-test-42" and entry["status"] == 200


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "GUNICORN_THREADS",
            "abc",
            "GUNICORN_THREADS='abc': expected a whole number of at least 1",
        ),
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY='0': expected a whole number of at least 1"),
        ("GUNICORN_REUSE_PORT", "maybe", "GUNICORN_REUSE_PORT='maybe': expected one of 1, true"),
    ],
)
def test_a_malformed_gunicorn_variable_stops_it_naming_the_variable(
    name: str, value: str, expected: str
) -> None:
    """A bare ValueError from int(), or "maybe" read as on."""
    check = [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "--check-config"]
    result = subprocess.run(
        [*check, "config.wsgi"],
        cwd=ROOT,
        env={**os.environ, name: value},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr
