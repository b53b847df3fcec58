"""Access to datasets: a grant per buyer and dataset, given by a moderator (audited) or bought
on-chain (verified from the transaction's receipt and Transfer logs, on the embedded EVM with a
real ERC-20); without one a 403 says what is missing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from eth_account import Account
from rest_framework.test import APIClient

from accounts.models import AuditEvent, User
from accounts.services import api_key_issue
from labeling.models import ConsensusFit, Item, Project
from labeling.services import item_create_text
from market.models import DatasetGrant, DatasetPurchase
from rewards.chain import ChainClient
from tests.conftest import give_grant

pytestmark = pytest.mark.django_db

PRICE = 5_000_000  # 5 tUSD (6 decimals)


def accept(project: Project, text: str, label: str = "positive", **fields: Any) -> Item:
    item = item_create_text(project=project, contributor=None, text=text)
    Item.objects.filter(pk=item.pk).update(
        status=Item.Status.ACCEPTED,
        decided_label=label,
        decided_at=timezone.now(),
        confidence=fields.pop("confidence", 0.97),
        **fields,
    )
    return item


def records(api: APIClient, project: Project, **params: Any) -> Any:
    return api.get(f"/api/v1/datasets/{project.pk}/records/", params)


# --- Grants -----------------------------------------------------------------------------------


def test_without_a_grant_a_buyer_gets_403_naming_the_grant_and_how_to_buy_it(
    text_project: Project, buyer_api: APIClient, settings: Any
) -> None:
    settings.DATASET_TREASURY_ADDRESS = "0x" + "ab" * 20
    Project.objects.filter(pk=text_project.pk).update(price=PRICE)
    accept(text_project, "fine")
    for path in ("records/", "export"):
        response = buyer_api.get(f"/api/v1/datasets/{text_project.pk}/{path}")
        assert response.status_code == 403
        body = response.json()
        assert body["missing"] == "grant" and body["dataset"] == text_project.pk
        assert "no access grant" in body["detail"] and "/purchase" in body["detail"]
        assert body["price"] == str(PRICE) and body["treasury"] == settings.DATASET_TREASURY_ADDRESS


def test_a_grant_opens_one_dataset_only(
    text_project: Project, image_project: Project, buyer_api: APIClient, buyer: User
) -> None:
    accept(text_project, "fine")
    give_grant(text_project, buyer)
    assert records(buyer_api, text_project).status_code == 200
    assert records(buyer_api, image_project).status_code == 403
    other = User.objects.create_user("other", role=User.Role.BUYER)
    other_api = APIClient()
    other_api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(user=other, name='k')}")
    assert records(other_api, text_project).status_code == 403


def test_a_closed_dataset_stays_readable_with_a_grant_and_a_revoked_one_closes_it(
    text_project: Project, buyer_api: APIClient, buyer: User
) -> None:
    accept(text_project, "fine")
    give_grant(text_project, buyer)
    Project.objects.filter(pk=text_project.pk).update(is_open=False)
    assert [r["text"] for r in records(buyer_api, text_project).json()["results"]] == ["fine"]
    DatasetGrant.objects.filter(buyer=buyer).update(revoked_at=timezone.now())
    assert records(buyer_api, text_project).status_code == 403


def test_contributors_and_strangers_never_read_datasets(
    text_project: Project, contributor: Any
) -> None:
    assert records(contributor.api, text_project).status_code == 403
    assert records(APIClient(), text_project).status_code == 401
    assert APIClient().get("/api/v1/datasets/").status_code == 401


def test_the_list_shows_every_dataset_with_granted_counts_task_licence_price_and_quality(
    text_project: Project,
    image_project: Project,
    buyer_api: APIClient,
    buyer: User,
    django_assert_max_num_queries: Any,
    settings: Any,
) -> None:
    Project.objects.filter(pk=image_project.pk).update(is_open=False, price=PRICE)
    accept(text_project, "one", confidence=0.9)
    accept(text_project, "two", confidence=1.0)
    item_create_text(project=text_project, contributor=None, text="open")
    ConsensusFit.objects.create(
        project=text_project,
        method="dawid_skene",
        priors=[0.5, 0.5],
        default_confusion=[[0.8, 0.2], [0.2, 0.8]],
        iterations=3,
        converged=True,
        label_count=9,
        device="cpu",
        seconds=0.1,
        fitted_at=timezone.now(),
        percent_agreement=0.9,
        fleiss_kappa=0.8,
        krippendorff_alpha=0.79,
    )
    give_grant(text_project, buyer)
    with django_assert_max_num_queries(4):
        datasets = buyer_api.get("/api/v1/datasets/").json()
    text, image = datasets
    assert (text["id"], text["granted"], image["granted"]) == (text_project.pk, True, False)
    assert text["accepted_count"] == 2 and text["item_count"] == 3
    assert text["task"] == "classify" and text["classes"] == ["positive", "negative"]
    assert text["licence"] == "CC-BY-4.0" and text["price"] == "0"
    assert image["is_open"] is False and image["price"] == str(PRICE)
    assert image["price_display"].endswith(" CMT")
    # A price alone sells nothing: the page told buyers to pay a treasury the deployment hadn't.
    assert (image["for_sale"], image["treasury"]) == (False, None)
    assert (text["for_sale"], text["treasury"]) == (False, None)
    treasury = "0x" + "ab" * 20
    settings.DATASET_TREASURY_ADDRESS = treasury
    again = {d["id"]: d for d in buyer_api.get("/api/v1/datasets/").json()}
    assert (again[image["id"]]["for_sale"], again[image["id"]]["treasury"]) == (True, treasury)
    assert (again[text["id"]]["for_sale"], again[text["id"]]["treasury"]) == (False, None)
    quality = text["quality"]
    assert quality["mean_posterior"] == pytest.approx(0.95)
    assert quality["agreement"]["fleiss_kappa"] == 0.8
    assert image["quality"] == {"agreement": None, "mean_posterior": None}


def test_a_moderator_gives_and_revokes_grants_in_admin_audited(
    text_project: Project, buyer: User, moderator: User, buyer_api: APIClient
) -> None:
    admin = Client()
    admin.force_login(moderator)
    response = admin.post(
        "/admin/market/datasetgrant/add/",
        {"project": text_project.pk, "buyer": buyer.pk, "note": "invoice 42"},
    )
    assert response.status_code == 302
    grant = DatasetGrant.objects.get()
    assert (grant.source, grant.granted_by, grant.note) == ("moderator", moderator, "invoice 42")
    event = AuditEvent.objects.get(action="dataset.grant")
    assert event.actor == moderator and event.details["buyer"] == buyer.pk
    assert records(buyer_api, text_project).status_code == 200
    # A second grant for the same buyer and dataset is refused, and nothing is written.
    admin.post("/admin/market/datasetgrant/add/", {"project": text_project.pk, "buyer": buyer.pk})
    assert DatasetGrant.objects.count() == 1
    revoke = {"action": "revoke_grants", "_selected_action": [grant.pk]}
    page = admin.post("/admin/market/datasetgrant/", revoke)  # asks for a reason first
    assert "You are about to <strong>revoke 1 grant(s)" in page.content.decode()
    admin.post("/admin/market/datasetgrant/", {**revoke, "apply": "1", "reason": "unpaid"})
    grant.refresh_from_db()
    assert grant.revoked_at is not None and grant.revoked_by == moderator
    event = AuditEvent.objects.get(action="dataset.grant_revoke", actor=moderator)
    assert event.details.get("reason") == "unpaid"
    assert records(buyer_api, text_project).status_code == 403


def test_moderators_read_every_dataset(text_project: Project, moderator: User) -> None:
    accept(text_project, "fine")
    browser = Client()
    browser.force_login(moderator)
    assert browser.get(f"/api/v1/datasets/{text_project.pk}/records/").status_code == 200


# --- Purchases on the embedded EVM ------------------------------------------------------------


@pytest.fixture
def stablecoin(settings: Any) -> Iterator[ChainClient]:
    """The embedded chain paying in a real 6-decimal ERC-20; the signer holds plenty of it and
    plays the buyer's wallet."""
    from rewards.client import chain_client, chain_client_reset

    settings.PAYOUT_ASSET = "erc20"
    settings.PAYOUT_ASSET_SYMBOL = "tUSD"
    settings.PAYOUT_ASSET_DECIMALS = 6
    settings.DATASET_TREASURY_ADDRESS = Account.create().address
    chain_client_reset()
    yield chain_client()
    chain_client_reset()


