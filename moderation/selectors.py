"""Reads of moderation: who is held, whose answers are left out of consensus, who is on
probation, and which accounts are linked to one another."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from labeling.models import Annotation, Project, gold_answer_q
from moderation.fraud import wilson_upper
from moderation.models import Flag, SignInFingerprint

#: Kinds of flag about a contributor's answers: they hold the contributor's unpaid rewards and,
#: where a project's ``fraud_policy`` is ``hold``, take their answers out of its consensus.
ANSWER_KINDS = (
    Flag.Kind.SPAMMER,
    Flag.Kind.SPEED,
    Flag.Kind.COLLUSION,
    Flag.Kind.SELF_LABELING,
    Flag.Kind.SYBIL,
)
#: Kinds that hold a contributor's unpaid rewards while open or confirmed.
HOLDING_KINDS = (*ANSWER_KINDS, Flag.Kind.COPY_PASTE)
#: An open flag holds pending review; a confirmed one keeps holding (a moderator may ban).
ACTIVE = (Flag.State.OPEN, Flag.State.CONFIRMED)


def flag_list(*, state: str | None = None, kind: str | None = None) -> QuerySet[Flag]:
    flags = Flag.objects.select_related("user", "project", "item").order_by("-id")
    if state:
        flags = flags.filter(state=state)
    if kind:
        flags = flags.filter(kind=kind)
    return flags


def users_held(user_ids: Iterable[int] | None = None) -> set[int]:
    """Contributors whose unpaid rewards are held: an open or confirmed fraud flag."""
    flags = Flag.objects.filter(state__in=ACTIVE, kind__in=HOLDING_KINDS, user__isnull=False)
    if user_ids is not None:
        flags = flags.filter(user_id__in=list(user_ids))
    return set(flags.values_list("user_id", flat=True))


def users_excluded_from_consensus(*, project: Project, user_ids: Iterable[int]) -> set[int]:
    """Of ``user_ids``, those whose answers don't count in ``project``'s decisions: banned
    contributors everywhere, and, where the project's policy is ``hold``, contributors with an
    open or confirmed answer flag in this project (or a flag on the account, as Sybil flags are)."""
    ids = list(user_ids)
    if not ids:
        return set()
    banned = set(
        User.objects.filter(pk__in=ids, banned_at__isnull=False).values_list("pk", flat=True)
    )
    if project.fraud_policy != Project.FraudPolicy.HOLD:
        return banned
    flagged = Flag.objects.filter(state__in=ACTIVE, kind__in=ANSWER_KINDS, user_id__in=ids).filter(
        Q(project=project) | Q(project__isnull=True)
    )
    return banned | set(flagged.values_list("user_id", flat=True))


# A gold record keeps a labeler on probation when it is clearly below the bar: the one-sided
# Wilson upper bound of its accuracy, at this confidence, under PROBATION_GOLD_ACCURACY. The
# record itself, 11 right of 15, kept a labeler whose accuracy is 0.8 on probation for good.
PROBATION_GOLD_CONFIDENCE = 0.9


def users_on_probation(user_ids: Iterable[int]) -> set[int]:
    """Of ``user_ids``, the contributors still on probation: fewer than ``PROBATION_LABELS``
    answers, an account younger than ``PROBATION_DAYS``, or, after five gold answers or more, a
    gold accuracy clearly below ``PROBATION_GOLD_ACCURACY`` (see ``PROBATION_GOLD_CONFIDENCE``). Their answers weigh less in consensus, they
    get more gold, and their payouts are capped (``PROBATION_PAYOUT_CAP``)."""
    ids = list(user_ids)
    if not ids:
        return set()
    young = timezone.now() - timedelta(days=settings.PROBATION_DAYS)
    on = set(User.objects.filter(pk__in=ids, date_joined__gt=young).values_list("pk", flat=True))
    records = (
        Annotation.objects.filter(annotator_id__in=[i for i in ids if i not in on])
        .values("annotator_id")
        .annotate(
            answers=Count("id"),
            gold=Count("id", filter=gold_answer_q()),
            gold_right=Count("id", filter=gold_answer_q() & Q(label=F("item__gold_label"))),
        )
    )
    seen: set[int] = set()
    for row in records:
        user_id = row["annotator_id"]
        seen.add(user_id)
        if row["answers"] < settings.PROBATION_LABELS or (
            row["gold"] >= 5
            and wilson_upper(row["gold_right"], row["gold"], PROBATION_GOLD_CONFIDENCE)
            < settings.PROBATION_GOLD_ACCURACY
        ):
            on.add(user_id)
    # No answers at all: on probation (PROBATION_LABELS 0 lets everyone out at once).
    if settings.PROBATION_LABELS > 0:
        on.update(i for i in ids if i not in seen)
    return on


def user_on_probation(*, user: User) -> bool:
    return user.pk in users_on_probation([user.pk])


def fingerprints_by_user(user_ids: Iterable[int] | None = None) -> dict[int, set[str]]:
    """Each account's sign-in fingerprints still kept: hashed network and browser together."""
    rows = SignInFingerprint.objects.exclude(network="")  # unknown networks link no one
    if user_ids is not None:
        rows = rows.filter(user_id__in=list(user_ids))
    prints: dict[int, set[str]] = defaultdict(set)
    for user_id, network, agent in rows.values_list("user_id", "network", "agent"):
        prints[user_id].add(f"{network}:{agent}")
    return prints


def linked_accounts(*, user: User) -> list[tuple[User, str]]:
    """Accounts linked to ``user``: signed in from the same network and browser (hashed), or
    named with them in a flag's evidence (a ring, a Sybil cluster, payouts forwarded to one
    address). With the reason, for the moderators' contributor page."""
    mine = fingerprints_by_user([user.pk]).get(user.pk, set())
    reasons: dict[int, str] = {}
    if mine:
        networks = {p.split(":")[0] for p in mine}
        for other_id, network, agent in (
            SignInFingerprint.objects.filter(network__in=networks)
            .exclude(user_id=user.pk)
            .values_list("user_id", "network", "agent")
        ):
            if f"{network}:{agent}" in mine:
                reasons.setdefault(other_id, "signed in from the same network and browser")
    for flag in Flag.objects.filter(user=user).exclude(state=Flag.State.DISMISSED):
        for other_id in _accounts_named(flag.evidence):
            if other_id != user.pk:
                reasons.setdefault(other_id, f"named in a {flag.get_kind_display().lower()} flag")
    users = User.objects.in_bulk(list(reasons))
    return [(users[pk], why) for pk, why in sorted(reasons.items()) if pk in users]


def _accounts_named(evidence: object) -> set[int]:
    """User ids a flag's evidence names (``accounts``, ``partners[].user``, ``links[].account``)."""
    if not isinstance(evidence, dict):
        return set()
    named = {a for a in evidence.get("accounts", []) if isinstance(a, int)}
    for partner in evidence.get("partners", []):
        if isinstance(partner, dict) and isinstance(partner.get("user"), int):
            named.add(partner["user"])
    for link in evidence.get("links", []):
        if isinstance(link, dict) and isinstance(link.get("account"), int):
            named.add(link["account"])
    return named
