"""Deployment checks (``manage.py check --deploy``) for what the settings can't refuse outright."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


def sqlite_in_production(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Production on SQLite: it runs (the deployment test serves pages from it), but the
    ledger's append-only triggers, row locks and concurrent writers are PostgreSQL's."""
    if not settings.PRODUCTION or settings.DATABASES["default"]["ENGINE"] != (
        "django.db.backends.sqlite3"
    ):
        return []
    return [
        checks.Warning(
            "DATABASE_URL is SQLite in production",
            hint="Use PostgreSQL: the ledger's append-only triggers, row locks and concurrent "
            "writers (web, workers, beat) need it.",
            id="crowdmint.W001",
        )
    ]


def register_checks() -> None:
    checks.register(sqlite_in_production, checks.Tags.database, deploy=True)
