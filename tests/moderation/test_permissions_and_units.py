"""Who may do what in the back office: the "moderators" group runs the crowd but has no payout
rights; "payout managers" approve payouts and change rewards. And token amounts are entered in
units of the payout asset, converted exactly to base units."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django import forms
from django.core.management import call_command
from django.test import Client

from accounts.groups import MODERATORS, PAYOUT_MANAGERS, admin_groups_ensure
from accounts.models import AuditEvent, User
from labeling.models import Item, Project
from market.models import DatasetPriceChange
from rewards.forms import TokenUnitsField
from rewards.models import PayoutBatch, RewardPolicy

pytestmark = pytest.mark.django_db
TOKEN = 10**18


def staff(name: str, *groups: str) -> Client:
    from django.contrib.auth.models import Group

    admin_groups_ensure()
    user = User.objects.create_user(name, password="x", is_staff=True, role=User.Role.MODERATOR)
    user.groups.set(Group.objects.filter(name__in=groups))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def batch(db: None) -> PayoutBatch:
    return PayoutBatch.objects.create(
        batch_id="0x" + "3" * 64,
        chain_id=1,
        token_address="0x" + "0" * 40,
        recipient_count=1,
        total=5 * TOKEN,
    )


def approve(client: Client, batch: PayoutBatch) -> Any:
    return client.post(
        "/admin/rewards/payoutbatch/",
        {"action": "approve", "_selected_action": [batch.pk], "apply": "1", "reason": "checked"},
        follow=True,
    )


def test_a_moderator_cannot_approve_payouts_or_change_rewards(
    batch: PayoutBatch, text_project: Project
) -> None:
    browser = staff("mod", MODERATORS)
    listing = browser.get("/admin/rewards/payoutbatch/")
    assert listing.status_code == 200  # they may read them
    form = listing.context["action_form"]
    actions = [] if form is None else [v for v, _ in form.fields["action"].choices]
    assert "approve" not in actions and "hold" not in actions
    approve(browser, batch)
    batch.refresh_from_db()
    assert batch.approved_at is None
    assert browser.post("/admin/rewards/payoutbatch/settle/").status_code == 403
    assert browser.get("/admin/rewards/rewardpolicy/add/").status_code == 403
    assert (
        browser.post(
            "/admin/rewards/payoutsettings/1/change/", {"threshold": "0", "reason": "x"}
        ).status_code
        == 403
    )
    page = browser.get(f"/admin/labeling/project/{text_project.pk}/change/")
    assert page.status_code == 200
    assert not {"reward_per_label", "reward_per_item", "price"} & set(
        page.context["adminform"].form.fields
    )
    new = browser.get("/admin/labeling/project/add/")
    assert not {"reward_per_label", "reward_per_item", "price"} & set(
        new.context["adminform"].form.fields
    )
    assert not AuditEvent.objects.filter(action__startswith="payout").exists()


def test_a_moderator_can_run_the_crowd(review_item: Item) -> None:
    browser = staff("mod", MODERATORS)
    assert browser.get("/admin/").status_code == 200
    assert browser.get("/admin/labeling/item/review/").status_code == 200
    response = browser.post(
        f"/admin/labeling/item/{review_item.pk}/review/reject/", {"reason": "spam"}
    )
    assert response.status_code == 302
    review_item.refresh_from_db()
    assert review_item.status == Item.Status.REJECTED


def test_a_moderator_cannot_give_themselves_payout_rights() -> None:
    browser = staff("mod", MODERATORS)
    me = User.objects.get(username="mod")
    page = browser.get(f"/admin/accounts/user/{me.pk}/change/")
    assert not {"groups", "is_superuser", "user_permissions"} & set(
        page.context["adminform"].form.fields
    )


def test_a_payout_manager_approves_payouts_and_sets_rewards(
    batch: PayoutBatch, text_project: Project
) -> None:
    browser = staff("payer", PAYOUT_MANAGERS)
    actions = [
        v
        for v, _ in browser.get("/admin/rewards/payoutbatch/")
        .context["action_form"]
        .fields["action"]
        .choices
    ]
    assert "approve" in actions
    approve(browser, batch)
    batch.refresh_from_db()
    assert batch.approved_at is not None
    response = browser.post(
        "/admin/rewards/rewardpolicy/add/",
        {
            "project": text_project.pk,
            "per_label_units": "1.5",
            "per_item_units": "2",
            "gold_bonus_units": "0",
            "epoch_budget_units": "",
            "weight_by_posterior": "on",
            "note": "harder items",
        },
    )
    assert response.status_code == 302, response.content
    assert (
        RewardPolicy.objects.filter(project=text_project).order_by("-version").first().per_label
        == 15 * 10**17
    )  # type: ignore[union-attr]


def test_a_payout_manager_changes_a_projects_price_and_nothing_of_how_its_crowd_works(
    text_project: Project,
) -> None:
    from tests.support.admin import change_form_data

    url = f"/admin/labeling/project/{text_project.pk}/change/"
    browser = staff("payer", PAYOUT_MANAGERS)
    page = browser.get(url)
    assert set(page.context["adminform"].form.fields) == {"price", "audit_reason"}
    tampered = change_form_data(
        page,
        price="2.5",
        fraud_policy="count",
        is_open=None,
        agreement_threshold="0.01",
        classes='["a", "b", "c"]',
        audit_reason="new price list",
    )
    assert browser.post(url, tampered).status_code == 302
    project = Project.objects.get(pk=text_project.pk)
    assert project.price == 25 * 10**17
    # Recorded with its time and author: a purchase is held to the price of its transfer's time.
    change = DatasetPriceChange.objects.get(project=project)
    assert (change.previous_price, change.price) == (text_project.price, 25 * 10**17)
    assert change.changed_by == User.objects.get(username="payer")
    # Saving the form again with the same price records nothing.
    browser.post(url, change_form_data(browser.get(url), audit_reason="no change"))
    assert DatasetPriceChange.objects.filter(project=project).count() == 1
    assert (project.fraud_policy, project.is_open, project.agreement_threshold) == (
        text_project.fraud_policy,
        True,
        text_project.agreement_threshold,
    )
    assert project.classes == text_project.classes

    crowd = staff("mod", MODERATORS).get(url).context["adminform"].form.fields
    assert {"fraud_policy", "is_open", "classes"} <= set(crowd) and "price" not in crowd
    both = staff("both", MODERATORS, PAYOUT_MANAGERS).get(url).context["adminform"].form.fields
    assert {"price", "fraud_policy", "is_open", "classes", "agreement_threshold"} <= set(both)


def test_the_groups_command_is_idempotent() -> None:
    call_command("admin_groups", stdout=open("/dev/null", "w"))  # noqa: SIM115
    first = admin_groups_ensure()
    assert admin_groups_ensure() == first
    assert first[MODERATORS] > 0 and first[PAYOUT_MANAGERS] > 0


class AmountForm(forms.Form):
    amount = TokenUnitsField(label="Amount")


@pytest.mark.parametrize(
    ("typed", "base"),
    [
        ("12.5", 125 * 10**17),
        ("0", 0),
        ("1", TOKEN),
        ("0.000000000000000001", 1),
        (" 3 ", 3 * TOKEN),
    ],
)
def test_token_units_round_trip_exactly(typed: str, base: int) -> None:
    form = AmountForm({"amount": typed})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["amount"] == base
    field = AmountForm.base_fields["amount"]
    shown = field.prepare_value(base)  # what the form shows for a stored amount
    assert isinstance(shown, str) and field.clean(shown) == base


@pytest.mark.parametrize(
    "typed",
    [
        "-1",
        "abc",
        "0.0000000000000000001",
        "NaN",
        "Infinity",
        "",
        "1e999999999",  # scaled, it overflowed the decimal context: a 500
        "1e-999999999",  # scaled, it underflowed to 0: a positive amount taken for zero
        "9" * 5000,
        "\u0661\u0662",  # Arabic-Indic 12: Decimal reads it, a moderator's eye may not
    ],
)
def test_token_units_refuse_what_is_not_an_amount(typed: str) -> None:
    assert not AmountForm({"amount": typed}).is_valid()


HUGE = "1e999999999"


def test_every_amount_form_says_a_huge_amount_is_too_large(
    browser: Client, text_project: Project
) -> None:
    """The approval threshold, a reward policy's amounts, a project's price and rates: the form
    again with its error, where the decimal Overflow was a 500."""
    posts = [
        (
            "/admin/rewards/payoutsettings/1/change/",
            {"threshold": HUGE, "reason": "r"},
            "threshold",
        ),
        (
            "/admin/rewards/rewardpolicy/add/",
            {
                "project": text_project.pk,
                "per_label_units": HUGE,
                "per_item_units": "1",
                "gold_bonus_units": "0",
                "epoch_budget_units": HUGE,
                "note": "n",
            },
            "per_label_units",
        ),
        ("/admin/labeling/project/add/", project_form(price=HUGE), "price"),
        ("/admin/labeling/project/add/", project_form(reward_per_label=HUGE), "reward_per_label"),
    ]
    for url, data, field in posts:
        response = browser.post(url, data)
        assert response.status_code == 200, url
        errors = response.context["adminform"].form.errors
        assert "a larger amount can't be paid out" in errors[field][0], (url, errors)
    assert not RewardPolicy.objects.filter(project=text_project, note="n").exists()
    assert not Project.objects.filter(name="Birds").exists()


def project_form(**overrides: str) -> dict[str, str]:
    """The admin's new-project form, filled in."""
    return {
        "name": "Birds",
        "data_kind": "image",
        "task": "classify",
        "classes": '["finch", "crow"]',
        "overlap": "3",
        "max_labels": "7",
        "reward_per_label": "0.25",
        "reward_per_item": "1",
        "consensus_method": "majority_vote",
        "acceptance_threshold": "0.95",
        "agreement_threshold": "0.5",
        "lease_seconds": "600",
        "daily_upload_quota": "200",
        "min_seconds_per_label": "0.5",
        "fraud_policy": "hold",
        "licence": "CC0-1.0",
        "price": "12.5",
        "is_open": "on",
    } | overrides


