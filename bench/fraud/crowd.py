"""A simulated paid crowd with planted abusers, to measure the fraud checks (moderation.fraud).

Honest contributors answer with their own accuracy (uniform 0.6-0.95) at a human pace, sign up on
their own (a few share a network with a friend, as a household or classroom would). Planted:

- spammers: uniform random answers; one class always; a fixed cycle of classes;
- fast clickers: decent answers in under a second;
- a colluding ring: followers copy a leader's answers, mistakes included, on the same items;
- a self-labeling ring: an uploader and throwaway wallets from the uploader's network that
  label (almost) only the uploader's items;
- a Sybil cluster: accounts made within minutes from one network, answering at random;
- a wallet farm: accounts from different networks, answering decently, whose wallets were all
  funded with gas from one address and forward their rewards to another (read from the chain);
- copy-pasters: accounts uploading other contributors' items again.

Honest people are not perfect either: some answer an obvious item in under the minimum time now
and then, most wallets are funded from a few exchanges' hot wallets (each shared by dozens), a
household funds two wallets from one, and now and then two people upload the same famous picture.

Items are served as the platform serves them: each to a few labelers at random (leases), except
where a ring coordinates to grab the same items.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from moderation.fraud import Answers, SignUp, Upload, WalletLink


@dataclass
class Crowd:
    answers: Answers
    sign_ups: list[SignUp]
    fingerprints: dict[int, set[str]]
    planted: dict[int, str] = field(default_factory=dict)  # user -> what was planted
    honest: set[int] = field(default_factory=set)
    links: list[WalletLink] = field(default_factory=list)
    activity: dict[str, int] = field(default_factory=dict)  # address -> transactions sent
    uploads: list[Upload] = field(default_factory=list)


def simulate(
    seed: int,
    *,
    n_honest: int = 300,
    n_items: int = 3000,
    n_classes: int = 3,
    overlap: int = 3,
    gold_share: float = 0.05,
) -> Crowd:
    rng = random.Random(seed)
    truth = [rng.randrange(n_classes) for _ in range(n_items)]
    gold = {i: truth[i] for i in range(n_items) if rng.random() < gold_share}
    rows: list[tuple[int, int, int, float, float]] = []  # item, user, label, at, shown
    sign_ups: list[SignUp] = []
    fingerprints: dict[int, set[str]] = {}
    planted: dict[int, str] = {}
    honest: set[int] = set()
    next_user = 1

    def new_user(kind: str, *, fingerprint: str, at: float) -> int:
        nonlocal next_user
        user = next_user
        next_user += 1
        sign_ups.append(SignUp(user, at, fingerprint))
        fingerprints[user] = {fingerprint}
        if kind == "honest":
            honest.add(user)
        else:
            planted[user] = kind
        return user

    clocks: dict[int, float] = {}

    def answer(user: int, item: int, label: int, pace: float) -> None:
        # Each person answers one item after another: shown, then answered `pace` later.
        shown = clocks.get(user, 0.0) + rng.uniform(0.5, 3.0)
        clocks[user] = shown + pace
        rows.append((item, user, label, shown + pace, shown))

    honest_users = []
    for n in range(n_honest):
        # One in ten shares a network with another honest user (a household, a classroom),
        # signing up a few hours or days apart.
        shared = n % 10 == 1
        fingerprint = f"net-{n - 1}" if shared else f"net-{n}"
        at = (
            rng.uniform(0, 60 * 86400)
            if not shared
            else sign_ups[-1].at + rng.uniform(1, 20) * 3600
        )
        honest_users.append(
            (new_user("honest", fingerprint=fingerprint, at=at), rng.uniform(0.6, 0.95))
        )

    spam = [
        (new_user("spammer: random", fingerprint=f"spam-{i}", at=rng.uniform(0, 5e6)), "random")
        for i in range(8)
    ]
    spam += [
        (new_user("spammer: one class", fingerprint=f"const-{i}", at=rng.uniform(0, 5e6)), "const")
        for i in range(6)
    ]
    spam += [
        (new_user("spammer: cycle", fingerprint=f"cycle-{i}", at=rng.uniform(0, 5e6)), "cycle")
        for i in range(6)
    ]
    fast = [
        new_user("fast clicker", fingerprint=f"fast-{i}", at=rng.uniform(0, 5e6)) for i in range(6)
    ]
    leader = new_user("colluding ring", fingerprint="ring-leader", at=rng.uniform(0, 5e6))
    followers = [
        new_user("colluding ring", fingerprint=f"ring-{i}", at=rng.uniform(0, 5e6))
        for i in range(4)
    ]
    uploader = new_user("self-labeling ring", fingerprint="home-of-uploader", at=1e6)
    throwaways = [
        new_user("self-labeling ring", fingerprint="home-of-uploader", at=1e6 + 86400 * (i + 1))
        for i in range(4)
    ]
    sybil_start = rng.uniform(1e6, 4e6)
    sybils = [
        new_user("sybil cluster", fingerprint="vpn-exit-7", at=sybil_start + rng.uniform(0, 1200))
        for _ in range(8)
    ]

    uploads = {item: uploader for item in range(0, n_items, 40)}  # the uploader's items
    pool = [item for item in range(n_items) if item not in uploads]

    def honest_label(item: int, accuracy: float) -> int:
        if rng.random() < accuracy:
            return truth[item]
        return rng.choice([c for c in range(n_classes) if c != truth[item]])

    # Honest crowd: every item gets `overlap` honest labels; a fifth of the crowd answers one in
    # twenty items faster than the minimum (an obvious one).
    hasty = {user for user, _ in honest_users if rng.random() < 0.2}
    for item in range(n_items):
        for user, accuracy in rng.sample(honest_users, overlap):
            quick = user in hasty and rng.random() < 0.05
            pace = rng.uniform(0.4, 1.4) if quick else rng.uniform(3, 20)
            answer(user, item, honest_label(item, accuracy), pace)
    # Spammers and fast clickers take random items.
    for user, style in spam:
        cycle = [rng.randrange(n_classes) for _ in range(rng.randint(2, 4))]
        if len(set(cycle)) == 1:
            cycle[1] = (cycle[0] + 1) % n_classes
        constant = rng.randrange(n_classes)
        for n, item in enumerate(rng.sample(pool, rng.randint(40, 120))):
            label = {
                "random": rng.randrange(n_classes),
                "const": constant,
                "cycle": cycle[n % len(cycle)],
            }[style]
            answer(user, item, label, rng.uniform(2, 10))
    for user in fast:
        for item in rng.sample(pool, rng.randint(40, 100)):
            answer(user, item, honest_label(item, 0.75), rng.uniform(0.2, 0.9))
    # The ring grabs the same items; the leader answers, the followers copy.
    for item in rng.sample(pool, 80):
        label = honest_label(item, 0.7)
        answer(leader, item, label, rng.uniform(3, 15))
        for follower in followers:
            answer(follower, item, label, rng.uniform(3, 15))
    # Throwaway wallets label the uploader's items (agreeing, to get them accepted).
    for item in uploads:
        label = rng.randrange(n_classes)
        for wallet in throwaways:
            answer(wallet, item, label, rng.uniform(3, 15))
    for user in sybils:
        for item in rng.sample(pool, rng.randint(20, 60)):
            answer(user, item, rng.randrange(n_classes), rng.uniform(3, 15))

    # A wallet farm: separate networks, decent answers, one purse and one collection address.
    farm = [
        new_user("wallet farm", fingerprint=f"farm-{i}", at=rng.uniform(0, 5e6)) for i in range(6)
    ]
    for user in farm:
        for item in rng.sample(pool, rng.randint(30, 80)):
            answer(user, item, honest_label(item, 0.75), rng.uniform(3, 15))
    # Most honest wallets are funded from an exchange's hot wallet (busy: thousands of sends);
    # some cash out to their own exchange deposit address.
    links: list[WalletLink] = []
    exchanges = [f"0xexchange{i}" for i in range(3)]
    activity = {e: rng.randint(10_000, 1_000_000) for e in exchanges}
    for n, (user, _) in enumerate(honest_users):
        if rng.random() < 0.6:
            links.append(WalletLink(user, "funded_from", rng.choice(exchanges), "native"))
        if rng.random() < 0.3:
            links.append(WalletLink(user, "paid_to", f"0xdeposit-{user}", "token"))
        if n % 25 == 3:  # a household: one wallet funds two
            links.append(WalletLink(user, "funded_from", f"0xparent{n}", "native"))
            links.append(
                WalletLink(honest_users[n + 1][0], "funded_from", f"0xparent{n}", "native")
            )
    activity["0xfarm-purse"] = len(farm) + rng.randint(0, 40)
    for user in farm:
        links.append(WalletLink(user, "funded_from", "0xfarm-purse", "native"))
        links.append(WalletLink(user, "paid_to", "0xfarm-collector", "token"))

    # Uploads: honest contributors upload their own content; two now and then the same famous
    # picture; copy-pasters upload others' content again, with a little of their own.
    stored: list[Upload] = []
    content = 0
    for user, _ in honest_users[: n_honest // 2]:
        for _ in range(rng.randint(1, 12)):
            content += 1
            stored.append(Upload(content, user, rng.uniform(0, 5e6), f"own-{content}"))
    famous = [u for u in stored if rng.random() < 0.02]
    for original in famous:
        user = rng.choice(honest_users)[0]
        if user != original.user:
            content += 1
            stored.append(Upload(content, user, original.at + 1e5, original.fingerprint))
    copiers = [
        new_user("copy-paster", fingerprint=f"copy-{i}", at=rng.uniform(0, 5e6)) for i in range(4)
    ]
    honest_uploads = list(stored)
    for user in copiers:
        for _ in range(rng.randint(2, 5)):
            content += 1
            stored.append(Upload(content, user, 6e6, f"own-{content}"))
        for original in rng.sample(honest_uploads, rng.randint(4, 15)):
            content += 1
            stored.append(Upload(content, user, 6e6 + content, original.fingerprint))

    table = np.array(rows, dtype=np.float64)
    return Crowd(
        answers=Answers(
            item=table[:, 0].astype(np.int64),
            user=table[:, 1].astype(np.int64),
            label=table[:, 2].astype(np.int64),
            at=table[:, 3],
            shown_at=table[:, 4],
            n_classes=n_classes,
            gold=gold,
            uploader=uploads,
        ),
        sign_ups=sign_ups,
        fingerprints=fingerprints,
        planted=planted,
        honest=honest,
        links=links,
        activity=activity,
        uploads=stored,
    )
