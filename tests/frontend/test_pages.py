"""Contributor pages and the demo: rendered through Django's test client."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.demo import demo_accounts
from accounts.models import User
from labeling.models import Item, Project
from rewards.models import LedgerEntry, PayoutBatch

pytestmark = pytest.mark.django_db


def test_the_home_page_lists_open_projects(text_project: Project, image_project: Project) -> None:
    page = Client().get("/")
    assert page.status_code == 200
    assert b"Sentiment" in page.content and b"Colours" in page.content


def test_contributor_pages_need_a_wallet_sign_in(text_project: Project, moderator: User) -> None:
    anonymous = Client().get(f"/projects/{text_project.pk}/label/")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    staff = Client()
    staff.force_login(moderator)
    assert staff.get(f"/projects/{text_project.pk}/label/").status_code == 404


def test_a_signed_in_contributor_sees_the_labeling_page_and_rewards(
    contributor: Any, text_project: Project
) -> None:
    browser = Client()
    browser.force_login(contributor.user)
    label = browser.get(f"/projects/{text_project.pk}/label/")
    assert label.status_code == 200
    assert b'id="classes-data"' in label.content and b"positive" in label.content
    assert browser.get(f"/projects/{text_project.pk}/contribute/").status_code == 200
    rewards = browser.get("/me/rewards/")
    assert rewards.status_code == 200 and b"No payouts yet" in rewards.content


def test_demo_sign_in_is_off_outside_demo_mode() -> None:
    assert Client().post("/login/demo/", {"index": 0}).status_code == 404
    assert b"Demo contributors" not in Client().get("/login/").content


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/me/rewards/", True),
        ("javascript:alert(document.cookie)", False),
        ("https://evil.example/", False),
        ("//evil.example/", False),
        ("/\\evil.example/", False),
    ],
)
def test_sign_in_goes_back_only_to_a_page_of_this_site(
    settings: Any, target: str, kept: bool
) -> None:
    expected = target if kept else "/"
    page = Client().get("/login/", {"next": target})
    assert page.context["next"] == expected
    settings.DEMO_MODE = True
    signed_in = Client().post("/login/demo/", {"index": 0, "next": target})
    assert signed_in.status_code == 302 and signed_in["Location"] == expected


@pytest.mark.django_db(transaction=True)
def test_the_demo_seeds_labels_decides_and_pays(chain: Any, settings: Any) -> None:
    settings.DEMO_MODE = True
    call_command("demo", no_serve=True)
    # One project of every task, text and image where both apply.
    kinds = set(Project.objects.values_list("task", "data_kind"))
    assert kinds == {
        ("classify", "text"),
        ("classify", "image"),
        ("multilabel", "text"),
        ("multilabel", "image"),
        ("boxes", "image"),
        ("spans", "text"),
        ("pairwise", "text"),
        ("pairwise", "image"),
    }
    for project in Project.objects.all():  # some decided and paid, some left for visitors
        decided = Item.objects.filter(project=project, status=Item.Status.ACCEPTED)
        assert decided.exists(), project.name
        assert Item.objects.filter(project=project, status=Item.Status.OPEN).exists(), project.name
        assert LedgerEntry.objects.filter(project=project, allocation__isnull=False).exists()
    batch = PayoutBatch.objects.get()
    assert batch.status == PayoutBatch.Status.CONFIRMED
    for account in demo_accounts():
        user = User.objects.get(wallet_address=account.address)
        earned = sum(int(e.amount) for e in LedgerEntry.objects.filter(user=user))
        assert chain.balance_of(account.address) == earned > 0

    browser = Client()
    assert b"Demo contributors" in browser.get("/login/").content
    signed_in = browser.post("/login/demo/", {"index": 1, "next": "/me/rewards/"})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/me/rewards/"
    page = browser.get("/me/rewards/")
    assert demo_accounts()[1].address.encode() in page.content
    assert batch.tx_hash.encode() in page.content


def test_token_amounts_are_shown_exactly_in_whole_tokens() -> None:
    from frontend.templatetags.crowdmint import short_hash, tokens

    assert tokens(1_500_000_000_000_000_000) == "1.5"
    assert tokens(10**40 + 1) == "1" + "0" * 22 + ".000000000000000001"
    assert tokens(0) == "0"
    assert tokens(10**18 * 12) == "12"
    assert short_hash("0x" + "ab" * 32) == "0xabababab…abab"


def test_the_rewards_page_names_credits_and_counts_labels_waiting(
    make_contributor: Any, text_project: Project
) -> None:
    from django.utils import timezone

    from labeling.models import Annotation, WorkerSkill
    from labeling.services import item_create_text

    me = make_contributor()
    waiting = item_create_text(project=text_project, contributor=None, text="undecided")
    Annotation.objects.create(item=waiting, annotator=me.user, label="positive")
    decided = item_create_text(project=text_project, contributor=None, text="decided")
    LedgerEntry.objects.create(
        user=me.user,
        amount=10**18,
        reason="label",
        source="annotation:1",
        project=text_project,
        item=decided,
    )
    WorkerSkill.objects.create(
        project=text_project,
        user=me.user,
        accuracy=0.9,
        confusion=[],
        label_count=1,
        updated_at=timezone.now(),
    )
    browser = Client()
    browser.force_login(me.user)
    html = browser.get("/me/rewards/").content.decode()
    assert 'data-testid="labels-waiting">1<' in html
    assert f"Label on item {decided.pk} (Sentiment)" in html
    assert "annotation:1" not in html
    assert "<time datetime=" in html


def test_the_buyers_page_asks_for_a_key_and_loads_its_script() -> None:
    from django.test import Client

    page = Client().get("/buyers/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="buyer-key"' in html and 'type="password"' in html
    assert "/static/crowdmint/buyers.js" in html and "<script>" not in html
    assert "default-src 'self'" in page["Content-Security-Policy"]


def test_favicon_ico_leads_to_the_sites_icon_for_pages_that_name_none() -> None:
    # Admin and the API name no icon: browsers ask for /favicon.ico, which was a 404.
    response = Client().get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/crowdmint/favicon.svg"
