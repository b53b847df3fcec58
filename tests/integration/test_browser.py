"""Contributor pages in headless Chromium: sign in with a browser wallet (EIP-1193 personal_sign
of an EIP-4361 message), label with the keyboard, contribute, and see rewards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from accounts.models import User
from labeling.models import Annotation, Item, Project, Skip
from labeling.services import item_create_text
from tests.support.browser import WALLET_SHIM, csp_violations

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_contributor_signs_in_with_a_wallet_and_labels_with_the_keyboard(
    live_server: Any, page: Any
) -> None:
    wallet = Account.create()
    project = Project.objects.create(
        name="Sentiment",
        data_kind="text",
        classes=["positive", "negative"],
        overlap=3,
        reward_per_label=1,
    )
    first = item_create_text(project=project, contributor=None, text="What a lovely day.")
    second = item_create_text(project=project, contributor=None, text="Awful service.")
    unclear = item_create_text(project=project, contributor=None, text="It is a phone.")
    signed: list[str] = []

    def wallet_sign(message: str, address: str) -> str:
        assert address.lower() == wallet.address.lower()
        signed.append(message)
        return wallet.sign_message(encode_defunct(text=message)).signature.to_0x_hex()

    page.expose_function("walletSign", wallet_sign)
    page.add_init_script(f"window.__walletAddress = '{wallet.address}';" + WALLET_SHIM)

    page.goto(f"{live_server.url}/login/?next=/projects/{project.pk}/label/")
    assert csp_violations(page) == []
    page.click("#wallet-signin")
    page.wait_for_url(
        lambda url: url.endswith(f"/projects/{project.pk}/label/") and "login" not in url
    )
    assert signed and signed[0].startswith(f"{live_server.url.split('//')[1]} wants you to sign in")
    assert wallet.address in signed[0]
    # The header shows the address shortened (it fits a phone); the full one is its title.
    who = page.locator("[data-testid=who]")
    assert who.inner_text() == f"{wallet.address[:6]}…{wallet.address[-4:]}"
    assert who.get_attribute("title") == wallet.address

    page.wait_for_selector("text=What a lovely day.")
    assert csp_violations(page) == []
    # Offline, a key press says so and keeps the item; back online, the same key saves it.
    page.context.set_offline(True)
    page.keyboard.press("1")
    page.wait_for_selector("[data-testid=task-status]:has-text('Could not reach the server')")
    assert page.is_visible("text=What a lovely day.") and not Annotation.objects.exists()
    page.context.set_offline(False)
    page.keyboard.press("1")
    page.wait_for_selector("text=Awful service.")
    page.keyboard.press("2")
    page.wait_for_selector("text=It is a phone.")
    page.keyboard.press("s")  # can't tell: skip it, it is not served again
    page.wait_for_selector("text=No tasks left in this project")
    assert Skip.objects.filter(item=unclear).count() == 1
    assert page.inner_text("[data-testid=done-count]") == "2"
    labels = dict(Annotation.objects.values_list("item_id", "label"))
    assert labels == {first.pk: "positive", second.pk: "negative"}

    # A class key beyond the project's classes does nothing.
    page.keyboard.press("7")
    assert Annotation.objects.count() == 2

    page.goto(f"{live_server.url}/projects/{project.pk}/contribute/")
    page.check("[data-testid=licence]")
    page.fill("textarea[name=text]", "Brand new review.")
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=contribute-status]:has-text('Uploaded as item')")
    page.fill("textarea[name=text]", "Brand new review.")
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=contribute-status]:has-text('duplicate')")
    assert Item.objects.filter(text="Brand new review.").count() == 1
    assert csp_violations(page) == []

    page.goto(f"{live_server.url}/me/rewards/")
    assert page.inner_text("[data-testid=pending]") == "0"
    page.goto(f"{live_server.url}/")
    assert csp_violations(page) == []
    assert not [m for m in page.console_messages if "Content Security Policy" in m]


def test_admin_and_the_api_docs_run_under_the_content_security_policy(
    live_server: Any, page: Any
) -> None:
    User.objects.create_superuser("moderator", "mod@example.org", "correct horse battery staple")
    project = Project.objects.create(
        name="Sentiment", data_kind="text", classes=["positive", "negative"]
    )
    item = item_create_text(project=project, contributor=None, text="Fine.")
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("input[name=username]", "moderator")
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("input[type=submit]")
    page.wait_for_selector("text=Dashboard and moderation")
    moderator = User.objects.get(username="moderator")
    for path in [
        "/admin/",  # the dashboard's inline SVG charts
        "/admin/labeling/item/review/",
        "/admin/moderation/flag/",
        f"/admin/accounts/user/{moderator.pk}/report/",
        "/admin/labeling/item/",
        f"/admin/labeling/item/{item.pk}/change/",
        f"/admin/labeling/project/{project.pk}/change/",
        "/admin/rewards/payoutbatch/",
        "/admin/accounts/user/",
    ]:
        page.goto(f"{live_server.url}{path}")
        assert csp_violations(page) == [], path
    page.goto(f"{live_server.url}/api/v1/docs")
    page.wait_for_selector("text=Crowdmint API")
    page.wait_for_timeout(500)  # Redoc renders the operations after the schema arrives
    assert csp_violations(page) == []
    assert not [m for m in page.console_messages if "Content Security Policy" in m]


def test_a_visitor_without_a_wallet_is_told_so(live_server: Any, page: Any) -> None:
    page.goto(f"{live_server.url}/login/")
    page.click("#wallet-signin")
    page.wait_for_selector("text=No browser wallet found")


def test_a_wallet_signs_in_once_from_a_device_whose_clock_is_ten_minutes_fast(
    live_server: Any, page: Any
) -> None:
    wallet = Account.create()
    signed: list[str] = []

    def wallet_sign(message: str, address: str) -> str:
        signed.append(message)
        return wallet.sign_message(encode_defunct(text=message)).signature.to_0x_hex()

    page.expose_function("walletSign", wallet_sign)
    page.add_init_script(f"window.__walletAddress = '{wallet.address}';" + WALLET_SHIM)
    # Issued At was this clock's time: "message issued in the future", whatever the wallet.
    page.clock.set_system_time(datetime.now(UTC) + timedelta(minutes=10))
    page.goto(f"{live_server.url}/login/?next=/me/rewards/")
    page.dblclick("#wallet-signin")  # a double click signs once
    page.wait_for_url(lambda url: url.endswith("/me/rewards/") and "login" not in url)
    assert len(signed) == 1
    assert User.objects.filter(wallet_address=wallet.address).exists()


def test_a_buyer_enters_a_key_once_browses_datasets_and_downloads_an_export(
    live_server: Any, page: Any, celery_worker: Any, settings: Any
) -> None:
    from django.utils import timezone

    from accounts.services import api_key_issue
    from tests.conftest import give_grant

    bought = Project.objects.create(
        name="Sentiment", data_kind="text", classes=["positive", "negative"], licence="CC0-1.0"
    )
    Project.objects.create(name="Colours", data_kind="image", classes=["red", "blue"], price=10)
    for text in ("<b>not markup</b>", "Fine."):
        item = item_create_text(project=bought, contributor=None, text=text)
        Item.objects.filter(pk=item.pk).update(
            status="accepted", decided_label="positive", decided_at=timezone.now(), confidence=0.97
        )
    buyer = User.objects.create_user("buyer", role=User.Role.BUYER)
    give_grant(bought, buyer)
    key = api_key_issue(user=buyer, name="browser")

    page.goto(f"{live_server.url}/buyers/")
    page.wait_for_selector("text=Enter the API key")
    page.fill("#buyer-key", key)
    page.click("#buyer-key-form button[type=submit]")
    page.wait_for_selector("text=2 datasets; you hold grants for 1.")
    card = page.locator(f"[data-testid=dataset-{bought.pk}]")
    card.locator("text=<b>not markup</b>").wait_for()  # text, never HTML
    assert "licence CC0-1.0" in card.inner_text() and "mean posterior 0.970" in card.inner_text()
    # Priced, but this deployment sells nothing on-chain without a treasury: it says so.
    assert "Not sold on-chain" in page.locator("[data-testid^=dataset-]").nth(1).inner_text()
    treasury = "0x" + "ab" * 20
    settings.DATASET_TREASURY_ADDRESS = treasury
    # The key is kept for the tab: a reload shows the datasets without asking again.
    page.reload()
    page.wait_for_selector("text=2 datasets; you hold grants for 1.")
    priced = page.locator("[data-testid^=dataset-]").nth(1).inner_text()
    assert "Price" in priced and treasury in priced  # where to pay
    card = page.locator(f"[data-testid=dataset-{bought.pk}]")
    card.locator("select[name=format]").select_option("csv")
    card.locator(".export-form button").click()
    card.locator("text=done").wait_for(timeout=60_000)
    with page.expect_download() as download:
        card.locator("[data-testid=download]").click()
    path = download.value.path()
    content = Path(path).read_text(encoding="utf-8")
    assert content.startswith("id,text,") and "<b>not markup</b>" in content
    assert csp_violations(page) == []
