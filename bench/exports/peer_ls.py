"""The export/import benchmark's peer: Label Studio 1.23.2 doing the same two jobs, run in its own
venv (``bench/load/peer/install.sh``) with its own settings, through its own API views in-process
(``django.test.Client``: its middleware, serializers and views, without a socket).

    peer_ls.py import FILE   POST /api/projects/{id}/import with FILE's items (JSON Lines of
                             {"text": ...}) as one JSON list: Label Studio's bulk import
    peer_ls.py export N      N tasks with one completed annotation each, then
                             GET /api/projects/{id}/export?exportType=JSON, read to the end

Prints one JSON line as ``bench.py`` reads it: seconds (of the request alone), records, size,
peak RSS and RSS after setup. ``bench.py --peer`` sets the environment and runs it.
"""

from __future__ import annotations

import json
import sys
import time

import django

django.setup()

from django.db import transaction  # noqa: E402
from django.test import Client  # noqa: E402
from organizations.functions import create_organization  # noqa: E402
from projects.models import Project  # noqa: E402
from tasks.models import Annotation, Task  # noqa: E402
from users.models import User  # noqa: E402

# The sibling script's (standard library only): one report format for both frameworks.
from bench import report, rss_mib  # noqa: E402

CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="label" toName="text"><Choice value="positive"/><Choice value="negative"/>'
    "</Choices></View>"
)


def setup(name: str) -> tuple[Client, Project, User]:
    user = User.objects.create_user(
        email=f"{name}-{time.time_ns()}@example.org", password="bench-only-password"
    )
    org = create_organization(title=name, created_by=user, legacy_api_tokens_enabled=True)
    user.active_organization = org
    user.save(update_fields=["active_organization"])
    project = Project.objects.create(
        title=name, label_config=CONFIG, created_by=user, organization=org
    )
    # Its API as a script calls it: the legacy token (LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN).
    client = Client(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client, project, user


def import_file(path: str) -> None:
    client, project, _ = setup("bench-import")
    with open(path, encoding="utf-8") as source:
        body = "[" + ",".join(line.strip() for line in source if line.strip()) + "]"
    base = rss_mib()
    started = time.perf_counter()
    response = client.post(
        f"/api/projects/{project.pk}/import", data=body, content_type="application/json"
    )
    seconds = time.perf_counter() - started
    assert response.status_code == 201, response.content[:500]
    report(seconds, base, records=Task.objects.filter(project=project).count(), size=0)


def export(n: int) -> None:
    client, project, user = setup("bench-export")
    with transaction.atomic():
        tasks = Task.objects.bulk_create(
            [
                Task(project=project, data={"text": f"review {i}"}, is_labeled=True)
                for i in range(n)
            ],
            batch_size=5000,
        )
        Annotation.objects.bulk_create(
            [
                Annotation(
                    task=task,
                    project=project,
                    completed_by=user,
                    result=[
                        {
                            "from_name": "label",
                            "to_name": "text",
                            "type": "choices",
                            "value": {"choices": ["positive" if task.pk % 2 else "negative"]},
                        }
                    ],
                )
                for task in tasks
            ],
            batch_size=5000,
        )
    base = rss_mib()
    started = time.perf_counter()
    response = client.get(f"/api/projects/{project.pk}/export", {"exportType": "JSON"})
    data = b"".join(response.streaming_content)
    seconds = time.perf_counter() - started
    assert response.status_code == 200, data[:500]
    report(seconds, base, records=len(json.loads(data)), size=len(data))


if __name__ == "__main__":
    command, argument = sys.argv[1:3]
    if command == "import":
        import_file(argument)
    else:
        export(int(argument))
