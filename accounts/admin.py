"""Moderators' screens for people: users and bans, API keys (shown once), the audit trail."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.audit import audit_record
from accounts.models import AccessToken, AuditEvent, User
from accounts.services import access_token_revoke, api_key_issue, user_ban, user_unban
from accounts.tokens import token_hash


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """A list moderators may read but never edit: ledgers and trails are append-only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin[User]):
    list_display = ["username", "wallet_address", "role", "is_staff", "banned_at", "date_joined"]
    list_filter = ["role", "is_staff", "is_active"]
    search_fields = ["username", "wallet_address", "email"]
    fieldsets = [
        *(BaseUserAdmin.fieldsets or ()),
        ("Crowdmint", {"fields": ["role", "wallet_address", "banned_at", "ban_reason"]}),
    ]
    readonly_fields = ["banned_at", "ban_reason"]
    actions = ["ban_users", "unban_users"]

    @admin.action(description="Ban the selected users (revokes their tokens, holds their payouts)")
    def ban_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            user_ban(user=user, reason=f"banned by {request.user}")
            audit_record(actor=request.user, action="user.ban", target=user)  # type: ignore[arg-type]
        messages.success(request, f"Banned {queryset.count()} user(s).")

    @admin.action(description="Lift the ban of the selected users")
    def unban_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            user_unban(user=user)
            audit_record(actor=request.user, action="user.unban", target=user)  # type: ignore[arg-type]
        messages.success(request, f"Lifted the ban of {queryset.count()} user(s).")


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
class AccessTokenAdmin(admin.ModelAdmin[AccessToken]):
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

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return [f.name for f in AccessToken._meta.fields]

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

    @admin.action(description="Revoke the selected tokens and keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[AccessToken]) -> None:
        for token in queryset:
            access_token_revoke(token=token)
            audit_record(actor=request.user, action="token.revoke", target=token)  # type: ignore[arg-type]
        messages.success(request, f"Revoked {queryset.count()} token(s).")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "action", "target_type", "target_id"]
    list_filter = ["action"]
    search_fields = ["target_id", "actor__username"]