def signature_of(project: Project, buyer: User, tx_hash: str, key: str | None = None) -> str:
    """The paying wallet's signature of the purchase's claim (by default the embedded chain's
    signer, which pays in these tests)."""
    from eth_account.messages import encode_defunct

    from market.services.grants import purchase_message
    from rewards.chain.factory import embedded_account_keys

    text = purchase_message(project=project, buyer=buyer, tx_hash=tx_hash)
    signed = Account.from_key(key or embedded_account_keys()[0]).sign_message(
        encode_defunct(text=text)
    )
    return "0x" + bytes(signed.signature).hex()


def buy(api: APIClient, project: Project, tx_hash: str, buyer: User | None = None) -> Any:
    """POST a purchase; with ``buyer``, signed by the embedded chain's signer (the payer)."""
    body: dict[str, Any] = {"tx_hash": tx_hash}
    if buyer is not None:
        body["signature"] = signature_of(project, buyer, tx_hash)
    return api.post(f"/api/v1/datasets/{project.pk}/purchase", body, format="json")


@pytest.fixture
def priced(text_project: Project) -> Project:
    Project.objects.filter(pk=text_project.pk).update(price=PRICE)
    text_project.refresh_from_db()
    accept(text_project, "bought")
    return text_project


def test_a_transfer_of_the_price_to_the_treasury_buys_a_grant_once(
    stablecoin: ChainClient, priced: Project, buyer_api: APIClient, buyer: User, settings: Any
) -> None:
    assert records(buyer_api, priced).status_code == 403
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE).tx_hash
    response = buy(buyer_api, priced, tx, buyer)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["source"] == "purchase" and body["tx_hash"] == tx and body["amount"] == str(PRICE)
    assert records(buyer_api, priced).json()["results"][0]["text"] == "bought"
    purchase = DatasetPurchase.objects.get()
    assert purchase.payer == stablecoin.address and purchase.amount == PRICE
    assert AuditEvent.objects.filter(action="dataset.purchase", actor=buyer).exists()

    # The same hash again, by anyone, for any dataset: refused, nothing written.
    other = User.objects.create_user("other", role=User.Role.BUYER)
    other_api = APIClient()
    other_api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(user=other, name='k')}")
    replay = buy(other_api, priced, tx.upper().replace("0X", "0x"))
    assert replay.status_code == 409 and "already used" in replay.json()["detail"]
    assert DatasetGrant.objects.count() == 1 and DatasetPurchase.objects.count() == 1


