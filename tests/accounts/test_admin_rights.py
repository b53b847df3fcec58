"""Who manages whose account in the back office: a moderator runs contributors and buyers, and only a
superuser touches an account with rights (a superuser, staff, the moderator role): its password,
its form, its ban, its API keys. And a banned account is out of the admin, its sessions ended."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone
from eth_account import Account
from rest_framework.test import APIClient

from accounts.groups import MODERATORS, PAYOUT_MANAGERS, admin_groups_ensure
from accounts.models import AccessToken, AuditEvent, User
from accounts.services import access_token_revoke, api_key_issue, user_ban, user_unban
from tests.conftest import Contributor, sign_in
from tests.support.admin import change_form_data

pytestmark = pytest.mark.django_db

NEW_PASSWORD = {
    "password1": "owned-by-the-moderator-42",
    "password2": "owned-by-the-moderator-42",
    "usable_password": "true",
}


def staff_member(username: str, *groups: str) -> User:
    admin_groups_ensure()
    user = User.objects.create_user(
        username, password="staff passphrase 42", is_staff=True, role=User.Role.MODERATOR
    )
    user.groups.set(Group.objects.filter(name__in=groups))
    return user


def browser_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def colleague() -> User:
    """A staff moderator who is not a superuser: the one whose rights these tests are about."""
    return staff_member("colleague", MODERATORS)


@pytest.fixture
def colleague_browser(colleague: User) -> Client:
    return browser_of(colleague)


@pytest.fixture
def root() -> User:
    return User.objects.create_superuser("root", "root@example.org", "root passphrase 42")


@pytest.fixture
def payout_manager() -> User:
    return staff_member("payer", PAYOUT_MANAGERS)


@pytest.fixture
def other_moderator() -> User:
    return staff_member("other-moderator", MODERATORS)


@pytest.fixture
def api_moderator() -> User:
    """The moderator role without staff status: a moderator's API key opens the moderation API."""
    return User.objects.create_user("api-moderator", role=User.Role.MODERATOR)


ACCOUNTS_WITH_RIGHTS = ["root", "payout_manager", "other_moderator", "api_moderator"]


def ban(browser: Client, *users: User) -> None:
    browser.post(
        "/admin/accounts/user/",
        {
            "action": "ban_users",
            "_selected_action": [u.pk for u in users],
            "apply": "1",
            "reason": "rogue",
        },
    )


@pytest.mark.parametrize("target", ACCOUNTS_WITH_RIGHTS)
def test_a_moderator_cannot_set_the_password_of_an_account_with_rights(
    colleague_browser: Client, target: str, request: pytest.FixtureRequest
) -> None:
    user: User = request.getfixturevalue(target)
    url = f"/admin/accounts/user/{user.pk}/password/"
    assert colleague_browser.get(url).status_code == 403
    assert colleague_browser.post(url, NEW_PASSWORD).status_code == 403
    user.refresh_from_db()
    assert not user.check_password(NEW_PASSWORD["password1"])


@pytest.mark.parametrize("target", ACCOUNTS_WITH_RIGHTS)
def test_a_moderator_cannot_edit_or_deactivate_an_account_with_rights(
    colleague_browser: Client, target: str, request: pytest.FixtureRequest
) -> None:
    user: User = request.getfixturevalue(target)
    url = f"/admin/accounts/user/{user.pk}/change/"
    page = colleague_browser.get(url)
    assert page.status_code == 200  # they may still read it
    fields = page.context["adminform"].form.fields
    assert all(field.disabled for field in fields.values())  # but nothing on it is editable
    data = {
        "username": user.username,
        "email": "mine@example.org",
        "role": User.Role.CONTRIBUTOR,
        "date_joined_0": "2020-01-01",
        "date_joined_1": "00:00:00",
    }  # no is_active: a browser's unticked box
    assert colleague_browser.post(url, data).status_code == 403
    user.refresh_from_db()
    assert user.is_active and user.email != "mine@example.org" and user.role != "contributor"


def test_a_moderator_cannot_edit_their_own_account_either(
    colleague_browser: Client, colleague: User
) -> None:
    url = f"/admin/accounts/user/{colleague.pk}/change/"
    assert colleague_browser.post(url, {"username": "renamed"}).status_code == 403
    assert colleague_browser.post(f"/admin/accounts/user/{colleague.pk}/password/").status_code == (
        403
    )


