"""The ledger is append-only in the database, not only by convention (PostgreSQL).

Triggers refuse UPDATE, DELETE and TRUNCATE of ``rewards_ledgerentry`` whoever runs them: the
application, a moderator with a SQL console, a buggy migration. Corrections are new entries
(reversals). The README's production recipe also grants the application's role no UPDATE,
DELETE or TRUNCATE on the table.

The one escape is for throwaway databases (the test-suite empties its tables with TRUNCATE
between tests): a session that sets ``crowdmint.allow_ledger_truncate = on`` may TRUNCATE, never
UPDATE or DELETE a row. Nothing in the application sets it.
"""

from typing import Any

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

INSTALL = """
CREATE OR REPLACE FUNCTION crowdmint_ledger_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND coalesce(current_setting('crowdmint.allow_ledger_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the ledger is append-only: % of rewards_ledgerentry refused', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'Corrections are new ledger entries (reversals).';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER rewards_ledgerentry_append_only_rows
    BEFORE UPDATE OR DELETE ON rewards_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION crowdmint_ledger_append_only();

CREATE TRIGGER rewards_ledgerentry_append_only_truncate
    BEFORE TRUNCATE ON rewards_ledgerentry
    FOR EACH STATEMENT EXECUTE FUNCTION crowdmint_ledger_append_only();
"""

UNINSTALL = """
DROP TRIGGER IF EXISTS rewards_ledgerentry_append_only_rows ON rewards_ledgerentry;
DROP TRIGGER IF EXISTS rewards_ledgerentry_append_only_truncate ON rewards_ledgerentry;
DROP FUNCTION IF EXISTS crowdmint_ledger_append_only();
"""


def _run(schema_editor: BaseDatabaseSchemaEditor, sql: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    # No parameters: the function's text has % signs that are not placeholders.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(sql)


def install(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run(schema_editor, INSTALL)


def uninstall(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run(schema_editor, UNINSTALL)


class Migration(migrations.Migration):
    dependencies = [("rewards", "0004_payout_receipts")]

    operations = [migrations.RunPython(install, uninstall)]
