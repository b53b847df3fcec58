"""Moderators' screens for people: users and bans, API keys (shown once), the audit trail.

A moderator manages contributors and buyers; an account with rights (a superuser, staff, the
moderator role) only a superuser changes: its form, password, ban and API keys
(``accounts.permissions.user_may_manage_account``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from accounts.admin_audit import AuditedModelAdmin, reason_or_confirmation
from accounts.audit import audit_record
from accounts.models import AccessToken, AuditEvent, User
from accounts.permissions import user_may_manage_account, users_manageable_by
from accounts.services import (
    access_token_revoke,
    api_key_issue,
    user_ban,
    user_save_by_moderator,
    user_unban,
)
from accounts.tokens import token_hash


def _audit_value(value: Any) -> Any:
    """A form value as the audit trail stores it (JSON): related objects by their names."""
    if isinstance(value, QuerySet | list | tuple):
        return [str(v) for v in value]
    if isinstance(value, models.Model):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class ReadOnlyAdmin(AuditedModelAdmin[Any]):
    """A list moderators may read but never edit: ledgers and trails are append-only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Token amounts shown in units of the payout asset (exact), not raw base units."""
        from rewards.fields import TokenAmountField

        amounts = {f.name for f in self.model._meta.fields if isinstance(f, TokenAmountField)}
        return [
            _token_amount_display(name) if name in amounts else name
            for name in super().get_fields(request, obj)
        ]


def _token_amount_display(name: str) -> Any:
    from rewards.asset import payout_asset

    def display(obj: Any) -> str:
        value = getattr(obj, name)
        return "—" if value is None else payout_asset().format(value)

    display.short_description = name.replace("_", " ")  # type: ignore[attr-defined]
    display.__name__ = f"{name}_in_units"
    return display


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, AuditedModelAdmin[Group]):
    """Groups carry permissions (moderators, payout managers): their changes are audited."""


@admin.register(User)
class UserAdmin(BaseUserAdmin[User], AuditedModelAdmin[User]):  # type: ignore[misc]
    list_display = [
        "username",
        "wallet_address",
        "role",
        "is_staff",
        "banned_at",
        "date_joined",
        "report_link",
    ]
    list_filter = ["role", "is_staff", "is_active"]
    search_fields = ["username", "wallet_address", "email"]
    fieldsets = [
        *(BaseUserAdmin.fieldsets or ()),
        ("Crowdmint", {"fields": ["role", "wallet_address", "banned_at", "ban_reason"]}),
    ]
    # The wallet receives payouts: it is set by signing in with it, never edited by a moderator.
    readonly_fields = ["wallet_address", "banned_at", "ban_reason", "last_login", "date_joined"]
    actions = ["ban_users", "unban_users"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Labels, uploads and ledger entries keep their author: ban or deactivate instead.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """The change form and the password form (Django's checks this right on the account):
        read-only, and refused when posted, for an account the moderator may not manage."""
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or user_may_manage_account(request.user, obj)

    def formfield_for_choice_field(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "role" and not request.user.is_superuser:
            # The moderator role opens the moderation API: a right, given by a superuser.
            kwargs["choices"] = [
                (value, label) for value, label in User.Role.choices if value != User.Role.MODERATOR
            ]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def _refused_targets(self, request: HttpRequest, queryset: QuerySet[User]) -> bool:
        """True, with a message naming them, if the selection holds accounts the moderator may
        not ban or unban: the action then does nothing (not a part of the selection silently)."""
        refused = [str(u) for u in queryset if not user_may_manage_account(request.user, u)]
        if refused:
            messages.error(
                request,
                "Only a superuser bans or unbans an account with rights (staff or moderator): "
                f"{', '.join(refused)}. Nothing was done.",
            )
        return bool(refused)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(self.readonly_fields)
        if obj is not None and not request.user.is_superuser:
            # Rights are given by a superuser: a moderator can't join "payout managers" or make
            # themselves a superuser by editing an account.
            fields += ["is_staff", "is_superuser", "groups", "user_permissions"]
        return fields

    @admin.display(description="report")
    def report_link(self, user: User) -> str:
        url = reverse("admin:accounts_user_report", args=[user.pk])
        return format_html('<a href="{}">report</a>', url)

    def get_urls(self) -> list[URLPattern]:
        from moderation.admin_views import contributor_report_view

        def report(request: HttpRequest, user_id: int) -> HttpResponse:
            return contributor_report_view(self, request, user_id)

        view = self.admin_site.admin_view(report)
        return [
            path("<int:user_id>/report/", view, name="accounts_user_report"),
            *super().get_urls(),
        ]

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        """Every moderator edit of a user goes through the service that audits it."""
        # The add form's password fields are hashed into the user, never written to the trail.
        secret = {"password", "password1", "password2", "usable_password"}
        changed = {
            name: _audit_value(form.cleaned_data.get(name))
            for name in form.changed_data
            if name not in secret
        }
        user_save_by_moderator(
            user=obj,
            changed=changed,
            actor=request.user,  # type: ignore[arg-type]
            created=not change,
        )

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        """Django's password form, with an audit entry in the same transaction when it saves."""
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                target = User.objects.get(pk=unquote(id))
                audit_record(actor=request.user, action="user.password", target=target)  # type: ignore[arg-type]
        return response

    @admin.action(
        description="Ban the selected users (revokes their tokens, holds their payouts)…",
        permissions=["change"],
    )
    def ban_users(self, request: HttpRequest, queryset: QuerySet[User]) -> TemplateResponse | None:
        if self._refused_targets(request, queryset):
            return None
        users = list(queryset)
        # Already banned: their ban (its reason, its time) stays the one that was given.
        already = [str(user) for user in users if user.is_banned]
        reason, page = reason_or_confirmation(
            self,
            request,
            effect=f"ban {len(users) - len(already)} user(s): their sign-in tokens and API keys "
            "stop working and their unpaid rewards wait; nothing already paid is touched.",
            targets=[str(user) for user in users if not user.is_banned],
            submit="Ban them",
            notes=[f"Already banned, left as they are: {', '.join(already)}."] if already else [],
        )
        if page is not None:
            return page
        banned = sum(
            user_ban(user=user, reason=reason or "", actor=request.user)  # type: ignore[arg-type]
            for user in users
        )
        messages.success(
            request, f"Banned {banned} user(s).{_left_alone(len(users) - banned, 'already banned')}"
        )
        return None

    @admin.action(description="Lift the ban of the selected users…", permissions=["change"])
    def unban_users(
        self, request: HttpRequest, queryset: QuerySet[User]
    ) -> TemplateResponse | None:
        if self._refused_targets(request, queryset):
            return None
        users = list(queryset)
        not_banned = [str(user) for user in users if not user.is_banned]
        reason, page = reason_or_confirmation(
            self,
            request,
            effect=f"lift the ban of {len(users) - len(not_banned)} user(s): they can sign in "
            "again and their unpaid rewards are paid at the next settlement.",
            targets=[str(user) for user in users if user.is_banned],
            submit="Lift the bans",
            notes=[f"Not banned, left as they are: {', '.join(not_banned)}."] if not_banned else [],
        )
        if page is not None:
            return page
        lifted = 0
        for user in users:
            with transaction.atomic():
                if not user_unban(user=user, actor=request.user):  # type: ignore[arg-type]
                    continue
                # user_unban's own entry has no reason: the why goes beside it, in its transaction.
                audit_record(
                    actor=request.user,  # type: ignore[arg-type]
                    action="user.unban_reason",
                    target=user,
                    details={"reason": reason},
                )
                lifted += 1
        messages.success(
            request,
            f"Lifted the ban of {lifted} user(s).{_left_alone(len(users) - lifted, 'not banned')}",
        )
        return None


def _left_alone(count: int, state: str) -> str:
    """The admin message's note on selected users already in the state an action puts them in."""
    return f" {count} {state}: left as they were." if count else ""


class ApiKeyForm(forms.ModelForm[AccessToken]):
    class Meta:
        model = AccessToken
        fields = ["user", "name"]

    def clean_user(self) -> User:
        user: User = self.cleaned_data["user"]
        if user.role not in (User.Role.BUYER, User.Role.MODERATOR):
            raise forms.ValidationError(
                "API keys are for buyers: set this user's role to buyer first."
            )
        return user


@admin.register(AccessToken)
class AccessTokenAdmin(AuditedModelAdmin[AccessToken]):
    list_display = [
        "prefix",
        "kind",
        "name",
        "user",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["kind"]
    search_fields = ["prefix", "name", "user__username", "user__wallet_address"]
    actions = ["revoke"]
    # The secret's hash is not shown, not even read-only: nobody needs it to manage keys, and
    # what is derived from a secret stays off pages that view-only staff can read.
    hidden_fields = ("key_hash",)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return [f.name for f in AccessToken._meta.fields if f.name not in self.hidden_fields]

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*(super().get_exclude(request, obj) or ()), *self.hidden_fields]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user":
            # A key for a staff account would let the moderator holding it act as them:
            # only a superuser issues one (api_key_issue refuses it too).
            kwargs["queryset"] = users_manageable_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: AccessToken, form: Any, change: bool) -> None:
        if change:
            return
        buyer = form.cleaned_data["user"]
        secret = api_key_issue(user=buyer, name=form.cleaned_data["name"], actor=request.user)  # type: ignore[arg-type]
        obj.pk = AccessToken.objects.get(key_hash=token_hash(secret)).pk
        messages.warning(
            request, f"API key for {buyer}: {secret} — copy it now, it is shown only once."
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens and keys…", permissions=["change"])
    def revoke(
        self, request: HttpRequest, queryset: QuerySet[AccessToken]
    ) -> TemplateResponse | None:
        """Revoke with a reason, after a confirmation page; the keys of an account with rights
        only a superuser revokes (a moderator could lock the back office's owners out)."""
        tokens = list(queryset.select_related("user"))
        refused = sorted(
            {str(t.user) for t in tokens if not user_may_manage_account(request.user, t.user)}
        )
        if refused:
            messages.error(
                request,
                "Only a superuser revokes the tokens of an account with rights (staff or "
                f"moderator): {', '.join(refused)}. Nothing was done.",
            )
            return None
        live = [t for t in tokens if t.revoked_at is None]
        reason, page = reason_or_confirmation(
            self,
            request,
            effect=f"revoke {len(live)} token(s) and key(s): whoever uses them is refused from "
            "now on; a revoked API key can't be brought back (issue a new one).",
            targets=[str(t) for t in live],
            submit="Revoke them",
            notes=[
                f"{len(tokens) - len(live)} of the selected are already revoked: left as they are."
            ]
            if len(live) < len(tokens)
            else [],
            credits_anyone=False,
        )
        if page is not None:
            return page
        revoked = sum(
            access_token_revoke(token=token, actor=request.user, reason=reason or "")  # type: ignore[arg-type]
            for token in live
        )
        skipped = len(tokens) - revoked
        messages.success(
            request,
            f"Revoked {revoked} token(s)."
            + (f" {skipped} already revoked: left as they were." if skipped else ""),
        )
        return None


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "action", "target_type", "target_id"]
    # actor is nullable: Django's default select_related leaves it out (a query per row).
    list_select_related = ["actor"]
    list_filter = ["action"]
    search_fields = ["target_id", "actor__username"]