def test_the_project_form_takes_token_units(browser: Client, moderator: User) -> None:
    page = browser.get("/admin/labeling/project/add/")
    assert "Reward per label (CMT)" in page.content.decode()
    data = project_form()
    response = browser.post("/admin/labeling/project/add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    project = Project.objects.get(name="Birds")
    assert (project.reward_per_label, project.reward_per_item, project.price) == (
        25 * 10**16,
        TOKEN,
        125 * 10**17,
    )
    listing = browser.get("/admin/labeling/project/").content.decode()
    assert "0.25 CMT / 1.00 CMT" in listing and "12.5 CMT" in listing
    change = browser.get(f"/admin/labeling/project/{project.pk}/change/")
    assert 'value="12.5"' in change.content.decode()


def test_a_payout_manager_alone_cannot_ban_or_decide_flags(labelers: list[User]) -> None:
    from moderation.models import Flag

    flag = Flag.objects.create(user=labelers[0], kind=Flag.Kind.SPEED)
    browser = staff("payer", PAYOUT_MANAGERS)
    for url in ("/admin/accounts/user/", "/admin/moderation/flag/"):
        page = browser.get(url)
        assert page.status_code == 200  # they may read
        form = page.context["action_form"]
        assert form is None or not [v for v, _ in form.fields["action"].choices if v]
    browser.post(
        "/admin/moderation/flag/",
        {"action": "confirm_and_ban", "_selected_action": [flag.pk], "apply": "1", "reason": "x"},
    )
    flag.refresh_from_db()
    labelers[0].refresh_from_db()
    assert flag.state == Flag.State.OPEN and not labelers[0].is_banned


def test_read_only_pages_show_amounts_in_token_units(
    browser: Client, text_project: Project, labelers: list[User], review_item: Item
) -> None:
    from rewards.models import LedgerEntry

    entry = LedgerEntry.objects.create(
        user=labelers[0],
        amount=15 * 10**17,
        reason="label",
        source="annotation:1",
        project=text_project,
        item=review_item,
    )
    listing = browser.get("/admin/rewards/ledgerentry/").content.decode()
    detail = browser.get(f"/admin/rewards/ledgerentry/{entry.pk}/change/")
    assert detail.status_code == 200
    html = detail.content.decode()
    assert "1.5 CMT" in listing and "1.5 CMT" in html
    assert f"Sentiment #{review_item.pk}" in listing
    assert "1500000000000000000" not in html


def test_a_payout_batch_page_shows_its_total_in_token_units(
    browser: Client, batch: PayoutBatch
) -> None:
    page = browser.get(f"/admin/rewards/payoutbatch/{batch.pk}/change/")
    assert page.status_code == 200
    assert "5 CMT" in page.content.decode()


def test_a_moderator_reads_an_epoch_close_with_its_rate_and_who_it_left_out(
    text_project: Project, labelers: list[User]
) -> None:
    from rewards.models import EpochClose

    policy = RewardPolicy.objects.create(project=text_project, version=9, epoch_budget=TOKEN)
    close = EpochClose.objects.create(
        project=text_project,
        epoch=20_000,
        budget=TOKEN,
        spent=4 * TOKEN,
        scaled_to=TOKEN,
        cut_from=4 * TOKEN,
        cut_to=TOKEN,
        held_users=[labelers[0].pk],
        policy=policy,
    )
    browser = staff("mod", MODERATORS)
    listing = browser.get("/admin/rewards/epochclose/")
    assert listing.status_code == 200
    assert "25.00%" in listing.content.decode() and "4 CMT" in listing.content.decode()
    detail = browser.get(f"/admin/rewards/epochclose/{close.pk}/change/")
    assert detail.status_code == 200 and "4 CMT" in detail.content.decode()
    assert browser.post(f"/admin/rewards/epochclose/{close.pk}/delete/").status_code == 403


@pytest.mark.parametrize(
    ("classes", "error"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested 100000 levels deep"),  # was a RecursionError
        ('["finch\\u0000", "crow"]', "control characters"),  # PostgreSQL's JSON refused it
        ('["finch\\n", "crow"]', "control characters"),
        (json.dumps(["x" * 101, "crow"]), "at most 100 characters"),
    ],
)
def test_the_project_form_refuses_classes_it_could_not_store_or_label(
    browser: Client, classes: str, error: str
) -> None:
    response = browser.post("/admin/labeling/project/add/", project_form(classes=classes))
    assert response.status_code == 200
    assert error in str(response.context["adminform"].form.errors["classes"])
    assert not Project.objects.filter(name="Birds").exists()
