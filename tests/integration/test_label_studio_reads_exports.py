"""Label Studio 1.23.2 itself reads the ``label_studio`` exports: for each task type, a project
created through its API with the exported ``label_config.xml``, the exported tasks imported
through its import API, and its own JSON export holding every task with the decision as its
annotation, region for region. Label Studio runs in its own venv (``.venv-peer``, made by
``bench/load/peer/install.sh``, which ``.ci/run`` runs), never in Crowdmint's."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts.models import User
from labeling.models import Decision, Item, Project
from labeling.services import item_create_image, item_create_text
from market.models import DatasetExport
from market.services import export_build
from tests.conftest import gradient_bytes

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REPO_ROOT = Path(__file__).resolve().parents[2]
PEER = REPO_ROOT / ".venv-peer" / "bin" / "python"


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Label Studio's settings on a migrated SQLite file of its own."""
    if not PEER.exists():
        pytest.fail("Label Studio's venv is missing: run bash bench/load/peer/install.sh")
    home = tmp_path_factory.mktemp("label-studio")
    package = subprocess.run(
        [str(PEER), "-c", "import label_studio, os; print(os.path.dirname(label_studio.__file__))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE"))},
        "DJANGO_SETTINGS_MODULE": "core.settings.label_studio",
        "PYTHONPATH": package,
        "DJANGO_DB": "sqlite",
        "DATABASE_NAME": str(home / "label_studio.sqlite3"),
        "LABEL_STUDIO_BASE_DATA_DIR": str(home),
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "DEBUG": "false",
        "SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [str(PEER), f"{package}/manage.py", "migrate", "--noinput", "-v0"],
        env=env,
        check=True,
        capture_output=True,
    )
    yield env


def accepted(item: Item, label: str, value: dict[str, Any]) -> None:
    Item.objects.filter(pk=item.pk).update(
        status=Item.Status.ACCEPTED,
        decided_label=label,
        decided_value=value,
        decided_at=timezone.now(),
        confidence=0.97,
        agreement=1.0,
        label_count=3,
        decision_version=1,
    )
    Decision.objects.create(
        item=item,
        version=1,
        label=label,
        value=value,
        posterior=0.97,
        method="dawid_skene",
        decided_by="crowd",
        n_classes=2,
    )


def project_of(task: str) -> Project:
    kind = Project.DataKind.IMAGE if task == Project.Task.BOXES else Project.DataKind.TEXT
    project = Project.objects.create(
        name=f"Moving {task}", data_kind=kind, task=task, classes=["cat", "dog"]
    )
    if task == Project.Task.CLASSIFY:
        accepted(
            item_create_text(project=project, contributor=None, text="A cat."),
            "cat",
            {"label": "cat"},
        )
        accepted(
            item_create_text(project=project, contributor=None, text="A dog."),
            "dog",
            {"label": "dog"},
        )
    elif task == Project.Task.MULTILABEL:
        item = item_create_text(project=project, contributor=None, text="A cat and a dog.")
        accepted(item, "cat, dog", {"labels": ["cat", "dog"]})
        item = item_create_text(project=project, contributor=None, text="Nothing here.")
        accepted(item, "(none)", {"labels": []})
    elif task == Project.Task.SPANS:
        item = item_create_text(project=project, contributor=None, text="The cat saw a dog.")
        spans = [{"start": 4, "end": 7, "label": "cat"}, {"start": 14, "end": 17, "label": "dog"}]
        accepted(item, "2 spans", {"spans": spans})
    elif task == Project.Task.PAIRWISE:
        item = item_create_text(project=project, contributor=None, text="Short.", text_b="Longer.")
        accepted(item, "b", {"choice": "b"})
    else:
        item = item_create_image(project=project, contributor=None, data=gradient_bytes(80, 60))
        boxes = [
            {"x": 8.0, "y": 6.0, "w": 40.0, "h": 30.0, "label": "cat"},
            {"x": 50.0, "y": 30.0, "w": 20.0, "h": 24.0, "label": "dog"},
        ]
        accepted(item, "2 boxes", {"boxes": boxes})
        empty = item_create_image(project=project, contributor=None, data=gradient_bytes(40, 40))
        accepted(empty, "0 boxes", {"boxes": []})
    return project


def regions(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a region says, less the keys Label Studio adds on import (ids, origin)."""
    keep = ("from_name", "to_name", "type", "value")
    return sorted(
        ({k: r[k] for k in keep if k in r} for r in results),
        key=lambda r: json.dumps(r, sort_keys=True),
    )


@pytest.mark.parametrize("task", ["classify", "multilabel", "spans", "pairwise", "boxes"])
def test_label_studio_imports_the_export_and_exports_the_same_annotations(
    label_studio: dict[str, str], tmp_path: Path, task: str
) -> None:
    project = project_of(task)
    buyer = User.objects.create(username=f"buyer-{task}", role="buyer")
    export = DatasetExport.objects.create(
        project=project, buyer=buyer, format="label_studio", base_url="http://testserver/"
    )
    export = export_build(export_id=export.pk)
    assert export.status == DatasetExport.Status.DONE, export.error
    ours = tmp_path / "tasks.json"
    config = tmp_path / "label_config.xml"
    with default_storage.open(export.file.name, "rb") as stored:
        ours.write_bytes(stored.read())
    with default_storage.open(export.card.name, "rb") as stored:
        config.write_bytes(stored.read())

    run = subprocess.run(
        [
            str(PEER),
            str(REPO_ROOT / "tests" / "support" / "label_studio_reader.py"),
            str(config),
            str(ours),
        ],
        env=label_studio,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert "error" not in answer, answer

    exported = json.loads(ours.read_text())
    theirs = answer["tasks"]
    assert answer["imported"]["task_count"] == len(exported)
    assert answer["imported"]["annotation_count"] == len(exported)
    assert sorted(json.dumps(t["data"], sort_keys=True) for t in theirs) == sorted(
        json.dumps(t["data"], sort_keys=True) for t in exported
    )
    by_data = {json.dumps(t["data"], sort_keys=True): t for t in theirs}
    for task_ in exported:
        [annotation] = by_data[json.dumps(task_["data"], sort_keys=True)]["annotations"]
        assert regions(annotation["result"]) == regions(task_["annotations"][0]["result"])
