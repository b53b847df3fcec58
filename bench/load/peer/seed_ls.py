"""Seed Label Studio for the load benchmark: a user with a legacy API token, a text
classification project, and TASKS tasks. Run in Label Studio's venv with its settings
(bench/load/peer/start.sh does); prints JSON: {"token", "project", "tasks": [first, last]}."""

from __future__ import annotations

import json
import sys

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from organizations.functions import create_organization  # noqa: E402
from projects.models import Project  # noqa: E402
from tasks.models import Task  # noqa: E402
from users.models import User  # noqa: E402

CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="label" toName="text"><Choice value="positive"/><Choice value="negative"/>'
    "</Choices></View>"
)


def main(n_tasks: int) -> None:
    user = User.objects.create_user(email="bench@example.org", password="bench-only-password")
    org = create_organization(title="bench", created_by=user, legacy_api_tokens_enabled=True)
    user.active_organization = org
    user.save(update_fields=["active_organization"])
    project = Project.objects.create(
        title="load", label_config=CONFIG, created_by=user, organization=org
    )
    with transaction.atomic():
        tasks = Task.objects.bulk_create(
            [Task(project=project, data={"text": f"text {i}"}) for i in range(n_tasks)],
            batch_size=5000,
        )
    # Statistics for the bulk load, as PostgreSQL's docs advise (and as Crowdmint's seed does).
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Task._meta.db_table}")
    ids = sorted(t.id for t in tasks)
    print(
        json.dumps(
            {"token": user.auth_token.key, "project": project.id, "tasks": [ids[0], ids[-1]]}
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
