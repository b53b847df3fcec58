"""Handing out work: leases on items, gold mixed in at a rate that tapers with a record.

An item handed to a contributor is leased to them for the project's ``lease_seconds``; a live
lease counts against the labels the item still needs, so concurrent contributors are never handed
more leases than an item needs, and nobody does work that will be refused. Only the holder may
answer the item (``labeling.services.items``). A skip or the lease's expiry gives the place back.

Each contributor holds at most ``LOOKAHEAD`` live leases per project: the item on screen and the
next one, which the labeling page preloads.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Greatest, Mod
from django.utils import timezone

from accounts.models import User
from labeling.models import Annotation, Assignment, Item, Project, gold_answer_q
from moderation.selectors import user_on_probation

LOOKAHEAD = 2
# Gold: newcomers get GOLD_RATE_NEW; a record of GOLD_TRUSTED_ACCURACY or better tapers it to
# GOLD_RATE_TRUSTED over GOLD_TAPER_ANSWERS gold answers; below that accuracy it stays high.
GOLD_RATE_NEW = 0.30
GOLD_RATE_TRUSTED = 0.05
GOLD_TRUSTED_ACCURACY = 0.90
GOLD_TAPER_START = 10
GOLD_TAPER_ANSWERS = 50


def gold_rate(*, answered: int, correct: int, probation: bool = False) -> float:
    """The share of served items that are gold for a contributor with this gold record (on
    probation: the newcomers' rate, whatever the record)."""
    if probation or answered < GOLD_TAPER_START or correct / answered < GOLD_TRUSTED_ACCURACY:
        return GOLD_RATE_NEW
    progress = min(1.0, (answered - GOLD_TAPER_START) / (GOLD_TAPER_ANSWERS - GOLD_TAPER_START))
    return GOLD_RATE_NEW + (GOLD_RATE_TRUSTED - GOLD_RATE_NEW) * progress


def _draw(user: User, project: Project, served: int) -> float:
    """A uniform draw in [0, 1), fixed per contributor, project and position in their queue (so
    reloading the page doesn't re-roll whether the next item is gold)."""
    digest = hashlib.sha256(f"gold:{user.pk}:{project.pk}:{served}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _live(now: datetime) -> Q:
    return Q(answered_at__isnull=True, released_at__isnull=True, expires_at__gt=now)


def leases_live(*, user: User, project: Project) -> QuerySet[Assignment]:
    """The contributor's live leases in the project, oldest first."""
    return (
        Assignment.objects.select_related("item__project")
        .filter(_live(timezone.now()), user=user, item__project=project)
        .order_by("served_at", "id")
    )


def _candidates(project: Project, user: User) -> QuerySet[Item]:
    """Open items this contributor may be given: not theirs, not answered, skipped or held by
    them."""
    now = timezone.now()
    mine = Assignment.objects.filter(_live(now), item=OuterRef("pk"), user=user)
    return (
        Item.objects.filter(project=project, status=Item.Status.OPEN)
        .exclude(contributor=user)
        .exclude(Exists(Annotation.objects.filter(item=OuterRef("pk"), annotator=user)))
        .exclude(skips__user=user)
        .exclude(Exists(mine))
    )


def _lease(item: Item, user: User, project: Project) -> Assignment:
    now = timezone.now()
    expires_at = now + timedelta(seconds=project.lease_seconds)
    lease, _ = Assignment.objects.update_or_create(
        item=item,
        user=user,
        defaults={
            "served_at": now,
            "expires_at": expires_at,
            "shown_at": None,
            "answered_at": None,
            "released_at": None,
        },
    )
    return lease


# A gold item's place in one contributor's order: ((id mod P) * M + S) mod P, with a multiplier
# M (1..P-1) and a shift S drawn from a hash of the contributor: a different permutation for each
# (P prime; every product stays far within 64 bits, whatever the ids).
_GOLD_PRIME = 1_000_003


def _gold_order(user: User) -> tuple[int, int]:
    digest = hashlib.sha256(f"gold-order:{user.pk}".encode()).digest()
    multiplier = 1 + int.from_bytes(digest[:8], "big") % (_GOLD_PRIME - 1)
    return multiplier, int.from_bytes(digest[8:16], "big") % _GOLD_PRIME


def _lease_gold(project: Project, user: User) -> Assignment | None:
    """The contributor's next gold item, in an order of their own: in one shared order (by id),
    every new wallet met the same gold items first, and a ring that shared the feedback on a
    wrong answer passed its gold with answers it never read."""
    multiplier, shift = _gold_order(user)
    p = _GOLD_PRIME
    gold = (
        _candidates(project, user)
        .exclude(gold_label="")
        .annotate(place=Mod(Mod(F("id"), p) * multiplier + shift, p))
        .order_by("place", "id")
        .first()
    )
    return _lease(gold, user, project) if gold is not None else None


def _lease_work(project: Project, user: User) -> Assignment | None:
    """Lease the open item closest to its decision that still has room: its labels plus its live
    leases below the labels it needs. The item's row is locked while its leases are counted, so
    concurrent callers never overfill it (on PostgreSQL a locked item is skipped first and waited
    for only when nothing else has room; SQLite's transactions are serialised anyway)."""
    now = timezone.now()
    held_by_others = (
        Assignment.objects.filter(_live(now), item=OuterRef("pk"))
        .values("item")
        .annotate(n=Count("id"))
        .values("n")
    )
    open_items = (
        _candidates(project, user)
        .filter(gold_label="", label_count__lt=F("required_labels"))
        .annotate(held=Coalesce(Subquery(held_by_others, output_field=IntegerField()), 0))
        .filter(held__lt=F("required_labels") - F("label_count"))
        .order_by("-label_count", "id")
    )
    ids = list(open_items.values_list("id", flat=True)[:20])
    if not ids:
        return None
    postgres = connection.vendor == "postgresql"
    order = list(
        Item.objects.select_for_update(skip_locked=True)
        .filter(pk__in=ids)
        .values_list("id", flat=True)
        if postgres
        else ids
    )
    # Skipped (locked by another caller) candidates are tried last, waiting for their lock.
    for item_id in [*[i for i in ids if i in order], *[i for i in ids if i not in order]]:
        item = Item.objects.select_for_update().get(pk=item_id)
        held = Assignment.objects.filter(_live(now), item=item).count()
        if item.status == Item.Status.OPEN and item.label_count + held < item.required_labels:
            return _lease(item, user, project)
    return None


def task_lease_next(*, project: Project, user: User, after: int | None = None) -> Assignment | None:
    """The contributor's next item, leased: a live lease they hold (other than ``after``, the
    item on their screen), or a new one. ``None`` when nothing is left for them.

    A share of new leases are gold items (``gold_rate``), indistinguishable from the rest.
    """
    with transaction.atomic():
        # One call per contributor at a time (two tabs, a preload racing a page's own call):
        # otherwise a call that can't see the other's uncommitted lease on the last item (its row
        # locked, so skipped) answers "nothing left" while the contributor holds it.
        list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
        held = [
            lease for lease in leases_live(user=user, project=project) if lease.item_id != after
        ]
        if held:
            return held[0]
        live = leases_live(user=user, project=project).count()
        if live >= LOOKAHEAD:
            return None
        record = Annotation.objects.filter(annotator=user, item__project=project).aggregate(
            total=Count("id"),
            gold=Count("id", filter=gold_answer_q()),
            gold_right=Count("id", filter=gold_answer_q() & Q(label=F("item__gold_label"))),
        )
        served = Assignment.objects.filter(user=user, item__project=project).count()
        wants_gold = _draw(user, project, served) < gold_rate(
            answered=record["gold"],
            correct=record["gold_right"],
            probation=user_on_probation(user=user),
        )
        lease = _lease_gold(project, user) if wants_gold else None
        if lease is None:
            lease = _lease_work(project, user)
        if lease is None and not wants_gold:
            lease = _lease_gold(project, user)  # no regular work left: gold still measures
        return lease


def lease_grant(*, item: Item, user: User) -> Assignment:
    """Lease one given item to a contributor now, whatever its room (a moderator asking someone
    to look at it, tests). ``task_lease_next`` is how contributors are served."""
    return _lease(item, user, item.project)


def lease_restore(*, item: Item, user: User) -> Assignment | None:
    """Give back the lease a skip released (``item`` locked by the caller), as it was: same
    expiry, so skipping and taking the skip back never extends a hold on a place. None when
    the lease had ended before the skip or has since, the item is decided, its place was
    taken meanwhile (a gold item always has one: its labels measure labelers, they don't fill
    it), or the user already holds more than ``LOOKAHEAD`` other live leases in the project (the
    labeling page holds two after a skip, the next item and its preload: the one brought back
    may make three, never more)."""
    now = timezone.now()
    lease = Assignment.objects.filter(item=item, user=user).first()
    if (
        lease is None
        or lease.released_at is None  # nothing released: its lease had ended before the skip
        or lease.answered_at is not None
        or lease.expires_at <= now
        or item.status != Item.Status.OPEN
    ):
        return None
    if not item.gold_label:
        held = Assignment.objects.filter(_live(now), item=item).exclude(user=user).count()
        if item.label_count + held >= item.required_labels:
            return None
    if leases_live(user=user, project=item.project).exclude(item=item).count() > LOOKAHEAD:
        return None
    lease.released_at = None
    lease.save(update_fields=["released_at"])
    return lease


def lease_release(*, item: Item, user: User) -> None:
    """Give the item's place back (a skip): the lease, if any, is released."""
    Assignment.objects.filter(_live(timezone.now()), item=item, user=user).update(
        released_at=timezone.now()
    )


def lease_shown(*, item: Item, user: User) -> bool:
    """Record when the labeling page showed the leased item (once), and give the lease the
    project's full ``lease_seconds`` from then (never less than it had). Returns whether a live
    lease was found.

    The page preloads the next item while the contributor works on the one before: leased then,
    that lease would run while it waits unseen, and an item shown after a long look at the one
    before would lapse under the contributor's hands. Renewed once only (the first report), so
    reporting again never holds a place longer; a lease already lapsed is not revived here (its
    place may be someone else's): the page asks ``next-task`` for a fresh one."""
    now = timezone.now()
    renewed = now + timedelta(seconds=item.project.lease_seconds)
    updated = Assignment.objects.filter(
        _live(now), item=item, user=user, shown_at__isnull=True
    ).update(shown_at=now, expires_at=Greatest(F("expires_at"), Value(renewed)))
    return bool(updated) or Assignment.objects.filter(_live(now), item=item, user=user).exists()


def lease_is_live(*, item_id: int, user: User) -> bool:
    return Assignment.objects.filter(_live(timezone.now()), item_id=item_id, user=user).exists()
