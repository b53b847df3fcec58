"""Role gates for the API, and who manages whose account in the back office. One condition per
line; each endpoint names the gate it needs."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import User


def user_is_contributor(user: Any) -> bool:
    if not user.is_authenticated:
        return False
    if not user.is_active or user.is_banned:
        return False
    return user.role == User.Role.CONTRIBUTOR and bool(user.wallet_address)


def user_is_buyer(user: Any) -> bool:
    if not user.is_authenticated:
        return False
    if not user.is_active or user.is_banned:
        return False
    return user.role in (User.Role.BUYER, User.Role.MODERATOR) or user.is_staff


def user_is_moderator(user: Any) -> bool:
    if not user.is_authenticated:
        return False
    if not user.is_active or user.is_banned:
        return False
    return user.role == User.Role.MODERATOR or bool(user.is_staff)


def user_has_rights(user: User) -> bool:
    """An account with rights beyond a contributor's or a buyer's: a superuser, staff (the admin),
    or the moderator role (the moderation API with a moderator's API key)."""
    if user.is_superuser:
        return True
    if user.is_staff:
        return True
    return user.role == User.Role.MODERATOR


def _in_good_standing(actor: Any) -> bool:
    if not actor.is_authenticated:
        return False
    if not actor.is_active:
        return False
    return not actor.is_banned


def user_may_manage_account(actor: Any, target: User) -> bool:
    """Whether ``actor`` may change ``target``'s account: its admin form, password, ban, API keys.

    Only a superuser manages an account with rights: a moderator who could set a colleague's or a
    superuser's password, or mint their API key, could act as them; one who could ban or
    deactivate them could lock the back office's owners out. ``users_manageable_by`` is the same
    rule as a query: change both together.
    """
    if not _in_good_standing(actor):
        return False
    if actor.is_superuser:
        return True
    return not user_has_rights(target)


def users_manageable_by(actor: Any) -> QuerySet[User]:
    """The accounts ``user_may_manage_account`` lets ``actor`` change, as a query."""
    if not _in_good_standing(actor):
        return User.objects.none()
    if actor.is_superuser:
        return User.objects.all()
    return User.objects.filter(is_superuser=False, is_staff=False).exclude(role=User.Role.MODERATOR)


def request_account(request: Request) -> User:
    """The signed-in account of a request that a permission above has already let through."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


class IsContributor(BasePermission):
    message = "Only contributors signed in with a wallet may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return user_is_contributor(request.user)


class IsBuyer(BasePermission):
    message = "A buyer's API key is required for dataset access."

    def has_permission(self, request: Request, view: Any) -> bool:
        return user_is_buyer(request.user)


class IsModerator(BasePermission):
    message = "Only moderators (a staff session or a moderator's API key) may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return user_is_moderator(request.user)
