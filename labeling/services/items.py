"""State changes of contributions and annotations."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from config.locks import transaction_lock
from config.prepared import Prepared
from labeling.answers import (
    GOLD_TASKS,
    Answer,
    AnswerContext,
    AnswerError,
    agrees,
    brief,
    validate_answer,
)
from labeling.models import Annotation, Assignment, DecisionDue, Item, Project, Skip
from labeling.near_duplicates import (
    BORDERLINE_IMAGE_BITS,
    SAME_IMAGE_BITS,
    image_distances,
    image_hash,
    image_hashes,
    image_pair_hash,
    pair_distances,
    text_hash,
    text_pair_hash,
)
from labeling.services.assignment import lease_release, lease_restore
from labeling.validation import (
    ContentError,
    ValidImage,
    sha256_hex,
    validate_image,
    validate_text,
)

logger = logging.getLogger(__name__)


class DuplicateItemError(Exception):
    """The project already holds this exact content (or, with ``bits``/``kind``, a near copy)."""

    def __init__(self, existing_id: int, *, near: str = "") -> None:
        super().__init__(f"duplicate of item {existing_id}")
        self.existing_id = existing_id
        self.near = near  # "" for an exact copy; otherwise how it is near


class QuotaExceeded(Exception):
    """The contributor reached the project's daily upload quota."""

    def __init__(self, quota: int, retry_after: int) -> None:
        super().__init__(
            f"you have made {quota} uploads to this project today, its daily quota; "
            f"try again in {retry_after // 3600} h {retry_after % 3600 // 60} min"
        )
        self.retry_after = retry_after


class AnnotationError(Exception):
    """An annotation was refused; ``conflict`` tells a 409 from a 400."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


def _existing_item_id(project: Project, sha256: str) -> int | None:
    return item_id_with_content(project_id=project.pk, sha256=sha256)


def item_id_with_content(*, project_id: int, sha256: str) -> int | None:
    """The project's item with this content hash, if any.

    Asked by the hash alone (one or a few rows, across projects), then the project is picked
    here: with a ``project_id`` condition PostgreSQL may scan a project index instead of the
    unique (content_sha256, project) one while a fresh project's statistics are stale (8.6 ms
    instead of 0.05 ms per upload at 30k items, until ANALYZE).
    """
    rows = Item.objects.filter(content_sha256=sha256).order_by().values_list("project_id", "id")
    return next((item_id for project, item_id in rows if project == project_id), None)


def _check_quota(project: Project, contributor: User | None) -> None:
    """Raise ``QuotaExceeded`` once ``contributor`` made the project's daily uploads (UTC day)."""
    if contributor is None:
        return
    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    made = Item.objects.filter(
        project=project, contributor=contributor, created_at__gte=midnight
    ).count()
    if made >= project.daily_upload_quota:
        retry = int((midnight + timedelta(days=1) - now).total_seconds()) + 1
        raise QuotaExceeded(project.daily_upload_quota, retry)


def _near_duplicate(
    project: Project, near_hash: str, turned: Sequence[str] = ()
) -> tuple[int | None, int | None]:
    """``(copy, borderline)``: a stored item this content is a near copy of (refused), or one
    close enough for a moderator to look at; ``None`` for neither. ``turned``: the image's
    hashes in its other orientations (``image_hashes_turned``)."""
    if near_hash.startswith("t"):
        # By the hash alone, like the exact check (``item_id_with_content``): no project index.
        same = Item.objects.filter(near_hash=near_hash).order_by("id")
        rows = same.values_list("project_id", "id")
        return next((pk for owner, pk in rows if owner == project.pk), None), None
    kind = near_hash[0]  # "i" an image, "p" a pair of images
    stored = Item.objects.filter(project=project, near_hash__startswith=kind).values_list(
        "id", "near_hash"
    )
    hashes = stored.iterator(chunk_size=5000)
    closest = (
        pair_distances(near_hash, hashes)
        if kind == "p"
        else image_distances(near_hash, hashes, turned)
    )
    if not closest:
        return None, None
    bits, item_id = closest[0]
    if bits <= SAME_IMAGE_BITS:
        return item_id, None
    if bits <= BORDERLINE_IMAGE_BITS:
        return None, item_id
    return None, None


