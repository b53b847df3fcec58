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
