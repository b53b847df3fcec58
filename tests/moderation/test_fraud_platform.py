"""The fraud checks on the platform, tried as the attacks that farmed it: new wallets in a
cluster, answers faster than reading, a banned contributor's labels, self-labeling through
throwaway wallets, wallets linked on the chain, copy-pasted uploads; what a flag does (rewards
held, answers out of consensus, items decided again, nothing paid touched); probation; the rate
limits; the moderators' flags API and ``manage.py fraud_scan``."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.test import Client
from eth_account import Account
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import api_key_issue, user_ban, user_get_or_create_for_wallet
from config.throttling import LabelThrottle
from labeling.models import Annotation, Item, Project
from labeling.services import item_create_image, item_create_text
from labeling.services.assignment import GOLD_RATE_NEW, gold_rate
from moderation.models import Flag, SignInFingerprint, WalletLink
from moderation.selectors import users_excluded_from_consensus, users_held, users_on_probation
from moderation.services import chain_link_scan, flag_confirm, flag_dismiss, flag_raise, fraud_scan
from rewards.chain import ChainClient
from rewards.models import LedgerEntry
from rewards.services import payouts_settle
from tests.conftest import Contributor, distinct_network, flat_rates, image_bytes, serve, sign_in

pytestmark = pytest.mark.django_db

TOKEN = 10**18


@pytest.fixture
def eager(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[..., Any]:
    """Run what a block enqueued on commit (decisions, fraud checks, rechecks), as eager Celery
    does in the demo."""

    def run() -> Any:
        return django_capture_on_commit_callbacks(execute=True)

    return run


@pytest.fixture
def newcomer(db: None) -> Callable[[str], Contributor]:
    """A new wallet signing in from ``address`` (the client's IP)."""

    def make(address: str) -> Contributor:
        account = Account.create()
        body = sign_in(APIClient(REMOTE_ADDR=address), account)
        api = APIClient(REMOTE_ADDR=address)
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
        user = User.objects.get(wallet_address=account.address)
        return Contributor(account, user, str(body["token"]), api)

    return make


def answer(eager: Callable[..., Any], who: Contributor, item: Item, label: str = "positive") -> Any:
    serve(item, who)
    with eager():
        return who.api.post(
            f"/api/v1/items/{item.pk}/annotations/", {"label": label}, format="json"
        )


def net_credit(user: User, item: Item | None = None) -> int:
    entries = LedgerEntry.objects.filter(user=user)
    if item is not None:
        entries = entries.filter(item=item)
    return int(entries.aggregate(total=Sum("amount"))["total"] or 0)


def test_new_wallets_arriving_from_one_network_are_flagged_held_and_their_labels_left_out(
    newcomer: Callable[[str], Contributor],
    make_contributor: Callable[[], Contributor],
    text_project: Project,
    eager: Callable[..., Any],
) -> None:
    farm = [newcomer("203.0.113.7") for _ in range(4)]  # one network, minutes apart
    assert {f.user.pk for f in farm} == set(
        Flag.objects.filter(kind=Flag.Kind.SYBIL).values_list("user_id", flat=True)
    )
    evidence = Flag.objects.filter(kind=Flag.Kind.SYBIL).first().evidence  # type: ignore[union-attr]
    assert evidence["check"] and len(evidence["accounts"]) >= 3
    # Fingerprints are kept hashed: no address in the database.
    assert not SignInFingerprint.objects.filter(network__contains="203.0.113").exists()

    item = item_create_text(project=text_project, contributor=None, text="farmed")
    for wallet in farm:
        assert answer(eager, wallet, item).status_code == 201
    item.refresh_from_db()
    assert item.status == Item.Status.OPEN  # four labels, none of which count
    assert item.excluded_labels >= 3  # recounted whenever the item is decided
    assert users_held({f.user.pk for f in farm}) == {f.user.pk for f in farm}
    # Honest strangers decide it.
    honest = [make_contributor() for _ in range(3)]
    for who in honest:
        answer(eager, who, item, "negative")
    item.refresh_from_db()
    assert (item.status, item.decided_label) == (Item.Status.ACCEPTED, "negative")
    assert all(net_credit(f.user) == 0 for f in farm)
    assert all(net_credit(h.user, item) > 0 for h in honest)


def test_labels_faster_than_the_project_minimum_flag_the_contributor(
    make_contributor: Callable[[], Contributor], text_project: Project, eager: Callable[..., Any]
) -> None:
    text_project.min_seconds_per_label = 2.0
    text_project.save(update_fields=["min_seconds_per_label"])
    clicker = make_contributor()
    items = [
        item_create_text(project=text_project, contributor=None, text=f"quick {n}")
        for n in range(4)
    ]
    for item in items:  # four answers within a second of being served
        assert answer(eager, clicker, item).status_code == 201
    [flag] = Flag.objects.filter(user=clicker.user)
    assert (flag.kind, flag.project, flag.state) == (Flag.Kind.SPEED, text_project, "open")
    assert flag.evidence["minimum_seconds"] == 2.0
    assert flag.evidence["share_below_minimum"] == 1.0
    assert users_excluded_from_consensus(project=text_project, user_ids=[clicker.user.pk]) == {
        clicker.user.pk
    }
    # Where a project's policy is "count", the answers count; the rewards stay held.
    text_project.fraud_policy = Project.FraudPolicy.COUNT
    text_project.save(update_fields=["fraud_policy"])
    assert users_excluded_from_consensus(project=text_project, user_ids=[clicker.user.pk]) == set()
    assert users_held([clicker.user.pk]) == {clicker.user.pk}


def test_the_on_answer_check_reads_the_items_it_checks_not_the_whole_project(
    make_contributor: Callable[[], Contributor], text_project: Project, eager: Callable[..., Any]
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from moderation.services import answer_check

    text_project.min_seconds_per_label = 2.0
    text_project.save(update_fields=["min_seconds_per_label"])
    for n in range(20):  # the rest of the project, gold included: none of it is read
        item_create_text(project=text_project, contributor=None, text=f"other {n}")
    Item.objects.filter(project=text_project).update(gold_label="positive")
    clicker = make_contributor()
    items = [
        item_create_text(project=text_project, contributor=None, text=f"quick {n}")
        for n in range(4)
    ]
    for item in items:
        assert answer(eager, clicker, item).status_code == 201
    Flag.objects.all().delete()
    with CaptureQueriesContext(connection) as queries:
        [flag] = answer_check(user_id=clicker.user.pk)
    assert flag.kind == Flag.Kind.SPEED and flag.evidence["timed_answers"] == 4
    item_table = Item._meta.db_table
    for query in queries.captured_queries:
        sql = query["sql"]
        if f'FROM "{item_table}"' in sql:
            assert f'"{item_table}"."id" IN' in sql, sql


def test_a_ban_re_decides_unpaid_items_with_reversals_and_leaves_paid_ones_alone(
    make_contributor: Callable[[], Contributor],
    text_project: Project,
    eager: Callable[..., Any],
    chain: ChainClient,
    moderator: User,
) -> None:
    a, b, c = (make_contributor() for _ in range(3))
    paid = item_create_text(project=text_project, contributor=None, text="paid already")
    for who in (a, b, c):
        answer(eager, who, paid)
    payouts_settle(client=chain)
    assert chain.balance_of(c.address) == 10
    unpaid = item_create_text(project=text_project, contributor=None, text="not paid yet")
    for who in (a, b, c):
        answer(eager, who, unpaid)
    unpaid.refresh_from_db()
    assert unpaid.status == Item.Status.ACCEPTED and net_credit(c.user, unpaid) == 10

    with eager():
        user_ban(user=c.user, reason="sold their account", actor=moderator)

    unpaid.refresh_from_db()
    assert unpaid.status == Item.Status.OPEN  # two counted labels of three: collecting again
    assert unpaid.excluded_labels == 1
    for who in (a, b, c):  # every credit of the withdrawn decision reversed, visibly
        assert net_credit(who.user, unpaid) == 0
        assert LedgerEntry.objects.filter(user=who.user, item=unpaid, amount__lt=0).exists()
    paid.refresh_from_db()
    assert paid.status == Item.Status.ACCEPTED
    assert not LedgerEntry.objects.filter(item=paid, amount__lt=0).exists()
    assert chain.balance_of(c.address) == 10  # nothing paid is touched
    # The banned contributor's label no longer counts: two more honest labels decide it.
    for who in (make_contributor(), make_contributor()):
        answer(eager, who, unpaid)
    unpaid.refresh_from_db()
    assert unpaid.status == Item.Status.ACCEPTED
    assert net_credit(c.user, unpaid) == 0 and net_credit(a.user, unpaid) == 10


def test_a_ban_while_an_items_credits_wait_in_a_batch_re_decides_it_once_the_batch_is_voided(
    make_contributor: Callable[[], Contributor],
    text_project: Project,
    eager: Callable[..., Any],
    chain: ChainClient,
    moderator: User,
    settings: Any,
) -> None:
    """The ban's recheck leaves the item alone while its credits are in a batch awaiting
    approval; approving voids the batch (a recipient is banned), and the item is decided again
    then, before its other labelers' credits go into the next batch."""
    from rewards.models import PayoutBatch
    from rewards.services import payout_batch_approve

    settings.PAYOUT_REQUIRE_APPROVAL = True
    a, b, c = (make_contributor() for _ in range(3))
    item = item_create_text(project=text_project, contributor=None, text="decided with c")
    for who in (a, b, c):
        answer(eager, who, item)
    payouts_settle(client=chain)
    batch = PayoutBatch.objects.get()
    with eager():
        user_ban(user=c.user, reason="ring", actor=moderator)
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED  # in a batch: left alone for now

    with eager():
        assert not payout_batch_approve(batch=batch, moderator=moderator, reason="ok")
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.FAILED
    item.refresh_from_db()
    assert item.status == Item.Status.OPEN and item.excluded_labels == 1
    for who in (a, b, c):
        assert net_credit(who.user, item) == 0
    payouts_settle(client=chain)
    assert not PayoutBatch.objects.exclude(pk=batch.pk).exists()  # nothing left to pay
    assert chain.balance_of(a.address) == chain.balance_of(b.address) == 0


def test_a_flag_raised_while_a_sent_batch_held_an_items_credits_re_decides_it_if_it_reverts(
    make_contributor: Callable[[], Contributor],
    text_project: Project,
    eager: Callable[..., Any],
    chain: ChainClient,
) -> None:
    from rewards.chain import embedded_account_keys
    from rewards.models import PayoutBatch
    from rewards.services import payout_batch_prepare, payout_batch_reconcile, payout_batch_submit

    a, b, c = (make_contributor() for _ in range(3))
    item = item_create_text(project=text_project, contributor=None, text="decided with c")
    for who in (a, b, c):
        answer(eager, who, item)
    not_a_minter = chain.with_signer(embedded_account_keys()[1])
    batch = payout_batch_prepare(client=not_a_minter)
    assert batch is not None
    payout_batch_submit(batch=batch, client=not_a_minter)  # sent: it will revert
    with eager():
        flag_raise(user=c.user, kind=Flag.Kind.SPEED, evidence={}, project=text_project)
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED  # in a sent batch: left alone for now

    with eager():
        payout_batch_reconcile(batch=batch, client=chain)
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.FAILED
    item.refresh_from_db()
    assert item.status == Item.Status.OPEN
    payouts_settle(client=chain)
    assert chain.balance_of(a.address) == chain.balance_of(b.address) == 0


def test_throwaway_wallets_labeling_their_owners_uploads_are_caught_by_the_scan(
    newcomer: Callable[[str], Contributor],
    make_contributor: Callable[[], Contributor],
    text_project: Project,
    eager: Callable[..., Any],
) -> None:
    owner = newcomer("198.51.100.20")
    # Throwaway wallets from other networks (a VPN): not a sign-up cluster.
    wallets = [newcomer(distinct_network()) for _ in range(3)]
    assert not Flag.objects.exists()
    honest = [make_contributor() for _ in range(4)]
    own = [
        item_create_text(project=text_project, contributor=owner.user, text=f"mine {n}")
        for n in range(8)
    ]
    others = [
        item_create_text(project=text_project, contributor=None, text=f"theirs {n}")
        for n in range(10)
    ]
    for item in own:
        for wallet in wallets:
            answer(eager, wallet, item)
    for item in others:
        for who in honest[:3]:
            answer(eager, who, item, "negative")
    with eager():
        report = fraud_scan()
    flagged = set(Flag.objects.filter(kind=Flag.Kind.SELF_LABELING).values_list("user", flat=True))
    assert {w.user.pk for w in wallets} <= flagged
    assert not flagged & {h.user.pk for h in honest}
    assert "self_labeling" in report.summary
    # Their labels left consensus: the owner's items went back to collecting answers, and no
    # credit of theirs (nor the owner's contribution reward) survives.
    for item in own:
        item.refresh_from_db()
        assert item.status == Item.Status.OPEN
    assert net_credit(owner.user) == 0
    assert all(net_credit(w.user) == 0 for w in wallets)


def test_wallets_funded_from_one_address_are_linked_from_the_chain(
    make_contributor: Callable[[], Contributor], chain: ChainClient
) -> None:
    w3 = chain._w3  # the embedded chain's test accounts are unlocked
    purse, stranger = w3.eth.accounts[3], w3.eth.accounts[4]
    farm = [make_contributor() for _ in range(3)]
    lone = make_contributor()
    for who in farm:
        w3.eth.send_transaction({"from": purse, "to": who.address, "value": 10**16})
    w3.eth.send_transaction({"from": stranger, "to": lone.address, "value": 10**16})

    result = chain_link_scan()
    assert result["sybil"] == 3
    flags = Flag.objects.filter(kind=Flag.Kind.SYBIL)
    assert set(flags.values_list("user", flat=True)) == {w.user.pk for w in farm}
    evidence = flags.first().evidence  # type: ignore[union-attr]
    assert evidence["addresses"][0] == {
        "direction": "funded_from",
        "address": purse.lower(),
        "accounts": sorted(w.user.pk for w in farm),
    }
    assert WalletLink.objects.filter(user=lone.user, counterparty=stranger.lower()).exists()
    # The next scan reads only new blocks, and raises nothing twice.
    again = chain_link_scan()
    assert again["next_block"] == result["next_block"]  # no new blocks
    assert again.get("sybil", 0) == 0
    assert Flag.objects.filter(kind=Flag.Kind.SYBIL).count() == 3


def test_copy_pasted_uploads_across_accounts_are_flagged_and_held(
    make_contributor: Callable[[], Contributor], text_project: Project
) -> None:
    other = Project.objects.create(
        name="Other", data_kind=Project.DataKind.TEXT, classes=["a", "b"], overlap=3
    )
    author, copier = make_contributor(), make_contributor()
    for n in range(5):
        item_create_text(project=text_project, contributor=author.user, text=f"Original {n}!")
        item_create_text(project=other, contributor=copier.user, text=f"original {n}")
    fraud_scan()
    [flag] = Flag.objects.filter(kind=Flag.Kind.COPY_PASTE)
    assert flag.user == copier.user
    assert len(flag.evidence["copies"]) == 5
    assert users_held([copier.user.pk, author.user.pk]) == {copier.user.pk}


def test_re_encoded_image_copies_across_accounts_are_flagged_whatever_their_colour_digits(
    make_contributor: Callable[[], Contributor], image_project: Project
) -> None:
    """An image's near hash ends with its mean colour, which re-encoding moves by a unit: the
    scan grouped copies by the whole hash, and missed those (and every copy of an image stored
    before colours were kept)."""
    other = Project.objects.create(name="Other", data_kind=Project.DataKind.IMAGE, classes=["a"])
    author, copier = make_contributor(), make_contributor()
    for n in range(5):
        original = item_create_image(
            project=image_project, contributor=author.user, data=image_bytes(colour=(50 * n, 9, 9))
        )
        copy = item_create_image(
            project=other, contributor=copier.user, data=image_bytes(colour=(9, 50 * n, 200))
        )
        # The copy's dHash, its colour a unit off (as a re-encoding leaves it).
        colour = int(original.near_hash[17:19], 16)
        shifted = original.near_hash[:17] + f"{(colour + 1) % 256:02x}" + original.near_hash[19:]
        Item.objects.filter(pk=copy.pk).update(near_hash=shifted)
    fraud_scan()
    [flag] = Flag.objects.filter(kind=Flag.Kind.COPY_PASTE)
    assert flag.user == copier.user and len(flag.evidence["copies"]) == 5


@pytest.mark.parametrize(
    ("right", "on_probation"), [(12, False), (11, False), (10, True), (5, True)]
)
def test_a_gold_record_keeps_a_labeler_on_probation_only_when_clearly_below_the_bar(
    settings: Any, right: int, on_probation: bool
) -> None:
    """15 gold answers of a labeler whose accuracy is the bar (0.8) come out 11 right often
    enough: that is no evidence against them (it kept honest labelers capped)."""
    settings.PROBATION_LABELS, settings.PROBATION_DAYS = 0, 0
    project = Project.objects.create(name="Gold", data_kind="text", classes=["a", "b"])
    user = user_get_or_create_for_wallet(address=Account.create().address)
    for n in range(15):
        item = item_create_text(project=project, contributor=None, text=f"gold {n}")
        Item.objects.filter(pk=item.pk).update(gold_label="a")
        label = "a" if n < right else "b"
        Annotation.objects.create(item=item, annotator=user, label=label, value={"label": label})
    assert (user.pk in users_on_probation([user.pk])) is on_probation


@pytest.mark.probation
def test_new_wallets_start_on_probation_until_their_record_earns_trust(
    make_contributor: Callable[[], Contributor],
    eager: Callable[..., Any],
    chain: ChainClient,
    settings: Any,
) -> None:
    project = flat_rates(
        Project.objects.create(
            name="Bayes",
            data_kind=Project.DataKind.TEXT,
            classes=["positive", "negative"],
            overlap=3,
            max_labels=6,
            reward_per_label=5 * TOKEN,
        )
    )
    fresh = [make_contributor() for _ in range(3)]
    assert users_on_probation([f.user.pk for f in fresh]) == {f.user.pk for f in fresh}
    assert gold_rate(answered=100, correct=100, probation=True) == GOLD_RATE_NEW
    first = item_create_text(project=project, contributor=None, text="newcomers agree")
    for who in fresh:
        answer(eager, who, first)
    first.refresh_from_db()
    assert (first.status, first.decided_label) == (Item.Status.ACCEPTED, "positive")

    # The payout cap: 5 + 5 + 5 tokens credited, at most 10 paid while on probation.
    settings.PROBATION_PAYOUT_CAP = "10"
    for n in range(2):
        LedgerEntry.objects.create(
            user=fresh[0].user,
            amount=5 * TOKEN,
            reason=LedgerEntry.Reason.LABEL,
            source=f"annotation:extra-{n}",
            project=project,
        )
    payouts_settle(client=chain)
    assert chain.balance_of(fresh[0].address) == 10 * TOKEN
    assert chain.balance_of(fresh[1].address) == 5 * TOKEN
    payouts_settle(client=chain)  # 10 tokens paid (more than SQLite's integers hold): no more
    assert chain.balance_of(fresh[0].address) == 10 * TOKEN

    # Once the record is long and old enough, the rest is paid, and the same answers weigh more.
    settings.PROBATION_LABELS, settings.PROBATION_DAYS = 0, 0
    payouts_settle(client=chain)
    assert chain.balance_of(fresh[0].address) == 15 * TOKEN
    second = item_create_text(project=project, contributor=None, text="trusted agree")
    for who in fresh:
        answer(eager, who, second)
    second.refresh_from_db()
    assert second.status == Item.Status.ACCEPTED
    assert first.confidence < second.confidence


@pytest.fixture
def low_label_rate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(
        LabelThrottle, "THROTTLE_RATES", {**LabelThrottle.THROTTLE_RATES, "labels": "3/minute"}
    )
    yield


def test_labels_per_contributor_are_rate_limited_with_retry_after(
    low_label_rate: None, contributor: Contributor, text_project: Project
) -> None:
    items = [
        item_create_text(project=text_project, contributor=None, text=f"rate {n}") for n in range(4)
    ]
    replies = []
    for item in items:
        serve(item, contributor)
        replies.append(
            contributor.api.post(
                f"/api/v1/items/{item.pk}/annotations/", {"label": "positive"}, format="json"
            )
        )
    assert [r.status_code for r in replies] == [201, 201, 201, 429]
    assert int(replies[-1]["Retry-After"]) > 0
    assert Annotation.objects.count() == 3


def test_moderators_read_flags_by_session_or_api_key_and_others_cannot(
    newcomer: Callable[[str], Contributor], moderator: User, contributor: Contributor
) -> None:
    farm = [newcomer("192.0.2.9") for _ in range(3)]
    session = Client()
    session.force_login(moderator)
    page = session.get("/api/v1/moderation/flags/")
    assert page.status_code == 200
    rows = page.json()["results"]
    assert {r["wallet_address"] for r in rows} == {f.address for f in farm}
    assert {r["kind"] for r in rows} == {"sybil"} and {r["state"] for r in rows} == {"open"}
    assert all(r["evidence"]["accounts"] and r["created_at"] for r in rows)

    key = api_key_issue(user=moderator, name="flags")
    by_key = APIClient()
    by_key.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    filtered = by_key.get("/api/v1/moderation/flags/", {"wallet": farm[0].address})
    assert [r["user"] for r in filtered.json()["results"]] == [farm[0].user.pk]
    assert by_key.get("/api/v1/moderation/flags/", {"state": "dismissed"}).json()["results"] == []
    bad = by_key.get("/api/v1/moderation/flags/", {"kind": "nonsense"})
    assert bad.status_code == 400 and "kind must be one of" in bad.json()["detail"]

    assert contributor.api.get("/api/v1/moderation/flags/").status_code == 403
    assert APIClient().get("/api/v1/moderation/flags/").status_code in (401, 403)
    buyer = user_get_or_create_for_wallet(address=Account.create().address)
    buyer.role = User.Role.BUYER
    buyer.save(update_fields=["role"])
    buyer_api = APIClient()
    buyer_api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(user=buyer, name='b')}")
    assert buyer_api.get("/api/v1/moderation/flags/").status_code == 403


def test_dismissing_a_flag_lets_the_answers_count_again_and_confirming_with_ban_bans(
    newcomer: Callable[[str], Contributor],
    make_contributor: Callable[[], Contributor],
    text_project: Project,
    eager: Callable[..., Any],
    moderator: User,
) -> None:
    farm = [newcomer("192.0.2.44") for _ in range(3)]
    item = item_create_text(project=text_project, contributor=None, text="a family's phones")
    for who in farm:
        answer(eager, who, item)
    item.refresh_from_db()
    assert item.status == Item.Status.OPEN
    flags = {f.user_id: f for f in Flag.objects.filter(kind=Flag.Kind.SYBIL)}
    with eager():  # a family sharing a router: the moderator clears them
        for who in farm:
            flag_dismiss(flag=flags[who.user.pk], moderator=moderator, reason="one household")
    item.refresh_from_db()
    assert (item.status, item.decided_label) == (Item.Status.ACCEPTED, "positive")
    assert users_held({w.user.pk for w in farm}) == set()
    # Dismissed flags don't come back on the same evidence.
    fraud_scan()
    assert Flag.objects.filter(state=Flag.State.OPEN).count() == 0

    spammer = make_contributor()
    flag = Flag.objects.create(user=spammer.user, kind=Flag.Kind.SPAMMER, evidence={"x": 1})
    with eager():
        flag_confirm(flag=flag, moderator=moderator, reason="random answers", ban=True)
    spammer.user.refresh_from_db()
    assert spammer.user.is_banned
    with pytest.raises(ValueError, match="already confirmed"):
        flag_dismiss(flag=flag, moderator=moderator, reason="changed my mind")


def test_manage_py_fraud_scan_runs_every_check_and_says_what_it_found(
    newcomer: Callable[[str], Contributor], chain: ChainClient
) -> None:
    for _ in range(3):
        newcomer("198.18.0.1")
    Flag.objects.all().delete()
    out = io.StringIO()
    call_command("fraud_scan", stdout=out)
    assert "new flags: 3 sybil" in out.getvalue()
    # An embedded EVM can't be read from another process; the scan says so.
    assert "chain: not read (the embedded EVM" in out.getvalue()
    assert "chain: blocks up to" in fraud_scan().summary  # the same process: read


def test_a_loopback_address_is_no_network_except_on_the_demo(
    newcomer: Callable[[str], Contributor], settings: Any
) -> None:
    for _ in range(3):  # behind a proxy the app wasn't told about, every client is 127.0.0.1
        newcomer("127.0.0.1")
    assert not Flag.objects.exists()
    assert set(SignInFingerprint.objects.values_list("network", flat=True)) == {""}
    settings.DEMO_MODE = True  # on the demo, everyone signs in from this machine
    for _ in range(3):
        newcomer("127.0.0.1")
    assert Flag.objects.filter(kind=Flag.Kind.SYBIL).count() == 3


def test_speed_is_checked_on_every_task_not_only_one_class_answers(
    make_contributor: Callable[[], Contributor], eager: Callable[..., Any]
) -> None:
    project = Project.objects.create(
        name="Tags",
        data_kind=Project.DataKind.TEXT,
        task=Project.Task.MULTILABEL,
        classes=["sport", "politics"],
        overlap=3,
        min_seconds_per_label=2.0,
    )
    clicker = make_contributor()
    for n in range(4):
        item = item_create_text(project=project, contributor=None, text=f"tags {n}")
        serve(item, clicker)
        with eager():
            reply = clicker.api.post(
                f"/api/v1/items/{item.pk}/annotations/", {"labels": ["sport"]}, format="json"
            )
        assert reply.status_code == 201, reply.content
    assert list(Flag.objects.values_list("user", "kind")) == [(clicker.user.pk, "speed")]
    # The answer-comparing checks leave set answers alone: a scan flags nothing more.
    fraud_scan(chain=False)
    assert Flag.objects.count() == 1


def test_a_burst_of_answers_queues_one_check_and_asks_the_cache_once_per_process(
    settings: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable
) -> None:
    from django.core.cache import cache

    from moderation import services as moderation_services
    from moderation.tasks import check_answers

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.ANSWER_CHECK_SECONDS = 20
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        check_answers, "apply_async", lambda args, kwargs, **options: queued.append(args)
    )
    asked: list[str] = []
    add = cache.add
    monkeypatch.setattr(cache, "add", lambda key, *rest: asked.append(key) or add(key, *rest))
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            moderation_services.answer_check_enqueue(user_id=7)
        moderation_services.answer_check_enqueue(user_id=8)
    assert queued == [(7,), (8,)]
    assert asked == ["crowdmint:answer-check:7", "crowdmint:answer-check:8"]
    # Another process (a fresh memo) finds the check queued in the cache and queues nothing.
    moderation_services._checks_queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        moderation_services.answer_check_enqueue(user_id=7)
    assert queued == [(7,), (8,)] and len(asked) == 3