def _upload_checks(
    project: Project,
    contributor: User | None,
    sha256: str,
    near_hash: str,
    near: str,
    turned: Sequence[str] = (),
) -> int | None:
    """Refuse an upload that is a copy (exact, or ``near``: how a near copy differs) of a stored
    item or past the contributor's daily quota; returns a borderline similar image's item id, to
    flag. Inside the transaction that stores the item: the locks taken here make a concurrent
    upload of the same near copy, or by the same contributor, wait until this one is stored, so
    its checks see this item (the near copy has no constraint in the database, the quota none).
    """
    if near_hash:
        # A text's near copies share its hash; an image's are near in Hamming distance, so any
        # image of the project may be one.
        transaction_lock("near copy", project.pk, near_hash if near_hash[0] == "t" else "i")
    if contributor is not None:
        transaction_lock("upload quota", project.pk, contributor.pk)
    existing = _existing_item_id(project, sha256)
    if existing is not None:
        raise DuplicateItemError(existing)
    similar = None
    if near_hash:
        copy, similar = _near_duplicate(project, near_hash, turned)
        if copy is not None:
            raise DuplicateItemError(copy, near=near)
    _check_quota(project, contributor)
    return similar


def _store(item: Item, files: list[tuple[str, ValidImage]]) -> Item:
    """Save the item's files, then its row; a refused row leaves no file behind."""
    try:
        with transaction.atomic():
            for field, image in files:
                getattr(item, field).save(
                    f"{image.sha256}.{image.extension}", ContentFile(image.data), save=False
                )
            item.save()
    except BaseException as exc:
        for field, _ in files:
            stored = getattr(item, field)
            if stored.name:
                stored.storage.delete(stored.name)
        if isinstance(exc, IntegrityError):
            existing = _existing_item_id(item.project, item.content_sha256)
            if existing is not None:
                raise DuplicateItemError(existing) from exc
        raise
    return item


def _flag_borderline(item: Item, similar: int | None) -> None:
    if similar is None:
        return
    from moderation.models import Flag

    Flag.objects.create(
        user=item.contributor,
        project=item.project,
        item=item,
        kind=Flag.Kind.NEAR_DUPLICATE,
        evidence={"similar_item": similar, "why": "the images are a few bits apart (dHash)"},
    )


def item_create_text(
    *, project: Project, contributor: User | None, text: object, text_b: object = None
) -> Item:
    """Add a text item (a pair of texts for a pairwise project).

    Raises ``ContentError``, ``QuotaExceeded``, or ``DuplicateItemError`` for an exact copy, or
    (with ``near``) a text differing from a stored one only in case, spacing or punctuation.
    """
    if project.data_kind != Project.DataKind.TEXT:
        raise ContentError("this project collects images: upload a multipart 'file'")
    pairwise = project.task == Project.Task.PAIRWISE
    if pairwise and text_b is None:
        raise ContentError('a pairwise project compares two texts: send "text" and "text_b"')
    if not pairwise and text_b is not None:
        raise ContentError('"text_b" is for pairwise projects, which compare two texts')
    clean = validate_text(text)
    clean_b = validate_text(text_b, field="text_b") if pairwise else ""
    if pairwise and clean == clean_b:
        raise ContentError("the two texts of a pair are the same")
    body = clean.encode() if not pairwise else f"{clean}\x00{clean_b}".encode()
    sha256 = sha256_hex(body)
    near_hash = text_pair_hash(clean, clean_b) if pairwise else text_hash(clean)
    with transaction.atomic():
        _upload_checks(
            project,
            contributor,
            sha256,
            near_hash,
            "both texts differ only in case, spacing or punctuation, in either order"
            if pairwise
            else "differs only in case, spacing or punctuation",
        )
        item = Item(
            project=project,
            contributor=contributor,
            text=clean,
            text_b=clean_b,
            size_bytes=len(body),
            content_sha256=sha256,
            near_hash=near_hash,
            licence=project.licence,
            required_labels=project.overlap,
        )
        return _store(item, [])


def _validated(data: bytes, name: str) -> ValidImage:
    """``validate_image``, its ``ContentError`` naming the part (``file_b: not an image…``)
    when there are two."""
    try:
        return validate_image(data)
    except ContentError as exc:
        raise ContentError(f"{name}: {exc}" if name else str(exc)) from exc


