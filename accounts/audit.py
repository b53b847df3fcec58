"""The audit trail: call ``audit_record`` inside the transaction of the change it describes."""

from __future__ import annotations

from typing import Any

from django.db import models

from accounts.models import AuditEvent, User


def audit_record(
    *, actor: User | None, action: str, target: models.Model, details: dict[str, Any] | None = None
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        details=details or {},
    )
