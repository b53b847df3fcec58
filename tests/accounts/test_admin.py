"""Moderators' user screens: wallets never change in admin, and every change to a user is
audited in the same transaction as the change."""

from __future__ import annotations

import pytest
from django.db import DatabaseError
from django.test import Client

from accounts.models import AccessToken, AuditEvent, User
from accounts.services import api_key_issue
from tests.conftest import Contributor
from tests.support.admin import change_form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(moderator: User) -> Client:
    client = Client()
    client.force_login(moderator)
    return client


def change_url(user: User) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def test_a_moderator_cannot_change_a_wallet_address(
    browser: Client, contributor: Contributor
) -> None:
    page = browser.get(change_url(contributor.user))
    assert "wallet_address" not in page.context["adminform"].form.fields
    attacker = "0x" + "ab" * 20
    response = browser.post(
        change_url(contributor.user), change_form_data(page, wallet_address=attacker)
    )
    assert response.status_code == 302
    contributor.user.refresh_from_db()
    assert contributor.user.wallet_address == contributor.address


def test_a_moderators_edit_of_a_user_is_audited_with_what_changed(
    browser: Client, contributor: Contributor, moderator: User
) -> None:
    page = browser.get(change_url(contributor.user))
    response = browser.post(change_url(contributor.user), change_form_data(page, role="buyer"))
    assert response.status_code == 302
    contributor.user.refresh_from_db()
    assert contributor.user.role == "buyer"
    event = AuditEvent.objects.get(action="user.change")
    assert event.actor == moderator and event.target_id == str(contributor.user.pk)
    assert event.details == {"role": "buyer"}


def test_an_edit_saved_after_a_ban_keeps_the_ban(
    browser: Client, contributor: Contributor, moderator: User
) -> None:
    """The form was loaded before another moderator banned the user: saving it changes what
    the form changed and nothing else (the ban, its reason and the ended sessions stay)."""
    from accounts.services import user_ban

    page = browser.get(change_url(contributor.user))
    user_ban(user=contributor.user, reason="farming with four wallets", actor=moderator)
    banned = User.objects.get(pk=contributor.user.pk)
    response = browser.post(change_url(contributor.user), change_form_data(page, first_name="Ada"))
    assert response.status_code == 302
    saved = User.objects.get(pk=contributor.user.pk)
    assert saved.first_name == "Ada"
    assert (saved.banned_at, saved.ban_reason, saved.session_epoch) == (
        banned.banned_at,
        "farming with four wallets",
        banned.session_epoch,
    )
    assert saved.banned_at is not None