def item_create_image(
    *, project: Project, contributor: User | None, data: bytes, data_b: bytes | None = None
) -> Item:
    """Add an image item (a pair of images for a pairwise project). Stores nothing when refused.

    Raises ``ContentError``, ``QuotaExceeded``, or ``DuplicateItemError`` for an exact copy, or
    (with ``near``) a resized or re-encoded copy of a stored image; a merely similar image is
    accepted and flagged for moderators.
    """
    if project.data_kind != Project.DataKind.IMAGE:
        raise ContentError('this project collects text: send JSON {"text": ...}')
    pairwise = project.task == Project.Task.PAIRWISE
    if pairwise and data_b is None:
        raise ContentError("a pairwise project compares two images: upload 'file' and 'file_b'")
    if not pairwise and data_b is not None:
        raise ContentError("'file_b' is for pairwise projects, which compare two images")
    image = _validated(data, "file" if pairwise else "")
    image_b = _validated(data_b, "file_b") if pairwise and data_b is not None else None
    if image_b is not None and image_b.sha256 == image.sha256:
        raise ContentError("the two images of a pair are the same")
    sha256 = (
        image.sha256 if image_b is None else sha256_hex(f"{image.sha256}{image_b.sha256}".encode())
    )
    turned: list[str] = []
    if image_b is not None:
        near_hash = image_pair_hash(image_hash(image.data), image_hash(image_b.data))
    else:
        near_hash, turned = image_hashes(image.data)
    with transaction.atomic():
        similar = _upload_checks(
            project,
            contributor,
            sha256,
            near_hash,
            "a resized or re-encoded copy of both images, in either order"
            if image_b is not None
            else "a resized, re-encoded, mirrored or rotated copy",
            turned,
        )
        item = Item(
            project=project,
            contributor=contributor,
            image_format=image.format,
            width=image.width,
            height=image.height,
            size_bytes=len(image.data) + (len(image_b.data) if image_b else 0),
            content_sha256=sha256,
            near_hash=near_hash,
            licence=project.licence,
            required_labels=project.overlap,
        )
        files = [("image", image)]
        if image_b is not None:
            item.image_b_format = image_b.format
            item.width_b, item.height_b = image_b.width, image_b.height
            files.append(("image_b", image_b))
        _store(item, files)
        _flag_borderline(item, similar)
    return item


def item_gold_validate(*, item: Item, label: str) -> None:
    """Raise ``AnnotationError`` unless ``label`` may become ``item``'s gold answer ("" clears it).

    The answer must be one of the project's classes, the project's answers single classes
    (classify, pairwise: a gold answer can't state a set of labels, boxes or spans), and only an
    open item can become gold or stop being gold: a decided item has been credited and may have
    been sold.
    """
    if label and item.project.task not in GOLD_TASKS:
        raise AnnotationError(
            f"gold answers are single classes: a {item.project.task} project's items can't be gold"
        )
    if label and label not in item.project.classes:
        raise AnnotationError(
            f"{brief(label)} is not a class of this project: choose one of "
            f"{', '.join(item.project.classes)}"
        )
    if label != item.gold_label and item.status != Item.Status.OPEN:
        raise AnnotationError(
            f"only open items can be made gold or stop being gold; this one is {item.status}",
            conflict=True,
        )


def item_gold_set(*, item: Item, label: str, moderator: User, reason: str = "") -> Item:
    """Set (or clear, with ``""``) an item's gold answer, audited with the moderator's
    ``reason``. Raises ``AnnotationError``.

    An item made gold records when (``gold_since``): the answers it already had saw an ordinary
    item and earn no gold bonus. Re-gold after a clear keeps the first ``gold_since`` if nobody
    answered while it wasn't gold (a moderator's slip costs nobody a bonus); otherwise it counts
    from the re-gold. Every change bumps ``gold_version``: a bonus is credited at most once per
    answer and version. After the commit the item's bonuses are settled
    (``rewards.tasks.reverse_gold_bonuses``): those the change makes undeserved are reversed,
    and right answers with no standing bonus (after a typo is fixed) are credited; if that is
    lost, the periodic sweep does it, once (it settles every item whose ``gold_changed_at`` is
    recent, whatever the age of its answers). The item's row lock orders the change with a
    bonus being written (``rewards.services.gold_answer_credit`` holds it): one waits for the
    other, so the settling sees every bonus written under the old gold answer.
    """
    with transaction.atomic():
        locked = Item.objects.select_for_update().select_related("project").get(pk=item.pk)
        item_gold_validate(item=locked, label=label)
        previous = locked.gold_label
        if label == previous:
            pass  # nothing changes: no new version, nothing to settle
        elif not label:
            # gold_since is kept (meaningless while not gold) for a re-gold with no answers
            # in between.
            locked.gold_cleared_at = timezone.now()
        elif not previous:
            cleared = locked.gold_cleared_at
            answered_meanwhile = (
                cleared is None or locked.annotations.filter(created_at__gte=cleared).exists()
            )
            if answered_meanwhile:
                locked.gold_since = timezone.now()
        if label != previous:
            locked.gold_version += 1
            locked.gold_changed_at = timezone.now()
            transaction.on_commit(lambda: _gold_item_reversals_enqueue(locked.pk))
        locked.gold_label = label
        locked.save(
            update_fields=[
                "gold_label",
                "gold_since",
                "gold_version",
                "gold_cleared_at",
                "gold_changed_at",
            ]
        )
        audit_record(
            actor=moderator,
            action="item.gold",
            target=locked,
            details={"from": previous, "to": label, "reason": reason},
        )
    return locked