def test_a_moderator_cannot_ban_or_unban_an_account_with_rights(
    colleague_browser: Client, root: User, payout_manager: User, contributor: Contributor
) -> None:
    ban(colleague_browser, root, payout_manager, contributor.user)
    for user in (root, payout_manager, contributor.user):
        user.refresh_from_db()
        assert user.banned_at is None  # nothing done: not even to the contributor
    page = colleague_browser.get("/admin/accounts/user/")
    notices = [str(m) for m in page.context["messages"]]
    assert any("Only a superuser" in n and "root" in n for n in notices), notices

    user_ban(user=payout_manager, reason="on leave", actor=root)
    colleague_browser.post(
        "/admin/accounts/user/",
        {
            "action": "unban_users",
            "_selected_action": [payout_manager.pk],
            "apply": "1",
            "reason": "back",
        },
    )
    payout_manager.refresh_from_db()
    assert payout_manager.banned_at is not None


@pytest.mark.parametrize("target", ACCOUNTS_WITH_RIGHTS)
def test_a_moderator_cannot_mint_an_api_key_for_an_account_with_rights(
    colleague_browser: Client, target: str, request: pytest.FixtureRequest
) -> None:
    user: User = request.getfixturevalue(target)
    response = colleague_browser.post(
        "/admin/accounts/accesstoken/add/", {"user": user.pk, "name": "mine now"}, follow=True
    )
    assert response.status_code == 200
    assert not AccessToken.objects.filter(user=user).exists()
    assert not any("cm_" in str(m) for m in response.context["messages"])
    choices = response.context["adminform"].form.fields["user"].queryset
    assert user not in choices


def test_a_moderator_cannot_give_the_moderator_role(
    colleague_browser: Client, contributor: Contributor
) -> None:
    url = f"/admin/accounts/user/{contributor.user.pk}/change/"
    page = colleague_browser.get(url)
    roles = [value for value, _ in page.context["adminform"].form.fields["role"].choices]
    assert "moderator" not in roles and "buyer" in roles
    response = colleague_browser.post(url, change_form_data(page, role="moderator"))
    assert response.status_code == 200  # the form again, with the error
    contributor.user.refresh_from_db()
    assert contributor.user.role == User.Role.CONTRIBUTOR


def test_services_refuse_a_moderator_acting_on_an_account_with_rights(
    colleague: User, root: User, api_moderator: User
) -> None:
    with pytest.raises(PermissionDenied):
        user_ban(user=root, reason="x", actor=colleague)
    with pytest.raises(PermissionDenied):
        user_unban(user=root, actor=colleague)
    with pytest.raises(PermissionDenied):
        api_key_issue(user=api_moderator, name="mine", actor=colleague)
    root.refresh_from_db()
    assert root.banned_at is None and not AccessToken.objects.exists()


def test_a_moderator_still_manages_contributors_and_buyers(
    colleague_browser: Client, contributor: Contributor, buyer: User
) -> None:
    # A buyer's password and API key.
    url = f"/admin/accounts/user/{buyer.pk}/password/"
    assert colleague_browser.post(url, NEW_PASSWORD).status_code == 302
    buyer.refresh_from_db()
    assert buyer.check_password(NEW_PASSWORD["password1"])
    response = colleague_browser.post(
        "/admin/accounts/accesstoken/add/", {"user": buyer.pk, "name": "acme"}, follow=True
    )
    assert any("cm_" in str(m) for m in response.context["messages"])
    assert AccessToken.objects.filter(user=buyer, kind=AccessToken.Kind.API_KEY).exists()
    # A contributor's form (made a buyer, then deactivated), and a ban.
    url = f"/admin/accounts/user/{contributor.user.pk}/change/"
    page = colleague_browser.get(url)
    data = change_form_data(page, role="buyer")
    data.pop("is_active")
    assert colleague_browser.post(url, data).status_code == 302
    contributor.user.refresh_from_db()
    assert contributor.user.role == "buyer" and not contributor.user.is_active
    ban(colleague_browser, contributor.user)
    contributor.user.refresh_from_db()
    assert contributor.user.banned_at is not None