def test_a_payment_below_the_price_or_elsewhere_buys_nothing(
    stablecoin: ChainClient, priced: Project, buyer_api: APIClient, buyer: User, settings: Any
) -> None:
    short = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE - 1).tx_hash
    refused = buy(buyer_api, priced, short, buyer)
    assert refused.status_code == 400
    assert (
        "paid 4.999999 tUSD" in refused.json()["detail"]
        and "costs 5 tUSD" in refused.json()["detail"]
    )
    elsewhere = stablecoin.transfer_asset(Account.create().address, PRICE).tx_hash
    assert buy(buyer_api, priced, elsewhere, buyer).status_code == 400
    # Another token's transfer to the treasury is not a payment in the payout asset.
    other_token = stablecoin.deploy_mock_stablecoin()
    stablecoin.mint_mock_stablecoin(other_token, settings.DATASET_TREASURY_ADDRESS, PRICE)
    minted = stablecoin.mint_mock_stablecoin(
        other_token, settings.DATASET_TREASURY_ADDRESS, PRICE
    ).tx_hash
    assert buy(buyer_api, priced, minted, buyer).status_code == 400
    assert not DatasetGrant.objects.exists() and not DatasetPurchase.objects.exists()


def test_unknown_and_malformed_transactions_are_400(
    stablecoin: ChainClient, priced: Project, buyer_api: APIClient, buyer: User
) -> None:
    unknown = buy(buyer_api, priced, "0x" + "12" * 32, buyer)
    assert unknown.status_code == 400 and "not on the chain" in unknown.json()["detail"]
    for bad in ("0x1234", "not a hash", "0x" + "zz" * 32, "", 12):
        response = buy(buyer_api, priced, bad)  # type: ignore[arg-type]
        assert response.status_code == 400 and response.json()["detail"]
    assert (
        buyer_api.post(f"/api/v1/datasets/{priced.pk}/purchase", {}, format="json").status_code
        == 400
    )
    assert buy(buyer_api, Project(pk=9999), "0x" + "12" * 32).status_code == 404


