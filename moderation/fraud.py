"""Fraud checks on a paid crowd: framework-free (NumPy), arrays in, candidate flags out.

Each check looks for one kind of abuse and says why, with numbers a moderator can read:

- ``spammers``: answers that carry no information about the truth. Compared with a reference
  that excludes the labeler (their gold answers, and the majority of the *other* labelers of an
  item), a spammer agrees about as often as chance allows; and answering always the same class, or
  a fixed cycle of classes, is a spammer's signature whatever the data.
- ``speed``: answers given faster than a person can read the item (from when the page showed it,
  or when it was served).
- ``collusion``: pairs of labelers who answer alike on many shared items far more often than two
  independent labelers of their accuracy would (colluders copy one another, mistakes included;
  honest people err independently); a binomial tail with a multiple-comparison correction
  decides. Groups are the connected pairs.
- ``self_labeling``: a contributor's uploads labeled by accounts that share a sign-in fingerprint
  with them, or that label almost nothing else.
- ``sybil``: accounts whose first sign-ins came in a cluster from one network fingerprint within a
  short window, or whose wallets forward their payouts to one address.

The thresholds are fixed and explained where they are set; ``bench/fraud/`` measures them on a
simulated crowd with planted abusers.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

# --- thresholds ------------------------------------------------------------------------------
MIN_ANSWERS = 20  # a labeler's record must be this long before any answer-pattern check
# An honest labeler of 60% accuracy among honest peers agrees with the others' majority about
# chance + 0.3 of the way to perfect or more; a spammer agrees at chance.
SPAM_AGREEMENT_MARGIN = 0.3
SPAM_CONFIDENCE = 0.975  # one-sided: the labeler's agreement is below the bar at this level
CONSTANT_SHARE = 0.95  # answering one class this often is spam unless the data is that skewed
CYCLE_SHARE = 0.95  # answers repeating a fixed cycle (period 2-6) this often
SPEED_SHARE = 0.5  # this share of a labeler's answers below the project's minimum time
SPEED_MIN_FAST = 4  # and at least this many such answers (four clicks in a second are enough)
GOLD_MIN_ANSWERS = 8  # gold answers before gold accuracy alone can flag a spammer
COLLUSION_MIN_SHARED = 15  # items two labelers answered both
COLLUSION_MIN_AGREEMENT = 0.9
COLLUSION_EXCESS = 0.1  # above what independence predicts
COLLUSION_ACCURACY_CAP = 0.9
COLLUSION_ALPHA = 1e-3  # family-wise, over every pair that labeled items together
SELF_LABEL_SHARE = 0.6  # of a labeler's answers on one uploader's items
SELF_LABEL_ALPHA = 1e-3  # family-wise, over every (labeler, uploader) pair
SYBIL_WINDOW_S = 3600.0
SYBIL_MIN_CLUSTER = 3
# Wallets linked through one address on the chain: 3 or more. An address that has sent this many
# transactions is a service (an exchange's hot wallet, a faucet), not one person's purse.
WALLET_MIN_CLUSTER = 3
WALLET_SERVICE_TXS = 500
COPY_MIN_UPLOADS = 3  # copied uploads before a contributor is flagged
COPY_SHARE = 0.2  # and this share of their uploads


@dataclass(frozen=True)
class Answers:
    """One project's answers, one row each (classify-like: a class code per answer)."""

    item: np.ndarray  # int64 item ids
    user: np.ndarray  # int64 user ids
    label: np.ndarray  # int64 class codes
    at: np.ndarray  # float64 seconds (answer time)
    shown_at: np.ndarray  # float64 seconds, NaN when unknown
    n_classes: int
    gold: Mapping[int, int] = field(default_factory=dict)  # item -> known class
    # item -> seconds it became gold, for items made gold after they were created: the answers
    # before then saw an ordinary item and don't count toward a labeler's gold accuracy.
    gold_since: Mapping[int, float] = field(default_factory=dict)
    uploader: Mapping[int, int] = field(default_factory=dict)  # item -> uploader user id

    @property
    def size(self) -> int:
        return int(self.item.shape[0])


@dataclass(frozen=True)
class Candidate:
    """A flag a check proposes: who, what kind, and the evidence (JSON-able)."""

    user: int
    kind: str
    evidence: dict[str, Any]


def wilson_upper(successes: int, n: int, confidence: float) -> float:
    """Upper bound of a one-sided Wilson interval for a binomial proportion."""
    if n == 0:
        return 1.0
    z = NormalDist().inv_cdf(confidence)
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z * z / n))


