"""The bulk accept asks first and pays once; the back office's reads run a bounded number of
queries; every page renders on the demo's data."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import AuditEvent, User
from frontend.seed import seed_demo
from labeling.models import Annotation, Item, Project
from moderation.backoffice import contributor_report, dashboard_read
from rewards.models import LedgerEntry
from tests.moderation.conftest import committed, wallet_user

pytestmark = pytest.mark.django_db


def bulk_accept(browser: Client, item: Item, **data: Any) -> Any:
    return browser.post(
        "/admin/labeling/item/",
        {"action": "accept_plurality", "_selected_action": [item.pk], **data},
        follow=True,
    )


def test_the_bulk_accept_confirms_labels_and_credits_before_it_pays_once(
    browser: Client, review_item: Item, labelers: list[User]
) -> None:
    page = bulk_accept(browser, review_item)
    html = page.content.decode()
    assert f"Sentiment #{review_item.pk} → &#x27;positive&#x27;" in html
    assert len(page.context["credits"]) == 3
    assert not LedgerEntry.objects.exists()
    committed(lambda: bulk_accept(browser, review_item, apply="1", reason="plurality is right"))
    committed(lambda: bulk_accept(browser, review_item, apply="1", reason="double click"))
    review_item.refresh_from_db()
    assert review_item.decided_label == "positive"
    assert LedgerEntry.objects.count() == 3
    assert AuditEvent.objects.filter(action="item.review_accept").count() == 1


def test_the_bulk_accept_leaves_out_banned_labelers_votes_as_the_decision_does(
    browser: Client, review_item: Item, labelers: list[User], moderator: User
) -> None:
    """It counted every answer: with the two "positive" labelers banned, it accepted their
    label, and the item was sold with the ring's answer."""
    from accounts.services import user_ban

    for ring in labelers[:2]:
        user_ban(user=ring, actor=moderator, reason="ring")
    page = bulk_accept(browser, review_item)
    html = page.content.decode()
    assert f"Sentiment #{review_item.pk} → &#x27;negative&#x27;" in html
    assert sum("is left out and unpaid" in note for note in page.context["notes"]) == 2
    committed(lambda: bulk_accept(browser, review_item, apply="1", reason="the honest label"))
    review_item.refresh_from_db()
    assert review_item.decided_label == "negative"


def test_the_bulk_accept_leaves_a_tie_to_a_moderator(
    browser: Client, review_item: Item, labelers: list[User]
) -> None:
    Annotation.objects.filter(item=review_item, annotator=labelers[0]).delete()  # 1 to 1
    page = bulk_accept(browser, review_item)
    assert page.context["targets"] == []
    assert any("a tie" in note for note in page.context["notes"])
    committed(lambda: bulk_accept(browser, review_item, apply="1", reason="plurality"))
    review_item.refresh_from_db()
    assert review_item.status == Item.Status.REVIEW


def test_the_bulk_accept_after_select_all_accepts_every_item_its_page_listed(
    browser: Client, review_item: Item, text_project: Project, labelers: list[User]
) -> None:
    """The confirmation page posts back "select all" as the changelist sent it, not one hidden
    field per item (past DATA_UPLOAD_MAX_NUMBER_FIELDS, a large queue's confirmation was a 400)."""
    from tests.support.admin import confirmation_form_data

    other = Item.objects.create(
        project=text_project,
        text="another",
        content_sha256="f" * 64,
        required_labels=3,
        status=Item.Status.REVIEW,
        label_count=3,
    )
    for user in labelers:
        Annotation.objects.create(item=other, annotator=user, label="negative")
    page = browser.post(
        "/admin/labeling/item/?status__exact=review",
        {
            "action": "accept_plurality",
            "_selected_action": [review_item.pk],
            "select_across": "1",
            "index": "0",
        },
    )
    assert len(page.context["targets"]) == 2
    data = confirmation_form_data(page, apply="1", reason="plurality is right")
    assert data["select_across"] == ["1"] and data["_selected_action"] == [str(review_item.pk)]
    committed(lambda: browser.post("/admin/labeling/item/?status__exact=review", data))
    assert set(Item.objects.values_list("status", flat=True)) == {Item.Status.ACCEPTED}


