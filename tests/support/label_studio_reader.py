"""Label Studio reading a Crowdmint ``label_studio`` export, as a user moving over would. Run by
Label Studio's own Python (its venv, ``bench/load/peer/install.sh``) with its settings; never
imported by Crowdmint or its tests.

    python label_studio_reader.py CONFIG TASKS

Through Label Studio's API (in-process, ``django.test.Client``): a project is created with the
exported ``label_config.xml`` (Label Studio validates the config), the exported tasks are imported
(it validates them against the config), then the project is exported again as JSON. Prints one
JSON line: the import's response and the tasks Label Studio exported.
"""

from __future__ import annotations

import json
import sys
import time

import django

django.setup()

from django.test import Client  # noqa: E402
from organizations.functions import create_organization  # noqa: E402
from users.models import User  # noqa: E402


def say(answer: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")


def main(config_path: str, tasks_path: str) -> None:
    user = User.objects.create_user(
        email=f"reader-{time.time_ns()}@example.org", password="test-only-password"
    )
    org = create_organization(title="reader", created_by=user, legacy_api_tokens_enabled=True)
    user.active_organization = org
    user.save(update_fields=["active_organization"])
    client = Client(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    with open(config_path, encoding="utf-8") as config:
        created = client.post(
            "/api/projects",
            data=json.dumps({"title": "moved over", "label_config": config.read()}),
            content_type="application/json",
        )
    if created.status_code != 201:
        say({"error": "project", "status": created.status_code, "body": created.json()})
        return
    project = created.json()["id"]
    with open(tasks_path, "rb") as tasks:
        imported = client.post(
            f"/api/projects/{project}/import", data=tasks.read(), content_type="application/json"
        )
    if imported.status_code != 201:
        say({"error": "import", "status": imported.status_code, "body": imported.json()})
        return
    exported = client.get(f"/api/projects/{project}/export", {"exportType": "JSON"})
    body = b"".join(exported.streaming_content) if exported.streaming else exported.content
    say({"imported": imported.json(), "tasks": json.loads(body)})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
