"""Who may download an item's image: its uploader, a contributor it is served to right now,
moderators, and buyers of its dataset once it is accepted. Nobody else, whatever the id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import user_ban
from labeling.models import Assignment, Item, Project
from tests.conftest import Contributor, give_grant, image_bytes
from tests.labeling.test_contributions import upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def image_item(contributor: Contributor, image_project: Project) -> Item:
    response = upload(contributor, image_project, image_bytes("PNG"))
    return Item.objects.get(pk=response.json()["id"])  # type: ignore[attr-defined]


def content(api: Any, item: Item) -> int:
    return int(api.get(f"/api/v1/items/{item.pk}/content").status_code)


def accept(item: Item) -> None:
    Item.objects.filter(pk=item.pk).update(
        status=Item.Status.ACCEPTED, decided_label="red", decided_at=timezone.now()
    )


def test_the_uploader_sees_their_own_image(contributor: Contributor, image_item: Item) -> None:
    assert content(contributor.api, image_item) == 200


def test_a_stranger_contributor_gets_404_for_any_image_by_id(
    second_contributor: Contributor, image_item: Item
) -> None:
    assert content(second_contributor.api, image_item) == 404


def test_a_contributor_served_the_item_sees_it_until_the_assignment_expires(
    second_contributor: Contributor, image_item: Item, image_project: Project
) -> None:
    served = second_contributor.api.get(f"/api/v1/projects/{image_project.pk}/next-task/")
    assert served.json()["id"] == image_item.pk
    assert content(second_contributor.api, image_item) == 200
    Assignment.objects.filter(item=image_item).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert content(second_contributor.api, image_item) == 404


def test_a_closed_projects_images_are_not_downloadable_by_other_contributors(
    second_contributor: Contributor, image_item: Item, image_project: Project
) -> None:
    Project.objects.filter(pk=image_project.pk).update(is_open=False)
    assert content(second_contributor.api, image_item) == 404


def test_an_accepted_item_sold_to_buyers_is_not_downloadable_by_contributors(
    second_contributor: Contributor, image_item: Item, buyer_api: APIClient, buyer: User
) -> None:
    accept(image_item)
    assert content(buyer_api, image_item) == 404  # no grant for its dataset yet
    give_grant(image_item.project, buyer)
    assert content(second_contributor.api, image_item) == 404
    assert content(buyer_api, image_item) == 200


def test_buyers_see_only_accepted_items_and_never_gold(
    buyer_api: APIClient, buyer: User, image_item: Item
) -> None:
    give_grant(image_item.project, buyer)
    assert content(buyer_api, image_item) == 404
    accept(image_item)
    Item.objects.filter(pk=image_item.pk).update(gold_label="red")
    assert content(buyer_api, image_item) == 404


def test_moderators_see_every_image(moderator: User, image_item: Item) -> None:
    browser = Client()
    browser.force_login(moderator)
    assert content(browser, image_item) == 200


def test_anonymous_clients_get_401_and_a_banned_uploader_nothing(
    contributor: Contributor, image_item: Item
) -> None:
    assert content(APIClient(), image_item) == 401
    user_ban(user=contributor.user, reason="spam")
    assert content(contributor.api, image_item) == 401  # a banned account's token stops working
