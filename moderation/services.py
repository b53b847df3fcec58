"""Moderators' decisions on flags: confirm (optionally banning the contributor) or dismiss.

Written on the back-office branch so its admin actions work before the fraud checks land; the
fraud-check work owns this module (holds, re-decisions on a ban) and replaces it when merged.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from accounts.services import user_ban
from moderation.models import Flag


class FlagError(Exception):
    """A flag decision was refused (already resolved, no reason)."""


def _resolve(flag: Flag, moderator: User, reason: str, state: str) -> Flag:
    reason = reason.strip()
    if not reason:
        raise FlagError("give a reason: it is recorded in the audit trail")
    locked = Flag.objects.select_for_update().get(pk=flag.pk)
    if locked.state != Flag.State.OPEN:
        raise FlagError(f"flag {locked.pk} is already {locked.state}")
    locked.state = state
    locked.resolved_by = moderator
    locked.resolved_at = timezone.now()
    locked.resolution_note = reason[:500]
    locked.save(update_fields=["state", "resolved_by", "resolved_at", "resolution_note"])
    return locked


def flag_confirm(*, flag: Flag, moderator: User, reason: str, ban: bool = False) -> Flag:
    """Confirm an open flag; with ``ban``, ban its contributor too (``accounts.services.user_ban``:
    tokens revoked, payouts held). One transaction, audited. Raises ``FlagError``."""
    with transaction.atomic():
        locked = _resolve(flag, moderator, reason, Flag.State.CONFIRMED)
        banned = bool(ban and locked.user is not None and not locked.user.is_banned)
        if banned and locked.user is not None:
            user_ban(user=locked.user, reason=f"flag {locked.pk}: {reason}", actor=moderator)
        audit_record(
            actor=moderator,
            action="flag.confirm",
            target=locked,
            details={"reason": reason, "ban": banned, "kind": locked.kind},
        )
    return locked


def flag_dismiss(*, flag: Flag, moderator: User, reason: str) -> Flag:
    """Dismiss an open flag, audited. Raises ``FlagError``."""
    with transaction.atomic():
        locked = _resolve(flag, moderator, reason, Flag.State.DISMISSED)
        audit_record(
            actor=moderator,
            action="flag.dismiss",
            target=locked,
            details={"reason": reason, "kind": locked.kind},
        )
    return locked
