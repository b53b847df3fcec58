"""Count the SQL statements one request runs, in-process, with the server's own settings.

    sqlprobe.py METHOD WARM_PATH PATH AUTHORIZATION BODY_JSON

Runs the request through Django's full stack (middleware, authentication, throttling, view)
with ``django.test.Client`` and counts every statement sent to the database
(``connection.execute_wrapper``; BEGIN/COMMIT are not statements here, savepoints are). Works
for any Django project: run it with that project's interpreter and settings (the load benchmark
does it for Crowdmint and for Label Studio). Prints JSON {"status", "statements", "sql"}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402


def main(method: str, warm_path: str, path: str, authorization: str, body: str) -> None:
    statements: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql.split()[0].upper() + " " + sql[:160])
        return execute(sql, params, many, context)

    client = Client(HTTP_HOST="127.0.0.1")
    # One request first, not counted: a process's first request fills caches later ones reuse.
    client.generic(
        method, warm_path, body, content_type="application/json", HTTP_AUTHORIZATION=authorization
    )
    with connection.execute_wrapper(count):
        response = client.generic(
            method,
            path,
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=authorization,
        )
    print(
        json.dumps(
            {"status": response.status_code, "statements": len(statements), "sql": statements}
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:6])