def references(
    answers: Answers, exclude: frozenset[int] = frozenset()
) -> dict[tuple[int, int], int]:
    """For each (item, labeler), the answer a reference gives without that labeler: the item's
    gold answer, else the strict plurality of the other labelers' answers (none on a tie or
    fewer than two others), leaving out those in ``exclude``."""
    by_item: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for item, user, label in zip(answers.item, answers.user, answers.label, strict=True):
        by_item[int(item)].append((int(user), int(label)))
    out: dict[tuple[int, int], int] = {}
    for item, rows in by_item.items():
        gold = answers.gold.get(item)
        for user, _ in rows:
            if gold is not None:
                out[(item, user)] = gold
                continue
            others = Counter(label for u, label in rows if u != user and u not in exclude)
            if sum(others.values()) < 2:
                continue
            (top, count), *rest = others.most_common(2) + [(None, 0)]
            if rest[0][1] == count:
                continue
            out[(item, user)] = int(top)  # type: ignore[arg-type]
    return out


def spammers(answers: Answers) -> list[Candidate]:
    """Labelers whose answers carry no information: at chance against the reference, one
    class always, or a fixed cycle."""
    k = answers.n_classes
    ref = references(answers)
    found: list[Candidate] = []
    order = np.argsort(answers.at, kind="stable")
    # Whether one class is that common, judged without the labelers who answer it all the time:
    # a ring answering one class made itself the reference, and the check looked away.
    constant = frozenset(
        int(user)
        for user in np.unique(answers.user)
        if (mask := answers.user == user).sum() >= MIN_ANSWERS
        and np.bincount(answers.label[mask]).max() / mask.sum() >= CONSTANT_SHARE
    )
    others_ref = references(answers, exclude=constant) if constant else ref
    for user in np.unique(answers.user):
        mine = order[answers.user[order] == user]
        labels = answers.label[mine]
        n = int(labels.shape[0])
        if n < MIN_ANSWERS:
            continue
        pairs = [
            (int(label), ref[(int(item), int(user))])
            for item, label in zip(answers.item[mine], labels, strict=True)
            if (int(item), int(user)) in ref
        ]
        agreed = sum(a == b for a, b in pairs)
        chance = 1.0 / k
        bar = chance + SPAM_AGREEMENT_MARGIN * (1 - chance)
        on_gold = [
            int(label) == answers.gold[int(item)]
            for item, label, at in zip(answers.item[mine], labels, answers.at[mine], strict=True)
            if int(item) in answers.gold and at >= answers.gold_since.get(int(item), -np.inf)
        ]
        if (
            len(on_gold) >= GOLD_MIN_ANSWERS
            and wilson_upper(sum(on_gold), len(on_gold), SPAM_CONFIDENCE) < bar
        ):
            found.append(
                Candidate(
                    int(user),
                    "spammer",
                    {
                        "check": "gold accuracy below the threshold",
                        "gold_right": sum(on_gold),
                        "gold_answered": len(on_gold),
                        "chance": round(chance, 3),
                        "bar": round(bar, 3),
                    },
                )
            )
            continue
        if len(pairs) >= MIN_ANSWERS and wilson_upper(agreed, len(pairs), SPAM_CONFIDENCE) < bar:
            found.append(
                Candidate(
                    int(user),
                    "spammer",
                    {
                        "check": "agreement with the reference at chance",
                        "agreed": agreed,
                        "compared": len(pairs),
                        "chance": round(chance, 3),
                        "bar": round(bar, 3),
                    },
                )
            )
            continue
        top, count = Counter(labels.tolist()).most_common(1)[0]
        share = count / n
        plain = [
            others_ref[(int(item), int(user))]
            for item in answers.item[mine]
            if (int(item), int(user)) in others_ref
        ]
        if not plain:  # every other labeler answers one class too: the data may be that skewed
            plain = [b for _, b in pairs]
        reference_share = sum(b == top for b in plain) / len(plain) if plain else 1 / k
        if share >= CONSTANT_SHARE and reference_share < 0.7:
            found.append(
                Candidate(
                    int(user),
                    "spammer",
                    {
                        "check": "always the same class",
                        "class": int(top),
                        "share": round(share, 3),
                        "reference_share": round(reference_share, 3),
                        "answers": n,
                    },
                )
            )
            continue
        for period in range(2, 7):
            if n < 4 * period:
                break
            repeats = float(np.mean(labels[period:] == labels[:-period]))
            if repeats >= CYCLE_SHARE and len(set(labels[:period].tolist())) > 1:
                found.append(
                    Candidate(
                        int(user),
                        "spammer",
                        {
                            "check": "a fixed cycle of answers",
                            "period": period,
                            "cycle": labels[:period].tolist(),
                            "share": round(repeats, 3),
                            "answers": n,
                        },
                    )
                )
                break
    return found


