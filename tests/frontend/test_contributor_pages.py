"""The labeling and upload pages as the server renders them (their scripts are tested in
Chromium: tests/integration/test_labeling_ui.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from labeling.models import Annotation, Project
from labeling.services import item_create_text

pytestmark = pytest.mark.django_db


def signed_in(contributor: Any) -> Client:
    browser = Client()
    browser.force_login(contributor.user)
    return browser


def test_the_labeling_page_shows_the_question_guidelines_and_progress_from_the_server(
    contributor: Any, text_project: Project
) -> None:
    Project.objects.filter(pk=text_project.pk).update(
        question="Is this review positive?", guidelines="Sarcasm counts as negative."
    )
    done = item_create_text(project=text_project, contributor=None, text="Labeled today.")
    for text in ("One.", "Two."):
        item_create_text(project=text_project, contributor=None, text=text)
    Annotation.objects.create(item=done, annotator=contributor.user, label="positive")

    html = signed_in(contributor).get(f"/projects/{text_project.pk}/label/").content.decode()

    assert "Is this review positive?" in html and "Sarcasm counts as negative." in html
    assert 'data-testid="left-count">2<' in html and ">3</span> left" in html
    assert 'data-testid="done-count">1<' in html  # survives a reload: it is the server's count
    assert 'data-task="classify"' in html
    # The empty-queue screen is there but hidden, with ways back and no class buttons.
    assert 'data-testid="empty-queue" hidden' in html and 'href="/me/rewards/"' in html
    assert html.index("crowdmint/app.js") < html.index("crowdmint/labeling.js")
    assert "<script>" not in html and "style=" not in html


def test_the_header_shortens_the_wallet_address_and_links_the_favicon(
    contributor: Any, text_project: Project
) -> None:
    address = contributor.user.wallet_address
    html = signed_in(contributor).get("/me/rewards/").content.decode()
    assert f'title="{address}">{address[:6]}…{address[-4:]}</span>' in html
    assert 'rel="icon" href="/static/crowdmint/favicon.svg" type="image/svg+xml"' in html


def test_short_address_leaves_anything_but_an_address_alone() -> None:
    from frontend.templatetags.crowdmint import short_address

    assert short_address("0x12ab34cd56ef7890aabbccddeeff001122338" + "9cd") == "0x12ab…89cd"
    assert short_address("moderator") == "moderator"
    assert short_address(None) == ""


@pytest.mark.parametrize(
    ("share", "shown"),
    [(0.9987, "99.8%"), (1.0, "100%"), (0.5, "50%"), (0.0, "0%"), (0.123, "12.3%"), (None, "–")],
)
def test_a_share_reads_as_a_percentage_that_only_a_perfect_record_rounds_to_100(
    share: float | None, shown: str
) -> None:
    from frontend.templatetags.crowdmint import percent

    assert percent(share) == shown


def test_the_upload_page_takes_several_images_by_picking_or_dropping(
    contributor: Any, image_project: Project
) -> None:
    html = signed_in(contributor).get(f"/projects/{image_project.pk}/contribute/").content.decode()
    assert 'data-testid="dropzone"' in html and "multiple" in html
    assert 'data-max-bytes="10485760"' in html and "up to 10 MB each" in html
    assert 'data-testid="licence"' in html and image_project.licence in html
    assert 'data-testid="my-uploads"' in html and "crowdmint/contribute.js" in html


def test_the_upload_page_of_a_pairwise_text_project_asks_for_both_texts(
    contributor: Any, text_project: Project
) -> None:
    Project.objects.filter(pk=text_project.pk).update(task="pairwise", classes=["a", "b"])
    html = signed_in(contributor).get(f"/projects/{text_project.pk}/contribute/").content.decode()
    assert 'name="text"' in html and 'name="text_b"' in html and 'data-pairwise="yes"' in html


def test_every_credit_is_reachable_a_page_at_a_time(
    contributor: Any, text_project: Project
) -> None:
    """Only the latest 50 credits were listed: an older receipt had no link anywhere."""
    from rewards.models import LedgerEntry

    for n in range(30):
        LedgerEntry.objects.create(
            user=contributor.user,
            amount=n + 1,
            reason=LedgerEntry.Reason.LABEL,
            source=f"test:{n}",
            project=text_project,
        )
    ids = list(LedgerEntry.objects.order_by("-id").values_list("pk", flat=True))
    browser = signed_in(contributor)
    first = browser.get("/me/rewards/").content.decode()
    assert first.count('data-testid="receipt-link"') == 25
    assert f'href="/me/receipts/{ids[0]}/"' in first and "Page 1 of 2 (30 credits)" in first
    second = browser.get("/me/rewards/?page=2").content.decode()
    assert second.count('data-testid="receipt-link"') == 5
    assert f'href="/me/receipts/{ids[-1]}/"' in second and 'rel="prev"' in second
    for odd in ("abc", "999", "-1", "\u0661"):
        assert browser.get("/me/rewards/", {"page": odd}).status_code == 200
