"""The cast and the commit helper the ledger tests share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.test import TestCase
from eth_account import Account

from accounts.models import User
from accounts.services import user_get_or_create_for_wallet


def labeler() -> User:
    """A fresh contributor with a wallet of their own."""
    return user_get_or_create_for_wallet(address=Account.create().address)


def committed(action: Callable[[], Any]) -> Any:
    """Run ``action`` and then its on-commit callbacks (the credit tasks, eager in tests), as a
    real commit would."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return action()