def item_skip(*, item: Item, user: User) -> None:
    """Stop serving ``item`` to ``user`` and give its lease back. Skipping twice is the same as
    once.

    Raises ``AnnotationError`` (conflict) when the user has already labeled the item or was
    never served it.
    """
    if Annotation.objects.filter(item=item, annotator=user).exists():
        raise AnnotationError("you have already labeled this item", conflict=True)
    if not Assignment.objects.filter(item=item, user=user).exists():
        # Skips count as "unclear item" in admin: only an item someone was shown can be one.
        raise AnnotationError("this item was never served to you: nothing to skip", conflict=True)
    with transaction.atomic():
        Skip.objects.get_or_create(item=item, user=user)
        lease_release(item=item, user=user)


def item_skip_undo(*, item: Item, user: User) -> Assignment:
    """Take a skip back within ``UNDO_SECONDS`` (a key pressed by mistake): the lease the skip
    gave back is the user's again, as it was (``lease_restore``). Returns the lease.

    Raises ``AnnotationError`` (conflict): no such skip, too late, or the lease can't come back
    (it had ended, the item was decided or its place taken meanwhile, or the user holds as many
    leases as anyone may). Gold items come back like any other: a refusal only for them would
    tell a contributor which items are gold.
    """
    with transaction.atomic():
        # One lease change per contributor at a time, as next-task takes them: two undos at once
        # would each count the other's lease as not there yet, and hold one lease too many.
        list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
        skip = Skip.objects.select_for_update().filter(item=item, user=user).first()
        if skip is None:
            raise AnnotationError("you haven't skipped this item", conflict=True)
        if timezone.now() - skip.created_at > timedelta(seconds=settings.UNDO_SECONDS):
            raise AnnotationError(
                f"too late: a skip can be taken back for {settings.UNDO_SECONDS} seconds",
                conflict=True,
            )
        locked = Item.objects.select_for_update().select_related("project").get(pk=item.pk)
        lease = lease_restore(item=locked, user=user)
        if lease is None:
            raise AnnotationError(
                "this item can't be given back to you: its lease ended, or it no longer needs "
                "your label",
                conflict=True,
            )
        skip.delete()
        return lease


def gold_answer_credit_enqueue(annotation_id: int) -> None:
    """Ask the rewards app for the gold bonus of an answer (a Celery task, by name), once the
    answer can no longer be withdrawn."""
    from config.broker import task_send

    task_send(
        "rewards.tasks.credit_gold_answer", args=(annotation_id,), countdown=settings.UNDO_SECONDS
    )


class ItemUnavailable(Exception):
    """No item with this id in an open project."""


NOT_ASSIGNED = "this item was not assigned to you, or its lease expired: ask for your next task"


@dataclass(frozen=True)
class GoldFeedback:
    """What a contributor is told after a wrong answer to a gold item (a right one is told
    nothing: gold must look like any other item)."""

    expected: dict[str, Any]
    explanation: str


def answer_context(item: Item) -> AnswerContext:
    project = item.project
    return AnswerContext(
        task=project.task,
        classes=project.classes,
        spans_may_overlap=project.spans_may_overlap,
        text=item.text,
        width=item.width,
        height=item.height,
    )


def gold_value(item: Item) -> dict[str, Any]:
    """A gold item's known answer in its task's shape."""
    if item.project.task == Project.Task.PAIRWISE:
        return {"choice": item.gold_label}
    return {"label": item.gold_label}


