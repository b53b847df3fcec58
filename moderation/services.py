"""Running the fraud checks on the platform's data, raising flags, and what moderators do with
them: confirm (ban or hold) or dismiss, each audited with the moderator and the reason.

A flag that is open or confirmed holds the contributor's unpaid rewards (settlement skips them)
and, where the project's ``fraud_policy`` is ``hold``, takes their answers out of consensus until a
moderator dismisses it. A ban takes the contributor's answers out everywhere and re-decides the
unpaid items they answered; nothing already paid is touched.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, CharField, Count, F, Q, When
from django.db.models.functions import Substr
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from accounts.services import user_ban
from config.broker import task_send
from labeling.models import Annotation, Assignment, Item, Project
from moderation import fraud
from moderation.models import ChainScanCursor, Flag, SignInFingerprint, WalletLink
from moderation.selectors import ANSWER_KINDS, fingerprints_by_user

logger = logging.getLogger(__name__)

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass
class ScanReport:
    projects: int = 0
    answers: int = 0
    raised: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    updated: int = 0
    chain: str = "not read"

    @property
    def summary(self) -> str:
        raised = ", ".join(f"{n} {kind}" for kind, n in sorted(self.raised.items())) or "none"
        return (
            f"{self.projects} project(s), {self.answers} answers checked; new flags: {raised}; "
            f"{self.updated} open flag(s) updated; chain: {self.chain}"
        )


def flag_raise(
    *,
    user: User | int,
    kind: str,
    evidence: dict[str, Any],
    project: Project | None = None,
    item: Item | None = None,
) -> tuple[Flag, bool]:
    """An open flag of ``kind`` on ``user`` (in ``project``), with fresh evidence; one per
    (user, kind, project) while open. Returns it and whether it is new."""
    user_id = user if isinstance(user, int) else user.pk
    with transaction.atomic():
        open_flag = (
            Flag.objects.select_for_update()
            .filter(user_id=user_id, kind=kind, project=project, state=Flag.State.OPEN)
            .first()
        )
        if open_flag is not None:
            open_flag.evidence = evidence
            open_flag.save(update_fields=["evidence"])
            return open_flag, False
        if (
            Flag.objects.filter(
                user_id=user_id, kind=kind, project=project, state=Flag.State.DISMISSED
            ).exists()
            and kind != Flag.Kind.NEAR_DUPLICATE
        ):
            # A moderator looked and cleared this: don't raise it again on the same evidence.
            return Flag.objects.filter(user_id=user_id, kind=kind, project=project).first(), False  # type: ignore[return-value]
        flag = Flag.objects.create(
            user_id=user_id, kind=kind, project=project, item=item, evidence=evidence
        )
        audit_record(
            actor=None,
            action="flag.raise",
            target=flag,
            details={"kind": kind, "user": user_id, "project": project.pk if project else None},
        )
        if kind in ANSWER_KINDS:
            _flag_recheck_enqueue(user_id, project, f"{kind} flag raised")
        return flag, True


def _one_class(project: Project) -> bool:
    """Whether a project's answers are one class each (classify, pairwise): the checks that
    compare answers (spam patterns, collusion) read those; timing and who-labels-whose-uploads
    read every task's."""
    return project.task in (Project.Task.CLASSIFY, Project.Task.PAIRWISE)


