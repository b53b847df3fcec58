"""Moderators' item screens: money fields are read-only, gold answers are validated and audited,
and there is no delete."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent, User
from labeling.models import Annotation, Item, Project
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


def test_setting_a_gold_answer_is_audited_with_its_reason(
    browser: Client, item: Item, moderator: User
) -> None:
    page = browser.get(change_url(item))
    unexplained = browser.post(change_url(item), change_form_data(page, gold_label="negative"))
    assert unexplained.status_code == 200
    assert "Give a reason for changing the gold answer" in unexplained.content.decode()
    item.refresh_from_db()
    assert item.gold_label == ""
    response = browser.post(
        change_url(item),
        change_form_data(page, gold_label="negative", audit_reason="sarcasm reads as negative"),
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.gold_label == "negative"
    event = AuditEvent.objects.get(action="item.gold")
    assert event.actor == moderator and event.target_id == str(item.pk)
    assert event.details == {"from": "", "to": "negative", "reason": "sarcasm reads as negative"}


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


# --- A labeled project's task, kind and classes -------------------------------------------------


def project_url(project: Project) -> str:
    return f"/admin/labeling/project/{project.pk}/change/"


def label_it(project: Project, how: str) -> None:
    """Give ``project`` labeled data: a contributor's answer, a decision, or a gold answer."""
    item = item_create_text(project=project, contributor=None, text="Works well.")
    if how == "answer":
        annotator = User.objects.create_user("labeler")
        Annotation.objects.create(item=item, annotator=annotator, label="positive")
    elif how == "decision":
        # Decided with no answer recorded (as the export fixtures do): its label is a class too.
        Item.objects.filter(pk=item.pk).update(
            status=Item.Status.ACCEPTED,
            decided_label="positive",
            decided_at=timezone.now(),
            decision_version=1,
        )
    else:
        Item.objects.filter(pk=item.pk).update(gold_label="positive")


def refuse(browser: Client, project: Project, field: str, error: str, **change: str) -> None:
    """Post ``change`` to the project's admin form: refused on ``field``, nothing saved."""
    before = (project.task, project.data_kind, project.classes)
    page = browser.get(project_url(project))
    response = browser.post(
        project_url(project), change_form_data(page, audit_reason="x", **change)
    )
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert error in response.content.decode()
    project.refresh_from_db()
    assert (project.task, project.data_kind, project.classes) == before


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        # Renamed: answers and decisions saying "positive" would name no class (exports failed).
        ({"classes": '["good", "negative"]'}, "classes", "keep every class"),
        # Reordered: a class's position is its code in YOLO/COCO exports and in stored fits.
        ({"classes": '["negative", "positive"]'}, "classes", "keep every class"),
        ({"classes": '["positive", "neutral", "negative"]'}, "classes", "keep every class"),
        ({"classes": '["negative", "neutral"]'}, "classes", "keep every class"),
        ({"task": "multilabel"}, "task", "can&#x27;t change once"),
        ({"data_kind": "image"}, "data_kind", "can&#x27;t change once"),
    ],
)
def test_a_labeled_projects_task_kind_and_classes_cannot_be_rewritten(
    browser: Client, text_project: Project, change: dict[str, str], field: str, error: str
) -> None:
    label_it(text_project, "answer")
    refuse(browser, text_project, field, error, **change)


@pytest.mark.parametrize("how", ["decision", "gold"])
def test_a_decision_or_a_gold_answer_also_holds_the_classes(
    browser: Client, text_project: Project, how: str
) -> None:
    """The audit's project had accepted boxes and no answer rows: renaming "cat" broke its
    COCO and YOLO exports."""
    label_it(text_project, how)
    refuse(browser, text_project, "classes", "keep every class", classes='["good", "negative"]')


def test_a_labeled_projects_overlapping_spans_stay_allowed(text_project: Project) -> None:
    """Answers may hold overlapping spans of different classes: switching overlaps off made
    their items' decisions fail (a vote over all classes at once can't take them)."""
    from django.core.exceptions import ValidationError

    Project.objects.filter(pk=text_project.pk).update(task="spans", spans_may_overlap=True)
    text_project.refresh_from_db()
    text_project.full_clean()
    label_it(text_project, "answer")
    text_project.spans_may_overlap = False
    with pytest.raises(ValidationError) as refused:
        text_project.full_clean()
    assert "spans_may_overlap" in refused.value.message_dict


def test_a_labeled_project_may_gain_classes_at_the_end(
    browser: Client, text_project: Project
) -> None:
    label_it(text_project, "answer")
    page = browser.get(project_url(text_project))
    added = change_form_data(
        page, classes='["positive", "negative", "neutral"]', audit_reason="a third class"
    )
    response = browser.post(project_url(text_project), added)
    assert response.status_code == 302, response.context["adminform"].form.errors
    text_project.refresh_from_db()
    assert text_project.classes == ["positive", "negative", "neutral"]


def test_a_project_nobody_has_labeled_yet_can_still_be_reshaped(
    browser: Client, text_project: Project
) -> None:
    item_create_text(project=text_project, contributor=None, text="Not labeled yet.")
    page = browser.get(project_url(text_project))
    reshaped = change_form_data(
        page, task="multilabel", classes='["good", "bad", "ugly"]', audit_reason="rethink"
    )
    response = browser.post(project_url(text_project), reshaped)
    assert response.status_code == 302, response.context["adminform"].form.errors
    text_project.refresh_from_db()
    assert (text_project.task, text_project.classes) == ("multilabel", ["good", "bad", "ugly"])


def test_any_path_that_validates_a_project_keeps_its_labeled_classes(
    text_project: Project,
) -> None:
    from django.core.exceptions import ValidationError

    label_it(text_project, "answer")
    text_project.classes = ["good", "negative"]
    with pytest.raises(ValidationError) as refused:
        text_project.full_clean()
    assert "classes" in refused.value.message_dict


# --- A project's acceptance threshold -------------------------------------------------------------


@pytest.mark.parametrize("threshold", ["0", "0.5", "-1", "1", "1.5"])
def test_an_acceptance_threshold_a_posterior_cant_sensibly_reach_is_refused(
    browser: Client, text_project: Project, threshold: str
) -> None:
    """At 0.5 or under, two classes tied at 0.5 were accepted as the first of them; at 1 or over,
    the crowd could never accept anything (every item went to review)."""
    refuse(
        browser,
        text_project,
        "acceptance_threshold",
        "above 0.5 and below 1",
        acceptance_threshold=threshold,
    )
    text_project.refresh_from_db()
    assert text_project.acceptance_threshold == 0.95


def test_an_acceptance_threshold_between_a_majority_and_certainty_is_kept(
    browser: Client, text_project: Project
) -> None:
    page = browser.get(project_url(text_project))
    response = browser.post(
        project_url(text_project),
        change_form_data(page, acceptance_threshold="0.9", audit_reason="faster"),
    )
    assert response.status_code == 302
    text_project.refresh_from_db()
    assert text_project.acceptance_threshold == 0.9
