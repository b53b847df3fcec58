"""State changes of the labeling pipeline: contributions, annotations and decisions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from labeling.models import Annotation, Item, Project
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
            if locked.label_count + 1 >= locked.required_labels:
                from labeling.tasks import decide_item

                item_id = locked.pk
                transaction.on_commit(lambda: decide_item.delay(item_id))
    except IntegrityError as exc:
        raise AnnotationError("you have already labeled this item", conflict=True) from exc
    return annotation


@dataclass(frozen=True)
class Vote:
    """The crowd's answer for one item: a label, or ``None`` when the top classes tie."""

    label: str | None
    agreement: float


def majority_vote(labels: list[str]) -> Vote:
    """Plurality of the labels; a tie for first place decides nothing.

    The seam where the consensus engine (``labeling.consensus``) plugs in.
    """
    counts = Counter(labels).most_common()
    if not counts:
        return Vote(label=None, agreement=0.0)
    top_label, top_count = counts[0]
    if len(counts) > 1 and counts[1][1] == top_count:
        return Vote(label=None, agreement=top_count / len(labels))
    return Vote(label=top_label, agreement=top_count / len(labels))


def item_decide(*, item_id: int) -> Item:
    """Decide an item from its labels; safe to run twice and concurrently.

    With a clear majority the item is accepted and its contributor and agreeing labelers are
    credited in the same transaction. A tie asks for one more label, up to the project's
    ``max_labels``; after that the item goes to the moderators' review queue.
    """
    from rewards.services import ledger_credit_decision

    with transaction.atomic():
        item = Item.objects.select_for_update().select_related("project").get(pk=item_id)
        if item.status != Item.Status.OPEN:
            return item
        labels = list(item.annotations.values_list("label", flat=True))
        if len(labels) < item.required_labels:
            return item
        vote = majority_vote(labels)
        if vote.label is None:
            if item.required_labels < item.project.max_labels:
                item.required_labels += 1
                item.save(update_fields=["required_labels"])
            else:
                item.status = Item.Status.REVIEW
                item.agreement = vote.agreement
                item.save(update_fields=["status", "agreement"])
            return item
        item.status = Item.Status.ACCEPTED
        item.decided_label = vote.label
        item.agreement = vote.agreement
        item.decided_at = timezone.now()
        item.save(update_fields=["status", "decided_label", "agreement", "decided_at"])
        ledger_credit_decision(item=item)
    return item


def item_override(*, item: Item, label: str, moderator: User) -> Item:
    """A moderator decides an item by hand (from the review queue or over the crowd)."""
    from rewards.services import ledger_credit_decision

    if label not in item.project.classes:
        raise AnnotationError(f"unknown class {label!r}")
    with transaction.atomic():
        locked = Item.objects.select_for_update().select_related("project").get(pk=item.pk)
        if locked.status == Item.Status.ACCEPTED:
            raise AnnotationError("the item is already accepted", conflict=True)
        labels = list(locked.annotations.values_list("label", flat=True))
        locked.status = Item.Status.ACCEPTED
        locked.decided_label = label
        locked.agreement = (labels.count(label) / len(labels)) if labels else None
        locked.decided_at = timezone.now()
        locked.save(update_fields=["status", "decided_label", "agreement", "decided_at"])
        ledger_credit_decision(item=locked)
        from accounts.audit import audit_record

        audit_record(
            actor=moderator, action="item.override", target=locked, details={"label": label}
        )
    return locked
