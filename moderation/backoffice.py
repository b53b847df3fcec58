"""Reads for the back office in admin: the dashboard, a contributor's report, the review queue.

Each runs a fixed number of aggregate queries whatever the size of the crowd (no per-row
queries). Token amounts are summed exactly: in SQL on PostgreSQL (``numeric``), in Python on
SQLite, whose ``SUM`` would overflow or round them (see ``rewards.fields``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Avg, Count, F, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import User
from labeling.models import Annotation, Item, Project, WorkerSkill, gold_answers
from moderation.models import Flag, WalletLink
from moderation.selectors import linked_accounts, user_on_probation, users_held
from rewards.fields import TokenAmountField
from rewards.models import LedgerEntry, PayoutBatch
from rewards.selectors import reward_summary_for_user

DAYS = 30
WALLET_LINKS = 20  # the latest transfers shown on a contributor's page


def _days(now: datetime, days: int) -> list[date]:
    today = timezone.localdate(now)
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def _per_day(rows: Iterable[tuple[Any, int]], days: list[date]) -> list[tuple[date, int]]:
    counts = {day: n for day, n in rows if day is not None}
    return [(day, int(counts.get(day, 0))) for day in days]


def _token_sums(queryset: QuerySet[Any], key: str, amount: str = "amount") -> dict[Any, int]:
    """Exact sums of a token amount column grouped by ``key``."""
    if connection.vendor == "postgresql":
        rows = queryset.values(key).annotate(total=Sum(amount, output_field=TokenAmountField()))
        return {row[key]: int(row["total"] or 0) for row in rows}
    sums: dict[Any, int] = defaultdict(int)
    for group, value in queryset.values_list(key, amount):
        sums[group] += int(value)
    return dict(sums)


@dataclass(frozen=True)
class ProjectProgress:
    project: Project
    open: int = 0
    review: int = 0
    accepted: int = 0
    rejected: int = 0
    agreement: float | None = None  # mean share of labels equal to the decision, accepted items
    credited: int = 0  # every ledger entry of the project, net, in base units

    @property
    def total(self) -> int:
        return self.open + self.review + self.accepted + self.rejected

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted among the items the crowd is done with (accepted, rejected, in review)."""
        done = self.accepted + self.rejected + self.review
        return self.accepted / done if done else None

    @property
    def cost_per_accepted(self) -> int | None:
        return self.credited // self.accepted if self.accepted else None


@dataclass(frozen=True)
class Dashboard:
    projects: list[ProjectProgress]
    labels_per_day: list[tuple[date, int]]
    payouts_per_day: list[tuple[date, int]]  # base units paid by confirmed batches
    open_flags: int
    open_flags_by_kind: list[tuple[str, int]]
    review_waiting: int