def _answers(project: Project, *, items: list[int] | None = None) -> fraud.Answers | None:
    """A project's answers as the checks read them (classify and pairwise: one class each; the
    other tasks' answers all read as class 0, for the checks that don't compare answers); with
    ``items`` (ids of the project's items), only the answers to those items. Every read of the
    per-contributor check goes by item id, so its cost follows the items checked, not the
    project's size (nor what the planner believes it to be)."""
    index = {name: i for i, name in enumerate(project.classes)}
    if not _one_class(project):
        index = defaultdict(int)
    if items is None:
        answers = Annotation.objects.filter(item__project=project)
        leases = Assignment.objects.filter(item__project=project)
        facts = Item.objects.filter(project=project).exclude(
            gold_label="", contributor__isnull=True
        )
    else:
        answers = Annotation.objects.filter(item_id__in=items)
        leases = Assignment.objects.filter(item_id__in=items)
        facts = Item.objects.filter(pk__in=items, project=project)
    rows = [
        r
        for r in answers.values_list("item_id", "annotator_id", "label", "created_at")
        if r[2] in index or not _one_class(project)
    ]
    if not rows:
        return None
    # Time per answer counts from when the page showed the item, else when it was served.
    shown = {
        (item_id, lease_user): shown_at or served_at
        for item_id, lease_user, shown_at, served_at in leases.values_list(
            "item_id", "user_id", "shown_at", "served_at"
        )
    }

    def seconds(when: Any) -> float:
        return float(when.timestamp()) if when is not None else float("nan")

    gold: dict[int, int] = {}
    gold_since: dict[int, float] = {}
    uploader: dict[int, int] = {}
    for item_id, label, since, contributor_id in facts.values_list(
        "id", "gold_label", "gold_since", "contributor_id"
    ):
        if label and label in index:
            gold[item_id] = index[label]
            if since is not None:
                gold_since[item_id] = seconds(since)
        if contributor_id is not None:
            uploader[item_id] = contributor_id

    return fraud.Answers(
        item=np.array([r[0] for r in rows], dtype=np.int64),
        user=np.array([r[1] for r in rows], dtype=np.int64),
        label=np.array([index[r[2]] for r in rows], dtype=np.int64),
        at=np.array([seconds(r[3]) for r in rows]),
        shown_at=np.array([seconds(shown.get((r[0], r[1]))) for r in rows]),
        n_classes=len(project.classes),
        gold=gold,
        gold_since=gold_since,
        uploader=uploader,
    )


def fraud_scan(*, chain: bool = True) -> ScanReport:
    """Every check on every open project, the Sybil checks on recent sign-ups and (with
    ``chain``) on wallets linked through the chain, and the copy-paste check on uploads."""
    report = ScanReport()
    fingerprints = fingerprints_by_user()
    for project in Project.objects.filter(is_open=True).order_by("id"):
        answers = _answers(project)
        if answers is None:
            continue
        report.projects += 1
        report.answers += answers.size
        candidates = [
            *fraud.too_fast(answers, project.min_seconds_per_label),
            *fraud.self_labelers(answers, fingerprints),
        ]
        if _one_class(project):
            candidates += [*fraud.spammers(answers), *fraud.colluders(answers)]
        for candidate in candidates:
            _, new = flag_raise(
                user=candidate.user,
                kind=candidate.kind,
                evidence=candidate.evidence,
                project=project,
            )
            if new:
                report.raised[candidate.kind] += 1
            else:
                report.updated += 1
    for kind, n in sybil_scan().items():
        report.raised[kind] += n
    for kind, n in copy_paste_scan().items():
        report.raised[kind] += n
    if not chain:
        return report
    try:
        found = chain_link_scan()
    except Exception:  # the node is down or misconfigured: the other checks still count
        logger.warning("fraud scan: the chain could not be read", exc_info=True)
        report.chain = "unreadable (see the log); the next scan tries again"
    else:
        report.chain = f"blocks up to {found.pop('next_block') - 1} read"
        for kind, n in found.items():
            report.raised[kind] += n
    return report


