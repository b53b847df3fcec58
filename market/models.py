"""Datasets as buyers get them: access grants (given by a moderator or bought on-chain), the
purchases that prove payment, and exports built in the background."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from labeling.models import Project
from rewards.fields import TokenAmountField


class DatasetPurchase(models.Model):
    """A transfer of the payout asset to the treasury, proven by its transaction and verified
    from the chain. One per transaction: the unique hash refuses a replay."""

    tx_hash = models.CharField(max_length=66, unique=True, help_text="0x + 64 hex, lower case.")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="purchases")
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="dataset_purchases"
    )
    payer = models.CharField(max_length=42, help_text="The wallet the transfer came from.")
    treasury = models.CharField(max_length=42)
    asset = models.CharField(max_length=42, help_text="The ERC-20 contract paid in.")
    amount = TokenAmountField(help_text="Base units transferred to the treasury by the tx.")
    price = TokenAmountField(
        help_text="The price the payment was held to: the one in force when the transfer was "
        "mined, or the price at the claim if lower."
    )
    block_number = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.tx_hash[:12]}… by {self.buyer} for {self.project}"


class DatasetPriceChange(models.Model):
    """One change of a dataset's price (``Project.price``), append-only, written in the same
    transaction as the change by ``market.services.prices.dataset_price_set``.

    A purchase is held to the price in force when its transfer was mined, so a price raised
    between a buyer's transfer and their claim doesn't take their tokens for nothing: the price
    in force at a time is the ``previous_price`` of the first change after it, or the current
    price if none (``market.selectors.dataset_price_at``)."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="price_changes")
    previous_price = TokenAmountField(help_text="The price before this change.")
    price = TokenAmountField(help_text="The price from this change on.")
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who changed it (none: a command or a migration).",
    )

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["project", "changed_at"])]

    def __str__(self) -> str:
        return f"{self.project}: {self.previous_price} → {self.price} at {self.changed_at}"


class DatasetGrant(models.Model):
    """A buyer's access to one dataset's records, content and exports, closed projects too."""

    class Source(models.TextChoices):
        MODERATOR = "moderator", "Given by a moderator"
        PURCHASE = "purchase", "Bought on-chain"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="grants")
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="dataset_grants"
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The moderator who gave it.",
    )
    purchase = models.OneToOneField(
        DatasetPurchase, null=True, blank=True, on_delete=models.PROTECT, related_name="grant"
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Two requests granting the same access race here, not in Python.
            models.UniqueConstraint(
                fields=["project", "buyer"],
                condition=Q(revoked_at__isnull=True),
                name="grant_one_live_per_buyer_and_dataset",
            ),
            models.CheckConstraint(
                condition=~Q(source="purchase") | Q(purchase__isnull=False),
                name="grant_bought_has_purchase",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.buyer} → {self.project} ({self.source})"


def export_upload_to(export: DatasetExport, filename: str) -> str:
    return f"exports/{export.project_id}/{export.pk}/{filename}"


class DatasetExport(models.Model):
    """An export requested by a buyer, built by a Celery task into the media storage."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired (files deleted)"

    class Format(models.TextChoices):
        JSONL = "jsonl", "JSON Lines"
        CSV = "csv", "CSV"
        COCO = "coco", "COCO (zip: annotations and images)"
        YOLO = "yolo", "YOLO (zip: images, labels, data.yaml)"
        LABEL_STUDIO = "label_studio", "Label Studio JSON tasks"
        PARQUET = "parquet", "Parquet (Hugging Face datasets, with a dataset card)"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="exports")
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="dataset_exports"
    )
    format = models.CharField(max_length=16, choices=Format.choices)
    filters = models.JSONField(default=dict, blank=True, help_text="The record filters, as given.")
    base_url = models.CharField(
        max_length=300, help_text="The site as the buyer reached it: image and file URLs."
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0 to 100.")
    records = models.PositiveIntegerField(default=0)
    size_bytes = models.PositiveBigIntegerField(default=0)
    file = models.FileField(upload_to=export_upload_to, blank=True, max_length=300)
    croissant = models.FileField(upload_to=export_upload_to, blank=True, max_length=300)
    card = models.FileField(upload_to=export_upload_to, blank=True, max_length=300)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "expires_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="export_progress_0_100"),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.project} ({self.format}, {self.status})"


def import_upload_to(job: ItemImport, filename: str) -> str:
    return f"imports/{job.project_id}/{filename}"


class ItemImport(models.Model):
    """A moderator's bulk import of items (and optionally their answers, as pre-labels or gold)
    from a Label Studio JSON export, a CSV or a JSON Lines file; run by a Celery task."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Format(models.TextChoices):
        LABEL_STUDIO = "label_studio", "Label Studio JSON tasks"
        CSV = "csv", "CSV (a text column)"
        JSONL = "jsonl", 'JSON Lines ({"text": ...} per line)'

    class Answers(models.TextChoices):
        IGNORE = "ignore", "Ignore them"
        PRELABEL = "prelabel", "Keep them as pre-labels (for moderators)"
        GOLD = "gold", "Make them gold answers"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="imports")
    moderator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="item_imports"
    )
    file = models.FileField(upload_to=import_upload_to, max_length=300)
    format = models.CharField(max_length=16, choices=Format.choices)
    answers = models.CharField(max_length=10, choices=Answers.choices, default=Answers.IGNORE)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0 to 100.")
    rows = models.PositiveIntegerField(default=0, help_text="Rows read so far.")
    created = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    report = models.JSONField(
        default=list,
        blank=True,
        help_text='Rejected rows: [{"row": n, "error": "..."}]; "row": null for the whole file.',
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"import {self.pk} into {self.project} ({self.status})"