def gold_feedback(item: Item, value: dict[str, Any]) -> GoldFeedback | None:
    if not item.gold_label:
        return None
    expected = gold_value(item)
    if agrees(item.project.task, value, expected, item.project.agreement_threshold):
        return None
    return GoldFeedback(expected=expected, explanation=item.gold_explanation)


def _answer(item: Item, body: Mapping[str, Any] | None, label: str | None) -> Answer:
    if body is None:
        field = "choice" if item.project.task == Project.Task.PAIRWISE else "label"
        body = {field: label}
    try:
        return validate_answer(answer_context(item), body)
    except AnswerError as exc:
        raise AnnotationError(str(exc)) from exc


def annotation_create(
    *,
    item: Item,
    annotator: User,
    label: str | None = None,
    body: Mapping[str, Any] | None = None,
    leased_only: bool = True,
) -> Annotation:
    """Record one contributor's answer to an item (``body`` in the project task's shape, or a
    ``label`` for classify and pairwise), and enqueue the item's decision once it has enough.

    With ``leased_only`` (the API), the item must be leased to the contributor right now; the
    lease is then answered. Raises ``AnnotationError``: 400-like for an answer that doesn't fit
    the project (naming the field), conflict for an item not assigned to them, a second answer,
    one's own contribution or an item already decided.
    """
    answer = _answer(item, body, label)
    if item.contributor_id == annotator.pk:
        raise AnnotationError("contributors cannot label their own items", conflict=True)
    now = timezone.now()
    try:
        with transaction.atomic():
            locked = Item.objects.select_for_update().get(pk=item.pk)
            if locked.status != Item.Status.OPEN:
                raise AnnotationError("this item is already decided", conflict=True)
            if Annotation.objects.filter(item=locked, annotator=annotator).exists():
                raise AnnotationError("you have already labeled this item", conflict=True)
            answered = Assignment.objects.filter(
                item=locked,
                user=annotator,
                answered_at__isnull=True,
                released_at__isnull=True,
                expires_at__gt=now,
            ).update(answered_at=now)
            if leased_only and not answered:
                raise AnnotationError(NOT_ASSIGNED, conflict=True)
            annotation = Annotation.objects.create(
                item=locked, annotator=annotator, label=answer.label, value=answer.value
            )
            Item.objects.filter(pk=locked.pk).update(label_count=F("label_count") + 1)
            if not locked.gold_label and locked.label_count + 1 >= locked.required_labels:
                DecisionDue.objects.bulk_create(
                    [DecisionDue(item_id=locked.pk, due_at=now)], ignore_conflicts=True
                )
            _enqueue_after_label(
                locked.pk,
                annotation.pk,
                locked.gold_label,
                locked.label_count + 1,
                locked.required_labels,
            )
    except IntegrityError as exc:
        raise AnnotationError("you have already labeled this item", conflict=True) from exc
    return annotation


def annotation_withdraw(*, annotation_id: int, annotator: User) -> Item:
    """Undo: withdraw one's own answer within ``UNDO_SECONDS`` while its item is undecided.
    The item's lease is given back to the contributor, who can answer it again.

    A wrong answer to a gold item can't be withdrawn: its feedback has shown the expected answer,
    which the contributor would otherwise give next and keep a perfect gold record.

    Raises ``AnnotationError`` (conflict) when the window has passed, the item was decided or the
    answer is a wrong gold answer; ``ItemUnavailable`` when it isn't theirs.
    """
    now = timezone.now()
    with transaction.atomic():
        item_id = (
            Annotation.objects.filter(pk=annotation_id, annotator=annotator)
            .values_list("item_id", flat=True)
            .first()
        )
        if item_id is None:
            raise ItemUnavailable()
        item = Item.objects.select_for_update().select_related("project").get(pk=item_id)
        # Read again under the item's lock: a concurrent withdrawal of the same answer may have
        # deleted it (and taken its label off the count) while we waited.
        annotation = Annotation.objects.filter(pk=annotation_id, annotator=annotator).first()
        if annotation is None:
            raise ItemUnavailable()
        if (now - annotation.created_at).total_seconds() > settings.UNDO_SECONDS:
            raise AnnotationError(
                f"an answer can be withdrawn for {settings.UNDO_SECONDS} seconds", conflict=True
            )
        if item.status != Item.Status.OPEN:
            raise AnnotationError("this item is already decided", conflict=True)
        gold = bool(item.gold_label)
        if gold and gold_feedback(item, annotation.value) is not None:
            raise AnnotationError(
                "this answer's feedback has shown the expected answer: it can't be withdrawn",
                conflict=True,
            )
        deleted, _ = Annotation.objects.filter(pk=annotation.pk).delete()
        if not deleted:
            raise ItemUnavailable()
        Item.objects.filter(pk=item.pk).update(label_count=F("label_count") - 1)
        Assignment.objects.filter(item=item, user=annotator).update(
            answered_at=None,
            released_at=None,
            expires_at=now + timedelta(seconds=item.project.lease_seconds),
        )
        if gold:
            # Its bonus (if eager Celery already paid it) is reversed; usually it waits out
            # the undo window and finds the answer gone.
            transaction.on_commit(lambda: _gold_reversal_enqueue(annotation_id))
    return item