def test_a_purchase_waits_for_the_confirmations_it_needs(
    stablecoin: ChainClient, priced: Project, buyer_api: APIClient, buyer: User, settings: Any
) -> None:
    settings.DATASET_PURCHASE_CONFIRMATIONS = 3
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE).tx_hash
    early = buy(buyer_api, priced, tx, buyer)
    assert early.status_code == 409 and "1 of the 3 confirmations" in early.json()["detail"]
    for _ in range(2):  # two more blocks
        stablecoin.transfer_asset(Account.create().address, 1)
    assert buy(buyer_api, priced, tx, buyer).status_code == 201


def test_a_buyer_with_a_wallet_on_record_must_pay_from_it(
    stablecoin: ChainClient, priced: Project, buyer_api: APIClient, buyer: User, settings: Any
) -> None:
    User.objects.filter(pk=buyer.pk).update(wallet_address=Account.create().address)
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE).tx_hash
    refused = buy(buyer_api, priced, tx)
    assert refused.status_code == 400 and "not from your wallet" in refused.json()["detail"]


def test_a_buyer_without_a_wallet_claims_a_payment_only_with_the_payers_signature(
    stablecoin: ChainClient, priced: Project, buyer_api: APIClient, buyer: User, settings: Any
) -> None:
    """The transfer is public: any buyer without a wallet on record could post another's hash
    first and take the grant it paid for."""
    from market.services.grants import purchase_message

    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE).tx_hash
    unsigned = buy(buyer_api, priced, tx)
    assert unsigned.status_code == 400
    assert "with the wallet that paid" in unsigned.json()["detail"]
    # The exact text, to sign as it is: signing it is what the next request does.
    text = unsigned.json()["message"]
    assert text == purchase_message(project=priced, buyer=buyer, tx_hash=tx)
    assert f"\nTransaction: {tx.lower()}\n" in text
    thief = User.objects.create_user("thief", role=User.Role.BUYER)
    thief_api = APIClient()
    thief_api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(user=thief, name='k')}")
    # The payer's signature for the buyer doesn't work for anyone else, nor another key's.
    body = {"tx_hash": tx, "signature": signature_of(priced, buyer, tx)}
    stolen = thief_api.post(f"/api/v1/datasets/{priced.pk}/purchase", body, format="json")
    assert stolen.status_code == 400 and "not from your wallet" in stolen.json()["detail"]
    forged = {"tx_hash": tx, "signature": signature_of(priced, thief, tx, key="0x" + "42" * 32)}
    stolen = thief_api.post(f"/api/v1/datasets/{priced.pk}/purchase", forged, format="json")
    assert stolen.status_code == 400 and "not from your wallet" in stolen.json()["detail"]
    bad = {"tx_hash": tx, "signature": "0x1234"}
    assert (
        thief_api.post(f"/api/v1/datasets/{priced.pk}/purchase", bad, format="json").status_code
        == 400
    )
    assert not DatasetPurchase.objects.exists()
    assert buy(buyer_api, priced, tx, buyer).status_code == 201
    assert DatasetPurchase.objects.get().payer == stablecoin.address


def test_only_the_buyers_own_transfer_in_a_transaction_counts(
    stablecoin: ChainClient, priced: Project, buyer_api: APIClient, buyer: User, settings: Any
) -> None:
    """Every sender's transfers to the treasury were added up: one unit from the buyer's wallet
    and the rest from a third party bought the dataset."""
    User.objects.filter(pk=buyer.pk).update(wallet_address=Account.create().address)
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE).tx_hash
    refused = buy(buyer_api, priced, tx)
    assert refused.status_code == 400 and "not from your wallet" in refused.json()["detail"]


