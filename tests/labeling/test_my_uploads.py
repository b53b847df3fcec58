"""``GET /api/v1/me/uploads/``: the upload page's list of my uploads and where each stands."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from labeling.models import Item, Project
from labeling.services import item_create_text
from tests.conftest import Contributor, image_bytes

pytestmark = pytest.mark.django_db


def test_it_lists_my_uploads_newest_first_with_their_state(
    contributor: Contributor, second_contributor: Contributor, text_project: Project
) -> None:
    mine = [
        item_create_text(project=text_project, contributor=contributor.user, text=text)
        for text in ("first", "second", "third", "fourth")
    ]
    item_create_text(project=text_project, contributor=second_contributor.user, text="not mine")
    Item.objects.filter(pk=mine[1].pk).update(label_count=1)
    Item.objects.filter(pk=mine[2].pk).update(
        status=Item.Status.ACCEPTED, decided_label="positive", decided_at=timezone.now()
    )
    Item.objects.filter(pk=mine[3].pk).update(status=Item.Status.REJECTED)

    rows = contributor.api.get("/api/v1/me/uploads/").json()

    assert [row["id"] for row in rows] == [item.pk for item in reversed(mine)]
    assert [row["state"] for row in rows] == ["rejected", "accepted", "labeling", "waiting"]
    assert rows[-1]["project_name"] == "Sentiment" and rows[-1]["preview_text"] == "first"
    assert rows[-1]["image_url"] is None


def test_an_image_upload_comes_with_a_preview_its_uploader_may_open(
    contributor: Contributor, image_project: Project
) -> None:
    upload = SimpleUploadedFile("a.png", image_bytes(), content_type="image/png")
    created = contributor.api.post(
        f"/api/v1/projects/{image_project.pk}/items/",
        {"file": upload, "licence_accepted": "true"},
        format="multipart",
    )
    assert created.status_code == 201, created.content

    [row] = contributor.api.get("/api/v1/me/uploads/", {"project": image_project.pk}).json()

    assert row["state"] == "waiting" and row["licence"] == image_project.licence
    assert contributor.api.get(row["image_url"]).status_code == 200


def test_it_filters_by_project_and_refuses_a_bad_project_id(
    contributor: Contributor, text_project: Project, image_project: Project
) -> None:
    item_create_text(project=text_project, contributor=contributor.user, text="a text")
    assert contributor.api.get("/api/v1/me/uploads/", {"project": image_project.pk}).json() == []
    assert contributor.api.get("/api/v1/me/uploads/", {"project": "x"}).status_code == 400


def test_strangers_get_nothing(text_project: Project) -> None:
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/me/uploads/").status_code in (401, 403)


def test_the_list_costs_the_same_queries_for_one_upload_or_many(
    contributor: Contributor, text_project: Project, django_assert_max_num_queries: Any
) -> None:
    for n in range(12):
        item_create_text(project=text_project, contributor=contributor.user, text=f"text {n}")
    with django_assert_max_num_queries(4):
        rows = contributor.api.get("/api/v1/me/uploads/").json()
    assert len(rows) == 12