def too_fast(answers: Answers, min_seconds: float) -> list[Candidate]:
    """Labelers who answer faster than ``min_seconds`` after the item was shown, often."""
    found: list[Candidate] = []
    took = answers.at - answers.shown_at
    for user in np.unique(answers.user):
        timed = took[(answers.user == user) & ~np.isnan(took)]
        n_fast = int(np.sum(timed < min_seconds))
        if n_fast < SPEED_MIN_FAST:
            continue
        fast = n_fast / timed.shape[0]
        if fast >= SPEED_SHARE:
            found.append(
                Candidate(
                    int(user),
                    "speed",
                    {
                        "check": "answers faster than a person can read the item",
                        "median_seconds": round(float(np.median(timed)), 2),
                        "share_below_minimum": round(fast, 3),
                        "minimum_seconds": min_seconds,
                        "timed_answers": int(timed.shape[0]),
                    },
                )
            )
    return found


def _binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in logs (n is a few thousand at most)."""
    if k <= 0:
        return 1.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k, n + 1):
        total += math.exp(
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * log_p
            + (n - i) * log_q
        )
    return min(1.0, total)


def colluders(answers: Answers) -> list[Candidate]:
    """Pairs who answer alike far more often than two independent labelers of their accuracy
    would, on many shared items; each flag names the partners, how often they agreed and how
    often independence predicts.

    Accuracies come from agreement with the reference (gold, else the others' majority), capped
    at ``COLLUSION_ACCURACY_CAP``: a ring looks accurate against a reference it dominates, and the
    cap keeps two excellent honest labelers from looking certain to agree.
    """
    ref = references(answers)
    k = answers.n_classes
    answer_of: dict[int, dict[int, int]] = defaultdict(dict)
    time_of: dict[tuple[int, int], float] = {}
    agreed: Counter[int] = Counter()
    compared: Counter[int] = Counter()
    for item, user, label, at in zip(
        answers.item, answers.user, answers.label, answers.at, strict=True
    ):
        u, i = int(user), int(item)
        answer_of[u][i] = int(label)
        time_of[(u, i)] = float(at)
        if (i, u) in ref:
            compared[u] += 1
            agreed[u] += int(label) == ref[(i, u)]
    accuracy = {
        u: min(COLLUSION_ACCURACY_CAP, (agreed[u] + 1) / (compared[u] + 2)) for u in answer_of
    }
    # Pairs and their shared items, counted item by item (linear in answers x overlap, not in
    # the square of the crowd).
    labelers_of: dict[int, list[int]] = defaultdict(list)
    for u, items in answer_of.items():
        for i in items:
            labelers_of[i].append(u)
    shared_count: Counter[tuple[int, int]] = Counter()
    same_count: Counter[tuple[int, int]] = Counter()
    for i, labelers in labelers_of.items():
        labelers.sort()
        for x, u in enumerate(labelers):
            for v in labelers[x + 1 :]:
                shared_count[(u, v)] += 1
                same_count[(u, v)] += answer_of[u][i] == answer_of[v][i]
    candidates: list[tuple[int, int, int, int, float]] = []
    # The pairs actually tested: those sharing enough items.
    n_pairs = sum(1 for n in shared_count.values() if n >= COLLUSION_MIN_SHARED)
    items_sets = {u: set(items) for u, items in answer_of.items()}
    for (u, v), shared in shared_count.items():
        if shared < COLLUSION_MIN_SHARED:
            continue
        same = same_count[(u, v)]
        a_u, a_v = accuracy[u], accuracy[v]
        expected = a_u * a_v + (1 - a_u) * (1 - a_v) / max(1, k - 1)
        if same / shared < max(COLLUSION_MIN_AGREEMENT, expected + COLLUSION_EXCESS):
            continue
        candidates.append((u, v, same, shared, expected))
    found: dict[int, Candidate] = {}
    alpha = COLLUSION_ALPHA / max(1, n_pairs)
    for u, v, same, shared, expected in candidates:
        p_value = _binomial_sf(same, shared, expected)
        if p_value >= alpha:
            continue
        common = sorted(items_sets[u] & items_sets[v])
        gaps = [abs(time_of[(u, i)] - time_of[(v, i)]) for i in common]
        for me, partner in ((u, v), (v, u)):
            evidence = (
                found[me].evidence
                if me in found
                else {
                    "check": "answers alike far beyond what independent labelers would",
                    "partners": [],
                }
            )
            partners = evidence["partners"]
            assert isinstance(partners, list)
            partners.append(
                {
                    "user": partner,
                    "shared_items": shared,
                    "agreed": same,
                    "expected_share_if_independent": round(expected, 3),
                    "p_value": float(f"{p_value:.3g}"),
                    "median_seconds_apart": round(float(np.median(gaps)), 1),
                }
            )
            found[me] = Candidate(me, "collusion", evidence)
    return list(found.values())


def self_labelers(answers: Answers, fingerprints: Mapping[int, set[str]]) -> list[Candidate]:
    """Accounts labeling one uploader's items while sharing a sign-in fingerprint with that
    uploader, or while labeling almost nothing else: ``SELF_LABEL_SHARE`` of their answers or
    more on that uploader's items, far more than the uploader's share of the project's answers
    explains (a binomial tail below ``SELF_LABEL_ALPHA``, family-wise; where one account
    uploaded most of a project, every labeler labels mostly its items). Flags both the labelers
    and the uploader."""
    per_labeler: dict[int, Counter[int]] = defaultdict(Counter)
    answered: Counter[int] = Counter()
    for item, user in zip(answers.item, answers.user, strict=True):
        uploader = answers.uploader.get(int(item))
        per_labeler[int(user)][uploader if uploader is not None else -1] += 1
        answered[uploader if uploader is not None else -1] += 1
    pairs = sum(1 for counts in per_labeler.values() for u in counts if u != -1)
    alpha = SELF_LABEL_ALPHA / max(1, pairs)
    found: dict[int, Candidate] = {}
    for labeler, counts in per_labeler.items():
        total = sum(counts.values())
        for uploader, n in counts.items():
            if uploader in (-1, labeler):
                continue
            shared = sorted(fingerprints.get(labeler, set()) & fingerprints.get(uploader, set()))
            # The uploader's share of everyone else's answers: what an honest labeler's would be.
            others = answers.size - total
            base = (answered[uploader] - n) / others if others > 0 else 1.0
            concentrated = (
                total >= 5
                and n / total >= SELF_LABEL_SHARE
                and _binomial_sf(n, total, min(max(base, 1e-6), 1.0)) < alpha
            )
            if not shared and not concentrated:
                continue
            why = (
                "shares a sign-in fingerprint with the uploader"
                if shared
                else ("labels almost only this uploader's items")
            )
            for who, other in ((labeler, uploader), (uploader, labeler)):
                evidence = (
                    found[who].evidence
                    if who in found
                    else {
                        "check": "labels one contributor's uploads through other accounts",
                        "links": [],
                    }
                )
                links = evidence["links"]
                assert isinstance(links, list)
                links.append(
                    {
                        "account": other,
                        "why": why,
                        "labels_on_uploads": n,
                        "labeler_total": total,
                        "shared_fingerprints": len(shared),
                    }
                )
                found[who] = Candidate(who, "self_labeling", evidence)
    return list(found.values())


@dataclass(frozen=True)
class SignUp:
    user: int
    at: float  # seconds: the account's first sign-in
    fingerprint: str  # hashed network/client fingerprint of that sign-in


def sybil_clusters(sign_ups: Sequence[SignUp]) -> list[Candidate]:
    """Accounts first seen within ``SYBIL_WINDOW_S`` of each other from one fingerprint, in
    groups of ``SYBIL_MIN_CLUSTER`` or more."""
    by_print: dict[str, list[SignUp]] = defaultdict(list)
    for sign_up in sign_ups:
        by_print[sign_up.fingerprint].append(sign_up)
    found: list[Candidate] = []
    for fingerprint, group in by_print.items():
        group.sort(key=lambda s: s.at)
        # Every window of SYBIL_WINDOW_S holding enough sign-ups adds them to the cluster.
        cluster: set[int] = set()
        j = 0
        for i in range(len(group)):
            while group[i].at - group[j].at > SYBIL_WINDOW_S:
                j += 1
            if i - j + 1 >= SYBIL_MIN_CLUSTER:
                cluster.update(s.user for s in group[j : i + 1])
        for user in sorted(cluster):
            found.append(
                Candidate(
                    user,
                    "sybil",
                    {
                        "check": "new accounts arriving together from one fingerprint",
                        "fingerprint": fingerprint[:12],
                        "accounts": sorted(cluster),
                        "window_seconds": SYBIL_WINDOW_S,
                    },
                )
            )
    return found


@dataclass(frozen=True)
class WalletLink:
    """A transfer between a contributor's wallet and another address, read from the chain:
    ``direction`` is ``funded_from`` (the other address sent to the contributor) or ``paid_to``
    (the contributor sent to it); ``asset`` is ``native`` or the token's address."""

    user: int
    direction: str
    counterparty: str
    asset: str


def wallet_groups(links: Iterable[WalletLink]) -> dict[tuple[str, str], set[int]]:
    """``(direction, counterparty)`` -> the contributors linked through it, for groups of
    ``WALLET_MIN_CLUSTER`` or more (the candidates whose senders' activity is worth reading)."""
    groups: dict[tuple[str, str], set[int]] = defaultdict(set)
    for link in links:
        groups[(link.direction, link.counterparty.lower())].add(link.user)
    return {key: users for key, users in groups.items() if len(users) >= WALLET_MIN_CLUSTER}


def wallet_clusters(
    links: Iterable[WalletLink], activity: Mapping[str, int] | None = None
) -> list[Candidate]:
    """Contributors' wallets funded from one address, or paying out to one address, in groups
    of ``WALLET_MIN_CLUSTER`` or more: one person's wallets fed for gas from a common purse, or
    forwarding their rewards to one place (exchanges give each customer a deposit address of
    their own). A funding address that has sent ``WALLET_SERVICE_TXS`` transactions or more
    (``activity``: address -> its transaction count) is a service (an exchange's hot wallet, a
    faucet), not one person's purse."""
    activity = activity or {}
    clusters: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for (direction, counterparty), users in sorted(wallet_groups(links).items()):
        if direction == "funded_from" and activity.get(counterparty, 0) >= WALLET_SERVICE_TXS:
            continue
        for user in users:
            clusters[user].append(
                {"direction": direction, "address": counterparty, "accounts": sorted(users)}
            )
    return [
        Candidate(
            user,
            "sybil",
            {
                "check": "wallets funded from, or paying out to, the same address",
                "links": [
                    {"account": other, "why": f"{c['direction'].replace('_', ' ')} {c['address']}"}
                    for c in found
                    for other in c["accounts"]
                    if other != user
                ],
                "addresses": found,
                "accounts": sorted({a for c in found for a in c["accounts"]}),
            },
        )
        for user, found in sorted(clusters.items())
    ]


@dataclass(frozen=True)
class Upload:
    """One stored item: who uploaded it, when, and its content fingerprint (the exact text or
    image hash the duplicate checks use)."""

    item: int
    user: int
    at: float
    fingerprint: str


def copy_pasters(
    uploads: Sequence[Upload],
    borderline: Mapping[int, int],
    totals: Mapping[int, int] | None = None,
) -> list[Candidate]:
    """Contributors whose uploads copy other accounts' items: the same content (after the
    duplicate checks' normalisation) stored earlier by someone else, in any project, plus their
    uploads flagged as borderline near-copies (``borderline``: user -> count). Flagged at
    ``COPY_MIN_UPLOADS`` copies that make ``COPY_SHARE`` of their uploads or more. ``totals``
    (user -> uploads) when ``uploads`` holds only the shared content; else counted from it."""
    by_print: dict[str, list[Upload]] = defaultdict(list)
    if totals is None:
        totals = Counter(upload.user for upload in uploads)
    for upload in uploads:
        if upload.fingerprint:
            by_print[upload.fingerprint].append(upload)
    copies: dict[int, list[dict[str, int]]] = defaultdict(list)
    for group in by_print.values():
        if len({u.user for u in group}) < 2:
            continue
        group.sort(key=lambda u: (u.at, u.item))
        first = group[0]
        for upload in group[1:]:
            if upload.user != first.user:
                copies[upload.user].append(
                    {"item": upload.item, "copy_of": first.item, "owner": first.user}
                )
    found: list[Candidate] = []
    for user in sorted(set(copies) | set(borderline)):
        n = len(copies.get(user, [])) + borderline.get(user, 0)
        total = max(totals.get(user, 0), n)
        if n < COPY_MIN_UPLOADS or n < COPY_SHARE * total:
            continue
        found.append(
            Candidate(
                user,
                "copy_paste",
                {
                    "check": "uploads copying other contributors' items",
                    "copies": copies.get(user, [])[:50],
                    "borderline_copies": borderline.get(user, 0),
                    "uploads": total,
                    "links": [
                        {"account": owner, "why": "their items copied"}
                        for owner in sorted({c["owner"] for c in copies.get(user, [])})
                    ],
                },
            )
        )
    return found