def test_datasets_without_a_price_or_a_treasury_are_not_sold_on_chain(
    stablecoin: ChainClient, text_project: Project, buyer_api: APIClient, settings: Any
) -> None:
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE).tx_hash
    free = buy(buyer_api, text_project, tx)
    assert free.status_code == 409 and "not sold on-chain" in free.json()["detail"]
    settings.DATASET_TREASURY_ADDRESS = ""
    Project.objects.filter(pk=text_project.pk).update(price=PRICE)
    assert buy(buyer_api, text_project, tx).status_code == 409
    assert not DatasetPurchase.objects.exists()


def test_a_buyer_who_holds_a_grant_keeps_the_transaction_unused(
    stablecoin: ChainClient, priced: Project, buyer_api: APIClient, buyer: User, settings: Any
) -> None:
    give_grant(priced, buyer)
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE).tx_hash
    response = buy(buyer_api, priced, tx)
    assert response.status_code == 409 and "already hold" in response.json()["detail"]
    assert not DatasetPurchase.objects.exists()


def test_the_demo_seeds_a_buyer_of_everything_and_a_buyer_of_the_text_dataset(
    settings: Any,
) -> None:
    from frontend.seed import seed_demo
    from rewards.client import chain_client_reset

    chain_client_reset()
    cast = seed_demo(moderator_password="pw-for-the-test")
    everything, text_only = APIClient(), APIClient()
    everything.credentials(HTTP_AUTHORIZATION=f"Bearer {cast.buyer_key}")
    text_only.credentials(HTTP_AUTHORIZATION=f"Bearer {cast.text_buyer_key}")
    datasets = 2 + len(cast.task_projects)
    assert [d["granted"] for d in everything.get("/api/v1/datasets/").json()] == [True] * datasets
    granted = [d["granted"] for d in text_only.get("/api/v1/datasets/").json()]
    assert granted == [True] + [False] * (datasets - 1)
    assert records(text_only, cast.text_project).status_code == 200
    assert records(text_only, cast.image_project).status_code == 403
    chain_client_reset()


def test_a_purchase_on_a_failing_node_is_a_503_after_one_try(
    priced: Project, buyer_api: APIClient, buyer: User, settings: Any
) -> None:
    """web3 retried each failed call five times (with a 30 s timeout, minutes on a hanging node)
    while the buyer's request, and a web server thread, waited."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from rewards.client import chain_client_reset

    calls: list[str] = []

    class Failing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.CHAIN_RPC_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.CHAIN_PRIVATE_KEY = "0x" + "11" * 32
    settings.CHAIN_TOKEN_ADDRESS = "0x" + "cd" * 20
    settings.DATASET_TREASURY_ADDRESS = "0x" + "ab" * 20
    chain_client_reset()
    try:
        response = buy(buyer_api, priced, "0x" + "12" * 32, buyer)
    finally:
        server.shutdown()
        chain_client_reset()
    assert response.status_code == 503 and "can't be reached" in response.json()["detail"]
    assert len(calls) == 1


# --- The price a purchase meets: the one in force when its transfer was mined -----------------


def mined_at(client: ChainClient, tx_hash: str) -> Any:
    """The transfer's block timestamp, as a datetime."""
    from datetime import UTC, datetime

    payment = client.asset_payment(tx_hash)
    assert payment is not None
    return datetime.fromtimestamp(payment.block_timestamp, tz=UTC)


def set_price(project: Project, price: int, monkeypatch: Any = None, at: Any = None) -> None:
    """A moderator's price change, through the service the admin calls; ``at``: as our clock
    reads it then."""
    from market.services.prices import dataset_price_set

    if at is not None:
        monkeypatch.setattr(timezone, "now", lambda: at)
    dataset_price_set(project=project, price=price, by=None)
    if at is not None:
        monkeypatch.undo()