def _gold_item_reversals_enqueue(item_id: int) -> None:
    from config.broker import task_send

    task_send("rewards.tasks.reverse_gold_bonuses", kwargs={"item_id": item_id}, run_here=True)


def _gold_reversal_enqueue(annotation_id: int) -> None:
    from config.broker import task_send

    task_send("rewards.tasks.reverse_gold_answer", args=(annotation_id,), run_here=True)


def _enqueue_after_label(
    item_id: int, annotation_id: int, gold_label: str, labels: int, required: int
) -> None:
    """On commit: the item's decision once it has its labels; for a gold item (known answer:
    its labels measure the labeler, not the item) the answer's gold bonus, which the rewards app
    decides."""
    if gold_label:
        transaction.on_commit(lambda: gold_answer_credit_enqueue(annotation_id))
    elif labels >= required:
        transaction.on_commit(decisions_due_wake)


#: The cache key that says a ``decide_due`` task is queued and hasn't started yet.
DUE_WAKE_KEY = "crowdmint:decide-due:queued"


def decisions_due_wake() -> None:
    """After a commit that queued a decision (``DecisionDue``): make sure a ``decide_due`` task
    will run after it. One task is queued at a time: the task clears the key before it claims
    anything, so an item queued while the key is set is seen by the task that clears it, and
    one queued later queues the next task. The task starts ``DECISIONS_GATHER_MS`` later, so
    the items queued meanwhile are decided in its batch. With eager Celery (the demo), the
    decision is made at once; if the cache (Redis) is down, a task is queued anyway, and if the
    broker is down too, the ``decide-due-items`` sweep decides it."""
    from config.broker import task_send
    from labeling.tasks import decide_due

    if settings.CELERY_TASK_ALWAYS_EAGER:
        decide_due.delay()
        return
    try:
        if not cache.add(DUE_WAKE_KEY, 1, settings.DECISIONS_WAKE_SECONDS):
            return
    except Exception:
        logger.warning("decision wake-up debounce unavailable", exc_info=True)
    task_send(decide_due.name, countdown=settings.DECISIONS_GATHER_MS / 1000 or None)