def test_a_ban_and_its_audit_entry_are_one_transaction(
    browser: Client, contributor: Contributor, moderator: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_audit(**kwargs: object) -> None:
        raise DatabaseError("audit table unavailable")

    monkeypatch.setattr("accounts.services.audit_record", failing_audit)
    ban = {
        "action": "ban_users",
        "_selected_action": [contributor.user.pk],
        "apply": "1",
        "reason": "farming with four wallets",
    }
    with pytest.raises(DatabaseError):
        browser.post("/admin/accounts/user/", ban)
    contributor.user.refresh_from_db()
    assert contributor.user.banned_at is None  # no ban without its audit entry
    monkeypatch.undo()

    confirmation = browser.post("/admin/accounts/user/", {**ban, "apply": "", "reason": ""})
    assert "You are about to <strong>ban 1 user(s)" in confirmation.content.decode()
    browser.post("/admin/accounts/user/", ban)
    contributor.user.refresh_from_db()
    assert contributor.user.banned_at is not None
    event = AuditEvent.objects.get(action="user.ban")
    assert event.actor == moderator and event.details == {"reason": "farming with four wallets"}


def test_users_are_never_deleted_in_admin(browser: Client, contributor: Contributor) -> None:
    page = browser.get("/admin/accounts/user/")
    actions = [value for value, _ in page.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert browser.get(f"/admin/accounts/user/{contributor.user.pk}/delete/").status_code == 403


def test_a_password_change_by_a_moderator_is_audited(browser: Client, moderator: User) -> None:
    other = User.objects.create_user("second-moderator", password="x", role="moderator")
    response = browser.post(
        f"/admin/accounts/user/{other.pk}/password/",
        {"password1": "a long new passphrase 42", "password2": "a long new passphrase 42"},
    )
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="user.password", target_id=str(other.pk)).exists()


@pytest.mark.parametrize(
    ("changelist", "action"),
    [
        ("accounts/user", "ban_users"),
        ("moderation/flag", "dismiss_flags"),
        ("rewards/payoutbatch", "hold"),
        ("labeling/item", "accept_plurality"),
        ("market/datasetgrant", "revoke_grants"),
        ("accounts/accesstoken", "revoke"),
    ],
)
@pytest.mark.parametrize("selected", ["abc", "1.5", "99999999999999999999999"])
def test_an_action_on_a_selection_that_isnt_ids_is_refused_with_a_message(
    browser: Client, changelist: str, action: str, selected: str
) -> None:
    """Django filtered by the posted values and raised: a 500 on every changelist."""
    response = browser.post(
        f"/admin/{changelist}/", {"action": action, "_selected_action": [selected]}, follow=True
    )
    assert response.status_code == 200
    assert "The selection isn&#x27;t a list of ids: nothing was done." in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "/admin/rewards/ledgerentry/?project__exact=99999999999999999999999",
        "/admin/labeling/item/?project__id__in=1,99999999999999999999999",
        "/admin/labeling/annotation/?item__project__gte=-99999999999999999999999",
        "/admin/rewards/rewardpolicy/?project__lt=99999999999999999999999",
    ],
)
def test_a_filter_on_an_id_past_64_bits_is_an_invalid_filter_not_a_500(
    browser: Client, query: str
) -> None:
    """SQLite raised OverflowError running the page's query."""
    response = browser.get(query, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0].endswith("?e=1")


def test_a_tokens_page_never_shows_its_hash(browser: Client, buyer: User) -> None:
    api_key_issue(user=buyer, name="acme")
    key = AccessToken.objects.get(user=buyer)
    page = browser.get(f"/admin/accounts/accesstoken/{key.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert key.prefix in html and key.key_hash not in html
    assert "key_hash" not in page.context["adminform"].form.fields


def _ban_action(browser: Client, action: str, *users: User, reason: str) -> str:
    data = {"action": action, "_selected_action": [u.pk for u in users], "apply": "1"}
    response = browser.post("/admin/accounts/user/", {**data, "reason": reason}, follow=True)
    return " ".join(str(m) for m in response.context["messages"])


def test_banning_a_banned_user_keeps_their_ban_and_unbanning_one_who_isnt_does_nothing(
    browser: Client,
    contributor: Contributor,
    second_contributor: Contributor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rechecks: list[tuple[int, str]] = []
    monkeypatch.setattr("accounts.services._recheck_enqueue", lambda *args: rechecks.append(args))
    banned, free = contributor.user, second_contributor.user
    _ban_action(browser, "ban_users", banned, reason="ring of 12 sybil wallets, flag #7")
    first = User.objects.get(pk=banned.pk)

    notice = _ban_action(browser, "ban_users", banned, free, reason="oops")
    assert "Banned 1 user(s). 1 already banned: left as they were." in notice
    again = User.objects.get(pk=banned.pk)
    assert (again.ban_reason, again.banned_at, again.session_epoch) == (
        "ring of 12 sybil wallets, flag #7",
        first.banned_at,
        first.session_epoch,
    )
    assert AuditEvent.objects.filter(action="user.ban", target_id=str(banned.pk)).count() == 1
    assert len(rechecks) == 2  # the first ban of each, not the second of the first

    never = User.objects.create_user("never-banned", role=User.Role.BUYER)
    notice = _ban_action(browser, "unban_users", never, reason="x")
    assert "Lifted the ban of 0 user(s). 1 not banned: left as they were." in notice
    assert not AuditEvent.objects.filter(target_id=str(never.pk)).exists()
    assert len(rechecks) == 2