def test_a_price_raised_after_the_transfer_still_sells_at_the_price_it_paid(
    stablecoin: ChainClient,
    priced: Project,
    buyer_api: APIClient,
    buyer: User,
    settings: Any,
    monkeypatch: Any,
) -> None:
    """The buyer's tokens reached the treasury, then a moderator raised the price before the
    claim: the claim was refused and the tokens kept for nothing."""
    from datetime import timedelta

    settings.DATASET_PRICE_GRACE_SECONDS = 0  # to the second: the raise is after the block
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE).tx_hash
    set_price(priced, 3 * PRICE, monkeypatch, at=mined_at(stablecoin, tx) + timedelta(seconds=1))
    response = buy(buyer_api, priced, tx, buyer)
    assert response.status_code == 201, response.json()
    assert response.json()["price"] == str(PRICE) and response.json()["amount"] == str(PRICE)
    purchase = DatasetPurchase.objects.get()
    assert (purchase.price, purchase.amount) == (PRICE, PRICE)
    assert AuditEvent.objects.get(action="dataset.purchase").details["price"] == str(PRICE)


def test_a_raise_just_before_the_block_doesnt_count_against_a_transfer_within_the_grace(
    stablecoin: ChainClient, priced: Project, buyer_api: APIClient, buyer: User, settings: Any
) -> None:
    """A transfer sent when the old price was shown is mined a little later, and the chain's
    clock is not ours (eth-tester's runs ahead, a second a block)."""
    set_price(priced, 3 * PRICE)
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE).tx_hash
    assert buy(buyer_api, priced, tx, buyer).status_code == 201
    assert DatasetPurchase.objects.get().price == PRICE


def test_a_price_raised_before_the_transfer_holds_it_to_the_new_price(
    stablecoin: ChainClient, priced: Project, buyer_api: APIClient, buyer: User, settings: Any
) -> None:
    set_price(priced, 3 * PRICE)
    # The transfer of the old price is mined past the grace after the raise.
    later = int(timezone.now().timestamp()) + settings.DATASET_PRICE_GRACE_SECONDS + 10
    stablecoin._w3.testing.timeTravel(later)  # eth-tester: the chain clock jumps
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE).tx_hash
    assert mined_at(stablecoin, tx).timestamp() >= later
    refused = buy(buyer_api, priced, tx, buyer)
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert "paid 5 tUSD" in detail and f"dataset {priced.pk} costs 15 tUSD" in detail, detail
    assert not DatasetPurchase.objects.exists() and not DatasetGrant.objects.exists()
    enough = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, 3 * PRICE).tx_hash
    assert buy(buyer_api, priced, enough, buyer).status_code == 201
    assert DatasetPurchase.objects.get().price == 3 * PRICE


def test_a_price_lowered_before_or_after_the_transfer_sells_at_the_lower_price(
    stablecoin: ChainClient,
    priced: Project,
    buyer_api: APIClient,
    buyer: User,
    settings: Any,
    monkeypatch: Any,
) -> None:
    from datetime import timedelta

    settings.DATASET_PRICE_GRACE_SECONDS = 0
    # Lowered after a transfer of the new, lower price: it meets the price at the claim.
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE // 2).tx_hash
    set_price(priced, PRICE // 2, monkeypatch, at=mined_at(stablecoin, tx) + timedelta(seconds=1))
    assert buy(buyer_api, priced, tx, buyer).status_code == 201
    assert DatasetPurchase.objects.get().price == PRICE // 2

    # Lowered before the transfer: the lower price, to another buyer.
    second = User.objects.create_user("second", role=User.Role.BUYER)
    second_api = APIClient()
    second_api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(user=second, name='k')}")
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE // 2).tx_hash
    assert buy(second_api, priced, tx, second).status_code == 201
    assert DatasetPurchase.objects.get(buyer=second).price == PRICE // 2


