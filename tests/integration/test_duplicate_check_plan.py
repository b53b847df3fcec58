"""The duplicate checks of an upload use the hash indexes on PostgreSQL, whatever the planner's
statistics say about a fresh project (issue 12: uploads slowed from 320 to 133 items/s over a new
project's first 30k items, because the check scanned the project's index until ANALYZE ran)."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import Item, Project
from labeling.services.items import _near_duplicate, item_id_with_content

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def items(project: Project, count: int, prefix: str) -> list[Item]:
    return [
        Item(
            project=project,
            text=f"{prefix} {n}",
            content_sha256=f"{prefix}{n:060d}"[:64].ljust(64, "0"),
            near_hash=f"t{prefix}{n:059d}"[:65],
            required_labels=3,
        )
        for n in range(count)
    ]


def plan_of(sql: str) -> dict[str, object]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        return json.loads(json.dumps(cursor.fetchone()[0]))[0]["Plan"]  # type: ignore[index]


def nodes(plan: dict[str, object]) -> list[dict[str, object]]:
    found = [plan]
    for child in plan.get("Plans", []):  # type: ignore[attr-defined]
        found.extend(nodes(child))
    return found


def test_a_fresh_projects_duplicate_checks_use_the_hash_indexes_with_stale_statistics() -> None:
    old = Project.objects.create(name="old", data_kind="text", classes=["a", "b"])
    fresh = Project.objects.create(name="fresh", data_kind="text", classes=["a", "b"])
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE labeling_item SET (autovacuum_enabled = false)")
    Item.objects.bulk_create(items(old, 300, "a"))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE labeling_item")  # the statistics know only the old project
    Item.objects.bulk_create(items(fresh, 20000, "b"), batch_size=5000)

    with CaptureQueriesContext(connection) as queries:
        assert item_id_with_content(project_id=fresh.pk, sha256="f" * 64) is None
        assert _near_duplicate(fresh, "t" + "f" * 64) == (None, None)
    assert len(queries.captured_queries) == 2
    for query in queries.captured_queries:
        scans = [n for n in nodes(plan_of(query["sql"])) if "Scan" in str(n["Node Type"])]
        assert [n["Node Type"] for n in scans] == ["Index Scan"], (query["sql"], scans)
        assert "project" not in str(scans[0]["Index Name"]).replace("per_project", ""), scans
        assert scans[0].get("Rows Removed by Filter", 0) == 0
