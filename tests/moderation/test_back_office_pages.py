"""The back office's pages: the dashboard on the admin home, a contributor's report, image
thumbnails for staff only, and the review queue with its confirmation pages."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from django.utils import timezone
from PIL import Image

from accounts.models import AuditEvent, User
from labeling.models import Annotation, Item, Project, WorkerSkill
from labeling.services import item_create_image
from labeling.services.review import item_review_accept
from moderation.charts import bar_chart, heat_map
from moderation.models import Flag
from rewards.models import LedgerEntry, PayoutBatch
from tests.conftest import image_bytes
from tests.moderation.conftest import committed

pytestmark = pytest.mark.django_db
TOKEN = 10**18


def test_the_admin_home_shows_the_dashboard_with_svg_charts_and_the_numbers(
    browser: Client, review_item: Item, moderator: User, labelers: list[User]
) -> None:
    Flag.objects.create(user=labelers[2], kind=Flag.Kind.SPEED, evidence={"seconds": 0.2})
    PayoutBatch.objects.create(
        batch_id="0x" + "1" * 64,
        status=PayoutBatch.Status.CONFIRMED,
        chain_id=1,
        token_address="0x" + "0" * 40,
        recipient_count=2,
        total=3 * TOKEN,
        tx_hash="0x" + "2" * 64,
        confirmed_at=timezone.now(),
    )
    page = browser.get("/admin/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Crowdmint back office" in html
    assert (
        html.count('class="crowdmint-chart"') == 3
        and "Labels per day" in html
        and "Payouts per day" in html
    )
    board = page.context["board"]
    (sentiment,) = board.projects
    assert (sentiment.open, sentiment.review, sentiment.accepted, sentiment.rejected) == (
        0,
        1,
        0,
        0,
    )
    assert board.review_waiting == 1 and board.open_flags == 1
    assert board.labels_per_day[-1][1] == 3
    assert board.payouts_per_day[-1][1] == 3 * TOKEN
    assert "<strong>1</strong> open flag(s)" in html


def test_the_dashboard_gives_acceptance_agreement_and_cost_per_accepted_item(
    browser: Client, review_item: Item, moderator: User
) -> None:
    committed(
        lambda: item_review_accept(
            item=review_item, label="positive", moderator=moderator, reason="ok"
        )
    )
    page = browser.get("/admin/")
    (sentiment,) = page.context["board"].projects
    assert sentiment.accepted == 1 and sentiment.acceptance_rate == 1.0
    assert sentiment.agreement == pytest.approx(2 / 3)
    assert sentiment.cost_per_accepted == 25 + 10 + 10
    assert "67%" in page.content.decode()


def test_charts_escape_their_text() -> None:
    svg = str(bar_chart([("<script>", 3.0)], title='a "title" & more'))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "&quot;title&quot; &amp; more" in svg
    grid = str(
        heat_map([[1.0, 0.0], [0.5, 0.5]], rows=["<a>", "b"], columns=["<a>", "b"], title="t")
    )
    assert "<a>" not in grid and grid.count("<rect") == 4 and "50%" in grid


def test_a_contributors_report_shows_gold_confusion_labels_earnings_and_flags(
    browser: Client, review_item: Item, moderator: User, labelers: list[User], text_project: Project
) -> None:
    committed(
        lambda: item_review_accept(
            item=review_item, label="positive", moderator=moderator, reason="ok"
        )
    )
    gold = Item.objects.create(
        project=text_project,
        text="gold",
        content_sha256="g" * 64,
        required_labels=3,
        gold_label="negative",
    )
    Annotation.objects.create(item=gold, annotator=labelers[0], label="negative")
    WorkerSkill.objects.create(
        project=text_project,
        user=labelers[0],
        accuracy=0.9,
        confusion=[[0.9, 0.1], [0.1, 0.9]],
        label_count=2,
        updated_at=timezone.now(),
    )
    other = "0x" + "ab" * 20
    Flag.objects.create(
        user=labelers[0], kind=Flag.Kind.SYBIL, evidence={"cluster": [other], "ip_hash": "x"}
    )
    page = browser.get(f"/admin/accounts/user/{labelers[0].pk}/report/")
    assert page.status_code == 200
    report = page.context["report"]
    assert report.gold_accuracy == 1.0 and report.gold_answered == 1
    (confusion,) = report.confusions
    assert confusion.counts == [[1, 0], [0, 0]]
    assert report.label_total == 2 and report.labels_per_day[-1][1] == 2
    assert report.pending == 10 and report.paid == 0
    assert report.wallets == [labelers[0].wallet_address, other]
    html = page.content.decode()
    # labels vs decisions, the model's estimate (its WorkerSkill), labels per day
    assert html.count('class="crowdmint-chart"') == 3
    assert "100% right of 1 gold answer(s)" in html
    assert "Accounts arriving as a cluster" in html
    assert "0.00 CMT" in html  # 10 base units, rounded for reading


def test_thumbnails_are_served_to_staff_only(
    browser: Client, image_project: Project, moderator: User
) -> None:
    item = item_create_image(
        project=image_project, contributor=None, data=image_bytes(size=(800, 600))
    )
    Item.objects.filter(pk=item.pk).update(status=Item.Status.REVIEW)
    url = f"/admin/labeling/item/{item.pk}/image/"
    response = browser.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")  # type: ignore[attr-defined]
    thumb = browser.get(url, {"thumb": "1"})
    assert thumb["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (320, 240)
    assert Client().get(url).status_code == 302  # to the admin login
    assert Client().get(url, {"thumb": "1"}).status_code == 302
    stranger = User.objects.create_user("stranger", password="x")
    client = Client()
    client.force_login(stranger)
    assert client.get(url).status_code == 302
    queue = browser.get("/admin/labeling/item/review/").content.decode()
    assert f'src="{url}?thumb=1"' in queue and f'href="{url}"' in queue
    assert browser.get("/admin/labeling/item/999/image/").status_code == 404


def test_the_review_queue_shows_each_item_with_its_labels(
    browser: Client, review_item: Item, labelers: list[User]
) -> None:
    page = browser.get("/admin/labeling/item/review/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f"Sentiment #{review_item.pk}" in html
    assert "It works, mostly." in html
    for user in labelers:
        assert str(user) in html
    assert f"/admin/labeling/item/{review_item.pk}/review/accept/" in html


def test_accepting_from_the_queue_confirms_who_it_credits_then_applies_once(
    browser: Client, review_item: Item, labelers: list[User], uploader: User, moderator: User
) -> None:
    url = f"/admin/labeling/item/{review_item.pk}/review/accept/"
    page = browser.get(url, {"label": "positive"})
    html = page.content.decode()
    assert page.status_code == 200
    assert f"accept Sentiment #{review_item.pk} with the label &#x27;positive&#x27;" in html
    credits = page.context["credits"]
    assert len(credits) == 3
    assert str(uploader) in credits[0] and str(labelers[0]) in credits[1]
    assert str(labelers[2]) not in " ".join(credits)
    assert not LedgerEntry.objects.exists()  # a confirmation page changes nothing

    refused = browser.post(url, {"label": "positive", "reason": ""})
    assert (
        refused.status_code == 200
        and not AuditEvent.objects.filter(action="item.review_accept").exists()
    )

    response = committed(lambda: browser.post(url, {"label": "positive", "reason": "clear"}))
    assert response.status_code == 302
    again = committed(
        lambda: browser.post(url, {"label": "negative", "reason": "again"}, follow=True)
    )
    assert "nothing was changed" in again.content.decode()
    assert LedgerEntry.objects.count() == 3
    event = AuditEvent.objects.get(action="item.review_accept")
    assert event.actor == moderator and event.details["reason"] == "clear"


def test_rejecting_and_sending_back_from_the_queue(
    browser: Client, review_item: Item, text_project: Project, labelers: list[User], moderator: User
) -> None:
    page = browser.get(f"/admin/labeling/item/{review_item.pk}/review/reject/")
    assert "It credits nobody." in page.content.decode()
    browser.post(f"/admin/labeling/item/{review_item.pk}/review/reject/", {"reason": "spam"})
    review_item.refresh_from_db()
    assert review_item.status == Item.Status.REJECTED
    assert AuditEvent.objects.get(action="item.reject").details["reason"] == "spam"

    other = Item.objects.create(
        project=text_project,
        text="second",
        content_sha256="s" * 64,
        required_labels=3,
        status=Item.Status.REVIEW,
        label_count=3,
    )
    page = browser.get(f"/admin/labeling/item/{other.pk}/review/send_back/")
    assert "for one more label" in page.content.decode()
    browser.post(f"/admin/labeling/item/{other.pk}/review/send_back/", {"reason": "unsure"})
    other.refresh_from_db()
    assert (other.status, other.required_labels) == ("open", 4)
    assert not LedgerEntry.objects.exists()


def test_an_item_in_review_links_to_its_decisions(browser: Client, review_item: Item) -> None:
    html = browser.get(f"/admin/labeling/item/{review_item.pk}/change/").content.decode()
    assert f"/admin/labeling/item/{review_item.pk}/review/accept/?label=negative" in html
    assert f"/admin/labeling/item/{review_item.pk}/review/send_back/" in html


def test_a_flagged_labeler_is_named_as_left_out_and_is_not_paid(
    browser: Client, review_item: Item, labelers: list[User], uploader: User
) -> None:
    Flag.objects.create(
        user=labelers[1], kind=Flag.Kind.SPEED, project=review_item.project, evidence={}
    )
    url = f"/admin/labeling/item/{review_item.pk}/review/accept/"
    page = browser.get(url, {"label": "positive"})
    credits = " ".join(page.context["credits"])
    assert str(labelers[0]) in credits and str(labelers[1]) not in credits
    assert any(str(labelers[1]) in note for note in page.context["notes"])
    committed(lambda: browser.post(url, {"label": "positive", "reason": "clear"}))
    paid = set(LedgerEntry.objects.filter(reason="label").values_list("user_id", flat=True))
    assert paid == {labelers[0].pk}  # what the page said is what the decision paid


@pytest.mark.probation
def test_a_contributor_report_names_linked_accounts_probation_and_holds(
    browser: Client, labelers: list[User], review_item: Item
) -> None:
    Flag.objects.create(
        user=labelers[0],
        kind=Flag.Kind.SYBIL,
        evidence={"accounts": [labelers[0].pk, labelers[1].pk]},
    )
    page = browser.get(f"/admin/accounts/user/{labelers[0].pk}/report/")
    report = page.context["report"]
    assert [other for other, _ in report.linked] == [labelers[1]]
    html = page.content.decode()
    assert f"/admin/accounts/user/{labelers[1].pk}/report/" in html
    assert report.on_probation  # a new wallet with a single answer
    assert report.rewards_held  # the Sybil flag holds them
    assert "On probation" in html and "Rewards held" in html
