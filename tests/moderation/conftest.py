"""The back office's cast: a text project with an item in review labeled by three contributors
(two say "positive", one "negative"), uploaded by a fourth; a moderator's browser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client, TestCase
from eth_account import Account

from accounts.models import User
from accounts.services import user_get_or_create_for_wallet
from labeling.models import Annotation, Item, Project
from labeling.services import item_create_text


def committed(action: Callable[[], Any]) -> Any:
    """Run ``action`` and then its on-commit callbacks (the credit task, eager in tests)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return action()


def wallet_user() -> User:
    return user_get_or_create_for_wallet(address=Account.create().address)


@pytest.fixture
def uploader(db: None) -> User:
    return wallet_user()


@pytest.fixture
def labelers(db: None) -> list[User]:
    return [wallet_user() for _ in range(3)]


@pytest.fixture
def review_item(text_project: Project, uploader: User, labelers: list[User]) -> Item:
    item = item_create_text(project=text_project, contributor=uploader, text="It works, mostly.")
    for user, label in zip(labelers, ["positive", "positive", "negative"], strict=True):
        Annotation.objects.create(item=item, annotator=user, label=label)
    Item.objects.filter(pk=item.pk).update(
        status=Item.Status.REVIEW, label_count=3, required_labels=3
    )
    item.refresh_from_db()
    return item


@pytest.fixture
def browser(moderator: User) -> Client:
    client = Client()
    client.force_login(moderator)
    return client