def test_a_payment_below_both_prices_names_the_price_then_and_now(
    stablecoin: ChainClient,
    priced: Project,
    buyer_api: APIClient,
    buyer: User,
    settings: Any,
    monkeypatch: Any,
) -> None:
    from datetime import timedelta

    settings.DATASET_PRICE_GRACE_SECONDS = 0
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE // 5).tx_hash
    set_price(priced, PRICE // 2, monkeypatch, at=mined_at(stablecoin, tx) + timedelta(seconds=1))
    refused = buy(buyer_api, priced, tx, buyer)
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert "paid 1 tUSD" in detail and "cost 5 tUSD when the transfer was mined" in detail
    assert "costs 2.5 tUSD now: a payment must meet the lower, 2.5 tUSD" in detail, detail


def test_a_transfer_made_while_the_dataset_was_not_for_sale_meets_its_price_now(
    stablecoin: ChainClient, text_project: Project, buyer_api: APIClient, buyer: User, settings: Any
) -> None:
    """A price of 0 means not sold on-chain, not free: it never lowers what a purchase meets."""
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, 1).tx_hash
    set_price(text_project, PRICE)
    refused = buy(buyer_api, text_project, tx, buyer)
    assert refused.status_code == 400 and "costs 5 tUSD" in refused.json()["detail"]
    assert not DatasetPurchase.objects.exists()


def test_a_payment_to_a_former_treasury_is_refused_naming_both_and_the_way_out(
    stablecoin: ChainClient, priced: Project, buyer_api: APIClient, buyer: User, settings: Any
) -> None:
    """Past treasuries are not recorded: a changed DATASET_TREASURY_ADDRESS refuses claims of
    payments to the old one, and the error says so and who can help."""
    former = settings.DATASET_TREASURY_ADDRESS
    tx = stablecoin.transfer_asset(former, PRICE).tx_hash
    settings.DATASET_TREASURY_ADDRESS = Account.create().address
    refused = buy(buyer_api, priced, tx, buyer)
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert f"paid 5 tUSD to {former} from {stablecoin.address}" in detail, detail
    assert f"while the treasury is {settings.DATASET_TREASURY_ADDRESS}" in detail
    assert "a moderator can grant access by hand" in detail
    assert not DatasetPurchase.objects.exists()


def test_the_price_at_a_time_is_the_one_the_next_change_replaced(
    text_project: Project, monkeypatch: Any
) -> None:
    from datetime import timedelta

    from market.selectors import dataset_price_at

    start = timezone.now()
    Project.objects.filter(pk=text_project.pk).update(price=PRICE)
    text_project.refresh_from_db()
    assert dataset_price_at(project=text_project, at=start) == PRICE  # never changed: current
    for minutes, price in ((10, 2 * PRICE), (20, 0), (30, 4 * PRICE)):
        set_price(text_project, price, monkeypatch, at=start + timedelta(minutes=minutes))
    set_price(text_project, 4 * PRICE, monkeypatch, at=start + timedelta(minutes=40))  # no-op
    at = {
        m: dataset_price_at(project=text_project, at=start + timedelta(minutes=m))
        for m in (0, 10, 15, 20, 25, 30, 45)
    }
    assert at == {
        0: PRICE,
        10: 2 * PRICE,
        15: 2 * PRICE,
        20: 0,
        25: 0,
        30: 4 * PRICE,
        45: 4 * PRICE,
    }
    assert text_project.price_changes.count() == 3


def test_a_transfer_mined_before_the_dataset_existed_meets_its_price_now(
    stablecoin: ChainClient,
    text_project: Project,
    buyer_api: APIClient,
    buyer: User,
    settings: Any,
    monkeypatch: Any,
) -> None:
    """No price was in force before the dataset existed: an old transfer to the treasury (one
    refused for another dataset, say, and so never used) doesn't buy it at its launch price."""
    from datetime import timedelta

    settings.DATASET_PRICE_GRACE_SECONDS = 0
    tx = stablecoin.transfer_asset(settings.DATASET_TREASURY_ADDRESS, PRICE // 5).tx_hash
    before = mined_at(stablecoin, tx)
    # Created (at a launch price) an hour after the transfer, raised an hour later.
    Project.objects.filter(pk=text_project.pk).update(
        price=PRICE // 5, created_at=before + timedelta(hours=1)
    )
    text_project.refresh_from_db()
    set_price(text_project, PRICE, monkeypatch, at=before + timedelta(hours=2))
    refused = buy(buyer_api, text_project, tx, buyer)
    assert refused.status_code == 400
    assert f"dataset {text_project.pk} costs 5 tUSD" in refused.json()["detail"]
    assert not DatasetPurchase.objects.exists() and not DatasetGrant.objects.exists()