# PostgreSQL: a classify or pairwise answer in one statement, its own transaction. The UPDATE
# takes the item's row lock and counts the answer only if every rule holds (open project of that
# task, open item, a class of the project, not the labeler's own item, a live lease of theirs);
# the INSERT adds the answer, and the unique constraint on (item, annotator) refuses a second one,
# which aborts the statement, count included; the lease is marked answered with it, and an item
# that now has the labels it asked for joins the decisions' queue (``DecisionDue``).
_SUBMIT_SQL = f"""
WITH counted AS (
    UPDATE {Item._meta.db_table} AS i
    SET label_count = i.label_count + 1
    FROM {Project._meta.db_table} AS p
    WHERE i.id = %(item)s AND p.id = i.project_id AND p.is_open AND p.task = %(task)s
      AND i.status = %(open)s
      AND i.contributor_id IS DISTINCT FROM %(annotator)s
      AND p.classes @> jsonb_build_array(%(label)s::text)
      AND EXISTS (
          SELECT 1 FROM {Assignment._meta.db_table} AS a
          WHERE a.item_id = i.id AND a.user_id = %(annotator)s AND a.answered_at IS NULL
            AND a.released_at IS NULL AND a.expires_at > %(now)s
      )
    RETURNING i.id, i.label_count, i.required_labels, i.gold_label, i.gold_explanation
), added AS (
    INSERT INTO {Annotation._meta.db_table} (item_id, annotator_id, label, value, created_at)
    SELECT id, %(annotator)s, %(label)s, %(value)s::jsonb, %(now)s
    FROM counted
    RETURNING id, item_id
), due AS (
    INSERT INTO {DecisionDue._meta.db_table} (item_id, due_at)
    SELECT id, %(now)s FROM counted
    WHERE label_count >= required_labels AND gold_label = ''
    ON CONFLICT (item_id) DO NOTHING
), answered AS (
    UPDATE {Assignment._meta.db_table} AS a SET answered_at = %(now)s
    FROM added WHERE a.item_id = added.item_id AND a.user_id = %(annotator)s
    RETURNING a.id
)
SELECT added.id, counted.label_count, counted.required_labels, counted.gold_label,
       counted.gold_explanation
FROM added JOIN counted ON counted.id = added.item_id
"""
_SUBMIT = Prepared(
    "crowdmint_submit",
    _SUBMIT_SQL,
    {
        "item": "bigint",
        "annotator": "bigint",
        "label": "text",
        "value": "text",
        "task": "text",
        "now": "timestamptz",
        "open": "text",
    },
)
_FAST_TASKS = {"label": Project.Task.CLASSIFY, "choice": Project.Task.PAIRWISE}


@dataclass(frozen=True)
class Submitted:
    annotation: Annotation
    feedback: GoldFeedback | None


def _utf8(value: str) -> bool:
    """Whether ``value`` can be encoded as UTF-8 (a lone surrogate, from JSON's ``"\\ud800"``,
    can't)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def annotation_submit(*, item_id: int, annotator: User, body: Mapping[str, Any]) -> Submitted:
    """``annotation_create`` for a leased item given by id: the API's submit path, with the
    feedback a wrong gold answer gets.

    On PostgreSQL a classify or pairwise answer costs one statement and no explicit transaction
    (see ``_SUBMIT_SQL``); when it is refused, a second look finds out why. Other answers, and
    SQLite, take ``annotation_create``. Raises ``ItemUnavailable`` (no such item in an open
    project) and ``AnnotationError`` like ``annotation_create``.
    """
    field = next(iter(body), None) if len(body) == 1 else None
    value = body.get(field) if field is not None else None
    if (
        connection.vendor != "postgresql"
        or field not in _FAST_TASKS
        or not isinstance(value, str)
        # PostgreSQL text cannot hold a NUL, nor psycopg2 send a lone surrogate: the ORM path
        # refuses either as a label.
        or "\x00" in value
        or not _utf8(value)
    ):
        item = _open_item(item_id)
        annotation = annotation_create(item=item, annotator=annotator, body=body)
        return Submitted(annotation, gold_feedback(item, annotation.value))
    task = _FAST_TASKS[field]
    if task == Project.Task.PAIRWISE and value not in ("a", "b"):
        raise AnnotationError('choice: must be "a" or "b"')
    now = timezone.now()
    params: dict[str, Any] = {
        "item": item_id,
        "annotator": annotator.pk,
        "label": value,
        "value": json.dumps({field: value}),
        "task": task,
        "now": now,
        "open": Item.Status.OPEN,
    }
    try:
        row = _SUBMIT.fetchone(params)
    except IntegrityError as exc:
        raise AnnotationError("you have already labeled this item", conflict=True) from exc
    if row is None:
        # Refused by a rule: the ORM path says which one (and raises).
        annotation_create(item=_open_item(item_id), annotator=annotator, body=body)
        raise AssertionError("a submit refused in SQL was accepted on a second look")
    annotation_id, labels, required, gold_label, explanation = row
    _enqueue_after_label(item_id, annotation_id, gold_label, labels, required)
    annotation = Annotation(
        id=annotation_id,
        item_id=item_id,
        annotator=annotator,
        label=value,
        value={field: value},
        created_at=now,
    )
    feedback = None
    if gold_label and gold_label != value:
        feedback = GoldFeedback(expected={field: gold_label}, explanation=explanation)
    return Submitted(annotation, feedback)


def _open_item(item_id: int) -> Item:
    item = Item.objects.select_related("project").filter(pk=item_id, project__is_open=True).first()
    if item is None:
        raise ItemUnavailable()
    return item