def dashboard_read(*, now: datetime | None = None, days: int = DAYS) -> Dashboard:
    """The admin home's numbers: six aggregate queries."""
    now = now or timezone.now()
    span = _days(now, days)
    since = now - timedelta(days=days)
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for row in Item.objects.values("project_id", "status").annotate(n=Count("id")):
        counts[row["project_id"]][row["status"]] = row["n"]
    agreement = dict(
        Item.objects.filter(status=Item.Status.ACCEPTED)
        .values("project_id")
        .annotate(a=Avg("agreement"))
        .values_list("project_id", "a")
    )
    credited = _token_sums(LedgerEntry.objects.exclude(project=None), "project_id")
    projects = [
        ProjectProgress(
            project=project,
            open=counts[project.pk].get(Item.Status.OPEN, 0),
            review=counts[project.pk].get(Item.Status.REVIEW, 0),
            accepted=counts[project.pk].get(Item.Status.ACCEPTED, 0),
            rejected=counts[project.pk].get(Item.Status.REJECTED, 0),
            agreement=agreement.get(project.pk),
            credited=credited.get(project.pk, 0),
        )
        for project in Project.objects.order_by("id")
    ]
    labels = (
        Annotation.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    paid: dict[date, int] = defaultdict(int)
    confirmed = PayoutBatch.objects.filter(
        status=PayoutBatch.Status.CONFIRMED, confirmed_at__gte=since
    ).values_list("confirmed_at", "total")
    for at, total in confirmed:  # a handful of batches a day: summed exactly here
        paid[timezone.localdate(at)] += int(total)
    flags = dict(
        Flag.objects.filter(state=Flag.State.OPEN)
        .values("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    kinds = dict(Flag.Kind.choices)
    return Dashboard(
        projects=projects,
        labels_per_day=_per_day(labels, span),
        payouts_per_day=[(day, paid.get(day, 0)) for day in span],
        open_flags=sum(flags.values()),
        open_flags_by_kind=sorted(((kinds.get(k, k), n) for k, n in flags.items())),
        review_waiting=sum(c.get(Item.Status.REVIEW, 0) for c in counts.values()),
    )


@dataclass(frozen=True)
class Confusion:
    """A contributor's labels against the accepted decisions in one project: ``counts[i][j]``
    items decided ``classes[i]`` that they labeled ``classes[j]``; ``shares`` by row."""

    project: Project
    classes: list[str]
    counts: list[list[int]]
    skill: WorkerSkill | None

    @property
    def shares(self) -> list[list[float]]:
        return [[n / (sum(row) or 1) for n in row] for row in self.counts]

    @property
    def total(self) -> int:
        return sum(sum(row) for row in self.counts)


@dataclass(frozen=True)
class GoldRecord:
    project: Project
    answered: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answered if self.answered else None


@dataclass(frozen=True)
class ContributorReport:
    user: User
    gold: list[GoldRecord]
    confusions: list[Confusion]
    labels_per_day: list[tuple[date, int]]
    label_total: int
    earned_by_reason: list[tuple[str, int]]
    pending: int
    paid: int
    flags: list[Flag]
    uploads: int
    wallets: list[str] = field(default_factory=list)
    linked: list[tuple[User, str]] = field(default_factory=list)  # other accounts, and why
    wallet_links: list[WalletLink] = field(default_factory=list)  # transfers read on the chain
    on_probation: bool = False
    rewards_held: bool = False

    @property
    def gold_answered(self) -> int:
        return sum(g.answered for g in self.gold)

    @property
    def gold_accuracy(self) -> float | None:
        answered = self.gold_answered
        return sum(g.correct for g in self.gold) / answered if answered else None


def _wallets_in(evidence: Any) -> set[str]:
    """Wallet addresses a flag's evidence names (fraud checks list the accounts they link)."""
    found: set[str] = set()
    if isinstance(evidence, dict):
        for value in evidence.values():
            found |= _wallets_in(value)
    elif isinstance(evidence, list):
        for value in evidence:
            found |= _wallets_in(value)
    elif isinstance(evidence, str) and len(evidence) == 42 and evidence.startswith("0x"):
        found.add(evidence)
    return found


def contributor_report(
    *, user: User, now: datetime | None = None, days: int = DAYS
) -> ContributorReport:
    """What a moderator needs to judge a contributor; a fixed number of aggregate queries."""
    now = now or timezone.now()
    mine = Annotation.objects.filter(annotator=user)
    projects = {
        p.pk: p for p in Project.objects.filter(items__annotations__annotator=user).distinct()
    }
    gold = [
        GoldRecord(project=projects[row["item__project_id"]], answered=row["n"], correct=row["ok"])
        for row in gold_answers(mine)
        .values("item__project_id")
        .annotate(n=Count("id"), ok=Count("id", filter=Q(label=F("item__gold_label"))))
        .order_by("item__project_id")
    ]
    cells: dict[int, dict[tuple[str, str], int]] = defaultdict(dict)
    for row in (
        mine.filter(
            item__status=Item.Status.ACCEPTED,
            item__project__task__in=[Project.Task.CLASSIFY, Project.Task.PAIRWISE],
        )
        .values("item__project_id", "item__decided_label", "label")
        .annotate(n=Count("id"))
    ):
        cells[row["item__project_id"]][(row["item__decided_label"], row["label"])] = row["n"]
    skills = {s.project_id: s for s in WorkerSkill.objects.filter(user=user)}
    confusions = []
    for project_id, table in sorted(cells.items()):
        project = projects[project_id]
        classes = list(project.classes)
        confusions.append(
            Confusion(
                project=project,
                classes=classes,
                counts=[[table.get((truth, given), 0) for given in classes] for truth in classes],
                skill=skills.get(project_id),
            )
        )
    span = _days(now, days)
    per_day = (
        mine.filter(created_at__gte=now - timedelta(days=days))
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    by_reason = _token_sums(LedgerEntry.objects.filter(user=user), "reason")
    reasons = dict(LedgerEntry.Reason.choices)
    summary = reward_summary_for_user(user=user, limit=0)
    flags = list(Flag.objects.filter(user=user).select_related("project", "resolved_by"))
    linked: set[str] = set()
    for flag in flags:
        linked |= _wallets_in(flag.evidence)
    own = {user.wallet_address} if user.wallet_address else set()
    return ContributorReport(
        user=user,
        gold=gold,
        confusions=confusions,
        labels_per_day=_per_day(per_day, span),
        label_total=mine.count(),
        earned_by_reason=[(str(reasons.get(r, r)), n) for r, n in sorted(by_reason.items())],
        pending=summary.pending,
        paid=summary.paid,
        flags=flags,
        uploads=Item.objects.filter(contributor=user).count(),
        wallets=sorted(own) + sorted(linked - own),
        linked=linked_accounts(user=user),
        wallet_links=list(WalletLink.objects.filter(user=user)[:WALLET_LINKS]),
        on_probation=user_on_probation(user=user),
        rewards_held=bool(users_held([user.pk])),
    )


def review_queue() -> QuerySet[Item]:
    """Items waiting for a moderator, oldest first, with their project, uploader and every
    label (two queries per page whatever its size)."""
    return (
        Item.objects.filter(status=Item.Status.REVIEW)
        .select_related("project", "contributor")
        .prefetch_related(
            Prefetch(
                "annotations",
                queryset=Annotation.objects.select_related("annotator").order_by("id"),
            )
        )
        .order_by("id")
    )