def _many_items(project: Project, count: int) -> None:
    users = [wallet_user() for _ in range(3)]
    for n in range(count):
        item = Item.objects.create(
            project=project,
            text=f"text {n}",
            content_sha256=f"{n:064d}",
            required_labels=3,
            status=Item.Status.REVIEW,
            label_count=3,
        )
        for user in users:
            Annotation.objects.create(item=item, annotator=user, label="positive")


def test_the_dashboard_and_the_queue_run_a_bounded_number_of_queries(
    browser: Client, text_project: Project, django_assert_max_num_queries: Any
) -> None:
    _many_items(text_project, 3)
    with django_assert_max_num_queries(10) as few:
        dashboard_read()
    _many_items(Project.objects.create(name="More", data_kind="text", classes=["a", "b"]), 20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        dashboard_read()
    browser.get("/admin/labeling/item/review/")  # warm the session and content types
    with django_assert_max_num_queries(12):
        page = browser.get("/admin/labeling/item/review/")
    assert len(page.context["rows"]) == 23


def test_a_contributor_report_runs_a_bounded_number_of_queries(
    text_project: Project, django_assert_max_num_queries: Any
) -> None:
    _many_items(text_project, 30)
    user = Annotation.objects.first().annotator  # type: ignore[union-attr]
    with django_assert_max_num_queries(20):
        report = contributor_report(user=user)
    assert report.label_total == 30


def test_every_back_office_page_renders_on_the_demo(db: None) -> None:
    cast = seed_demo(moderator_password="demo")
    browser = Client()
    browser.force_login(User.objects.get(username="moderator"))
    assert browser.get("/admin/").status_code == 200
    assert browser.get("/admin/labeling/item/review/").status_code == 200
    assert browser.get("/admin/moderation/flag/").status_code == 200
    assert browser.get("/admin/labeling/item/").status_code == 200
    assert browser.get("/admin/labeling/project/").status_code == 200
    for user in cast.contributors:
        page = browser.get(f"/admin/accounts/user/{user.pk}/report/")
        assert page.status_code == 200
        assert page.context["report"].label_total > 0
    image = Item.objects.filter(project=cast.image_project).first()
    assert image is not None
    assert browser.get(f"/admin/labeling/item/{image.pk}/change/").status_code == 200
    assert browser.get(f"/admin/labeling/item/{image.pk}/image/").status_code == 200


def _changelist_rows(count: int, project: Project, moderator: User) -> None:
    """``count`` more rows in each list whose columns follow a nullable relation or read the
    payout settings: grants (granted_by), the audit trail (actor), payout batches (approved_by,
    and "waiting for", which reads the approval threshold)."""
    from django.utils import timezone

    from market.models import DatasetGrant
    from rewards.models import PayoutBatch

    start = PayoutBatch.objects.count()
    for n in range(start, start + count):
        buyer = User.objects.create_user(f"buyer-{n}", role=User.Role.BUYER)
        DatasetGrant.objects.create(
            project=project,
            buyer=buyer,
            source=DatasetGrant.Source.MODERATOR,
            granted_by=moderator,
        )
        AuditEvent.objects.create(actor=moderator, action="x", target_type="a", target_id=str(n))
        approved = n % 2 == 0
        PayoutBatch.objects.create(
            batch_id=f"0x{n:064x}",
            chain_id=1,
            token_address="0x" + "0" * 40,
            recipient_count=1,
            total=5,
            approved_by=moderator if approved else None,
            approved_at=timezone.now() if approved else None,
        )


@pytest.mark.parametrize(
    "changelist",
    ["/admin/market/datasetgrant/", "/admin/accounts/auditevent/", "/admin/rewards/payoutbatch/"],
)
def test_a_changelist_runs_as_many_queries_for_50_rows_as_for_5(
    browser: Client, text_project: Project, moderator: User, changelist: str
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rewards.models import PayoutSettings

    PayoutSettings.objects.update_or_create(pk=1, defaults={"approval_threshold": 3})

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert browser.get(changelist).status_code == 200
        return len(captured.captured_queries)

    _changelist_rows(5, text_project, moderator)
    browser.get(changelist)  # warm the session and content types
    five = queries()
    _changelist_rows(45, text_project, moderator)
    assert browser.get(changelist).context["cl"].result_count >= 50
    assert queries() == five