def test_a_superuser_manages_staff_accounts(root: User, colleague: User) -> None:
    browser = browser_of(root)
    url = f"/admin/accounts/user/{colleague.pk}/password/"
    assert browser.post(url, NEW_PASSWORD).status_code == 302
    response = browser.post(
        "/admin/accounts/accesstoken/add/", {"user": colleague.pk, "name": "ci"}, follow=True
    )
    assert any("cm_" in str(m) for m in response.context["messages"])
    ban(browser, colleague)
    colleague.refresh_from_db()
    assert colleague.banned_at is not None and colleague.check_password(NEW_PASSWORD["password1"])


def test_a_banned_staff_member_is_out_of_the_admin(colleague: User, root: User) -> None:
    browser = browser_of(colleague)
    assert browser.get("/admin/accounts/user/").status_code == 200
    user_ban(user=colleague, reason="rogue", actor=root)

    # Their open session ends with the ban.
    assert browser.get("/admin/accounts/user/").status_code == 302
    assert "_auth_user_id" not in browser.session
    # And they can't sign in again with their password.
    fresh = Client()
    response = fresh.post(
        "/admin/login/?next=/admin/", {"username": "colleague", "password": "staff passphrase 42"}
    )
    assert response.status_code == 200 and "banned" in response.content.decode()
    assert "_auth_user_id" not in fresh.session
    assert fresh.get("/admin/accounts/user/").status_code == 302


def test_a_banned_staff_members_session_made_before_the_ban_is_refused_by_the_admin(
    colleague: User, root: User
) -> None:
    """Even a session whose hash still matches (banned_at set by hand): the site checks the ban."""
    browser = browser_of(colleague)
    User.objects.filter(pk=colleague.pk).update(ban_reason="x", banned_at=timezone.now())
    assert browser.get("/admin/").status_code == 302


def test_a_ban_ends_the_accounts_sessions_for_good(root: User) -> None:
    account = Account.create()
    browser = APIClient()
    sign_in(browser, account)  # a cookie session, as the sign-in page makes it
    assert browser.get("/api/v1/me/").status_code == 200
    user = User.objects.get(wallet_address=account.address)
    user_ban(user=user, reason="farming", actor=root)
    user_unban(user=user, actor=root)
    # The unban lets them sign in again; the session the ban ended stays ended.
    assert browser.get("/api/v1/me/").status_code in (401, 403)
    assert "_auth_user_id" not in browser.session


def revoke(browser: Client, *tokens: AccessToken, reason: str | None = None) -> str:
    """The revoke action; with a reason, its confirmation page's form, sent."""
    data: dict[str, object] = {"action": "revoke", "_selected_action": [t.pk for t in tokens]}
    if reason is not None:
        data |= {"apply": "1", "reason": reason}
    return browser.post("/admin/accounts/accesstoken/", data, follow=True).content.decode()


@pytest.mark.parametrize("target", ACCOUNTS_WITH_RIGHTS)
def test_a_moderator_cannot_revoke_the_keys_of_an_account_with_rights(
    colleague_browser: Client, colleague: User, target: str, request: pytest.FixtureRequest
) -> None:
    user: User = request.getfixturevalue(target)
    api_key_issue(user=user, name="ops key")
    key = AccessToken.objects.get(user=user)
    page = revoke(colleague_browser, key, reason="mine now")
    assert "Only a superuser revokes" in page
    key.refresh_from_db()
    assert key.revoked_at is None
    assert not AuditEvent.objects.filter(action="token.revoke").exists()
    with pytest.raises(PermissionDenied):
        access_token_revoke(token=key, actor=colleague)


def test_a_key_is_revoked_after_a_confirmation_with_a_reason_audited_once(
    colleague_browser: Client, buyer: User
) -> None:
    api_key_issue(user=buyer, name="acme")
    key = AccessToken.objects.get(user=buyer)
    page = revoke(colleague_browser, key)  # the confirmation page: nothing done yet
    assert "Revoke them" in page and str(key) in page
    key.refresh_from_db()
    assert key.revoked_at is None

    revoke(colleague_browser, key, reason="leaked in a public repo")
    key.refresh_from_db()
    assert key.revoked_at is not None
    (entry,) = AuditEvent.objects.filter(action="token.revoke")
    assert entry.details["reason"] == "leaked in a public repo"

    # Again: already revoked, so nothing is written and the message says so.
    page = revoke(colleague_browser, key, reason="again")
    assert "already revoked" in page
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1
