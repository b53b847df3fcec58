"""The back office's admin site: Django's, closed to banned accounts.

Named as the default site by ``accounts.apps.CrowdmintAdminConfig`` (in ``INSTALLED_APPS`` in
place of ``django.contrib.admin``), so ``admin.site`` is this one everywhere.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.template.response import TemplateResponse

from accounts.models import User


class AdminSignInForm(AdminAuthenticationForm):
    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        # A ban keeps the password usable (an unban restores the account as it was): refused here.
        if isinstance(user, User) and user.is_banned:
            raise ValidationError("This account is banned.", code="banned")


class CrowdmintAdminSite(admin.AdminSite):
    login_form = AdminSignInForm

    def has_permission(self, request: HttpRequest) -> bool:
        """Active staff who aren't banned. A ban also ends the account's sessions (its session
        epoch); this check holds whatever a session says."""
        user = request.user
        if not super().has_permission(request):
            return False
        return isinstance(user, User) and not user.is_banned

    def logout(self, request: HttpRequest, extra_context: Any = None) -> TemplateResponse:
        """Django's sign-out, which also revokes the bearer token a wallet sign-in of this
        session returned (once the sign-out is done: not for a GET or a failed CSRF check)."""
        from accounts.apis import session_sign_in_token_id
        from accounts.services import session_token_revoke

        token_id = session_sign_in_token_id(request)  # read before the session is flushed
        response = super().logout(request, extra_context)
        if token_id is not None and not request.user.is_authenticated:
            session_token_revoke(token_id=token_id)
        return response
