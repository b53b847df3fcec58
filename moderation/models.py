"""Flags: something a check noticed about a contributor or an item, with its evidence, for a
moderator to confirm or dismiss."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Flag(models.Model):
    class Kind(models.TextChoices):
        NEAR_DUPLICATE = "near_duplicate", "Near-duplicate upload"
        SPAMMER = "spammer", "Answers like a spammer"
        SPEED = "speed", "Answers faster than a person can"
        COLLUSION = "collusion", "Agrees with others more than skill explains"
        SELF_LABELING = "self_labeling", "Labels own uploads through other wallets"
        SYBIL = "sybil", "Accounts arriving as a cluster"
        COPY_PASTE = "copy_paste", "Copies other contributors' uploads"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        CONFIRMED = "confirmed", "Confirmed"
        DISMISSED = "dismissed", "Dismissed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="flags",
    )
    project = models.ForeignKey(
        "labeling.Project", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    item = models.ForeignKey(
        "labeling.Item", null=True, blank=True, on_delete=models.PROTECT, related_name="flags"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    evidence = models.JSONField(default=dict, help_text="What the check saw, for the moderator.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["state", "kind"])]

    def __str__(self) -> str:
        who = self.user or (f"item {self.item_id}" if self.item_id else "?")
        return f"{self.get_kind_display()}: {who} ({self.state})"


class SignInFingerprint(models.Model):
    """Where a sign-in came from, kept hashed (HMAC with the deployment's secret) and only for
    ``FINGERPRINT_RETENTION_DAYS``: enough to see accounts arriving in clusters, nothing that
    identifies a network or a browser outside this deployment."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fingerprints"
    )
    network = models.CharField(
        max_length=32,
        blank=True,
        help_text="HMAC of the client's /24 (IPv6: /48); empty when unknown (a loopback address).",
    )
    agent = models.CharField(max_length=32, help_text="HMAC of the User-Agent header.")
    first_sign_in = models.BooleanField(help_text="The account's first sign-in (its creation).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["network", "created_at"]),
            models.Index(fields=["created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.user} from {self.network[:8]}"


class WalletLink(models.Model):
    """A transfer on the chain between a contributor's wallet and another address, kept for the
    Sybil check: wallets funded from, or paying out to, one address belong to one person."""

    class Direction(models.TextChoices):
        FUNDED_FROM = "funded_from", "Funded from"
        PAID_TO = "paid_to", "Paid to"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallet_links"
    )
    direction = models.CharField(max_length=12, choices=Direction.choices)
    counterparty = models.CharField(max_length=42, help_text="The other address, lower-case.")
    asset = models.CharField(max_length=42, help_text='"native" (ether) or the ERC-20 address.')
    value = models.DecimalField(max_digits=78, decimal_places=0, help_text="Base units.")
    block_number = models.PositiveBigIntegerField()
    tx_hash = models.CharField(max_length=66)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-block_number", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tx_hash", "user", "direction", "counterparty", "asset"],
                name="wallet_link_once",
            )
        ]
        indexes = [models.Index(fields=["direction", "counterparty"])]

    def __str__(self) -> str:
        return f"{self.user} {self.get_direction_display().lower()} {self.counterparty}"


class ChainScanCursor(models.Model):
    """How far a chain scan has read: the next block it will read."""

    name = models.CharField(max_length=40, unique=True)
    next_block = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}: next block {self.next_block}"