def copy_paste_scan() -> dict[str, int]:
    """Contributors whose uploads copy other accounts' items (any project)."""
    # An image's near hash ends with its mean colour, which a re-encoded copy shifts by a unit or
    # two: copies are grouped by the dHash alone (the first 17 characters), as before colours.
    copy_key = Case(
        When(near_hash__startswith="i", then=Substr("near_hash", 1, 17)),
        default=F("near_hash"),
        output_field=CharField(),
    )
    uploaded = Item.objects.filter(contributor__isnull=False).annotate(copy_key=copy_key)

    def shared(items: Any, field: str) -> Any:
        # Content more than one account uploaded: the only items the check needs to read.
        return (
            items.values(field)
            .annotate(accounts=Count("contributor", distinct=True))
            .filter(accounts__gte=2)
            .values(field)
        )

    hashed, unhashed = uploaded.exclude(near_hash=""), uploaded.filter(near_hash="")
    copies = uploaded.filter(
        Q(copy_key__in=shared(hashed, "copy_key"))
        | Q(near_hash="", content_sha256__in=shared(unhashed, "content_sha256"))
    )
    uploads = [
        fraud.Upload(item_id, user_id, created_at.timestamp(), key or f"sha:{sha}")
        for item_id, user_id, created_at, key, sha in copies.values_list(
            "id", "contributor_id", "created_at", "copy_key", "content_sha256"
        )
    ]
    totals = dict(
        uploaded.values("contributor").annotate(n=Count("id")).values_list("contributor", "n")
    )
    borderline = Counter(
        Flag.objects.filter(kind=Flag.Kind.NEAR_DUPLICATE, user__isnull=False)
        .exclude(state=Flag.State.DISMISSED)
        .values_list("user_id", flat=True)
    )
    raised: dict[str, int] = defaultdict(int)
    for candidate in fraud.copy_pasters(uploads, borderline, totals):
        _, new = flag_raise(user=candidate.user, kind=candidate.kind, evidence=candidate.evidence)
        raised[candidate.kind] += new
    return raised


def chain_link_scan(*, max_blocks: int | None = None) -> dict[str, int]:
    """Read the chain's new blocks (at most ``FRAUD_CHAIN_SCAN_BLOCKS`` a scan, from where the
    last one stopped) for transfers between contributors' wallets and other addresses, keep
    them, and flag wallets funded from, or paying out to, one address. The platform's own
    addresses (its signer, the payout contract, the asset) are not links. Returns new flags by
    kind and ``next_block``."""
    from rewards.client import chain_client

    client = chain_client()
    wallets = {
        str(address).lower(): pk
        for pk, address in User.objects.exclude(wallet_address__isnull=True)
        .exclude(wallet_address="")
        .values_list("pk", "wallet_address")
    }
    ours = {
        a.lower()
        for a in (client.address, client.payout_address, client.asset_address, ZERO_ADDRESS)
        if a
    }
    limit = max_blocks or settings.FRAUD_CHAIN_SCAN_BLOCKS
    with transaction.atomic():
        cursor, _ = ChainScanCursor.objects.select_for_update().get_or_create(name="wallet-links")
        latest = client.block_number()
        start, end = cursor.next_block, min(latest, cursor.next_block + limit - 1)
        if start <= end:
            links = []
            for t in client.wallet_transfers(start, end, set(wallets)):
                sender, receiver = t.from_address.lower(), t.to_address.lower()
                for wallet, other, direction in (
                    (receiver, sender, WalletLink.Direction.FUNDED_FROM),
                    (sender, receiver, WalletLink.Direction.PAID_TO),
                ):
                    if wallet in wallets and other not in ours and other != wallet:
                        links.append(
                            WalletLink(
                                user_id=wallets[wallet],
                                direction=direction,
                                counterparty=other,
                                asset=t.asset.lower(),
                                value=t.value,
                                block_number=t.block_number,
                                tx_hash=t.tx_hash,
                            )
                        )
            WalletLink.objects.bulk_create(links, ignore_conflicts=True)
            cursor.next_block = end + 1
            cursor.save(update_fields=["next_block", "updated_at"])
    raised: dict[str, int] = defaultdict(int)
    known = WalletLink.objects.values_list("user_id", "direction", "counterparty", "asset")
    edges = [fraud.WalletLink(*row) for row in known.distinct()]
    activity = {
        counterparty: client.transaction_count(counterparty)
        for direction, counterparty in fraud.wallet_groups(edges)
        if direction == WalletLink.Direction.FUNDED_FROM
    }
    for candidate in fraud.wallet_clusters(edges, activity):
        _, new = flag_raise(user=candidate.user, kind=candidate.kind, evidence=candidate.evidence)
        raised[candidate.kind] += new
    return {**raised, "next_block": cursor.next_block}


