"""Moderators' item screens: money fields are read-only, gold answers are validated and audited,
and there is no delete."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent, User
from labeling.models import Item, Project
from labeling.services import item_create_text
from tests.support.admin import change_form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(moderator: User) -> Client:
    client = Client()
    client.force_login(moderator)
    return client


@pytest.fixture
def item(text_project: Project) -> Item:
    return item_create_text(project=text_project, contributor=None, text="Works well.")


def change_url(item: Item) -> str:
    return f"/admin/labeling/item/{item.pk}/change/"


def test_decision_version_and_the_decision_cannot_be_edited(browser: Client, item: Item) -> None:
    Item.objects.filter(pk=item.pk).update(
        status=Item.Status.ACCEPTED,
        decided_label="positive",
        decided_at=timezone.now(),
        decision_version=1,
    )
    page = browser.get(change_url(item))
    assert page.status_code == 200
    # The gold answer, and the reason every admin form asks for (the audit trail's "why").
    assert set(page.context["adminform"].form.fields) == {"gold_label", "audit_reason"}
    tampered = change_form_data(page, decision_version="7", status="open", decided_label="negative")
    response = browser.post(change_url(item), tampered)
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.decision_version, item.status, item.decided_label) == (1, "accepted", "positive")
    assert not AuditEvent.objects.filter(action="item.gold").exists()  # nothing changed


def test_a_gold_answer_outside_the_projects_classes_is_refused(browser: Client, item: Item) -> None:
    page = browser.get(change_url(item))
    response = browser.post(change_url(item), change_form_data(page, gold_label="banana"))
    assert response.status_code == 200
    assert "&#x27;banana&#x27; is not a class of this project" in response.content.decode()
    item.refresh_from_db()
    assert item.gold_label == ""


def test_setting_a_gold_answer_is_audited(browser: Client, item: Item, moderator: User) -> None:
    page = browser.get(change_url(item))
    response = browser.post(change_url(item), change_form_data(page, gold_label="negative"))
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.gold_label == "negative"
    event = AuditEvent.objects.get(action="item.gold")
    assert event.actor == moderator and event.target_id == str(item.pk)
    assert event.details == {"from": "", "to": "negative"}


def test_a_decided_item_cannot_become_gold(browser: Client, item: Item) -> None:
    Item.objects.filter(pk=item.pk).update(
        status=Item.Status.ACCEPTED, decided_label="positive", decided_at=timezone.now()
    )
    page = browser.get(change_url(item))
    response = browser.post(change_url(item), change_form_data(page, gold_label="positive"))
    assert response.status_code == 200
    assert "only open items can be made gold" in response.content.decode()


@pytest.mark.parametrize("task", ["multilabel", "boxes", "spans"])
def test_an_item_whose_answer_is_a_set_cannot_be_gold(
    browser: Client, text_project: Project, task: str
) -> None:
    """A gold answer is one class: on a multi-label item it told a right answer it was wrong
    (and paid it the bonus all the same)."""
    Project.objects.filter(pk=text_project.pk).update(task=task)
    item = item_create_text(project=text_project, contributor=None, text="Works well.")
    page = browser.get(change_url(item))
    response = browser.post(change_url(item), change_form_data(page, gold_label="positive"))
    assert response.status_code == 200
    assert f"a {task} project&#x27;s items can&#x27;t be gold" in response.content.decode()
    item.refresh_from_db()
    assert item.gold_label == ""


def test_the_item_list_offers_no_delete(browser: Client, item: Item) -> None:
    page = browser.get("/admin/labeling/item/")
    actions = [value for value, _ in page.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert "accept_plurality" in actions
    assert browser.get(f"/admin/labeling/item/{item.pk}/delete/").status_code == 403


def test_admin_form_validation_matches_the_service(item: Item) -> None:
    from labeling.admin import ItemAdminForm

    form: Any = ItemAdminForm(instance=item, data={"gold_label": "banana"})
    assert not form.is_valid()
    assert "gold_label" in form.errors
