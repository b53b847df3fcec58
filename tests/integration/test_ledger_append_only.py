"""On PostgreSQL the ledger refuses UPDATE, DELETE and TRUNCATE, from the ORM or raw SQL."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from eth_account import Account

from accounts.services import user_get_or_create_for_wallet
from rewards.models import LedgerEntry

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def entry() -> LedgerEntry:
    user = user_get_or_create_for_wallet(address=Account.create().address)
    return LedgerEntry.objects.create(
        user=user, amount=10, reason=LedgerEntry.Reason.LABEL, source="annotation:1"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE rewards_ledgerentry SET amount = 1000000 WHERE id = %s",
        "DELETE FROM rewards_ledgerentry WHERE id = %s",
    ],
)
def test_raw_sql_cannot_change_or_remove_an_entry(entry: LedgerEntry, sql: str) -> None:
    with (
        pytest.raises(IntegrityError, match="the ledger is append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [entry.pk])
    entry.refresh_from_db()
    assert entry.amount == 10


def test_the_orm_cannot_update_or_delete_an_entry(entry: LedgerEntry) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=7)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    assert LedgerEntry.objects.get(pk=entry.pk).amount == 10


@pytest.mark.django_db(transaction=True)  # the entry committed: TRUNCATE needs no pending FK checks
def test_truncate_is_refused_unless_the_session_opts_in(entry: LedgerEntry) -> None:
    with (
        pytest.raises(IntegrityError, match="TRUNCATE"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL crowdmint.allow_ledger_truncate = 'off'")
        cursor.execute("TRUNCATE rewards_ledgerentry CASCADE")
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_new_entries_are_still_appended(entry: LedgerEntry) -> None:
    LedgerEntry.objects.create(
        user=entry.user, amount=-10, reason=LedgerEntry.Reason.REVERSAL, source="reversal:1"
    )
    assert LedgerEntry.objects.filter(user=entry.user).count() == 2
    assert connection.vendor == "postgresql"