def sybil_scan() -> dict[str, int]:
    """New accounts arriving in clusters from one network (hashed fingerprints)."""
    sign_ups = [
        fraud.SignUp(user_id, created_at.timestamp(), f"{network}:{agent}")
        for user_id, network, agent, created_at in SignInFingerprint.objects.filter(
            first_sign_in=True
        )
        .exclude(network="")
        .values_list("user_id", "network", "agent", "created_at")
    ]
    raised: dict[str, int] = defaultdict(int)
    for candidate in fraud.sybil_clusters(sign_ups):
        _, new = flag_raise(user=candidate.user, kind=candidate.kind, evidence=candidate.evidence)
        raised[candidate.kind] += new
    return raised


def flag_dismiss(*, flag: Flag, moderator: User, reason: str) -> Flag:
    """A moderator clears a flag: the contributor's rewards and answers count again."""
    with transaction.atomic():
        locked = Flag.objects.select_for_update().get(pk=flag.pk)
        if locked.state != Flag.State.OPEN:
            raise ValueError(f"the flag is already {locked.state}")
        locked.state = Flag.State.DISMISSED
        locked.resolved_by, locked.resolved_at = moderator, timezone.now()
        locked.resolution_note = reason[:500]
        locked.save(update_fields=["state", "resolved_by", "resolved_at", "resolution_note"])
        audit_record(
            actor=moderator, action="flag.dismiss", target=locked, details={"reason": reason}
        )
        if locked.kind in ANSWER_KINDS:
            _flag_recheck_enqueue(locked.user_id, locked.project, "flag dismissed")
    return locked


def flag_confirm(*, flag: Flag, moderator: User, reason: str, ban: bool) -> Flag:
    """A moderator confirms a flag: its hold stays (rewards held, answers out of consensus);
    with ``ban``, the contributor is banned too."""
    with transaction.atomic():
        locked = Flag.objects.select_for_update(of=("self",)).select_related("user").get(pk=flag.pk)
        if locked.state != Flag.State.OPEN:
            raise ValueError(f"the flag is already {locked.state}")
        locked.state = Flag.State.CONFIRMED
        locked.resolved_by, locked.resolved_at = moderator, timezone.now()
        locked.resolution_note = reason[:500]
        locked.save(update_fields=["state", "resolved_by", "resolved_at", "resolution_note"])
        audit_record(
            actor=moderator,
            action="flag.confirm",
            target=locked,
            details={"reason": reason, "ban": ban},
        )
        if ban and locked.user is not None and not locked.user.is_banned:
            user_ban(user=locked.user, reason=reason, actor=moderator)  # rechecks their items
    return locked


def user_recheck(
    *, user_id: int, reason: str, project_id: int | None = None, hold_only: bool = False
) -> dict[str, int]:
    """Decide again every unpaid item ``user_id`` answered, with the answers that count now:
    after a ban, a flag raised (where the project holds flagged answers) or one dismissed. Open
    items wait for the answers that make up for theirs; accepted, unpaid ones get a new decision
    or go back to collecting answers (``labeling.services.item_recheck``). ``project_id``: only
    that project's items; ``hold_only``: only the items of projects that hold flagged answers
    (a flag changes nothing elsewhere). Returns counts."""
    from labeling.services.decisions import item_decide, item_recheck

    answers = Annotation.objects.filter(annotator_id=user_id, item__gold_label="")
    if project_id is not None:
        answers = answers.filter(item__project_id=project_id)
    if hold_only:
        answers = answers.filter(item__project__fraud_policy=Project.FraudPolicy.HOLD)
    outcomes: dict[str, int] = defaultdict(int)
    for item_id, status in answers.values_list("item_id", "item__status").order_by("item_id"):
        if status == Item.Status.ACCEPTED:
            outcomes[item_recheck(item_id=item_id, reason=reason)] += 1
        elif status in (Item.Status.OPEN, Item.Status.REVIEW):
            item_decide(item_id=item_id, reopen_review=True)
            outcomes["waiting"] += 1
    return dict(outcomes)


