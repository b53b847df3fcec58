"""Role gates for the API. One condition per line; each endpoint names the gate it needs."""

from __future__ import annotations

from typing import Any

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
