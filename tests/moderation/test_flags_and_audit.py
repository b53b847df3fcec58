"""The flags queue (evidence readable, filters, confirm / ban / dismiss behind a confirmation
page) and the audit of ordinary admin saves."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.test import Client

from accounts.admin_audit import AuditedModelAdmin
from accounts.models import AuditEvent, User
from labeling.models import Project
from moderation.models import Flag
from tests.support.admin import change_form_data, confirmation_form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def flag(labelers: list[User]) -> Flag:
    return Flag.objects.create(
        user=labelers[0],
        kind=Flag.Kind.COLLUSION,
        evidence={"partner": "0x" + "cd" * 20, "agreement": 0.987654, "items": [1, 2, 3]},
    )


def act(browser: Client, action: str, flag: Flag, **data: Any) -> Any:
    return browser.post(
        "/admin/moderation/flag/",
        {"action": action, "_selected_action": [flag.pk], **data},
        follow=True,
    )


def test_the_flags_queue_shows_evidence_readably_and_filters(
    browser: Client, flag: Flag, labelers: list[User]
) -> None:
    Flag.objects.create(user=labelers[1], kind=Flag.Kind.SPEED, state=Flag.State.DISMISSED)
    page = browser.get("/admin/moderation/flag/", {"state__exact": "open"})
    html = page.content.decode()
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert "agreement: 0.988" in html and "partner: 0x" in html
    detail = browser.get(f"/admin/moderation/flag/{flag.pk}/change/").content.decode()
    assert "<li>items: 1, 2, 3</li>" in detail
    assert 'name="_save"' not in detail  # read here, decided by the list's actions
    by_kind = browser.get("/admin/moderation/flag/", {"kind__exact": "speed"})
    assert by_kind.context["cl"].result_count == 1


def test_confirming_with_a_ban_asks_for_a_reason_first(
    browser: Client, flag: Flag, labelers: list[User], moderator: User
) -> None:
    page = act(browser, "confirm_and_ban", flag)
    assert "and confirm 1 open flag(s)" in page.content.decode()
    flag.refresh_from_db()
    assert flag.state == Flag.State.OPEN
    act(browser, "confirm_and_ban", flag, apply="1", reason="a ring of three")
    flag.refresh_from_db()
    labelers[0].refresh_from_db()
    assert flag.state == Flag.State.CONFIRMED and flag.resolved_by == moderator
    assert labelers[0].is_banned
    assert AuditEvent.objects.get(action="flag.confirm").details["reason"] == "a ring of three"
    assert AuditEvent.objects.filter(action="user.ban", target_id=str(labelers[0].pk)).exists()


def test_dismissing_leaves_the_contributor_alone(
    browser: Client, flag: Flag, labelers: list[User]
) -> None:
    act(browser, "dismiss_flags", flag, apply="1", reason="siblings on one network")
    flag.refresh_from_db()
    labelers[0].refresh_from_db()
    assert flag.state == Flag.State.DISMISSED and not labelers[0].is_banned
    assert flag.resolution_note == "siblings on one network"
    assert AuditEvent.objects.filter(action="flag.dismiss").count() == 1
    act(browser, "confirm_flags", flag, apply="1", reason="changed my mind")
    flag.refresh_from_db()
    assert flag.state == Flag.State.DISMISSED  # resolved flags are not decided again


def test_every_registered_model_admin_is_audited() -> None:
    plain = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedModelAdmin)
    ]
    assert plain == []


def test_an_ordinary_admin_save_is_audited_with_its_reason(
    browser: Client, text_project: Project, moderator: User
) -> None:
    url = f"/admin/labeling/project/{text_project.pk}/change/"
    page = browser.get(url)
    data = change_form_data(page, description="Is the review positive?", audit_reason="clearer")
    response = browser.post(url, data)
    assert response.status_code == 302, response.content
    event = AuditEvent.objects.get(action="admin.change", target_id=str(text_project.pk))
    assert event.actor == moderator and event.target_type == "labeling.project"
    assert event.details["reason"] == "clearer"
    assert "description" in event.details["fields"]


def test_adding_and_deleting_through_admin_are_audited(browser: Client, moderator: User) -> None:
    response = browser.post("/admin/auth/group/add/", {"name": "reviewers", "audit_reason": "new"})
    assert response.status_code == 302
    added = AuditEvent.objects.get(action="admin.add")
    assert added.details["object"] == "reviewers" and added.details["reason"] == "new"
    group_id = added.target_id
    browser.post(f"/admin/auth/group/{group_id}/delete/", {"post": "yes"})
    deleted = AuditEvent.objects.get(action="admin.delete")
    assert deleted.target_id == group_id and deleted.actor == moderator


def test_lifting_a_ban_asks_why_and_records_it(
    browser: Client, labelers: list[User], moderator: User
) -> None:
    from accounts.services import user_ban

    user_ban(user=labelers[0], reason="test", actor=moderator)
    lift = {"action": "unban_users", "_selected_action": [labelers[0].pk]}
    page = browser.post("/admin/accounts/user/", lift)
    assert "lift the ban of 1 user(s)" in page.content.decode()
    labelers[0].refresh_from_db()
    assert labelers[0].is_banned
    browser.post("/admin/accounts/user/", {**lift, "apply": "1", "reason": "appeal accepted"})
    labelers[0].refresh_from_db()
    assert not labelers[0].is_banned
    assert AuditEvent.objects.filter(action="user.unban", actor=moderator).exists()
    assert AuditEvent.objects.get(action="user.unban_reason").details == {
        "reason": "appeal accepted"
    }


def test_select_all_then_confirm_acts_on_every_row_the_confirmation_listed(
    browser: Client, labelers: list[User]
) -> None:
    """ "Select all N" (select_across) on a filtered list: the confirmation page lists every
    matching flag, and confirming it acts on each of them, not only on the ticked page rows."""
    speed = [Flag.objects.create(user=u, kind=Flag.Kind.SPEED, evidence={}) for u in labelers]
    other = Flag.objects.create(user=labelers[0], kind=Flag.Kind.COLLUSION, evidence={})
    url = "/admin/moderation/flag/?kind__exact=speed"
    across = {"action": "dismiss_flags", "index": "0", "select_across": "1"}
    page = browser.post(url, {**across, "_selected_action": [speed[0].pk]})
    assert "dismiss (" in page.content.decode() and len(page.context["targets"]) == 3
    browser.post(url, confirmation_form_data(page, apply="1", reason="one slow network"))
    assert {f.state for f in Flag.objects.filter(pk__in=[f.pk for f in speed])} == {
        Flag.State.DISMISSED
    }
    other.refresh_from_db()
    assert other.state == Flag.State.OPEN  # filtered out of the list: not selected
    assert AuditEvent.objects.filter(action="flag.dismiss").count() == 3


def test_select_all_then_confirm_bans_every_user_the_confirmation_listed(
    browser: Client, labelers: list[User]
) -> None:
    url = "/admin/accounts/user/?role__exact=contributor"
    across = {"action": "ban_users", "index": "0", "select_across": "1"}
    page = browser.post(url, {**across, "_selected_action": [labelers[0].pk]})
    assert len(page.context["targets"]) == User.objects.filter(role="contributor").count() > 1
    browser.post(url, confirmation_form_data(page, apply="1", reason="a ring"))
    assert not User.objects.filter(role="contributor", banned_at__isnull=True).exists()
    assert not User.objects.filter(is_superuser=True, banned_at__isnull=False).exists()
