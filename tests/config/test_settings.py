"""Production settings: a missing secret or backend stops start-up; a complete environment passes
Django's deployment checks. Each case runs ``manage.py`` in a fresh process with its own env."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "CROWDMINT_ENV": "production",
    "DJANGO_SECRET_KEY": "a-production-secret-key-that-is-long-and-random-0123456789-abcdefghij",
    "DJANGO_ALLOWED_HOSTS": "crowdmint.example.org",
    "DATABASE_URL": "postgres://crowdmint@db.invalid:5432/crowdmint",
    "REDIS_URL": "redis://redis.invalid:6379/0",
    "CHAIN_RPC_URL": "http://node.invalid:8545",
    "CHAIN_PRIVATE_KEY": "0x" + "11" * 32,
}


def production_env(drop: str | None = None, **extra: str) -> dict[str, str]:
    """This process's environment without its Crowdmint settings, plus PRODUCTION (less
    ``drop``) and ``extra``."""
    ours = ("DJANGO_", "CHAIN_", "DATABASE_URL", "REDIS_URL")
    base = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    return {**base, **{k: v for k, v in PRODUCTION.items() if k != drop}, **extra}


def manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``manage.py`` in a fresh process (default environment: ``production_env()``)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=production_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_complete_production_environment_passes_the_deployment_checks() -> None:
    result = manage("check", "--deploy", "--fail-level", "ERROR")
    assert result.returncode == 0, result.stderr
    shown = manage(
        "shell",
        "-c",
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.DEMO_MODE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)",
    )
    assert shown.stdout.splitlines()[-1].split() == [
        "False",
        "False",
        "True",
        "3600",
        "True",
        "True",
    ]


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY must be set"),
        ("CHAIN_RPC_URL", "CHAIN_RPC_URL must be set"),
        ("CHAIN_PRIVATE_KEY", "CHAIN_PRIVATE_KEY (or CHAIN_PRIVATE_KEY_FILE) is required"),
    ],
)
def test_production_refuses_to_start_without_a_secret_or_backend(
    missing: str, message: str
) -> None:
    result = manage("check", env=production_env(drop=missing))
    assert result.returncode != 0
    assert message in result.stderr


def test_production_needs_redis() -> None:
    result = manage("check", env=production_env(drop="REDIS_URL"))
    assert result.returncode != 0
    assert "REDIS_URL must be set when CROWDMINT_ENV=production" in result.stderr


def test_production_on_sqlite_is_a_deployment_warning(tmp_path: Path) -> None:
    env = production_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = manage("check", "--deploy", env=env)
    assert "crowdmint.W001" in result.stderr and "DATABASE_URL is SQLite in production" in (
        result.stderr
    )
    assert "crowdmint.W001" not in manage("check", "--deploy").stderr


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("CROWDMINT_ENV", "Production", "expected one of development, production"),
        ("API_RATE", "lots", "expected requests per period"),
        ("ANON_RATE", "10/fortnight", "expected requests per period"),
        ("UNDO_SECONDS", "abc", "expected a whole number of at least 0"),
        ("NUM_PROXIES", "-1", "expected a whole number of at least 0"),
        ("SIWE_CHAIN_ID", "0", "expected a whole number of at least 1"),
        ("AUTH_CACHE_SECONDS", "nan", "expected a number from 0 to inf"),
        ("PROBATION_GOLD_ACCURACY", "1.5", "expected a number from 0 to 1"),
        ("PROBATION_PAYOUT_CAP", "abc", "expected whole units such as 10 or 2.5"),
        ("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8,banana", "expected comma-separated addresses"),
        ("DJANGO_DEBUG", "maybe", "expected one of 1, true, yes, on, 0, false, no, off"),
        ("LOG_LEVEL", "LOUD", "expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("LOG_FORMAT", "xml", "expected one of plain, json"),
        ("DJANGO_SECRET_KEY_FILE", "/nonexistent/secret", "can't read it"),
        # Zero passed, then broke later: every credit divided by the epoch, no batch was made.
        ("REWARD_EPOCH_HOURS", "0", "expected a whole number of at least 1"),
        ("PAYOUT_BATCH_MAX_RECIPIENTS", "0", "expected a whole number of at least 1"),
        ("DATASET_EXPORT_TIME_LIMIT_SECONDS", "30", "expected a whole number of at least 120"),
        ("API_JSON_MAX_DEPTH", "0", "expected a whole number of at least 8"),
        ("ACCESS_TOKEN_TTL_DAYS", "0", "expected a whole number of at least 1"),
        ("CHAIN_TOKEN_ADDRESS", "garbage", "expected an Ethereum address"),
        ("DATASET_TREASURY_ADDRESS", "0x123", "expected an Ethereum address"),
        ("DATABASE_URL", "garbage", "expected a database URL"),
        ("REDIS_URL", "http://cache:6379", "expected a URL starting redis://"),
        ("CHAIN_RPC_URL", "node:8545", "expected a URL starting http://"),
    ],
)
def test_a_malformed_setting_stops_start_up_naming_it(name: str, value: str, expected: str) -> None:
    """Not later, as a 500 on every API call (a rate) or a failed settlement (the cap)."""
    env = {k: v for k, v in production_env().items() if k != "CROWDMINT_ENV"}
    result = manage("check", env={**env, name: value})
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: ") and name in last
    assert expected in last


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "postgresx://crowdmint:hunter2@db:5432/crowdmint"),
        ("REDIS_URL", "http://:hunter2@cache:6379/0"),
        ("CHAIN_RPC_URL", "wss://mainnet.example/v3/hunter2"),
    ],
)
def test_a_malformed_url_setting_never_echoes_its_password(name: str, value: str) -> None:
    env = {k: v for k, v in production_env().items() if k != "CROWDMINT_ENV"}
    result = manage("check", env={**env, name: value})
    assert result.returncode != 0
    assert name in result.stderr and "hunter2" not in result.stderr


def test_media_on_s3_needs_django_storages_and_says_so() -> None:
    import importlib.util

    result = manage("check", env=production_env(MEDIA_S3_BUCKET="crowdmint-media"))
    if importlib.util.find_spec("storages") is None:
        assert result.returncode != 0
        assert "django-storages[s3]" in result.stderr
    else:
        assert result.returncode == 0, result.stderr


def test_media_on_s3_is_the_default_storage_when_configured(tmp_path: Path) -> None:
    """With django-storages installed (not a requirement), the settings select S3 storage."""
    import importlib.util

    if importlib.util.find_spec("storages") is None or importlib.util.find_spec("boto3") is None:
        # Nothing to check without the optional package: the test above covers that case.
        return
    shown = manage(
        "shell",
        "-c",
        "from django.core.files.storage import storages; s = storages['default']; "
        "print(type(s).__name__, s.bucket_name, s.endpoint_url)",
        env=production_env(
            MEDIA_S3_BUCKET="crowdmint-media", MEDIA_S3_ENDPOINT_URL="http://127.0.0.1:9000"
        ),
    )
    assert shown.stdout.split()[-3:] == ["S3Storage", "crowdmint-media", "http://127.0.0.1:9000"]


@pytest.mark.parametrize("name", ["CONSENSUS_LABEL_WAIT_SECONDS", "UNDO_SECONDS", "PAYOUT_MINIMUM"])
def test_a_setting_whose_zero_turns_something_off_takes_zero(name: str) -> None:
    env = {k: v for k, v in production_env().items() if k != "CROWDMINT_ENV"}
    result = manage("check", env={**env, name: "0"})
    assert result.returncode == 0, result.stderr
