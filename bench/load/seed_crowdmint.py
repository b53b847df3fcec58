"""Seed Crowdmint (the `make stack` database) for one load run; prints JSON.

    seed_crowdmint.py SHAPE CLIENTS ITEMS_PER_CLIENT

A fresh text project (majority vote, overlap 3, rewards on, so an accepted item writes ledger
credits), an uploader, and per client one labeler (SHAPE ``one``) or three (``three``), each
with a sign-in token. Items are inserted in one statement (generate_series); each client gets
its own range of ids. Run with the stack's settings (``source var/stack/env``).
"""

from __future__ import annotations

import json
import secrets
import sys

import django

django.setup()

from datetime import timedelta  # noqa: E402

from django.db import connection, transaction  # noqa: E402

from accounts.models import AccessToken, User  # noqa: E402
from accounts.services import access_token_issue  # noqa: E402
from labeling.models import Assignment, Item, Project  # noqa: E402


def main(shape: str, clients: int, per_client: int) -> None:
    labelers_per_client = 3 if shape == "three" else 1
    tag = secrets.token_hex(4)
    with transaction.atomic():
        project = Project.objects.create(
            name=f"load {shape} {clients} {tag}",
            data_kind=Project.DataKind.TEXT,
            classes=["positive", "negative"],
            consensus_method="majority_vote",
            overlap=3,
            max_labels=5,
            reward_per_label=10**18,
            reward_per_item=2 * 10**18,
            # The load accounts answer like bots (one class, hundreds of times a minute), and
            # the fraud checks flag them as they should; under the default "hold" policy their
            # answers would then leave consensus, and the decisions measured would be the fraud
            # queue's. Here flagged answers still count (only their rewards are held).
            fraud_policy=Project.FraudPolicy.COUNT,
        )
        uploader = User.objects.create(username=f"uploader-{tag}", wallet_address=_wallet())
        tokens: list[list[str]] = []
        labelers: list[list[int]] = []
        for c in range(clients):
            mine, ids = [], []
            for k in range(labelers_per_client):
                user = User.objects.create(username=f"l-{tag}-{c}-{k}", wallet_address=_wallet())
                secret, _ = access_token_issue(
                    user=user, kind=AccessToken.Kind.SESSION, ttl=timedelta(days=1)
                )
                mine.append(secret)
                ids.append(user.pk)
            tokens.append(mine)
            labelers.append(ids)
        total = clients * per_client
        given = {"project_id", "contributor_id", "text", "size_bytes", "content_sha256"}
        given |= {"status", "label_count", "required_labels", "created_at"}
        # Every other NOT NULL column at its model default (the model grows columns).
        rest = [
            (field.column, field.get_db_prep_save(field.get_default(), connection))
            for field in Item._meta.concrete_fields
            if not field.null and not field.primary_key and field.column not in given
        ]
        columns = ", ".join(column for column, _ in rest)
        marks = ", ".join("%s" for _ in rest)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {Item._meta.db_table}
                  (project_id, contributor_id, text, size_bytes, content_sha256, status,
                   label_count, required_labels, created_at, {columns})
                SELECT %s, %s, 'load text ' || g, 12, md5(%s || g) || md5(g || %s),
                       'open', 0, 3, now(), {marks}
                FROM generate_series(1, %s) AS g
                RETURNING id
                """,
                [project.pk, uploader.pk, tag, tag, *[value for _, value in rest], total],
            )
            ids = sorted(row[0] for row in cursor.fetchall())
            ranges = [ids[c * per_client : (c + 1) * per_client] for c in range(clients)]
            # Each client's labelers hold a lease on each of its items, as next-task would have
            # given them (only the holder may answer): the run measures the submit itself.
            for c, items in enumerate(ranges):
                cursor.execute(
                    f"""
                    INSERT INTO {Assignment._meta.db_table} (item_id, user_id, served_at, expires_at)
                    SELECT i, u, now() - interval '1 minute', now() + interval '1 day'
                    FROM unnest(%s::bigint[]) AS i CROSS JOIN unnest(%s::bigint[]) AS u
                    """,
                    [items, labelers[c]],
                )
            # Statistics for the bulk load, as PostgreSQL's docs advise: until autovacuum gets to
            # them, the planner would take these tables for as small as they were before.
            cursor.execute(f"ANALYZE {Item._meta.db_table}, {Assignment._meta.db_table}")
    print(
        json.dumps(
            {
                "project": project.pk,
                "tokens": tokens,
                "labelers": labelers,
                "items": [[r[0], r[-1]] for r in ranges],
                "contiguous": all(r[-1] - r[0] + 1 == len(r) for r in ranges),
            }
        )
    )


def _wallet() -> str:
    return "0x" + secrets.token_hex(20)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
