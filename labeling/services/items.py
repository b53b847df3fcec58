"""State changes of contributions and annotations."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from labeling.models import Annotation, Assignment, Item, Project, Skip
from labeling.validation import ContentError, sha256_hex, validate_image, validate_text


class DuplicateItemError(Exception):
    """The project already holds this exact content."""

    def __init__(self, existing_id: int) -> None:
        super().__init__(f"duplicate of item {existing_id}")
        self.existing_id = existing_id


class AnnotationError(Exception):
    """An annotation was refused; ``conflict`` tells a 409 from a 400."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


def _existing_item_id(project: Project, sha256: str) -> int | None:
    return (
        Item.objects.filter(project=project, content_sha256=sha256)
        .values_list("id", flat=True)
        .first()
    )


def item_create_text(*, project: Project, contributor: User | None, text: object) -> Item:
    """Add a text item. Raises ``ContentError`` or ``DuplicateItemError``."""
    if project.data_kind != Project.DataKind.TEXT:
        raise ContentError("this project collects images: upload a multipart 'file'")
    clean = validate_text(text)
    sha256 = sha256_hex(clean.encode())
    existing = _existing_item_id(project, sha256)
    if existing is not None:
        raise DuplicateItemError(existing)
    try:
        with transaction.atomic():
            return Item.objects.create(
                project=project,
                contributor=contributor,
                text=clean,
                size_bytes=len(clean.encode()),
                content_sha256=sha256,
                required_labels=project.overlap,
            )
    except IntegrityError as exc:
        # Lost a race with an identical upload: the unique constraint decided.
        existing = _existing_item_id(project, sha256)
        if existing is None:
            raise
        raise DuplicateItemError(existing) from exc


def item_create_image(*, project: Project, contributor: User | None, data: bytes) -> Item:
    """Add an image item. Raises ``ContentError`` or ``DuplicateItemError``; stores nothing then."""
    if project.data_kind != Project.DataKind.IMAGE:
        raise ContentError('this project collects text: send JSON {"text": ...}')
    image = validate_image(data)
    existing = _existing_item_id(project, image.sha256)
    if existing is not None:
        raise DuplicateItemError(existing)
    item = Item(
        project=project,
        contributor=contributor,
        image_format=image.format,
        width=image.width,
        height=image.height,
        size_bytes=len(image.data),
        content_sha256=image.sha256,
        required_labels=project.overlap,
    )
    try:
        with transaction.atomic():
            item.image.save(
                f"{image.sha256}.{image.extension}", ContentFile(image.data), save=False
            )
            item.save()
    except BaseException as exc:
        # The file is written before the row: take it back so a refused upload leaves nothing.
        if item.image.name:
            item.image.storage.delete(item.image.name)
        if isinstance(exc, IntegrityError):
            existing = _existing_item_id(project, image.sha256)
            if existing is not None:
                raise DuplicateItemError(existing) from exc
        raise
    return item


def item_gold_validate(*, item: Item, label: str) -> None:
    """Raise ``AnnotationError`` unless ``label`` may become ``item``'s gold answer ("" clears it).

    The answer must be one of the project's classes, and only an open item can become gold or
    stop being gold: a decided item has been credited and may have been sold.
    """
    if label and label not in item.project.classes:
        raise AnnotationError(
            f"{label!r} is not a class of this project: choose one of "
            f"{', '.join(item.project.classes)}"
        )
    if label != item.gold_label and item.status != Item.Status.OPEN:
        raise AnnotationError(
            f"only open items can be made gold or stop being gold; this one is {item.status}",
            conflict=True,
        )


def item_gold_set(*, item: Item, label: str, moderator: User) -> Item:
    """Set (or clear, with ``""``) an item's gold answer, audited. Raises ``AnnotationError``."""
    with transaction.atomic():
        locked = Item.objects.select_for_update().select_related("project").get(pk=item.pk)
        item_gold_validate(item=locked, label=label)
        previous = locked.gold_label
        locked.gold_label = label
        locked.save(update_fields=["gold_label"])
        audit_record(
            actor=moderator,
            action="item.gold",
            target=locked,
            details={"from": previous, "to": label},
        )
    return locked


def assignment_record(*, item: Item, user: User) -> None:
    """Record that ``item`` was served to ``user`` now (serving it again renews the record)."""
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.TASK_ASSIGNMENT_SECONDS)
    renewed = Assignment.objects.filter(item=item, user=user).update(
        served_at=now, expires_at=expires_at
    )
    if renewed:
        return
    try:
        with transaction.atomic():
            Assignment.objects.create(item=item, user=user, served_at=now, expires_at=expires_at)
    except IntegrityError:
        # The same contributor's other request created it a moment ago: renew that one.
        Assignment.objects.filter(item=item, user=user).update(served_at=now, expires_at=expires_at)


