"""Receipts: every ledger entry has one; once paid it carries a Merkle leaf, proof and root that
verify against the root the payout contract stored, and tampering with any of it is caught."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from labeling.models import Item, Project
from labeling.services import item_create_text
from rewards.chain import ChainClient
from rewards.chain.merkle import leaf_of_receipt, receipt_digest, verify_proof
from rewards.models import LedgerEntry, PayoutAllocation, PayoutBatch
from rewards.services import payouts_settle
from tests.conftest import Contributor, serve

pytestmark = pytest.mark.django_db


@pytest.fixture
def decided(
    make_contributor: Callable[[], Contributor],
    text_project: Project,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> dict[str, Any]:
    """An uploaded item that three contributors labeled and the crowd accepted (credited)."""
    uploader = make_contributor()
    labelers = [make_contributor() for _ in range(3)]
    item = item_create_text(project=text_project, contributor=uploader.user, text="Great value.")
    for who, label in zip(labelers, ["positive", "positive", "negative"], strict=True):
        serve(item, who)
        with django_capture_on_commit_callbacks(execute=True):
            response = who.api.post(
                f"/api/v1/items/{item.pk}/annotations/", {"label": label}, format="json"
            )
        assert response.status_code == 201
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED
    return {"item": item, "uploader": uploader, "labelers": labelers}


def my_receipts(who: Contributor) -> list[dict[str, Any]]:
    body = who.api.get("/api/v1/me/receipts/").json()
    return [who.api.get(f"/api/v1/me/receipts/{r['id']}").json() for r in body["results"]]


def test_a_credit_has_a_pending_receipt_before_it_is_paid(decided: dict[str, Any]) -> None:
    [receipt] = my_receipts(decided["labelers"][0])
    assert receipt["status"] == "pending" and receipt["leaf"] is None
    body = receipt["body"]
    item = decided["item"]
    assert body["item"] == {"id": item.pk, "content_sha256": item.content_sha256}
    assert body["decision"]["label"] == "positive"
    assert body["labels"] == {"negative": 1, "positive": 2}
    assert body["annotation"]["label"] == "positive"
    assert body["amount"] == "10" and body["wallet"] == decided["labelers"][0].address
    assert receipt["amount_display"] == "0.00000000000000001 CMT"


def test_paid_receipts_verify_against_the_root_on_chain(
    decided: dict[str, Any], chain: ChainClient
) -> None:
    report = payouts_settle(client=chain)
    assert len(report.confirmed) == 1
    batch = PayoutBatch.objects.get()
    assert batch.receipts_root and chain.batch_root(bytes.fromhex(batch.batch_id[2:])) == (
        bytes.fromhex(batch.receipts_root[2:])
    )
    everyone = [decided["uploader"], *decided["labelers"][:2]]
    for who in everyone:
        [receipt] = my_receipts(who)
        assert receipt["status"] == "paid"
        leaf = bytes.fromhex(receipt["leaf"][2:])
        proof = [bytes.fromhex(p[2:]) for p in receipt["proof"]]
        root = bytes.fromhex(receipt["root"][2:])
        assert leaf_of_receipt(receipt) == leaf
        assert receipt["digest"] == "0x" + receipt_digest(receipt["body"]).hex()
        assert verify_proof(proof, root, leaf)
        assert chain.verify_receipt(bytes.fromhex(receipt["batch"]["batch_id"][2:]), proof, leaf)
        assert receipt["batch"]["tx_hash"] == batch.tx_hash
        assert receipt["batch"]["block_number"] == batch.block_number
    # The labeler who disagreed earned nothing, so has no receipt.
    assert my_receipts(decided["labelers"][2]) == []


def test_verify_receipt_checks_the_chain_and_catches_tampering(
    decided: dict[str, Any], chain: ChainClient
) -> None:
    payouts_settle(client=chain)
    entry = LedgerEntry.objects.get(user=decided["labelers"][0].user)
    out = io.StringIO()
    call_command("verify_receipt", str(entry.pk), stdout=out)
    assert "verifies against the chain" in out.getvalue()
    assert out.getvalue().count("ok  ") == 5

    # Someone edits the stored receipt to claim more than was paid: the leaf no longer matches.
    allocation = PayoutAllocation.objects.get(entry=entry)
    allocation.receipt = {**allocation.receipt, "amount": "1000"}
    allocation.save(update_fields=["receipt"])
    out = io.StringIO()
    with pytest.raises(CommandError, match="does NOT verify"):
        call_command("verify_receipt", str(entry.pk), stdout=out)
    assert "FAIL leaf recomputed from the receipt" in out.getvalue()

    # From another process than the one holding the embedded chain: refused, not "NOT verify".
    from rewards.client import chain_client_reset

    chain_client_reset()
    with pytest.raises(CommandError, match="the embedded EVM lives in the process that made it"):
        call_command("verify_receipt", str(entry.pk), stdout=io.StringIO())


def test_an_unpaid_receipt_has_nothing_to_verify(decided: dict[str, Any]) -> None:
    entry = LedgerEntry.objects.filter(user=decided["uploader"].user).get()
    with pytest.raises(CommandError, match="not in a payout batch yet"):
        call_command("verify_receipt", str(entry.pk))


def test_receipts_are_private_to_their_wallet(decided: dict[str, Any]) -> None:
    entry = LedgerEntry.objects.get(user=decided["uploader"].user)
    stranger = decided["labelers"][2]
    assert stranger.api.get(f"/api/v1/me/receipts/{entry.pk}").status_code == 404
    browser = Client()
    browser.force_login(stranger.user)
    assert browser.get(f"/me/receipts/{entry.pk}/").status_code == 404


def test_the_receipt_page_shows_the_proof_once_paid(
    decided: dict[str, Any], chain: ChainClient
) -> None:
    payouts_settle(client=chain)
    uploader = decided["uploader"]
    entry = LedgerEntry.objects.get(user=uploader.user)
    browser = Client()
    browser.force_login(uploader.user)
    rewards = browser.get("/me/rewards/")
    assert f'href="/me/receipts/{entry.pk}/"'.encode() in rewards.content
    page = browser.get(f"/me/receipts/{entry.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert PayoutAllocation.objects.get(entry=entry).leaf in html
    assert "0.000000000000000025 CMT" in html
    # The text shown is exactly what the digest hashes (it was pretty-printed, so hashing what
    # the page showed never matched), and the digest is shown whole.
    import html as html_lib
    import re

    from eth_utils import keccak

    shown = html_lib.unescape(
        re.search(r'data-testid="receipt-body">(.*?)</pre>', html, re.S).group(1)  # type: ignore[union-attr]
    )
    digest = re.search(r'data-testid="receipt-digest">(0x[0-9a-f]{64})<', html)
    assert digest is not None and "0x" + keccak(shown.encode()).hex() == digest.group(1)


def test_an_unpaid_receipts_page_says_there_is_nothing_to_verify_yet(
    decided: dict[str, Any],
) -> None:
    uploader = decided["uploader"]
    entry = LedgerEntry.objects.get(user=uploader.user)
    browser = Client()
    browser.force_login(uploader.user)
    html = browser.get(f"/me/receipts/{entry.pk}/").content.decode()
    assert "Nothing to verify yet" in html and "receipt-digest" not in html


@pytest.fixture
def stablecoin_chain(settings: Any) -> Any:
    """Payouts in a 6-decimal test stablecoin through the distributor, on the embedded EVM."""
    from rewards.client import chain_client, chain_client_reset

    settings.PAYOUT_ASSET = "erc20"
    settings.PAYOUT_ASSET_SYMBOL = "tUSD"
    settings.PAYOUT_ASSET_DECIMALS = 6
    chain_client_reset()
    yield chain_client()
    chain_client_reset()


def test_stablecoin_payouts_move_the_asset_from_the_treasury_with_receipts(
    decided: dict[str, Any], stablecoin_chain: ChainClient
) -> None:
    treasury = stablecoin_chain.treasury()
    assert treasury is not None
    before = stablecoin_chain.balance_of(treasury)
    report = payouts_settle(client=stablecoin_chain)
    assert len(report.confirmed) == 1
    batch = PayoutBatch.objects.get()
    assert batch.mode == PayoutBatch.Mode.ERC20
    assert batch.token_address == stablecoin_chain.distributor_address
    uploader = decided["uploader"]
    assert stablecoin_chain.balance_of(uploader.address) == 25
    assert stablecoin_chain.balance_of(treasury) == before - 45  # 25 + 2 x 10
    [receipt] = my_receipts(uploader)
    assert receipt["asset"] == {"mode": "erc20", "symbol": "tUSD", "decimals": 6}
    assert receipt["amount_display"] == "0.000025 tUSD"
    proof = [bytes.fromhex(p[2:]) for p in receipt["proof"]]
    leaf = bytes.fromhex(receipt["leaf"][2:])
    assert stablecoin_chain.verify_receipt(bytes.fromhex(batch.batch_id[2:]), proof, leaf)
    rewards = uploader.api.get("/api/v1/me/rewards/").json()
    assert rewards["paid_display"] == "0.000025 tUSD"
    call_command("verify_receipt", str(receipt["id"]), stdout=io.StringIO())


def test_deploy_distributor_prints_the_settings_to_export(chain: ChainClient) -> None:
    out = io.StringIO()
    call_command("deploy_distributor", "--test-stablecoin", stdout=out)
    text = out.getvalue()
    assert "export PAYOUT_ASSET=erc20" in text
    assert f"export CHAIN_DISTRIBUTOR_ADDRESS={chain.distributor_address}" in text
    assert "export PAYOUT_ASSET_SYMBOL=tUSD" in text and "PAYOUT_ASSET_DECIMALS=6" in text
    treasury = chain.treasury()
    assert treasury == chain.address
    assert chain.allowance(treasury, chain.distributor_address or "") == 10**15
    with pytest.raises(CommandError, match="--asset and --treasury"):
        call_command("deploy_distributor")
