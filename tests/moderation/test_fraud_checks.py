"""The fraud checks as functions: arrays in, flags out, each with evidence a moderator can read;
and the figures on simulated crowds with planted abusers (``bench/fraud``)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bench.fraud.crowd import simulate
from bench.fraud.run import scan
from moderation.fraud import (
    Answers,
    SignUp,
    Upload,
    WalletLink,
    colluders,
    copy_pasters,
    self_labelers,
    spammers,
    sybil_clusters,
    too_fast,
    wallet_clusters,
)


def crowd(
    rows: list[tuple[int, int, int, float, float]],
    *,
    gold: dict[int, int] | None = None,
    uploader: dict[int, int] | None = None,
) -> Answers:
    table = np.array(rows, dtype=np.float64)
    return Answers(
        item=table[:, 0].astype(np.int64),
        user=table[:, 1].astype(np.int64),
        label=table[:, 2].astype(np.int64),
        at=table[:, 3],
        shown_at=table[:, 4],
        n_classes=3,
        gold=gold or {},
        uploader=uploader or {},
    )


def honest_rows(
    rng: random.Random, truth: list[int], users: range, accuracy: float = 0.85
) -> list[tuple[int, int, int, float, float]]:
    """Three honest answers per item, at a human pace."""
    rows = []
    for item, true in enumerate(truth):
        for user in rng.sample(list(users), 3):
            label = true if rng.random() < accuracy else (true + rng.randint(1, 2)) % 3
            shown = item * 100.0 + user
            rows.append((item, user, label, shown + rng.uniform(4, 20), shown))
    return rows


@pytest.fixture
def rng() -> random.Random:
    return random.Random(7)


@pytest.fixture
def truth(rng: random.Random) -> list[int]:
    return [rng.randrange(3) for _ in range(300)]


def flagged(candidates: list) -> dict[int, str]:  # type: ignore[type-arg]
    return {c.user: c.kind for c in candidates}


def test_spammers_of_every_style_are_flagged_and_honest_labelers_are_not(
    rng: random.Random, truth: list[int]
) -> None:
    rows = honest_rows(rng, truth, range(1, 21))
    for n, item in enumerate(rng.sample(range(300), 60)):
        rows.append((item, 100, rng.randrange(3), 0.0, 0.0))  # random
        rows.append((item, 101, 2, 0.0, 0.0))  # one class
        rows.append((item, 102, n % 2, 0.0, 0.0))  # a cycle
    found = flagged(spammers(crowd(rows)))
    assert set(found) == {100, 101, 102}
    assert set(found.values()) == {"spammer"}
    evidence = next(c.evidence for c in spammers(crowd(rows)) if c.user == 101)
    assert evidence["check"]  # says why, for the moderator


def test_a_ring_answering_one_class_together_is_flagged_though_it_outvotes_the_others(
    rng: random.Random, truth: list[int]
) -> None:
    """Five wallets answer class 2 on the same 60 items, beside one honest answer each: they
    are the majority the check compared each of them with, and it took the data for skewed."""
    rows = honest_rows(rng, truth, range(1, 21))
    ring = range(100, 105)
    for item in rng.sample(range(300), 60):
        rows += [(item, user, 2, 0.0, 0.0) for user in ring]
    found = flagged(spammers(crowd(rows)))
    assert set(ring) <= set(found)
    assert not set(found) & set(range(1, 21))


def test_a_skewed_project_flags_nobody_for_answering_its_common_class(rng: random.Random) -> None:
    skewed = [0 if rng.random() < 0.97 else 1 for _ in range(300)]
    rows = honest_rows(rng, skewed, range(1, 21), accuracy=0.99)
    assert flagged(spammers(crowd(rows))) == {}


def test_wrong_gold_answers_alone_flag_a_spammer(rng: random.Random, truth: list[int]) -> None:
    rows = honest_rows(rng, truth, range(1, 21))
    gold = {item: truth[item] for item in range(0, 300, 10)}
    for item in gold:
        rows.append((item, 100, (truth[item] + 1) % 3, 0.0, 0.0))
    assert 100 in flagged(spammers(crowd(rows, gold=gold)))


def test_answers_given_before_an_item_was_made_gold_are_not_gold_answers(
    rng: random.Random, truth: list[int]
) -> None:
    rows = honest_rows(rng, truth, range(1, 21))
    gold = {item: truth[item] for item in range(0, 300, 10)}
    for item in gold:
        rows.append((item, 100, (truth[item] + 1) % 3, 0.0, 0.0))
    later = Answers(**{**vars(crowd(rows, gold=gold)), "gold_since": dict.fromkeys(gold, 50.0)})
    checks = [c.evidence["check"] for c in spammers(later) if c.user == 100]
    assert "gold accuracy below the threshold" not in checks


def test_answers_faster_than_the_minimum_are_flagged_but_an_occasional_quick_one_is_not(
    rng: random.Random, truth: list[int]
) -> None:
    rows = honest_rows(rng, truth, range(1, 21))
    for item in range(4):  # four labels in under half a second each
        rows.append((item, 100, truth[item], 1000.0 + item * 0.4 + 0.3, 1000.0 + item * 0.4))
    rows.append((10, 101, truth[10], 5000.2, 5000.0))  # one quick answer among slow ones
    for item in range(11, 30):
        rows.append((item, 101, truth[item], 6000.0 + item * 10 + 8, 6000.0 + item * 10))
    found = too_fast(crowd(rows), 0.5)
    assert flagged(found) == {100: "speed"}
    assert found[0].evidence["share_below_minimum"] == 1.0


def test_a_ring_copying_its_leader_is_flagged_as_colluders(
    rng: random.Random, truth: list[int]
) -> None:
    rows = honest_rows(rng, truth, range(1, 21), accuracy=0.75)
    for item in rng.sample(range(300), 60):
        label = truth[item] if rng.random() < 0.7 else (truth[item] + 1) % 3
        for member in (100, 101, 102):
            rows.append((item, member, label, item * 100.0 + 50, item * 100.0 + 40))
    found = flagged(colluders(crowd(rows)))
    assert {100, 101, 102} <= set(found)
    assert not set(found) & set(range(1, 21))


def test_throwaway_wallets_labeling_one_uploaders_items_are_flagged(
    rng: random.Random, truth: list[int]
) -> None:
    rows = honest_rows(rng, truth, range(1, 21))
    uploads = {item: 50 for item in range(0, 300, 12)}
    for item in uploads:
        for wallet in (60, 61, 62):
            rows.append((item, wallet, 0, item * 100.0 + 30, item * 100.0 + 10))
    fingerprints = {50: {"home"}, 60: {"home"}, 61: {"home"}, 62: {"elsewhere"}}
    found = flagged(self_labelers(crowd(rows, uploader=uploads), fingerprints))
    assert {60, 61, 62} <= set(found)
    assert set(found) <= {50, 60, 61, 62}


def test_labeling_a_project_one_account_uploaded_mostly_is_not_self_labeling(
    rng: random.Random, truth: list[int]
) -> None:
    rows = honest_rows(rng, truth, range(1, 21))
    uploads = {item: 50 for item in range(300) if item % 10}  # the requester's: 90% of items
    uploads.update({item: 51 for item in range(0, 300, 10)})  # a contributor's: the rest
    assert self_labelers(crowd(rows, uploader=uploads), {}) == []


def test_accounts_arriving_together_from_one_fingerprint_are_a_sybil_cluster() -> None:
    sign_ups = [SignUp(u, 1000.0 + 60 * u, "vpn") for u in (1, 2, 3)]
    sign_ups += [SignUp(4, 0.0, "home"), SignUp(5, 86400.0, "home")]  # a household, days apart
    sign_ups += [SignUp(6, 0.0, "cafe"), SignUp(7, 10.0, "cafe")]  # two: not a cluster
    found = sybil_clusters(sign_ups)
    assert flagged(found) == {1: "sybil", 2: "sybil", 3: "sybil"}
    assert found[0].evidence["accounts"] == [1, 2, 3]


def test_wallets_funded_from_or_paying_out_to_one_address_are_linked() -> None:
    links = [WalletLink(u, "funded_from", "0xpurse", "native") for u in (1, 2, 3)]
    links += [WalletLink(u, "paid_to", "0xcollector", "0xtoken") for u in (4, 5, 6)]
    links += [WalletLink(u, "funded_from", "0xexchange", "native") for u in range(10, 60)]
    links += [WalletLink(u, "funded_from", "0xparent", "native") for u in (70, 71)]
    found = wallet_clusters(links, {"0xpurse": 3, "0xexchange": 250_000})
    assert set(flagged(found)) == {1, 2, 3, 4, 5, 6}
    evidence = next(c.evidence for c in found if c.user == 1)
    assert evidence["addresses"][0]["address"] == "0xpurse"
    assert {link["account"] for link in evidence["links"]} == {2, 3}


def test_uploads_copying_other_accounts_items_are_flagged() -> None:
    uploads = [Upload(n, 1, float(n), f"own-{n}") for n in range(1, 11)]
    uploads += [Upload(100 + n, 2, 1000.0 + n, f"own-{n}") for n in range(1, 5)]  # copies 4
    uploads += [Upload(200, 3, 2000.0, "own-1")]  # one famous picture, uploaded again
    uploads += [Upload(200 + n, 3, 2000.0 + n, f"mine-{n}") for n in range(1, 10)]
    found = copy_pasters(uploads, {})
    assert flagged(found) == {2: "copy_paste"}
    assert {c["owner"] for c in found[0].evidence["copies"]} == {1}
    # Borderline near-copies (flagged at upload) count too.
    assert 3 in flagged(copy_pasters(uploads, {3: 2}))


def test_simulated_crowds_95_percent_of_planted_accounts_flagged_2_percent_of_honest() -> None:
    planted = caught = honest = false = 0
    for seed in (101, 202, 303):  # not the seeds bench/fraud reports
        simulated = simulate(seed)
        found = scan(simulated)
        planted += len(simulated.planted)
        caught += len(found & set(simulated.planted))
        honest += len(simulated.honest)
        false += len(found & simulated.honest)
    recall, false_rate = caught / planted, false / honest
    figures = f"planted flagged {recall:.1%}, honest flagged {false_rate:.2%}"
    print(figures)  # noqa: T201 -- the issue asks the test to print both figures (pytest -s)
    assert recall >= 0.95, figures
    assert false_rate <= 0.02, figures