def _flag_recheck_enqueue(user_id: int | None, project: Project | None, reason: str) -> None:
    """After an answer flag is raised or dismissed: recheck the items whose consensus it
    changes, those of its project if that project holds flagged answers (a flag on the account
    counts in every such project); none where flagged answers count anyway."""
    if project is not None and project.fraud_policy != Project.FraudPolicy.HOLD:
        return
    _recheck_enqueue(user_id, reason, project_id=project.pk if project else None, hold_only=True)


def _recheck_enqueue(
    user_id: int | None, reason: str, *, project_id: int | None = None, hold_only: bool = False
) -> None:
    """After commit, a Celery task rechecks the user's items (eager, or the broker down: at
    once, here)."""
    if user_id is None:
        return
    transaction.on_commit(
        lambda: task_send(
            "moderation.tasks.recheck_user",
            args=(user_id, reason),
            kwargs={"project_id": project_id, "hold_only": hold_only},
            run_here=True,
        )
    )


#: How many of a contributor's latest answers the on-event check reads (each with its project's
#: other answers to the same items).
RECENT_ANSWERS = 50


def answer_check(*, user_id: int) -> list[Flag]:
    """The checks that can run on one contributor's latest answers, right after they answer
    (speed; spam patterns once there are enough): a farm of fast answers is flagged, held and
    taken out of consensus minutes before the next full scan. Each project of their latest
    ``RECENT_ANSWERS`` answers is checked with the other answers to the same items."""
    recent: dict[int, list[int]] = defaultdict(list)
    for item_id, project_id in (
        Annotation.objects.filter(annotator_id=user_id)
        .order_by("-id")
        .values_list("item_id", "item__project_id")[:RECENT_ANSWERS]
    ):
        recent[project_id].append(item_id)
    raised: list[Flag] = []
    for project in Project.objects.filter(pk__in=list(recent)).order_by("id"):
        answers = _answers(project, items=recent[project.pk])
        if answers is None:
            continue
        checks = [*fraud.too_fast(answers, project.min_seconds_per_label)]
        if _one_class(project):
            checks += fraud.spammers(answers)
        for candidate in checks:
            if candidate.user != user_id:
                continue
            flag, new = flag_raise(
                user=user_id, kind=candidate.kind, evidence=candidate.evidence, project=project
            )
            if new:
                raised.append(flag)
    return raised


#: Per process: when the answer check this process last saw queued for a contributor runs (a
#: ``time.monotonic()``), so that a burst of answers asks Redis once, not once per answer.
_checks_queued: dict[int, float] = {}


def answer_check_enqueue(*, user_id: int) -> None:
    """After an answer: run ``answer_check`` for its contributor soon, once per
    ``ANSWER_CHECK_SECONDS`` (a burst of answers is checked once, after it); with eager Celery
    (the demo), at once."""
    from moderation.tasks import check_answers

    if settings.CELERY_TASK_ALWAYS_EAGER:
        transaction.on_commit(lambda: check_answers.delay(user_id))
        return
    delay = settings.ANSWER_CHECK_SECONDS
    now = time.monotonic()
    if _checks_queued.get(user_id, 0.0) > now:
        return  # this process saw the check queued, and it hasn't run yet: no round trip
    try:
        first = cache.add(f"crowdmint:answer-check:{user_id}", 1, delay)
    except Exception:  # the cache (Redis) is down: check now rather than never
        logger.warning("answer check debounce unavailable", exc_info=True)
        first = True
    if len(_checks_queued) > 10_000:
        for user, until in list(_checks_queued.items()):
            if until <= now:
                _checks_queued.pop(user, None)
    # Queued here: it runs ``delay`` from now. Queued by another process: some time within
    # ``delay``; ask again sooner, so that answers after that check get one of their own.
    _checks_queued[user_id] = now + (delay if first else delay / 4)
    if first:
        # With the broker down, the periodic fraud scan runs these checks.
        transaction.on_commit(
            lambda: task_send("moderation.tasks.check_answers", args=(user_id,), countdown=delay)
        )