def item_skip(*, item: Item, user: User) -> None:
    """Stop serving ``item`` to ``user``. Skipping twice is the same as once.

    Raises ``AnnotationError`` (conflict) when the user has already labeled the item.
    """
    if Annotation.objects.filter(item=item, annotator=user).exists():
        raise AnnotationError("you have already labeled this item", conflict=True)
    Skip.objects.get_or_create(item=item, user=user)


class ItemUnavailable(Exception):
    """No item with this id in an open project."""


def annotation_create(*, item: Item, annotator: User, label: str) -> Annotation:
    """Record one contributor's label for an item, and enqueue its decision once it has enough.

    Raises ``AnnotationError``: 400-like for an unknown class, conflict for a second label by the
    same contributor, one's own contribution or an item already decided.
    """
    project = item.project
    if label not in project.classes:
        raise AnnotationError(
            f"unknown class {label!r}: choose one of {', '.join(project.classes)}"
        )
    if item.contributor_id == annotator.pk:
        raise AnnotationError("contributors cannot label their own items", conflict=True)
    try:
        with transaction.atomic():
            locked = Item.objects.select_for_update().get(pk=item.pk)
            if locked.status != Item.Status.OPEN:
                raise AnnotationError("this item is already decided", conflict=True)
            annotation = Annotation.objects.create(item=locked, annotator=annotator, label=label)
            Item.objects.filter(pk=locked.pk).update(label_count=F("label_count") + 1)
            _enqueue_decision_if_due(
                locked.pk, locked.gold_label, locked.label_count + 1, locked.required_labels
            )
    except IntegrityError as exc:
        raise AnnotationError("you have already labeled this item", conflict=True) from exc
    return annotation


def _enqueue_decision_if_due(item_id: int, gold_label: str, labels: int, required: int) -> None:
    # Gold items have a known answer: their labels measure the labeler, not the item.
    if not gold_label and labels >= required:
        from labeling.tasks import decide_item

        transaction.on_commit(lambda: decide_item.delay(item_id))


# PostgreSQL: the whole submit in one statement, its own transaction. The UPDATE takes the item's
# row lock and counts the label only if every rule holds (open project, open item, a class of the
# project, not the labeler's own item); the INSERT adds the label, and the unique constraint on
# (item, annotator) refuses a second one, which aborts the statement, count included.
_SUBMIT_SQL = f"""
WITH counted AS (
    UPDATE {Item._meta.db_table} AS i
    SET label_count = i.label_count + 1
    FROM {Project._meta.db_table} AS p
    WHERE i.id = %(item)s AND p.id = i.project_id AND p.is_open
      AND i.status = %(open)s
      AND i.contributor_id IS DISTINCT FROM %(annotator)s
      AND p.classes @> jsonb_build_array(%(label)s::text)
    RETURNING i.id, i.label_count, i.required_labels, i.gold_label
), added AS (
    INSERT INTO {Annotation._meta.db_table} (item_id, annotator_id, label, created_at)
    SELECT id, %(annotator)s, %(label)s, %(now)s FROM counted
    RETURNING id, item_id
)
SELECT added.id, counted.label_count, counted.required_labels, counted.gold_label
FROM added JOIN counted ON counted.id = added.item_id
"""


def annotation_submit(*, item_id: int, annotator: User, label: str) -> Annotation:
    """``annotation_create`` for an item of an open project given by id: the API's submit path.

    On PostgreSQL a label costs one statement and no explicit transaction (see ``_SUBMIT_SQL``);
    when it is refused, a second look finds out why. Elsewhere (SQLite) it is
    ``annotation_create``. Raises ``ItemUnavailable`` (no such item in an open project) and
    ``AnnotationError`` like ``annotation_create``.
    """
    if connection.vendor != "postgresql":
        return annotation_create(item=_open_item(item_id), annotator=annotator, label=label)
    now = timezone.now()
    params: dict[str, Any] = {
        "item": item_id,
        "annotator": annotator.pk,
        "label": label,
        "now": now,
        "open": Item.Status.OPEN,
    }
    # Inside a caller's transaction a refused insert must not break it: a savepoint then.
    scope = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with scope, connection.cursor() as cursor:
            cursor.execute(_SUBMIT_SQL, params)
            row = cursor.fetchone()
    except IntegrityError as exc:
        raise AnnotationError("you have already labeled this item", conflict=True) from exc
    if row is None:
        # Refused by a rule: the ORM path says which one (and raises).
        annotation_create(item=_open_item(item_id), annotator=annotator, label=label)
        raise AssertionError("a submit refused in SQL was accepted on a second look")
    annotation_id, labels, required, gold_label = row
    _enqueue_decision_if_due(item_id, gold_label, labels, required)
    return Annotation(
        id=annotation_id, item_id=item_id, annotator=annotator, label=label, created_at=now
    )


def _open_item(item_id: int) -> Item:
    item = Item.objects.select_related("project").filter(pk=item_id, project__is_open=True).first()
    if item is None:
        raise ItemUnavailable()
    return item