def test_a_flag_rechecks_only_the_items_whose_consensus_it_changes(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable
) -> None:
    from moderation import services as moderation_services
    from moderation.tasks import recheck_user

    counts = Project.objects.create(
        name="Counts flagged answers",
        data_kind=Project.DataKind.TEXT,
        classes=["a", "b"],
        fraud_policy=Project.FraudPolicy.COUNT,
    )
    holds = Project.objects.create(
        name="Holds flagged answers",
        data_kind=Project.DataKind.TEXT,
        classes=["a", "b"],
        fraud_policy=Project.FraudPolicy.HOLD,
    )
    user = user_get_or_create_for_wallet(address=Account.create().address)
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        recheck_user, "apply_async", lambda args, kwargs, **options: queued.append((args, kwargs))
    )
    with django_capture_on_commit_callbacks(execute=True):
        moderation_services.flag_raise(user=user, kind=Flag.Kind.SPEED, evidence={}, project=counts)
    assert queued == []  # its answers count in that project, flagged or not
    with django_capture_on_commit_callbacks(execute=True):
        flag, _ = moderation_services.flag_raise(
            user=user, kind=Flag.Kind.SPEED, evidence={}, project=holds
        )
        moderation_services.flag_raise(user=user, kind=Flag.Kind.SYBIL, evidence={})
    assert [kw for _, kw in queued] == [
        {"project_id": holds.pk, "hold_only": True},
        {"project_id": None, "hold_only": True},
    ]
    # What the recheck reads: the user's items in the projects that hold flagged answers.
    for project in (counts, holds):
        item = item_create_text(project=project, contributor=None, text=f"in {project.name}")
        Annotation.objects.create(item=item, annotator=user, label="a")
    rechecked = moderation_services.user_recheck(user_id=user.pk, reason="test", hold_only=True)
    assert rechecked == {"waiting": 1}
    assert moderation_services.user_recheck(user_id=user.pk, reason="test") == {"waiting": 2}
